package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// answerTimeout bounds how long an outbound INVITE may go unanswered: a
// carrier that neither rings nor answers is treated as down (408), so the
// next trunk is tried.
const answerTimeout = 60 * time.Second

var _ sb.Dialer = (*Server)(nil)

// outLeg is a call we place through a trunk.
type outLeg struct {
	legBase
	dlg  *sipgo.DialogClientSession
	port *rtpPort

	cancel    context.CancelFunc // gives up waiting for the answer: CANCEL
	done      chan struct{}      // the answer, or the failure, is in
	closeOnce sync.Once

	sessionID uint64
	sdpIP     netip.Addr

	answered bool
	lastDir  string // our last description's direction; "" while it is the INVITE's offer
	ml       mlines // the far end's m= lines, which our answers mirror
	awaitAck uint32 // CSeq of a re-INVITE whose 200 carried our offer
	timers   legTimer

	// The far end's dialogs, by its tag: each early dialog (a fork's
	// 18x) is one; once the call is answered, the one of tag, which the
	// 2xx confirmed, is the call's.
	dialogs map[string]*farDialog
	tag     string

	askedLonger bool // our INVITE was sent again after a 422
}

// farDialog is what a call we place keeps of one of the far end's
// dialogs.
type farDialog struct {
	cseq uint32 // the far end's last CSeq in it (inOrder)
	seen bool   // a request of the far end's came: cseq is set
	// rseq is the RSeq of the last reliable provisional response
	// PRACKed in this early dialog: RSeq order is the dialog's own (RFC
	// 3262 §4), so a fork's first reliable 18x is new whatever RSeq
	// another fork's had.
	rseq uint32
	// answer is the far end's description once a reliable 18x answered
	// our INVITE's offer in this early dialog (RFC 3262 §5): the early
	// offer/answer is complete, and the 2xx brings no new answer (RFC
	// 3261 §13.2.1).
	answer *offer
}

// dialog is the far end's dialog of tag; l.mu is held.
func (l *outLeg) dialog(tag string) *farDialog {
	d := l.dialogs[tag]
	if d == nil {
		d = &farDialog{}
		l.dialogs[tag] = d
	}
	return d
}

// Dial places a call to number through route: an INVITE with our offer
// (PCMU, PCMA, telephone-event; on a DTLS-SRTP route with r.Opus, Opus
// first and telephone-event at 48 kHz too), answering a digest challenge with the
// route's credentials. It returns once the INVITE is sent.
func (s *Server) Dial(ctx context.Context, r sb.OutboundRoute, number string) (sb.OutboundLeg, error) {
	host, port, err := net.SplitHostPort(r.Target)
	if err != nil {
		return nil, sb.Errorf(sb.EINVALID, "trunk target %q is not host:port", r.Target)
	}
	transport := strings.ToLower(r.Transport)
	if transport == "" {
		transport = "udp"
	}
	local, peer, err := routeTo(r.Target)
	if err != nil {
		return nil, fmt.Errorf("sip: dial %s: %w", r.Target, err)
	}
	conn, err := listenRTP(local, s.conf.RTPPorts)
	if err != nil {
		return nil, fmt.Errorf("sip: dial: no RTP port: %w", err)
	}
	sdpIP := local
	if s.conf.PublicIP.IsValid() {
		sdpIP = s.conf.PublicIP
	}
	p, _ := parsePort(port)
	recipient := sip.Uri{Scheme: "sip", User: number, Host: host, Port: p}
	if transport != "udp" {
		recipient.UriParams = sip.HeaderParams{}
		recipient.UriParams.Add("transport", transport)
	}
	from := r.CallerID
	if from == "" {
		from = "switchboard"
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "switchboard", Host: sdpIP.String()}}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport(strings.ToUpper(transport))
	s.mu.Lock()
	listener := s.udpAddr
	s.mu.Unlock()
	if transport == "udp" && listener.IsValid() {
		// From the listening socket, like our responses: the carrier
		// answers where it allows, and the capture sees it all. Its
		// requests in the dialog (BYE, refreshes) come to it too.
		req.Laddr = sip.Addr{IP: listener.Addr().AsSlice(), Port: int(listener.Port())}
		contact.Address.Port = int(listener.Port())
	}
	fromParams := sip.NewParams()
	fromParams.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: sdpIP.String()}, Params: fromParams})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: host}})
	callID := sip.CallIDHeader(sb.NewID().String())
	if r.Hop != "" {
		callID = sip.CallIDHeader(sb.HopSIPCallID(r.Hop)) // the token is good for this INVITE only
	}
	req.AppendHeader(&callID)
	if r.MaxForwards > 0 {
		mf := sip.MaxForwardsHeader(r.MaxForwards)
		req.AppendHeader(&mf)
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	appendHeaders(req, s.timerOffer())
	if r.Hop != "" {
		req.AppendHeader(sip.NewHeader(sb.HopHeader, r.Hop))
	}
	sessionID := newSessionID()
	var media *rtpPort
	switch r.Media {
	case sb.MediaDTLS:
		id, err := s.dtlsIdentity()
		if err != nil {
			conn.Close()
			return nil, err
		}
		t, err := newICETransport(conn, id, s.conf.PublicIP, s.log.With("sip_call_id", callID.Value()))
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("sip: dial: %w", err)
		}
		media = newICEPort(conn, sb.PCMU, t, &s.rtpDrops)
	case "", sb.MediaRTP:
		media = newRTPPort(conn, sb.PCMU, netip.AddrPort{}, peer, nil, &s.rtpDrops)
	default:
		conn.Close()
		return nil, sb.Errorf(sb.EINVALID, "trunk media %q is not %s or %s", r.Media, sb.MediaRTP, sb.MediaDTLS)
	}
	// Opus only where the answer's Opus is kept private on the way
	// (parseOffer takes it over SRTP only) and the caller can take it.
	req.SetBody(buildOffer(sessionID, 1, sdpIP, media.LocalAddr().Port(), media.security(), r.Opus && media.ice != nil))

	l := &outLeg{legBase: newLegBase(s, req.CallID().Value(), s.log), port: media,
		sessionID: sessionID, sdpIP: sdpIP, done: make(chan struct{}), dialogs: map[string]*farDialog{}}
	if media.ice != nil {
		media.ice.failed = func(reason string) { l.emit(sb.LegEvent{Kind: sb.LegMediaFailed, Reason: reason}) }
	}
	s.capture.claim(l.sipCallID)
	dua := &sipgo.DialogUA{Client: s.client, ContactHDR: contact}
	if l.dlg, err = dua.WriteInvite(ctx, req); err != nil {
		l.port.Close()
		s.capture.release(l.sipCallID)
		return nil, fmt.Errorf("sip: dial %s: %w", r.Target, err)
	}
	if !s.addOutLeg(l) {
		l.Close()
		return nil, sb.Errorf(sb.EUNAVAILABLE, "shutting down")
	}
	waitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
	l.cancel = cancel
	go l.waitAnswer(waitCtx, r)
	return l, nil
}

func parsePort(s string) (int, error) {
	var p int
	_, err := fmt.Sscanf(s, "%d", &p)
	return p, err
}

// routeTo resolves target: the local address packets to it leave from,
// to announce in our offer, and its own address, where its media may come
// from besides the address its answer gives.
func routeTo(target string) (local, peer netip.Addr, err error) {
	c, err := net.Dial("udp", target) // no packet is sent
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), c.RemoteAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// waitAnswer follows the INVITE to its end: provisional responses become
// ringing and early media; a 2xx is ACKed and its answer taken; anything
// else is a failure with its code.
func (l *outLeg) waitAnswer(ctx context.Context, r sb.OutboundRoute) {
	defer close(l.done)
	// The far end's responses are read here, off any request handler's
	// guard: a panic on one costs this call, never the process.
	defer func() {
		if p := recover(); p != nil {
			l.s.log.Error("panic reading a placed call's responses", "panic", p, "stack", string(debug.Stack()))
			l.emit(sb.LegEvent{Kind: sb.LegFailed, Code: 500, Reason: "internal error reading the far end's answer"})
		}
	}()
	rang, early := false, false
	opts := sipgo.AnswerOptions{
		Username: r.Username,
		Password: r.Password,
		OnResponse: func(res *sip.Response) error {
			l.prack(ctx, res)
			if res.StatusCode <= 100 || res.StatusCode >= 200 {
				return nil
			}
			reliable := requires(res, "100rel") && res.GetHeader("RSeq") != nil
			if len(res.Body()) > 0 && (reliable || res.StatusCode == sip.StatusSessionInProgress && !early) {
				a, err := describedIn(res)
				if err != nil {
					l.log.Info("a provisional response whose session description we cannot use", "code", res.StatusCode, "err", err)
				}
				if err == nil && reliable {
					l.mu.Lock()
					if d := l.dialog(tagOf(res.To().Params)); d.answer == nil {
						d.answer = a // a retransmission repeats it (RFC 3262 §3)
					}
					l.mu.Unlock()
				}
				if err == nil && res.StatusCode == sip.StatusSessionInProgress && !early && l.takeAnswer(a) == nil {
					early = true
					l.emit(sb.LegEvent{Kind: sb.LegEarlyMedia})
					return nil
				}
			}
			if (res.StatusCode == sip.StatusRinging || res.StatusCode == sip.StatusSessionInProgress) && !rang {
				rang = true
				l.emit(sb.LegEvent{Kind: sb.LegRinging})
			}
			return nil
		},
	}
	err := l.dlg.WaitAnswer(ctx, opts)
	if l.askLonger(ctx, err) {
		err = l.dlg.WaitAnswer(ctx, opts)
	}
	if res := l.dlg.InviteResponse; err == nil && res != nil && res.IsSuccess() {
		// Where a reliable 18x answered our offer, the 2xx repeats that
		// answer at most (RFC 3261 §13.2.1, RFC 3262 §5): the session is
		// the early dialog's.
		l.mu.Lock()
		a := l.dialog(tagOf(res.To().Params)).answer
		l.mu.Unlock()
		var perr error
		if a == nil {
			a, perr = describedIn(res)
		}
		if aerr := l.dlg.Ack(context.WithoutCancel(ctx)); aerr != nil {
			l.emit(sb.LegEvent{Kind: sb.LegFailed, Code: 408, Reason: "ACK failed: " + aerr.Error()})
			return
		}
		if perr == nil {
			perr = l.takeAnswer(a)
		}
		l.mu.Lock()
		l.answered, l.tag = true, tagOf(res.To().Params)
		l.mu.Unlock()
		if perr != nil {
			l.emit(sb.LegEvent{Kind: sb.LegFailed, Code: 488, Reason: "the answer: " + perr.Error()})
			return
		}
		l.startTimer(res)
		if l.s.conf.MediaTimeout > 0 {
			l.port.lastRecv.Store(time.Now().UnixNano())
		}
		l.emit(sb.LegEvent{Kind: sb.LegAnswered})
		return
	}
	code, reason := 408, "no answer"
	var de *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &de):
		code, reason = de.Res.StatusCode, de.Res.Reason
	case l.dlg.InviteResponse != nil && l.dlg.InviteResponse.StatusCode >= 300:
		code, reason = l.dlg.InviteResponse.StatusCode, l.dlg.InviteResponse.Reason
	case errors.Is(err, context.Canceled):
		code, reason = 487, "canceled"
	case err != nil:
		reason = err.Error()
	}
	l.emit(sb.LegEvent{Kind: sb.LegFailed, Code: code, Reason: reason})
}

// takeAnswer sets the codec and the address from an answer (183 or 200),
// or, on DTLS-SRTP, takes its ICE and DTLS parameters and starts ICE
// (we offered: we are controlling).
func (l *outLeg) takeAnswer(a *offer) error {
	switch t := l.port.ice; {
	case t != nil && a.ICE == nil:
		return errors.New("the answer to our DTLS-SRTP offer is not DTLS-SRTP (UDP/TLS/RTP/SAVPF)")
	case t != nil:
		if err := t.answered(a.ICE); err != nil {
			return err
		}
		t.start(true)
	case a.ICE != nil:
		return errors.New("the answer is DTLS-SRTP to our RTP offer")
	default:
		l.port.setRemote(a.Addr)
	}
	l.port.codec.Store(&a.Codec)
	l.mu.Lock()
	l.direction = a.Direction
	l.mu.Unlock()
	l.port.farDirection(a.Direction) // an answer may hold the call from the start
	return nil
}

func (l *outLeg) SIPCallID() string   { return l.sipCallID }
func (l *outLeg) Media() sb.MediaPort { return l.port }

// Hangup cancels an unanswered call (CANCEL) or ends an answered one (BYE).
func (l *outLeg) Hangup(ctx context.Context, reason string) error {
	l.mu.Lock()
	answered := l.answered
	l.mu.Unlock()
	if !answered {
		l.cancel()
		select {
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	// The far end's Contact is the dialog's remote target; a peer that
	// sent none is reached where the INVITE went.
	target := l.dlg.InviteRequest.Recipient
	if c := l.dlg.InviteResponse.Contact(); c != nil {
		target = c.Address
	}
	bye := sip.NewRequest(sip.BYE, target)
	bye.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf(`Q.850;cause=16;text="%s"`, quote(reason))))
	if err := l.dlg.WriteBye(ctx, bye); err != nil {
		return fmt.Errorf("sip: bye: %w", err)
	}
	return nil
}

// Hold puts the called party on hold, or takes them off, as leg.Hold
// does: sendonly, or inactive where the far end holds us (holdDirection).
func (l *outLeg) Hold(ctx context.Context, held bool) error {
	l.mu.Lock()
	answered := l.answered
	l.mu.Unlock()
	if !answered {
		return errors.New("sip: hold: the call is not answered")
	}
	target := l.dlg.InviteRequest.Recipient
	if c := l.dlg.InviteResponse.Contact(); c != nil {
		target = c.Address
	}
	o := &holdOffer{b: &l.legBase, held: held,
		describe: l.describe,
		keep: func() func() {
			lastDir := l.lastDir
			return func() { l.lastDir = lastDir }
		}}
	return reinvite(ctx, target, o, l.doInvite, l.dlg.WriteRequest, l.port, l.followAnswer, true)
}

// followAnswer takes the far end's answer to a re-INVITE of ours: the
// port follows its address and direction. Our description of a call we
// placed follows our own last one (lastDir), not the far end's.
func (l *outLeg) followAnswer(a *offer) {
	if !a.blackholed() && l.port.ice == nil {
		l.port.setRemote(a.Addr)
	}
	l.mu.Lock()
	l.direction = a.Direction
	l.mu.Unlock()
	l.port.farDirection(a.Direction)
}

// doInvite sends an in-dialog request of ours and returns its final
// response (legBase.sending).
func (l *outLeg) doInvite(ctx context.Context, req *sip.Request, describe func() []byte) (*sip.Response, error) {
	return l.sending(ctx, req, describe, l.dlg.Do)
}

// inOrder checks a request of the far end's against the remote sequence
// number of the dialog it is in, which it then becomes (as
// legBase.inOrder does for a call that came in). Each early dialog, each
// tag of the far end's 18x (a fork), has its own, empty until its first
// request (RFC 3261 §12.1.2, §13.2.2.4). Once the call is answered it is
// the dialog the 2xx confirmed: a request in another gets 481.
func (l *outLeg) inOrder(req *sip.Request, tx sip.ServerTransaction) bool {
	tag, seq := fromTag(req), req.CSeq().SeqNo
	l.mu.Lock()
	other, ok := l.answered && tag != l.tag, false
	if !other {
		d := l.dialog(tag)
		if ok = !d.seen || seq >= d.cseq; ok {
			d.cseq, d.seen = seq, true
		}
	}
	l.mu.Unlock()
	switch {
	case other:
		l.s.noDialog(req, tx)
	case !ok:
		l.outOfOrder(req, tx)
	}
	return ok
}

// tagOf is the tag of a From or To header's parameters; "" when there is
// none.
func tagOf(params sip.HeaderParams) string {
	tag, _ := params.Get("tag")
	return tag
}

// fromTag is the tag of req's From: the far end's, in its dialog.
func fromTag(req *sip.Request) string {
	if from := req.From(); from != nil {
		return tagOf(from.Params)
	}
	return ""
}

// readBye takes the far end's BYE, once it is in order.
func (l *outLeg) readBye(req *sip.Request, tx sip.ServerTransaction) {
	if !l.inOrder(req, tx) {
		return
	}
	if err := l.dlg.ReadBye(req, tx); err != nil {
		l.log.Debug("BYE", "err", err) // its 200 was not sent; the dialog is over all the same
	}
	var reason string
	if h := req.GetHeader("Reason"); h != nil {
		reason = h.Value()
	}
	l.emit(sb.LegEvent{Kind: sb.LegHungUp, Reason: reason})
}

func (l *outLeg) Close() error {
	l.closeOnce.Do(func() {
		if l.cancel != nil {
			l.cancel()
		}
		l.timers.close()
		l.port.Close()
		l.mu.Lock()
		l.endEvents()
		l.mu.Unlock()
		l.s.removeOutLeg(l)
		l.keepTrace()
		l.port.logDrops(l.log.With("sip_call_id", l.sipCallID))
		l.dlg.Close()
	})
	return nil
}

// addOutLeg registers a call we place, so its BYE finds it.
func (s *Server) addOutLeg(l *outLeg) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.outLegs[l.sipCallID] = l
	s.wg.Add(1)
	return true
}

func (s *Server) removeOutLeg(l *outLeg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outLegs[l.sipCallID] == l {
		delete(s.outLegs, l.sipCallID)
		s.wg.Done()
	}
}
