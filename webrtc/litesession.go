package webrtc

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/packetio"

	sb "github.com/switchboard-voice/switchboard"
)

// The timers of an ICE-lite session. The browser checks the nominated
// pair every few seconds to keep consent (RFC 7675: Chrome every 4–6 s);
// without a check for consentLapse the link is disconnected, and without
// one for consentExpiry (RFC 7675's 30 s) it has failed. The DTLS
// handshake must be done handshakeTimeout after the answer.
const (
	consentLapse     = 10 * time.Second
	consentExpiry    = 30 * time.Second
	handshakeTimeout = 30 * time.Second
	senderReportGap  = 5 * time.Second
	liteTick         = time.Second
	// maxProven bounds the addresses a session is reached at: one per
	// local address and family the browser checks from, in practice.
	maxProven = 8
)

// liteSession is an operator's ICE-lite, DTLS-SRTP media connection on
// the shared port.
type liteSession struct {
	e         *Engine
	log       *slog.Logger
	ufrag     string
	pwd       string
	integrity stun.MessageIntegrity
	ssrc      uint32
	port      *litePort
	release   func() // counts it closed

	route  atomic.Pointer[liteRoute]    // where we send; nil until a check proved one
	routed chan struct{}                // closed once route is first set
	done   chan struct{}                // closed by Close
	keys   atomic.Pointer[liteSRTPKeys] // nil until DTLS is done
	// in guards the decrypting context and the sink's ReceivedAt: a
	// session reached at two local addresses is read by two goroutines.
	in sync.Mutex

	mu        sync.Mutex
	onState   func(string)
	state     string // as OnConnectionStateChange reports it
	ice       string // new, checking, connected, disconnected, failed, closed
	dtlsState string // new, connecting, connected, failed, closed
	answered  time.Time
	theirs    string    // the browser's ufrag, from its answer
	consent   time.Time // the last check on the route (RFC 7675)
	// proven are the addresses checks came from, with the last one's
	// time: theirs are the session's packets.
	proven map[netip.AddrPort]time.Time
	// recent are the last checks' transaction IDs and sources: a check
	// seen before from elsewhere is a replay, not a browser.
	recent    [32]liteCheck
	nRecent   int
	dtlsBuf   *packetio.Buffer // DTLS records for the handshake's conn
	dtlsConn  *dtls.Conn
	pending   []string // states not yet reported
	notifying bool
	closed    bool
}

// liteCheck is a check answered: its transaction and where it came from.
type liteCheck struct {
	id   [stun.TransactionIDSize]byte
	from netip.AddrPort
}

// liteRoute is the nominated pair: the socket its check came in on and
// the browser's address.
type liteRoute struct {
	conn *liteConn
	to   netip.AddrPort
	// nominated: the browser said USE-CANDIDATE on this pair, first at
	// since. Until it does, the first check's address is where we send.
	nominated bool
	since     time.Time
}

// nominationSettles is how long after the browser's first nomination it
// may still nominate another pair at once: a browser switches pairs in
// its first seconds (IPv6 or IPv4, relay or host) as its checks finish.
const nominationSettles = 5 * time.Second

// liteSRTPKeys are the SRTP contexts DTLS keyed: out is used under the
// port's write lock, in under the session's read lock.
type liteSRTPKeys struct {
	out, in *srtp.Context
}

func (e *Engine) newLiteSession() *liteSession {
	s := &liteSession{e: e, log: e.log, ufrag: randomICEString(8), pwd: randomICEString(24),
		ssrc: randomSSRC(), state: "new", ice: "new", dtlsState: "new",
		routed: make(chan struct{}), done: make(chan struct{}), proven: map[netip.AddrPort]time.Time{}}
	s.integrity = stun.NewShortTermIntegrity(s.pwd)
	// DTLS records that come before the answer wait here for the
	// handshake (a browser may start it as soon as it nominates).
	s.dtlsBuf = packetio.NewBuffer()
	s.dtlsBuf.SetLimitSize(64 << 10)
	s.port = &litePort{s: s, prefer: []string{"PCMU", "PCMA", "opus"}}
	s.release = e.opened()
	e.lite.add(s)
	return s
}

// iceChars are ICE's ice-char set (RFC 8839 §5.4): ALPHA, DIGIT, + and /.
const iceChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func randomICEString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = iceChars[int(b[i])%len(iceChars)]
	}
	return string(b)
}

func randomSSRC() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// OnICECandidate is never called back: the offer carries every candidate.
func (s *liteSession) OnICECandidate(func(sb.ICECandidate)) {}

func (s *liteSession) OnConnectionStateChange(fn func(string)) {
	s.mu.Lock()
	s.onState = fn
	s.mu.Unlock()
}

// CreateOffer returns the offer, complete with our host candidates:
// nothing trickles through OnICECandidate.
func (s *liteSession) CreateOffer(context.Context) (string, error) {
	return liteOffer(uint64(s.ssrc), s.ufrag, s.pwd, s.e.cert.fingerprint, s.ssrc, s.e.candidateAddrs()), nil
}

// SetAnswer applies the browser's answer and starts DTLS. A bad answer is
// EINVALID, and so is a second one.
func (s *liteSession) SetAnswer(text string) error {
	a, err := parseLiteAnswer(text)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return sb.Errorf(sb.EINVALID, "the audio connection is closed")
	case !s.answered.IsZero():
		return sb.Errorf(sb.EINVALID, "the SDP answer was already given")
	}
	if err := s.port.negotiate(a.codecs); err != nil {
		return err
	}
	s.answered, s.theirs = time.Now(), a.ufrag
	if s.ice == "new" { // checks may have come before the answer
		s.ice = "checking"
	}
	s.dtlsState = "connecting"
	s.setStateLocked("connecting")
	go s.handshake(a, s.dtlsBuf)
	return nil
}

// AddICECandidate checks a trickled candidate's form. An ICE-lite agent
// does not check pairs itself: the browser's checks say where it is.
func (s *liteSession) AddICECandidate(c sb.ICECandidate) error {
	if c.Candidate == "" {
		return nil // end of candidates
	}
	if _, err := ice.UnmarshalCandidate(strings.TrimPrefix(c.Candidate, "candidate:")); err != nil {
		return sb.Errorf(sb.EINVALID, "the ICE candidate was not accepted: %v", err)
	}
	return nil
}

func (s *liteSession) Media() sb.MediaPort { return s.port }

// Close ends the session: a DTLS close_notify to the browser, and its
// packets are no longer taken.
func (s *liteSession) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	conn, buf := s.dtlsConn, s.dtlsBuf
	s.ice, s.dtlsState = "closed", "closed"
	s.setStateLocked("closed")
	s.mu.Unlock()
	s.e.lite.remove(s)
	s.keys.Store(nil)
	var err error
	if conn != nil {
		err = conn.Close() // its close_notify still has a route
	}
	s.route.Store(nil)
	if buf != nil {
		buf.Close()
	}
	s.release()
	return err
}

// checkIn answers a connectivity check that names this session (RFC 8445
// §7.3, RFC 8489 short-term credentials). Without USERNAME and
// MESSAGE-INTEGRITY it gets 400, with a wrong password or a username not
// ours and the browser's 401, a role conflict 487; none changes anything.
// A bad FINGERPRINT is not STUN, and gets nothing. A right check gets the
// address it came from, signed; it proves that address (unless another
// session was checked from it lately) and nominates it when the browser
// says so (or when it is the first). A check seen before from another
// address is a replay by someone who saw it, and gets nothing.
func (s *liteSession) checkIn(c *liteConn, m *stun.Message, from netip.AddrPort, user string) {
	refuse := func(code stun.ErrorCode, signed ...stun.Setter) {
		setters := append([]stun.Setter{m, stun.BindingError, code}, signed...)
		if resp, err := stun.Build(append(setters, stun.Fingerprint)...); err == nil {
			c.WriteToAddrPort(resp.Raw, from)
		}
	}
	if m.Contains(stun.AttrFingerprint) && stun.Fingerprint.Check(m) != nil {
		return
	}
	if !m.Contains(stun.AttrMessageIntegrity) {
		refuse(stun.CodeBadRequest)
		return
	}
	if s.integrity.Check(m) != nil {
		refuse(stun.CodeUnauthorized)
		return
	}
	resp, err := stun.Build(m, stun.BindingSuccess, &stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		s.integrity, stun.Fingerprint)
	if err != nil {
		return
	}
	_, theirs, _ := strings.Cut(user, ":")
	now := time.Now()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return
	case s.theirs != "" && theirs != s.theirs:
		s.mu.Unlock()
		refuse(stun.CodeUnauthorized)
		return
	case m.Contains(stun.AttrICEControlled):
		// The browser must be the controlling agent of an ICE-lite
		// session (RFC 8445 §6.1.1). The check passed integrity, so the
		// answer is signed (RFC 8489 §9.1.3).
		s.mu.Unlock()
		refuse(stun.CodeRoleConflict, s.integrity)
		return
	}
	for _, r := range s.recent[:min(s.nRecent, len(s.recent))] {
		if r.id == m.TransactionID && r.from != from {
			s.mu.Unlock()
			return
		}
	}
	s.recent[s.nRecent%len(s.recent)] = liteCheck{id: m.TransactionID, from: from}
	s.nRecent++
	route := s.route.Load()
	// The check's integrity proves the browser has our offer: its
	// address is the session's from now on, even before the answer
	// reaches us (the browser may start DTLS as soon as it nominates).
	if !s.e.lite.bind(s, from, now) {
		s.mu.Unlock()
		return // another operator's address: this session cannot use it
	}
	if _, ok := s.proven[from]; !ok && len(s.proven) >= maxProven {
		s.forgetOldest(route)
	}
	s.proven[from] = now
	if next := s.nextRoute(route, c, from, m.Contains(stun.AttrUseCandidate), now); next != route {
		route = next
		s.route.Store(route)
		select {
		case <-s.routed:
		default:
			close(s.routed)
		}
	}
	if route != nil && route.to == from && route.conn == c {
		s.consent = now
		if s.ice == "new" || s.ice == "checking" || s.ice == "disconnected" {
			s.ice = "connected"
			if s.dtlsState == "connected" {
				s.setStateLocked("connected")
			}
		}
	}
	s.mu.Unlock()
	c.WriteToAddrPort(resp.Raw, from)
}

// nextRoute is where we send after a check from `from` on c, the route
// being current; the caller holds s.mu. The first check sets it; the
// browser's nomination (USE-CANDIDATE) moves it, and for the first
// nominationSettles moves it again at once. After that a nominated route
// moves only once it has lost consent (no check on it for consentLapse):
// a check that passes integrity may still be a replay of the browser's,
// resent from elsewhere by someone who saw it after the replay ring forgot
// it, and while the browser keeps checking its pair the route stays with
// the browser. A browser that moves later (a NAT rebinding) is sent to
// again once its old pair has lapsed; one that keeps checking its old
// pair still takes our packets there. Nothing moves a failed session's
// route: failed is final.
func (s *liteSession) nextRoute(route *liteRoute, c *liteConn, from netip.AddrPort, nominates bool, now time.Time) *liteRoute {
	switch {
	case s.state == "failed":
		return route
	case route == nil:
		return &liteRoute{conn: c, to: from, nominated: nominates, since: now}
	case !nominates:
		return route
	case route.to == from && route.conn == c:
		if route.nominated {
			return route
		}
		return &liteRoute{conn: c, to: from, nominated: true, since: now}
	case route.nominated && now.Sub(route.since) > nominationSettles && now.Sub(s.consent) <= consentLapse:
		return route
	}
	since := now
	if route.nominated {
		since = route.since // the settling time runs from the first nomination
	}
	return &liteRoute{conn: c, to: from, nominated: true, since: since}
}

// forgetOldest makes room for an address: the one checked longest ago,
// never the route's.
func (s *liteSession) forgetOldest(route *liteRoute) {
	var oldest netip.AddrPort
	var at time.Time
	for a, t := range s.proven {
		if (route == nil || a != route.to) && (at.IsZero() || t.Before(at)) {
			oldest, at = a, t
		}
	}
	if !at.IsZero() {
		delete(s.proven, oldest)
		s.e.lite.unbind(s, oldest)
	}
}

// dtlsIn queues a DTLS record for the handshake's conn.
func (s *liteSession) dtlsIn(pkt []byte) {
	s.mu.Lock()
	buf := s.dtlsBuf
	s.mu.Unlock()
	if buf != nil {
		buf.Write(pkt, nil) // a full queue drops it: DTLS retransmits
	}
}

// srtpIn decrypts an SRTP packet and hands it to the sink. SRTCP (the
// browser's receiver reports) is not used.
func (s *liteSession) srtpIn(c *liteConn, pkt []byte, at int64) {
	k := s.keys.Load()
	if k == nil || len(pkt) < 12 || (pkt[1] >= 192 && pkt[1] <= 223) {
		return
	}
	s.in.Lock()
	defer s.in.Unlock()
	out, err := k.in.DecryptRTP(c.dec[:0], pkt, &c.hdr)
	if err != nil {
		return // forged, replayed or damaged
	}
	c.dec = out[:0]
	s.port.received(out, at)
}

// handshake runs DTLS with the browser as the answer says, keys SRTP from
// it, and then watches it until it closes.
func (s *liteSession) handshake(a *liteAnswer, buf *packetio.Buffer) {
	pc := &litePacketConn{s: s, buf: buf}
	verify := func(certs [][]byte, _ [][]*x509.Certificate) error {
		if len(certs) == 0 || !a.fingerprint(certs[0]) {
			return errors.New("the certificate does not match the answer's fingerprint")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	var conn *dtls.Conn
	var err error
	if a.dtlsClient {
		// Our first flight goes once there is somewhere to send it, not
		// into the void to wait a second for its retransmission.
		select {
		case <-s.routed:
		case <-s.done:
		case <-ctx.Done():
		}
		conn, err = dtls.ClientWithOptions(pc, litePeer, s.e.dtlsClientOptions(verify)...)
	} else {
		conn, err = dtls.ServerWithOptions(pc, litePeer, s.e.dtlsServerOptions(verify)...)
	}
	if err == nil {
		err = conn.HandshakeContext(ctx)
	}
	var keys *liteSRTPKeys
	if err == nil {
		keys, err = srtpKeys(conn, a.dtlsClient)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		return
	}
	if err != nil {
		s.dtlsState = "failed"
		s.setStateLocked("failed")
		s.mu.Unlock()
		s.log.Info("operator media: DTLS handshake failed", "err", err)
		if conn != nil {
			conn.Close()
		}
		return
	}
	s.dtlsConn = conn
	s.keys.Store(keys)
	s.dtlsState = "connected"
	if s.ice == "connected" {
		s.setStateLocked("connected")
	}
	s.mu.Unlock()

	// Nothing but alerts comes over DTLS from here: a close_notify or an
	// error ends the link.
	var b [256]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			break
		}
	}
	s.mu.Lock()
	if !s.closed && s.state != "failed" {
		s.dtlsState = "closed"
		s.failLocked()
	}
	s.mu.Unlock()
}

// srtpKeys makes the SRTP contexts from DTLS's keying material (RFC 5764
// §4.2) for the profile it chose; what comes in is checked for replays.
func srtpKeys(conn *dtls.Conn, client bool) (*liteSRTPKeys, error) {
	p, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, errors.New("DTLS chose no SRTP profile")
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, errors.New("DTLS has no state")
	}
	c := srtp.Config{Profile: srtp.ProtectionProfile(p)}
	if err := c.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return nil, fmt.Errorf("SRTP keys: %w", err)
	}
	out, err := srtp.CreateContext(c.Keys.LocalMasterKey, c.Keys.LocalMasterSalt, c.Profile)
	if err != nil {
		return nil, fmt.Errorf("SRTP: %w", err)
	}
	in, err := srtp.CreateContext(c.Keys.RemoteMasterKey, c.Keys.RemoteMasterSalt, c.Profile,
		srtp.SRTPReplayProtection(64), srtp.SRTCPReplayProtection(64))
	if err != nil {
		return nil, fmt.Errorf("SRTP: %w", err)
	}
	return &liteSRTPKeys{out: out, in: in}, nil
}

// tick runs the session's timers: consent (disconnected, then failed),
// the handshake's deadline, and a sender report every few seconds.
func (s *liteSession) tick(now time.Time) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	// An address not checked for consentExpiry is no longer the
	// session's, the route's included: a NAT may have given it to
	// someone else.
	for a, t := range s.proven {
		if now.Sub(t) > consentExpiry {
			delete(s.proven, a)
			s.e.lite.unbind(s, a)
		}
	}
	if s.state == "failed" || s.answered.IsZero() {
		s.mu.Unlock()
		return
	}
	since := s.answered
	if s.consent.After(since) {
		since = s.consent
	}
	switch quiet := now.Sub(since); {
	case quiet > consentExpiry:
		s.ice = "failed"
		s.failLocked()
	case quiet > consentLapse && s.ice == "connected":
		s.ice = "disconnected"
		s.setStateLocked("disconnected")
	}
	s.mu.Unlock()
	s.port.senderReport(now)
}

// failLocked ends the link for good: nothing more is sent (RFC 7675 §5.1),
// and no check routes it again.
func (s *liteSession) failLocked() {
	s.route.Store(nil)
	s.setStateLocked("failed")
}

// setStateLocked reports a new connection state, in order, from a
// goroutine of its own so that no lock of ours is held meanwhile.
func (s *liteSession) setStateLocked(st string) {
	if s.state == st {
		return
	}
	s.state = st
	if s.onState == nil {
		return
	}
	s.pending = append(s.pending, st)
	if !s.notifying {
		s.notifying = true
		go s.notify()
	}
}

func (s *liteSession) notify() {
	s.mu.Lock()
	for len(s.pending) > 0 {
		st, fn := s.pending[0], s.onState
		s.pending = s.pending[1:]
		s.mu.Unlock()
		fn(st)
		s.mu.Lock()
	}
	s.notifying = false
	s.mu.Unlock()
}

// link reports the ICE and DTLS states and the nominated pair.
func (s *liteSession) link() sb.LinkInfo {
	s.mu.Lock()
	l := sb.LinkInfo{ICE: s.ice, DTLS: s.dtlsState}
	s.mu.Unlock()
	if r := s.route.Load(); r != nil {
		l.Pair = fmt.Sprintf("host udp %s ↔ prflx udp %s", r.conn.LocalAddr(), r.to)
	}
	return l
}
