package sip

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// Offers and answers inside a dialog (RFC 3264, RFC 3311, RFC 3261
// §14): a re-INVITE or UPDATE with an offer is answered; a re-INVITE
// without one gets our current description as the offer in its 200, and
// the answer comes in the ACK. Our o= version moves only when what we
// describe changes (RFC 3264 §8), so a refresh that changes nothing is
// answered with the version the far end already has.

// sameSession reports whether two of our descriptions say the same thing:
// everything but the o= line, which carries the version.
func sameSession(a, b []byte) bool {
	return bytes.Equal(withoutOrigin(a), withoutOrigin(b))
}

func withoutOrigin(body []byte) []byte {
	if i := bytes.Index(body, []byte("\no=")); i >= 0 {
		if j := bytes.IndexByte(body[i+1:], '\n'); j >= 0 {
			return append(append([]byte{}, body[:i]...), body[i+1+j:]...)
		}
	}
	return body
}

// describe returns our description built at the current o= version,
// raising the version only when it differs from the last one we sent.
// l.mu is held.
func (l *leg) describe(build func(version uint64) []byte) []byte {
	if l.lastSDP == nil && l.answered && l.dlg.InviteResponse != nil {
		l.lastSDP = l.dlg.InviteResponse.Body() // what Answer sent
	}
	body := build(l.version)
	if l.lastSDP != nil && !sameSession(l.lastSDP, body) {
		l.version++
		body = build(l.version)
	}
	l.lastSDP = body
	return body
}

// ourDirection is the direction we stand at now: the answer to the
// caller's, holding or not (answerDirection). l.mu is held.
func (l *leg) ourDirection() string { return answerDirection(l.direction, l.holding) }

// currentSDP is our description of the session as it stands, the offer a
// re-INVITE without SDP gets. l.mu is held.
func (l *leg) currentSDP() []byte {
	return l.describe(func(v uint64) []byte {
		return buildAnswer(l.sessionID, v, l.sdpIP, l.port.LocalAddr().Port(), l.port.Codec(), l.ourDirection(), l.port.security(), l.ml)
	})
}

// offerOf reads the offer of an in-dialog request on a call whose media
// goes through port; a refusal says why it cannot be taken.
func offerOf(body []byte, port *rtpPort) (*offer, *refusal) { return describedBy(body, port, true) }

// answerOf reads the far end's answer to an offer of ours, as offerOf
// reads an offer; an answer cannot restart ICE (we never asked to).
func answerOf(body []byte, port *rtpPort) (*offer, *refusal) {
	return describedBy(body, port, false)
}

func describedBy(body []byte, port *rtpPort, isOffer bool) (*offer, *refusal) {
	o, err := parseOffer(body)
	if err != nil {
		return nil, refused(err)
	}
	notHere := func(reason string) (*offer, *refusal) {
		return nil, &refusal{code: sip.StatusNotAcceptableHere, warn: warnMisc, reason: reason}
	}
	// The codec stays as the call began: the bridge and the other leg
	// carry it. An offer without it is refused, and the call goes on
	// (RFC 3261 §14.2); an answer without it is not one to our offer.
	c := port.Codec()
	kept, ok := o.keeping(c)
	if !ok {
		return notHere(fmt.Sprintf("this call's audio is %s; it cannot change codec mid-call", c.Name))
	}
	o.Codec = kept
	// DTLS-SRTP stays as the call began, on the same association (same
	// ICE credentials and certificate, the roles kept): a refused offer
	// leaves the session as it was (RFC 3261 §14.2).
	switch {
	case port.ice != nil && o.ICE == nil:
		return notHere("this call's media is DTLS-SRTP over ICE; it cannot change transport mid-call")
	case port.ice == nil && o.ICE != nil:
		return notHere("this call's media is not DTLS-SRTP; it cannot be switched to it mid-call")
	case port.ice != nil:
		if err := port.ice.later(o.ICE, isOffer); err != nil {
			return notHere(err.Error())
		}
		return o, nil
	}
	// SRTP stays as the call began: on with the same suite, or off.
	sec := port.srtp
	switch {
	case sec == nil && o.Crypto != nil:
		return notHere("this call's media is RTP; SRTP cannot be switched on mid-call")
	case sec != nil && o.Crypto == nil:
		return notHere("this call's media is SRTP; it cannot be switched off mid-call")
	case sec != nil:
		if err := sec.setRemote(*o.Crypto); err != nil {
			return notHere(err.Error())
		}
	}
	return o, nil
}

// applyRemote takes the far end's description (an offer, or the answer to
// ours): where its audio goes and which way it flows, reporting hold and
// resume to call control.
func (l *leg) applyRemote(o *offer) {
	l.mu.Lock()
	wasHeld := l.direction == "sendonly" || l.direction == "inactive"
	if o.Codec != l.port.Codec() {
		l.port.codec.Store(&o.Codec) // the call's codec at the payload types the description gives it
	}
	l.direction = o.Direction
	if len(o.MLines.lines) >= len(l.ml.lines) {
		l.ml = o.MLines // streams are added, never taken away (RFC 3264 §8)
	}
	if o.blackholed() {
		l.direction = "inactive"
	}
	nowHeld := o.held()
	l.port.farDirection(l.direction)
	l.mu.Unlock()
	if !o.blackholed() && l.port.ice == nil {
		l.port.setRemote(o.Addr)
	}
	switch {
	case nowHeld && !wasHeld:
		l.emit(sb.LegEvent{Kind: sb.LegHeld})
	case !nowHeld && wasHeld:
		l.port.lastRecv.Store(time.Now().UnixNano()) // the timeout starts over
		l.emit(sb.LegEvent{Kind: sb.LegResumed})
	}
}

// offerInOK answers a re-INVITE that came without SDP: our current
// description is the offer in the 200, and the answer is awaited in the
// ACK of this CSeq.
func (s *Server) offerInOK(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	l.mu.Lock()
	if l.awaitAck != 0 || l.inviting > 0 {
		l.mu.Unlock()
		s.reject(req, tx, sip.StatusRequestPending, "an offer of ours awaits its answer")
		return
	}
	if l.owed > 0 {
		l.mu.Unlock()
		s.respond(tx, retryLater(req, "an offer of yours awaits our answer"))
		return
	}
	if !l.answered {
		// Our offer would be a 2xx to an INVITE the call has not
		// answered yet.
		l.mu.Unlock()
		s.respond(tx, notYetAnswered(req))
		return
	}
	body := l.currentSDP()
	l.awaitAck = req.CSeq().SeqNo
	l.mu.Unlock()
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(sip.HeaderClone(&l.contact))
	appendHeaders(res, l.takeTimer(req))
	s.respond(tx, res)
}

// ackAnswer takes the answer to the offer we made in a re-INVITE's 200
// from its ACK (sdp, or the body's refusal be). An answer we cannot use
// leaves the session as it was.
func (l *leg) ackAnswer(req *sip.Request, sdp []byte, be *bodyError) {
	l.mu.Lock()
	pending := l.awaitAck != 0 && req.CSeq() != nil && req.CSeq().SeqNo == l.awaitAck
	if pending {
		l.awaitAck = 0
	}
	l.mu.Unlock()
	switch {
	case !pending:
		return
	case be != nil:
		l.log.Info("re-INVITE: the ACK's body is unusable; the session stays as it was", "reason", be.reason)
		return
	case sdp == nil:
		l.log.Info("re-INVITE: the ACK carried no answer to our offer; the session stays as it was")
		return
	}
	a, r := answerOf(sdp, l.port)
	if r != nil {
		l.log.Info("re-INVITE: the ACK's answer is unusable; the session stays as it was", "code", r.code, "reason", r.reason)
		return
	}
	l.applyRemote(a)
}

// allows reports whether a message's Allow header names method.
func allows(m headered, method sip.RequestMethod) bool {
	for _, h := range m.GetHeaders("Allow") {
		for _, name := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(name), string(method)) {
				return true
			}
		}
	}
	return false
}

// inDialog returns the caller's leg a re-INVITE or UPDATE belongs to,
// once its CSeq and session interval are checked; nil when the request
// is dealt with already: refused, or the far end's of a call we placed.
func (s *Server) inDialog(req *sip.Request, tx sip.ServerTransaction) *leg {
	l := s.findLeg(req)
	switch {
	case l == nil:
		if out := s.outLegOf(req); out != nil {
			out.onInDialog(req, tx)
			return nil
		}
		s.noDialog(req, tx)
	case !l.inOrder(&l.dlg.Dialog, req, tx):
	default:
		if res := s.tooBrief(req); res != nil {
			s.respond(tx, res)
			return nil
		}
		return l
	}
	return nil
}

// onUpdate takes an UPDATE (RFC 3311) inside a call: with SDP, an offer
// handled like a re-INVITE's (hold, resume, a new address), answered in
// the 200; without, a session refresh.
func (s *Server) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	l := s.inDialog(req, tx)
	if l == nil {
		return
	}
	sdp, be := sessionSDP(req)
	if be != nil {
		s.respond(tx, be.response(req))
		return
	}
	if sdp == nil {
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
		res.AppendHeader(sip.HeaderClone(&l.contact))
		l.mu.Lock()
		answering := l.answering
		l.mu.Unlock()
		if answering {
			// In the early dialog there is no session to refresh yet: the
			// 200 to the INVITE states the timer's terms (RFC 4028 §9).
			appendHeaders(res, l.takeTimer(req))
		}
		s.respond(tx, res)
		return
	}
	s.answerOffer(l, req, tx, sdp)
}

// answerOffer answers the offer (sdp) of a re-INVITE or UPDATE: 491 while
// an offer of ours awaits its answer (RFC 3261 §14.2, RFC 3311 §5.2), 500
// with Retry-After before the call is answered or while another offer of
// the caller's awaits our answer.
func (s *Server) answerOffer(l *leg, req *sip.Request, tx sip.ServerTransaction, sdp []byte) {
	l.mu.Lock()
	pending, answered, theirs := l.awaitAck != 0 || l.inviting > 0, l.answered, l.owed > 0
	settle := func() {}
	if !pending && answered && !theirs {
		settle = l.taking() // a re-INVITE of ours waits for our answer
		defer settle()
	}
	l.mu.Unlock()
	switch {
	case pending:
		s.reject(req, tx, sip.StatusRequestPending, "an offer of ours awaits its answer")
		return
	case !answered:
		s.respond(tx, notYetAnswered(req))
		return
	case theirs:
		s.respond(tx, retryLater(req, "an offer of yours awaits our answer"))
		return
	}
	if s.exchanging != nil {
		s.exchanging(true)
	}
	o, r := offerOf(sdp, l.port)
	if r != nil {
		settle()
		s.respond(tx, r.response(req))
		return
	}
	res := sip.NewSDPResponseFromRequest(req, l.reoffer(o))
	settle()
	res.AppendHeader(sip.HeaderClone(&l.contact))
	appendHeaders(res, l.takeTimer(req))
	s.respond(tx, res)
}

// notYetAnswered refuses an offer, or a re-INVITE that asks for ours, in
// the early dialog (or before the 200's ACK): the INVITE's offer awaits
// our answer, in the 200 (retryLater).
func notYetAnswered(req *sip.Request) *sip.Response {
	return retryLater(req, "the INVITE's offer awaits our answer")
}

// retryLater refuses an offer, or a re-INVITE, while an offer the far end
// made awaits our answer: RFC 3311 §5.2 (UPDATE) and RFC 3261 §14.2 (a
// second INVITE before the first has its final response) want 500, with a
// Retry-After chosen at random from 0 to 10 seconds.
func retryLater(req *sip.Request, reason string) *sip.Response {
	res := rejection(req, sip.StatusInternalServerError, reason)
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(rand.IntN(11))))
	return res
}

// outLegOf finds the call we placed that an in-dialog request belongs to.
func (s *Server) outLegOf(req *sip.Request) *outLeg {
	if req.CallID() == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outLegs[req.CallID().Value()]
}

// onInDialog takes a re-INVITE or UPDATE from the far end of a call we
// placed: a session refresh, or a change of its media, answered with our
// description (ours is unchanged unless the direction is). Before the
// call is answered, an UPDATE may carry an offer once a reliable 18x
// answered ours in its early dialog (RFC 3311 §5.1); a re-INVITE may not.
func (l *outLeg) onInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if !l.inOrder(req, tx) {
		return
	}
	if res := l.s.tooBrief(req); res != nil {
		l.s.respond(tx, res)
		return
	}
	sdp, be := sessionSDP(req)
	if be != nil {
		l.s.respond(tx, be.response(req))
		return
	}
	// An exchange of offer and answer it starts: an offer, or a
	// re-INVITE, whose 200 carries our offer when it has none.
	exchange := sdp != nil || req.IsInvite()
	l.mu.Lock()
	answered := l.answered
	d := l.dialog(fromTag(req))
	ours := l.awaitAck != 0 || l.inviting > 0 || !answered && d.answer == nil
	theirs := l.owed > 0
	take := exchange && !ours && !theirs && (answered || !req.IsInvite())
	settle := func() {}
	if take {
		settle = l.taking()
		defer settle()
	}
	l.mu.Unlock()
	switch {
	case !exchange && !answered:
		// An UPDATE without SDP in the early dialog is a keep-alive: 200
		// (RFC 3311 §5.2). It starts no session timer: there is no session
		// yet, and the 2xx to our INVITE states the terms (RFC 4028 §9).
		l.s.respond(tx, sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		return
	case !answered && req.IsInvite():
		// A re-INVITE while our INVITE is under way: 491 (RFC 3261 §14.2).
		l.s.reject(req, tx, sip.StatusRequestPending, "the call is not answered yet")
		return
	case exchange && ours:
		// Our offer awaits its answer: the INVITE's in this early dialog
		// (no reliable 18x answered it), or a re-INVITE's (RFC 3311 §5.2,
		// RFC 3261 §14.2).
		l.s.reject(req, tx, sip.StatusRequestPending, "an offer of ours awaits its answer")
		return
	case exchange && theirs:
		// Another offer of the far end's awaits our answer (RFC 3311 §5.2).
		l.s.respond(tx, retryLater(req, "an offer of yours awaits our answer"))
		return
	}
	if take && l.s.exchanging != nil {
		l.s.exchanging(true)
	}
	var body []byte
	switch {
	case sdp != nil:
		o, r := offerOf(sdp, l.port)
		if r != nil {
			settle()
			l.s.respond(tx, r.response(req))
			return
		}
		if err := l.takeAnswer(o); err != nil {
			settle()
			l.s.reject(req, tx, sip.StatusNotAcceptableHere, err.Error())
			return
		}
		l.mu.Lock()
		if !answered {
			d.answer = o // the early dialog's session now, whatever the 2xx repeats
		}
		if len(o.MLines.lines) >= len(l.ml.lines) {
			l.ml = o.MLines // streams are added, never taken away (RFC 3264 §8)
		}
		body = l.describe(answerDirection(o.Direction, l.holding))
		l.mu.Unlock()
	case req.IsInvite():
		l.mu.Lock()
		body = l.describe("")
		l.awaitAck = req.CSeq().SeqNo
		l.mu.Unlock()
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if answered {
		// An early dialog has no session to refresh (RFC 4028 §9).
		appendHeaders(res, l.takeTimer(req))
	}
	settle()
	l.s.respond(tx, res)
}

// describe is our description of a call we placed in direction dir (""
// keeps the last one's), its o= version raised only when it changes.
// l.mu is held.
func (l *outLeg) describe(dir string) []byte {
	if l.lastSDP == nil {
		l.lastSDP = l.dlg.InviteRequest.Body() // our offer
	}
	if dir == "" {
		if l.lastDir == "" {
			return l.lastSDP // the offer of the INVITE, as it was
		}
		dir = l.lastDir
	}
	build := func(v uint64) []byte {
		return buildAnswer(l.sessionID, v, l.sdpIP, l.port.LocalAddr().Port(), l.port.Codec(), dir, l.port.security(), l.ml)
	}
	body := build(l.version)
	if !sameSession(l.lastSDP, body) {
		l.version++
		body = build(l.version)
	}
	l.lastSDP, l.lastDir = body, dir
	return body
}

// readAck takes the answer to the offer we made in a re-INVITE's 200.
func (l *outLeg) readAck(req *sip.Request) {
	l.mu.Lock()
	pending := l.awaitAck != 0 && req.CSeq() != nil && req.CSeq().SeqNo == l.awaitAck
	if pending {
		l.awaitAck = 0
	}
	l.mu.Unlock()
	sdp, be := sessionSDP(req)
	if !pending || sdp == nil {
		if pending && be != nil {
			l.log.Info("re-INVITE: the ACK's body is unusable; the session stays as it was", "reason", be.reason)
		}
		return
	}
	a, r := answerOf(sdp, l.port)
	if r == nil {
		if err := l.takeAnswer(a); err != nil {
			r = &refusal{code: sip.StatusNotAcceptableHere, reason: err.Error()}
		}
	}
	if r != nil {
		l.log.Info("re-INVITE: the ACK's answer is unusable; the session stays as it was", "code", r.code, "reason", r.reason)
	}
}
