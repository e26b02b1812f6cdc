package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// leg is one inbound call's SIP dialog and RTP port: the
// switchboard.TrunkLeg that call control drives.
type leg struct {
	legBase
	dlg     *sipgo.DialogServerSession
	tx      sip.ServerTransaction
	port    *rtpPort
	contact sip.ContactHeader

	sdpIP     netip.Addr
	sessionID uint64

	settled    chan struct{} // the INVITE has its final response, or the leg is closed
	byeSeen    chan struct{} // the caller's BYE came
	byeOnce    sync.Once
	settleOnce sync.Once
	stop       chan struct{}
	closeOnce  sync.Once

	ml        mlines // the session's m= lines, which our descriptions mirror
	answering bool   // Answer is sending the 200: no longer an early dialog
	answered  bool
	final     bool     // a final response was sent
	late      bool     // the INVITE had no offer: ours goes in the 200, the answer comes in the ACK
	acked     bool     // the 200 to the INVITE was acknowledged
	lateErr   error    // the ACK's answer could not be used
	referred  chan int // a REFER's progress, from its NOTIFYs, while one is under way
	awaitAck  uint32   // CSeq of a re-INVITE whose 200 carried our offer: the answer comes in its ACK
	timers    legTimer // RFC 4028 (sessiontimer.go)

	rel      reliable // reliable provisional responses (RFC 3262, reliable.go)
	earlySDP []byte   // our offer as a reliable provisional response carried it
	relErr   error    // why the INVITE was refused for its reliable provisional responses

	// lingering: Answer stopped waiting for its 200's ACK (its context
	// ended), so the dialog the 200 made is to be ended by a BYE once the
	// ACK comes or the 200's retransmissions give up (endCutAnswer); the
	// leg stays registered for that ACK until then, closed or not.
	lingering bool
	cut       bool          // Answer was cut short so: the dialog's BYE is endCutAnswer's alone
	byeWhy    string        // the reason that BYE gives: Hangup's
	told      chan struct{} // closed once Hangup gave byeWhy, while lingering
	toldOnce  sync.Once
	cutDone   chan struct{} // closed once endCutAnswer is done
}

var _ sb.TrunkLeg = (*leg)(nil)

func newLeg(s *Server, dlg *sipgo.DialogServerSession, tx sip.ServerTransaction, port *rtpPort, contact sip.ContactHeader, sdpIP netip.Addr, o *offer, log *slog.Logger) *leg {
	l := &leg{
		legBase: newLegBase(s, dlg.InviteRequest.CallID().Value(), log),
		dlg:     dlg, tx: tx, port: port, sdpIP: sdpIP,
		sessionID: newSessionID(), ml: o.MLines,
		contact: contact,
		settled: make(chan struct{}),
		byeSeen: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	l.direction = o.Direction
	port.farDirection(o.Direction) // an INVITE may already hold the call
	l.rel.on = requires(dlg.InviteRequest, "100rel")
	// With the state it is in now: a CANCEL that came while the INVITE
	// was being read ended the dialog already.
	dlg.OnStateReplay(func(state sip.DialogState) {
		if state != sip.DialogStateEnded {
			return
		}
		l.mu.Lock()
		unanswered := !l.answered && !l.final
		l.mu.Unlock()
		if unanswered {
			// CANCEL, or the INVITE transaction died before an answer.
			l.emit(sb.LegEvent{Kind: sb.LegCanceled, Reason: "caller canceled"})
			l.settle()
		}
	})
	return l
}

func (l *leg) settle() { l.settleOnce.Do(func() { close(l.settled) }) }

func (l *leg) Media() sb.MediaPort { return l.port }

func (l *leg) Ring(ctx context.Context) error {
	l.mu.Lock()
	final := l.final || l.answering
	l.mu.Unlock()
	if final {
		return errors.New("sip: ring: the INVITE has its final response")
	}
	if !l.rel.on {
		return l.dlg.Respond(sip.StatusRinging, "Ringing", nil)
	}
	res := sip.NewResponseFromRequest(l.dlg.InviteRequest, sip.StatusRinging, "Ringing", nil)
	l.mu.Lock()
	offer := l.late && l.earlySDP == nil
	if offer {
		// The first reliable non-failure response carries our offer
		// (RFC 3261 §13.2.1); the PRACK brings the answer.
		l.earlySDP = buildOffer(l.sessionID, l.version, l.sdpIP, l.port.LocalAddr().Port(), nil, false)
		res.SetBody(l.earlySDP)
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	l.mu.Unlock()
	return l.sendReliably(res, offer)
}

func (l *leg) Answer(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			l.timers.close() // no session to keep: the timer the 200 started ends with it
		}
	}()
	if err := l.awaitPRACK(ctx); err != nil {
		return fmt.Errorf("sip: answer: %w", err)
	}
	l.mu.Lock()
	if l.relErr != nil {
		// Refused already: a reliable provisional response went
		// unacknowledged, or its PRACK's answer was no use.
		err := l.relErr
		l.mu.Unlock()
		return fmt.Errorf("sip: answer: %w", err)
	}
	l.answering = true // a BYE from now on ends an answered call, not an early one
	body := buildAnswer(l.sessionID, l.version, l.sdpIP, l.port.LocalAddr().Port(), l.port.Codec(), l.ourDirection(), l.port.security(), l.ml)
	switch {
	case l.late:
		body = buildOffer(l.sessionID, l.version, l.sdpIP, l.port.LocalAddr().Port(), nil, false)
	case l.earlySDP != nil:
		// Offer and answer are done (our reliable 180 and its PRACK): the
		// 200 repeats our description unchanged, no new offer.
		body = l.earlySDP
	}
	l.mu.Unlock()
	if l.port.ice != nil {
		// Our answer is on its way: the far end's checks follow it.
		l.port.ice.start(false)
	}
	res := sip.NewSDPResponseFromRequest(l.dlg.InviteRequest, body)
	res.AppendHeader(sip.HeaderClone(&l.contact))
	// What the caller may send in the dialog, and which extensions we
	// take (RFC 3261 §13.3.1.4 wants both in the 2xx).
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Supported", supportedHeader()))
	appendHeaders(res, l.timerHeaders())
	done := make(chan error, 1)
	go func() { done <- l.dlg.WriteResponse(res) }()
	cut := false
	select {
	case err = <-done:
	case <-ctx.Done():
		err, cut = ctx.Err(), true
	case <-l.byeSeen:
	}
	if l.hungUpBeforeAck() {
		// The caller gave up as the 200 reached them: BYE, not ACK. The
		// dialog is over; nothing is to be sent on it.
		l.mu.Lock()
		l.final, l.answered = true, true
		l.mu.Unlock()
		l.settle()
		return fmt.Errorf("sip: answer: %w", sb.ErrHungUp)
	}
	if errors.Is(err, sip.ErrTransactionCanceled) {
		// The CANCEL got there before the 200 and was answered 487: the
		// dialog never was, and nothing is to be sent on it.
		l.mu.Lock()
		l.final = true
		l.mu.Unlock()
		l.settle()
		return fmt.Errorf("sip: answer: %w", sb.ErrCanceled)
	}
	if cut {
		// The 200 is out, or on its way, and sipgo retransmits it until
		// the ACK: the dialog exists, and only a BYE ends it (RFC 3261
		// §13.3.1.4, §15). Call control goes on without it.
		l.mu.Lock()
		l.final, l.cut = true, true
		l.lingering = !l.closed // else Close took the leg away already: no ACK would find it
		if l.lingering {
			l.s.wg.Add(1) // while the leg's own count, released by removeLeg, is held
			l.told, l.cutDone = make(chan struct{}), make(chan struct{})
		}
		lingering := l.lingering
		l.mu.Unlock()
		l.settle()
		if lingering {
			go l.endCutAnswer(done)
		}
		return fmt.Errorf("sip: answer: %w", err)
	}
	l.mu.Lock()
	l.final = true
	l.answered = err == nil
	lateErr, acked := l.lateErr, l.acked
	l.mu.Unlock()
	l.settle()
	if err != nil && (ctx.Err() != nil || acked) {
		return fmt.Errorf("sip: answer: %w", err)
	}
	if !acked {
		// The 200 went unacknowledged until sipgo stopped retransmitting
		// it (64·T1): the caller may never have got the answer, and the
		// session is to be ended (RFC 3261 13.3.1.4).
		lateErr = errors.New("no ACK for the 200 OK")
	}
	if lateErr != nil {
		// The dialog stands but has no media: end it. A caller that never
		// acknowledged may never answer the BYE either, so call control
		// waits for it only briefly: long enough for the call's trace to
		// hold the BYE and, from a live peer, its answer.
		bye := sip.NewRequest(sip.BYE, l.dlg.InviteRequest.Contact().Address)
		code := sip.StatusNotAcceptableHere
		if !acked {
			code = sip.StatusRequestTimeout
		}
		bye.AppendHeader(reasonHeader(code, lateErr.Error()))
		done := make(chan struct{})
		l.s.wg.Add(1)
		go func() {
			defer l.s.wg.Done()
			defer close(done)
			bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := l.dlg.WriteBye(bctx, bye); err != nil {
				l.log.Debug("BYE after an unusable late answer", "err", err)
			}
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		return fmt.Errorf("sip: answer: %w", lateErr)
	}
	if l.s.conf.MediaTimeout > 0 {
		go l.watchMedia(l.s.conf.MediaTimeout)
	}
	return nil
}

// endCutAnswer ends the dialog of an answer cut short once its 200 is
// settled (sent is WriteResponse's outcome): with a BYE after the ACK, or
// after 64·T1 without one (RFC 3261 §15: not before either); nothing when
// the caller's CANCEL or BYE ended it first. After the ACK the BYE waits
// for call control to say why (Hangup), or to close the leg without a
// word. A server closing meanwhile waits no longer than WriteBye's bound
// (which itself holds the BYE until the ACK): the user agent is about to
// go. An ACK that comes after Close, and this BYE then, are not in the
// trace Close kept: call control has stored it, and does not wait 64·T1
// for a caller who may never acknowledge.
func (l *leg) endCutAnswer(sent <-chan error) {
	defer l.s.wg.Done()
	defer close(l.cutDone)
	var err error
	closing := false
	select {
	case err = <-sent:
	case <-l.s.closing:
		closing = true
	}
	l.mu.Lock()
	acked := l.acked
	l.mu.Unlock()
	if err == nil && acked && !closing {
		select {
		case <-l.told:
		case <-l.stop:
		case <-l.s.closing:
		}
	}
	l.mu.Lock()
	acked, why := l.acked, l.byeWhy
	l.mu.Unlock()
	if err == nil && l.dlg.LoadState() < sip.DialogStateEnded {
		bye := sip.NewRequest(sip.BYE, l.dlg.InviteRequest.Contact().Address)
		switch {
		case !acked && !closing:
			bye.AppendHeader(reasonHeader(sip.StatusRequestTimeout, "no ACK for the 200 OK"))
		case why != "":
			bye.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf(`Q.850;cause=16;text="%s"`, quote(why))))
		default:
			bye.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=16;text="call ended"`))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := l.dlg.WriteBye(ctx, bye); err != nil {
			l.log.Debug("BYE ending an answer cut short", "err", err)
		}
		cancel()
	}
	l.mu.Lock()
	l.lingering = false
	closed := l.closed
	l.mu.Unlock()
	if closed {
		l.s.removeLeg(l)
	}
}

// hungUpBeforeAck reports whether the caller's BYE came before their ACK.
func (l *leg) hungUpBeforeAck() bool {
	select {
	case <-l.byeSeen:
	default:
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.acked
}

func (l *leg) Reject(ctx context.Context, code int, reason string) error {
	l.mu.Lock()
	if l.final {
		l.mu.Unlock()
		return errors.New("sip: reject: the INVITE already has a final response")
	}
	l.final = true
	l.mu.Unlock()
	defer l.settle()
	res := sip.NewResponseFromRequest(l.dlg.InviteRequest, code, phrase(code), nil)
	res.AppendHeader(reasonHeader(code, reason))
	if code == sip.StatusServiceUnavailable {
		res.AppendHeader(sip.NewHeader("Retry-After", "30"))
	}
	done := make(chan error, 1)
	go func() { done <- l.dlg.WriteResponse(res) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("sip: reject: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *leg) Hangup(ctx context.Context, reason string) error {
	l.mu.Lock()
	answered, cut, lingering, acked := l.answered, l.cut, l.lingering, l.acked
	if lingering {
		l.toldOnce.Do(func() {
			l.byeWhy = reason
			close(l.told)
		})
	}
	l.mu.Unlock()
	if cut {
		// The dialog's BYE is endCutAnswer's, sent already or to be sent
		// with this reason once it may. After the ACK that is now, and
		// it is waited for as any BYE is; the ACK itself is not.
		if lingering && acked {
			select {
			case <-l.cutDone:
			case <-ctx.Done():
			}
		}
		return nil
	}
	if !answered {
		return l.Reject(ctx, sip.StatusRequestTerminated, reason)
	}
	bye := sip.NewRequest(sip.BYE, l.dlg.InviteRequest.Contact().Address)
	bye.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf(`Q.850;cause=16;text="%s"`, quote(reason))))
	if err := l.dlg.WriteBye(ctx, bye); err != nil {
		return fmt.Errorf("sip: bye: %w", err)
	}
	return nil
}

func (l *leg) readAck(req *sip.Request, tx sip.ServerTransaction) {
	sdp, be := sessionSDP(req)
	l.ackAnswer(req, sdp, be)
	l.mu.Lock()
	l.acked = true
	if l.late && !l.answered && l.lateErr == nil {
		if be != nil {
			l.lateErr = fmt.Errorf("the ACK's body: %w", be)
		} else {
			l.lateErr = l.takeLateAnswer("the ACK", sdp)
		}
	}
	l.mu.Unlock()
	if err := l.dlg.ReadAck(req, tx); err != nil {
		l.log.Debug("ACK ignored", "err", err)
	}
}

func (l *leg) readBye(req *sip.Request, tx sip.ServerTransaction) {
	var reason string
	if h := req.GetHeader("Reason"); h != nil {
		reason = h.Value()
	}
	if !l.inOrder(&l.dlg.Dialog, req, tx) {
		return // below a re-INVITE's or UPDATE's CSeq too
	}
	// Said before the BYE is taken: taking it ends the INVITE's
	// transaction, and Answer, waiting on it, must know why.
	l.byeOnce.Do(func() { close(l.byeSeen) })
	l.mu.Lock()
	early := !l.answered && !l.final && !l.answering
	l.final = l.final || early
	l.mu.Unlock()
	if early {
		// A BYE in an early dialog (the caller had our 180's tag) ends
		// the call, and the INVITE still gets its final answer: 487
		// (RFC 3261 §15.1.2), sent on its transaction at once, not
		// waiting for its ACK, since the BYE's 200 follows it.
		if err := l.tx.Respond(sip.NewResponseFromRequest(l.dlg.InviteRequest, sip.StatusRequestTerminated, phrase(487), nil)); err != nil {
			l.log.Debug("487 to the INVITE of an early BYE", "err", err)
		}
		l.settle()
	}
	if err := l.dlg.ReadBye(req, tx); err != nil {
		l.log.Debug("BYE", "err", err)
	}
	l.emit(sb.LegEvent{Kind: sb.LegHungUp, Reason: reason})
}

// takeLateAnswer reads the answer to our offer on a late-offer call from
// the message that brought it, from ("the ACK", or "the PRACK" of a
// reliable 18x with our offer): the codec the caller chose among ours,
// and where to send audio. Its errors name from: they reach the carrier
// in the 488's Warning, and the call's record.
func (l *leg) takeLateAnswer(from string, body []byte) error {
	if len(body) == 0 {
		return fmt.Errorf("%s carried no SDP answer to our offer", from)
	}
	a, err := parseOffer(body)
	if err != nil {
		return fmt.Errorf("%s's SDP answer: %w", from, err)
	}
	if a.Crypto != nil || a.ICE != nil {
		return fmt.Errorf("%s's SDP answer is SRTP to our RTP offer", from)
	}
	l.port.codec.Store(&a.Codec)
	l.port.setRemote(a.Addr)
	l.direction = a.Direction
	l.port.farDirection(a.Direction)
	return nil
}

// reoffer takes a re-INVITE's or UPDATE's offer and returns our answer,
// its o= version raised only if the answer changed.
func (l *leg) reoffer(o *offer) []byte {
	l.applyRemote(o)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.describe(func(v uint64) []byte {
		return buildAnswer(l.sessionID, v, l.sdpIP, l.port.LocalAddr().Port(), l.port.Codec(), l.ourDirection(), l.port.security(), l.ml)
	})
}

func (l *leg) onHold() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holding || l.direction == "sendonly" || l.direction == "inactive"
}

// Hold puts the caller on hold, or takes them off: a re-INVITE offering
// sendonly (we hold; inactive where the caller holds us too:
// holdDirection) or sendrecv, ACKed once answered.
func (l *leg) Hold(ctx context.Context, held bool) error {
	l.mu.Lock()
	answered := l.answered
	l.mu.Unlock()
	if !answered {
		return errors.New("sip: hold: the call is not answered")
	}
	o := &holdOffer{b: &l.legBase, held: held, describe: func(dir string) []byte {
		return l.describe(func(v uint64) []byte {
			return buildAnswer(l.sessionID, v, l.sdpIP, l.port.LocalAddr().Port(), l.port.Codec(), dir, l.port.security(), l.ml)
		})
	}}
	return reinvite(ctx, l.dlg.InviteRequest.Contact().Address, o, l.doInvite, l.dlg.WriteRequest, l.port, l.applyRemote, false)
}

// doInvite sends an in-dialog request of ours and returns its final
// response (legBase.sending).
func (l *leg) doInvite(ctx context.Context, req *sip.Request, describe func() []byte) (*sip.Response, error) {
	return l.sending(ctx, req, describe, l.dlg.Do)
}

// reinvite sends a hold's offer in an in-dialog INVITE, ACKs its 2xx,
// and has the leg take the answer (inviteInDialog). One that crossed the
// far end's offer (491) is sent again once, after the wait RFC 3261
// §14.1 gives the side that owns the Call-ID (ours: 2.1 to 4 s) or not
// (0 to 2 s). Each attempt refused, the 491 before its wait included,
// is undone (holdOffer.refused): no re-INVITE of ours is under way
// during the wait, so the far end's offer is answered as we stood before
// the hold (TestOfferDuringTheHoldsBackOff).
func reinvite(ctx context.Context, target sip.Uri, o *holdOffer, do sendFunc,
	write func(*sip.Request) error, port *rtpPort, take func(*offer), ownCallID bool) error {
	for attempt := 0; ; attempt++ {
		res, err := inviteInDialog(ctx, target, o.offer, do, write, port, take)
		if err != nil {
			if !errors.Is(err, errOfferTaken) {
				o.refused()
			}
			return err
		}
		if !res.IsSuccess() {
			o.refused()
		}
		if res.StatusCode == sip.StatusRequestPending && attempt == 0 {
			wait := rand.N(2 * time.Second)
			if ownCallID {
				wait = 2100*time.Millisecond + rand.N(1900*time.Millisecond)
			}
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return fmt.Errorf("sip: re-INVITE answered 491, not sent again: %w", ctx.Err())
			}
		}
		if !res.IsSuccess() {
			return fmt.Errorf("sip: re-INVITE answered %d %s", res.StatusCode, res.Reason)
		}
		return nil
	}
}

// watchMedia reports LegMediaTimeout once when the caller's RTP stops for
// longer than timeout while the call is not on hold.
func (l *leg) watchMedia(timeout time.Duration) {
	l.port.lastRecv.Store(time.Now().UnixNano())
	tick := time.NewTicker(min(timeout/4, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-tick.C:
			if l.onHold() {
				l.port.lastRecv.Store(now.UnixNano())
				continue
			}
			if idle := l.port.idle(now); idle > timeout {
				if l.port.ice != nil && !l.port.ice.ready() {
					// Nothing could come: say why, not just that nothing did.
					l.emit(sb.LegEvent{Kind: sb.LegMediaFailed, Reason: fmt.Sprintf("DTLS-SRTP not set up within %s of the answer (no ICE path, or no DTLS handshake)", idle.Round(time.Second))})
					return
				}
				l.emit(sb.LegEvent{Kind: sb.LegMediaTimeout, Reason: fmt.Sprintf("no RTP for %s", idle.Round(time.Second))})
				return
			}
		}
	}
}

func (l *leg) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		l.timers.close()
		l.port.Close()
		l.mu.Lock()
		pending := !l.final && l.dlg.LoadState() < sip.DialogStateEnded
		l.final = true
		l.endEvents()
		lingering := l.lingering // the ACK still has to find the leg
		l.mu.Unlock()
		if pending {
			res := sip.NewResponseFromRequest(l.dlg.InviteRequest, sip.StatusInternalServerError, phrase(500), nil)
			res.AppendHeader(reasonHeader(500, "call ended"))
			l.s.respond(l.tx, res)
		}
		l.settle()
		if !lingering {
			l.s.removeLeg(l)
		}
		l.keepTrace()
		l.port.logDrops(l.log)
	})
	return nil
}
