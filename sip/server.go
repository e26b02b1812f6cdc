// Package sip is the trunk side of switchboard: a SIP user agent server
// (sipgo) that recognises trunks, takes INVITEs with G.711 offers, and hands
// each call to call control as a switchboard.TrunkLeg with its RTP port.
package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/rxqueue"
	"github.com/switchboard-voice/switchboard/internal/rxstamp"
)

// Dispatcher takes new inbound calls: the one method of call control the
// SIP side needs.
type Dispatcher interface {
	DispatchInbound(call *sb.InboundCall)
	// RecordRefused records an INVITE refused here once its trunk was
	// known.
	RecordRefused(call *sb.RefusedCall)
}

// Config tunes the SIP side.
type Config struct {
	// PublicIP is announced in SDP when the service is behind 1:1 NAT; zero
	// announces the local address the INVITE arrived on.
	PublicIP netip.Addr
	// RTPPorts is the range RTP sockets are bound in; zero lets the
	// system choose.
	RTPPorts sb.PortRange
	// MediaTimeout ends an answered call that has had no RTP from the
	// caller this long while not on hold; zero disables it.
	MediaTimeout time.Duration
	Logger       *slog.Logger
	// Export receives every SIP message sent or received (HEP); nil: none.
	Export Exporter
	// TracePolicy is a tenant's rule for SIP messages it lets out of the
	// service: logged ones are redacted by it. Nil: numbers masked.
	TracePolicy func(ctx context.Context, tenantID sb.ID) (sb.TracePolicy, error)
	// Shield rate-limits and bans sources that flood or scan; nil: none.
	Shield *ShieldConfig
	// HopSecret is the cluster secret: an INVITE carrying a hop token
	// signed with it is a call another instance hands over. Empty: such
	// INVITEs are treated like any other.
	HopSecret []byte
	// TrustedProxies are the SIP front-ends whose SourceHeader names a
	// request's original source (sip/proxy.go); from anyone else the
	// header is ignored.
	TrustedProxies []netip.Prefix
	// MinSE is the shortest session interval (RFC 4028 Min-SE) we take;
	// a shorter Session-Expires is refused with 422. Zero: 90 s, the
	// RFC's minimum; tests set less.
	MinSE time.Duration
	// SessionExpires is the session interval we ask for on calls we
	// place. Zero: 30 minutes.
	SessionExpires time.Duration
	// Overloaded reports whether the service is past what it can take:
	// a new call is then refused at once with 503 and Retry-After
	// (RFC 3261 §21.5.4), before any work is done for it, so the calls
	// already taken keep their pace. A hand-over from another instance
	// (a call already answered) is not a new call and is taken. Nil: never.
	Overloaded func() bool
	// QueueDelay is how long SIP may stand in the UDP socket's queue
	// (from the kernel's receive timestamp to our read, through a whole
	// window of reads) before new calls are refused with 503 and
	// Retry-After, as with Overloaded (sip/queuedelay.go). Zero: never.
	QueueDelay time.Duration
}

// overloadRetryAfter is the Retry-After of a call refused for overload:
// soon, and a trunk with another route takes it at once.
const overloadRetryAfter = "5"

// allowed is the Allow header: what this server does.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE, PRACK"

// maxBody is the largest SDP we read; an offer is well under 2 KiB.
const maxBody = 16 << 10

// Server is the SIP user agent server.
type Server struct {
	dir     sb.TrunkDirectory
	disp    Dispatcher
	conf    Config
	log     *slog.Logger
	nonces  *nonces
	capture *capture
	shield  *shield // nil: every source is let in
	proxies trustedProxies

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client

	draining atomic.Bool
	delays   atomic.Pointer[[]*queueDelay] // one per UDP socket served
	clock    func() time.Time              // the queue delays' clock; nil: time.Now
	relT1    time.Duration                 // T1 of our reliable provisional responses; zero: sipgo's (tests shorten it)
	rtpDrops rtpDrops                      // RTP packets the calls' ports dropped

	// exchanging, when set (by tests, before the server serves), is
	// called where a request of the far end's may cross an exchange of
	// offer and answer under way: as a re-INVITE of ours is about to be
	// described and sent, and (theirs) once the far end's offer is taken
	// and not yet answered.
	exchanging func(theirs bool)

	dtlsOnce sync.Once // the DTLS certificate is made on the first DTLS-SRTP call
	dtlsID   *dtlsIdentity
	dtlsErr  error

	mu           sync.Mutex
	legs         map[string]*leg    // by dialog ID
	invites      openInvites        // INVITEs being answered, for merged copies
	outLegs      map[string]*outLeg // calls we place, by Call-ID
	udpAddr      netip.AddrPort     // the UDP listener: calls we place leave from it
	closed       bool
	closing      chan struct{}  // closed by Close
	loggedTrunk  map[sb.ID]bool // trunks whose calls' SIP messages are logged
	regs         registrations
	authFailures recordLimiter // refusals of a known trunk's bad credentials that are recorded
	spentHops    spentHops     // hand-over tokens taken
	wg           sync.WaitGroup
}

// NewServer returns a server that recognises trunks in dir and hands calls
// to d.
func NewServer(dir sb.TrunkDirectory, d Dispatcher, c Config) (*Server, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{dir: dir, disp: d, conf: c, log: c.Logger, proxies: c.TrustedProxies, legs: map[string]*leg{}, outLegs: map[string]*outLeg{}, closing: make(chan struct{}), capture: newCapture(time.Now, c.Export),
		loggedTrunk: map[sb.ID]bool{}, regs: registrations{loops: map[sb.ID]context.CancelFunc{}, state: map[sb.ID]sb.Registration{}}}
	if c.Shield != nil {
		s.shield = newShield(*c.Shield, time.Now, func(addr netip.Addr, reason string) {
			s.log.Warn("SIP source banned", "source", addr, "reason", reason, "for", c.Shield.BanFor)
		})
	}
	var err error
	if s.nonces, err = newNonces(); err != nil {
		return nil, err
	}
	// sipgo logs unparseable datagrams with their content at error level;
	// they are the sender's problem, so only warnings of ours go out.
	sipLog := slog.New(levelFloor{c.Logger.Handler(), slog.LevelWarn})
	if s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("switchboard"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog))); err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	if s.client, err = sipgo.NewClient(s.ua, sipgo.WithClientLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	s.srv.OnInvite(s.guard(s.onInvite))
	s.srv.OnAck(s.guard(s.onAck))
	s.srv.OnBye(s.guard(s.onBye))
	s.srv.OnCancel(s.guard(s.onCancel))
	s.srv.OnOptions(s.guard(s.onOptions))
	s.srv.OnInfo(s.guard(s.onInfo))
	s.srv.OnNotify(s.guard(s.onNotify))
	s.srv.OnUpdate(s.guard(s.onUpdate))
	s.srv.OnPrack(s.guard(s.onPrack))
	s.srv.OnNoRoute(s.guard(s.onNoRoute))
	return s, nil
}

// levelFloor drops records below a level, and never lets a message's
// content through: sipgo logs what it cannot parse in full, and a SIP
// message carries numbers and names that do not belong in logs.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data", "msg", "req", "res":
			out.AddAttrs(slog.Int(a.Key+"_len", len(a.Value.String())))
		default:
			out.AddAttrs(a)
		}
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(attrs), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}

// sipReadBuffer is the UDP socket's receive queue: SIP from every trunk
// comes in on it, and what arrives while it is full is lost, to be sent
// again by the peer after T1 (500 ms) at the earliest. The system's
// default (about 200 KB) holds about a hundred messages: a tenth of a
// second at 600 calls a second, which dropped calls in SIPp runs.
const sipReadBuffer = 8 << 20

// ServeUDP serves SIP on conn until ctx is done or conn is closed.
func (s *Server) ServeUDP(ctx context.Context, conn net.PacketConn) error {
	captured := &capturedPacketConn{PacketConn: conn, c: s.capture, shield: s.shield, proxies: s.proxies}
	if uc, ok := conn.(*net.UDPConn); ok {
		if got, err := rxqueue.Grow(uc, sipReadBuffer); err != nil || got < sipReadBuffer {
			s.log.Warn("the SIP UDP socket's receive queue is smaller than asked: raise net.core.rmem_max (docs/operations.md)",
				"bytes", got, "asked", sipReadBuffer, "err", err)
		}
		captured.rx = rxstamp.NewReader(uc)
		captured.delay = newQueueDelay(s.conf.QueueDelay)
		if s.clock != nil {
			captured.delay.now = s.clock
		}
		s.watchDelay(captured.delay, true)
		defer s.watchDelay(captured.delay, false) // a socket no longer read holds nothing back
	}
	go s.listening(ctx, conn.LocalAddr())
	return s.serve(ctx, conn, func() error { return s.srv.ServeUDP(captured) })
}

// listening records the UDP listener's address once sipgo serves it:
// calls we place leave from it, and a call placed before sipgo has it
// would make sipgo bind the same port again (address already in use).
// Until then the server is not ready (Listening).
func (s *Server) listening(ctx context.Context, addr net.Addr) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := s.ua.TransportLayer().GetConnection("udp", addr.String()); err == nil && c != nil {
			s.mu.Lock()
			s.udpAddr = addrPort(addr)
			s.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ServeTCP serves SIP on l until ctx is done or l is closed.
func (s *Server) ServeTCP(ctx context.Context, l net.Listener) error {
	captured := &capturedListener{Listener: l, c: s.capture, transport: "tcp", shield: s.shield, proxies: s.proxies}
	return s.serve(ctx, l, func() error { return s.srv.ServeTCP(captured) })
}

// ServeTLS serves SIP on l, a TLS listener, until ctx is done or l is
// closed.
func (s *Server) ServeTLS(ctx context.Context, l net.Listener) error {
	captured := &capturedListener{Listener: l, c: s.capture, transport: "tls", shield: s.shield, proxies: s.proxies}
	return s.serve(ctx, l, func() error { return s.srv.ServeTLS(captured) })
}

func (s *Server) serve(ctx context.Context, c interface{ Close() error }, serve func() error) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err := serve()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// recordLimiter lets one record through per key and window.
type recordLimiter struct {
	mu   sync.Mutex
	last map[sb.ID]time.Time
}

// authFailureWindow is how often a trunk's failed authentication is
// recorded at most.
const authFailureWindow = 10 * time.Second

func (l *recordLimiter) allow(id sb.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[sb.ID]time.Time{}
	}
	if now.Sub(l.last[id]) < authFailureWindow {
		return false
	}
	if len(l.last) > 10000 {
		clear(l.last) // a bound, not an index: forgetting costs one more record
	}
	l.last[id] = now
	return true
}

// Listening reports whether the UDP listener serves and takes new calls,
// for readiness: a draining server is not ready.
func (s *Server) Listening(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.udpAddr.IsValid() {
		return errors.New("sip: not listening")
	}
	if s.draining.Load() {
		return errors.New("sip: draining")
	}
	return nil
}

// SetTrunkLogging switches logging of every SIP message of the trunk's new
// calls on or off, without a restart.
func (s *Server) SetTrunkLogging(trunkID sb.ID, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.loggedTrunk[trunkID] = true
	} else {
		delete(s.loggedTrunk, trunkID)
	}
}

// SetCallLogging switches logging of a call's SIP messages on or off, by
// its SIP Call-ID; on, what crossed the wire so far is logged at once. It
// reports whether the call is in progress here.
func (s *Server) SetCallLogging(ctx context.Context, tenantID sb.ID, sipCallID string, on bool) bool {
	if !on {
		return s.capture.setLogging(sipCallID, nil, sb.TracePolicy{})
	}
	return s.capture.setLogging(sipCallID, s.log.With("tenant", tenantID, "sip_call_id", sipCallID), s.tracePolicy(ctx, tenantID))
}

// tracePolicy is the tenant's trace policy, or numbers masked when it
// cannot be read.
func (s *Server) tracePolicy(ctx context.Context, tenantID sb.ID) sb.TracePolicy {
	if s.conf.TracePolicy == nil {
		return sb.TracePolicy{MaskNumbers: true}
	}
	p, err := s.conf.TracePolicy(ctx, tenantID)
	if err != nil {
		s.log.Warn("trace policy unknown: masking numbers", "tenant", tenantID, "err", err)
		return sb.TracePolicy{MaskNumbers: true}
	}
	return p
}

// Close ends every leg, every registration loop, and the user agent.
func (s *Server) Close() error {
	s.regs.mu.Lock()
	for _, stop := range s.regs.loops {
		stop()
	}
	s.regs.mu.Unlock()
	s.mu.Lock()
	if !s.closed {
		close(s.closing)
	}
	s.closed = true
	legs := make([]interface{ Close() error }, 0, len(s.legs)+len(s.outLegs))
	for _, l := range s.legs {
		legs = append(legs, l)
	}
	for _, l := range s.outLegs {
		legs = append(legs, l)
	}
	s.mu.Unlock()
	for _, l := range legs {
		l.Close()
	}
	s.wg.Wait()
	return errors.Join(s.client.Close(), s.srv.Close(), s.ua.Close())
}

// guard recovers a panic in one request's handler, so that one bad
// message costs only its own transaction.
func (s *Server) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic handling SIP request", "method", req.Method, "panic", p, "stack", string(debug.Stack()))
				s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
			}
		}()
		if res := inspect(req); res != nil {
			if !req.IsAck() { // an ACK is never answered
				s.respond(tx, res)
			}
			return
		}
		if tags := unsupported(req); len(tags) > 0 {
			s.respond(tx, badExtension(req, tags))
			return
		}
		if res := encodedBody(req); res != nil {
			s.respond(tx, res)
			return
		}
		h(req, tx)
	}
}

// respond sends res, logging a failure: there is nobody else to tell.
func (s *Server) respond(tx sip.ServerTransaction, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		s.log.Debug("sending SIP response failed", "code", res.StatusCode, "err", err)
	}
}

// reject answers req with code, a Reason header and, for 400, 406 and 488,
// a Warning that says what was wrong.
func (s *Server) reject(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	s.respond(tx, rejection(req, code, reason))
}

// rejection is the final response reject sends.
func rejection(req *sip.Request, code int, reason string) *sip.Response {
	return warnedRejection(req, code, warnMisc, reason)
}

// Warning codes (RFC 3261 §20.43) our refusals carry.
const (
	warnAddressFormat = 301 // incompatible network address formats
	warnMisc          = 399 // miscellaneous: the text says what
)

// warnedRejection is rejection with the Warning's code warn.
func warnedRejection(req *sip.Request, code, warn int, reason string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, phrase(code), nil)
	res.AppendHeader(reasonHeader(code, reason))
	if code == sip.StatusNotAcceptableHere || code == sip.StatusBadRequest || code == sip.StatusNotAcceptable {
		res.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf(`%d switchboard "%s"`, warn, quote(reason))))
	}
	return res
}

func reasonHeader(code int, text string) sip.Header {
	return sip.NewHeader("Reason", fmt.Sprintf(`SIP;cause=%d;text="%s"`, code, quote(text)))
}

func quote(s string) string {
	return strings.NewReplacer(`"`, `'`, "\\", "/", "\r", " ", "\n", " ").Replace(s)
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if s.draining.Load() {
		// A front-end proxy's health check: send new calls elsewhere.
		res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, phrase(503), nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "60"))
		s.respond(tx, res)
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	// What a request to us may carry (RFC 3261 §11.2).
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Accept", accepted))
	res.AppendHeader(sip.NewHeader("Accept-Encoding", "identity"))
	res.AppendHeader(sip.NewHeader("Supported", supportedHeader()))
	s.respond(tx, res)
}

func (s *Server) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, notAllowed(req))
}

// onCancel sees only CANCELs that match no INVITE transaction: sipgo
// answers the others itself (200, then 487 to the INVITE).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.noDialog(req, tx)
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if l := s.findLeg(req); l != nil {
		l.readAck(req, tx)
	} else if out := s.outLegOf(req); out != nil {
		out.readAck(req)
	}
}

// onInfo takes DTMF sent in SIP INFO (application/dtmf-relay, or
// application/dtmf): a PBX that does not send RFC 4733 events does this.
func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	l := s.findLeg(req)
	out := (*outLeg)(nil)
	if l == nil {
		out = s.outLegOf(req)
	}
	if l == nil && out == nil {
		s.noDialog(req, tx)
		return
	}
	// An INFO is a request in the dialog like any other: its CSeq is
	// checked against the far end's last one, which it then becomes
	// (RFC 3261 §12.2.2).
	if l != nil && !l.inOrder(&l.dlg.Dialog, req, tx) || out != nil && !out.inOrder(req, tx) {
		return
	}
	if len(req.Body()) == 0 {
		// No body, nothing to take: the keep-alive some SBCs send in a
		// dialog (a call we placed too), which mature UAs answer 200.
		s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		return
	}
	if l == nil {
		// On a call we placed no INFO body is taken: keys count from the
		// caller's side only.
		s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusUnsupportedMediaType, phrase(415), nil))
		return
	}
	digit, ok := infoDigit(req)
	if !ok {
		res := sip.NewResponseFromRequest(req, sip.StatusUnsupportedMediaType, phrase(415), nil)
		res.AppendHeader(sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		s.respond(tx, res)
		return
	}
	s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	l.emit(sb.LegEvent{Kind: sb.LegDTMF, Reason: digit})
}

// infoDigit reads the key of a DTMF INFO: "Signal=5" (dtmf-relay) or "5".
func infoDigit(req *sip.Request) (string, bool) {
	ct := req.ContentType()
	if ct == nil {
		return "", false
	}
	body := strings.TrimSpace(string(req.Body()))
	switch strings.ToLower(strings.TrimSpace(strings.Split(ct.Value(), ";")[0])) {
	case "application/dtmf-relay":
		for _, line := range strings.Split(body, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				body = strings.TrimSpace(v)
				break
			}
		}
	case "application/dtmf":
	default:
		return "", false
	}
	if len(body) != 1 || !strings.Contains("0123456789*#ABCD", strings.ToUpper(body)) {
		return "", false
	}
	return strings.ToUpper(body), true
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	l := s.findLeg(req)
	if l == nil && req.CallID() != nil {
		s.mu.Lock()
		out := s.outLegs[req.CallID().Value()]
		s.mu.Unlock()
		if out != nil {
			out.readBye(req, tx)
			return
		}
	}
	if l == nil {
		s.noDialog(req, tx)
		return
	}
	l.readBye(req, tx)
}

// noDialog answers a request that matches no call, dialog or
// transaction of ours: 481 Call/Transaction Does Not Exist.
func (s *Server) noDialog(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
}

// legOrNone is findLeg for a request that only a call that came in can
// take: when there is none, it is answered 481.
func (s *Server) legOrNone(req *sip.Request, tx sip.ServerTransaction) *leg {
	l := s.findLeg(req)
	if l == nil {
		s.noDialog(req, tx)
	}
	return l
}

func (s *Server) findLeg(req *sip.Request) *leg {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.legs[id]
}

// Drain makes the server answer OPTIONS with 503: the instance is
// draining, and a front-end proxy pinging it takes it out of rotation.
// New INVITEs are refused by call control meanwhile.
func (s *Server) Drain() { s.draining.Store(true) }

// addLeg registers l; false if the server is closing.
func (s *Server) addLeg(l *leg) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.legs[l.dlg.ID] = l
	s.wg.Add(1)
	return true
}

func (s *Server) removeLeg(l *leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.legs[l.dlg.ID] == l {
		delete(s.legs, l.dlg.ID)
		s.wg.Done()
	}
}

// phrase is the reason phrase for the final responses we send.
func phrase(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Unsupported URI Scheme"
	case 420:
		return "Bad Extension"
	case 422:
		return "Session Interval Too Small"
	case 480:
		return "Temporarily Unavailable"
	case 482:
		return "Loop Detected"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 491:
		return "Request Pending"
	case 500:
		return "Server Internal Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "Version Not Supported"
	case 603:
		return "Decline"
	}
	return "Error"
}

// RTPPortsInUse says how many RTP ports the calls' SIP legs hold now.
func (s *Server) RTPPortsInUse() int64 { return s.rtpDrops.open.Load() }

// RTPDrops says how many RTP packets the calls' ports have dropped since
// start, by reason: foreign_source (from an address the call takes no
// media from), probation (from the caller's signalling address, before it
// passed probation) and unauthenticated (SRTP that failed its checks).
func (s *Server) RTPDrops() map[string]uint64 {
	return map[string]uint64{
		"foreign_source":  s.rtpDrops.foreign.Load(),
		"probation":       s.rtpDrops.probation.Load(),
		"unauthenticated": s.rtpDrops.forged.Load(),
	}
}

// ShieldStats says how many sources are banned now and how many messages
// and connections the shield has refused.
func (s *Server) ShieldStats() (banned int, dropped uint64) {
	if s.shield == nil {
		return 0, 0
	}
	return s.shield.banned(), s.shield.dropped.Load()
}
