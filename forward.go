package switchboard

import (
	"context"
	"time"
)

// dialable fails when the caller's audio cannot go onto a leg we place:
// those offer G.711 only, and Opus is carried unchanged or not at all.
func (r *callRun) dialable() error {
	if c := r.leg.Media().Codec(); !c.IsG711() {
		return Errorf(EINVALID, "no common codec: the caller speaks %s and calls we place offer G.711 only", c.Name)
	}
	return nil
}

// forward places a call to uri and bridges the caller to it, answering
// the caller only once the far end answers: a queue's overflow to a SIP
// URI. The forwarded call is not recorded: the recording's consent was
// for the tenant's operators.
func (r *callRun) forward(ctx context.Context, uri, why string) {
	route, user, err := ParseSIPURI(uri)
	if err == nil {
		err = r.dialable()
	}
	if err != nil || r.s.dialer == nil {
		r.log.Warn("cannot forward", "err", err)
		r.reject(ctx, 480, why+"; forwarding is not possible", CallFailed)
		r.failed(FailedOnService, StageRouting)
		r.finish(ctx, PartySystem)
		return
	}
	r.event(EventForwarded, map[string]any{"uri": uri, "reason": why})
	out, err := r.s.dialer.Dial(ctx, route, user)
	if err != nil {
		r.log.Warn("forwarding", "err", err)
		r.reject(ctx, 480, why+"; forwarding failed", CallFailed)
		r.failed(FailedOnService, StageRouting)
		r.finish(ctx, PartySystem)
		return
	}
	defer out.Close()
	if !r.forwardAnswered(ctx, out, why) {
		return
	}
	if !r.answerForwarded(ctx, out) {
		return
	}
	r.c.Codec = r.leg.Media().Codec().Name
	b := NewBridge(r.leg.Media(), out.Media())
	b.Start()
	r.event(EventAnswered, map[string]any{"forwarded_to": uri, "codec": r.c.Codec})
	r.update(ctx)
	r.flush(ctx)

	by, reason := r.forwardedTalk(ctx, out, nil)
	b.Stop()
	r.addStats(b)
	r.sample(b)
	if r.c.Status == CallAnswered {
		r.c.Status = CallCompleted
	}
	if r.c.Reason == "" {
		r.c.Reason = reason
	}
	r.finish(ctx, by)
}

// forwardAnswered waits for the forwarded call's answer; when it does not
// come, the call is over and it says false.
func (r *callRun) forwardAnswered(ctx context.Context, out OutboundLeg, why string) bool {
	ev, over := r.dialAnswer(ctx, out)
	switch {
	case over:
		return false
	case ev.Kind == LegAnswered:
		return true
	}
	r.event(EventRejected, map[string]any{"forwarded": true, "sip_code": ev.Code, "reason": ev.Reason})
	r.reject(ctx, 480, why+"; the forwarded call was not answered", placedStatus(ev.Code))
	r.failed(FailedOnTrunk, StageRinging)
	r.finish(ctx, PartySystem)
	return false
}

// dialAnswer waits, the caller not yet answered, for a leg placed for them
// to be answered or to fail (the event says which). When the caller gives
// up, the call is ended through the API or the service stops first, it
// ends the call and reports it over.
func (r *callRun) dialAnswer(ctx context.Context, out OutboundLeg) (ev LegEvent, over bool) {
	answered := r.c.AnsweredAt != nil // a transfer: the caller's leg is up
	for {
		select {
		case ev, ok := <-out.Events():
			if !ok {
				ev = LegEvent{Kind: LegFailed, Code: 500, Reason: "the leg closed"}
			}
			if ev.Kind == LegAnswered || ev.Kind == LegFailed {
				return ev, false
			}
		case ev, ok := <-r.leg.Events():
			if !ok || ev.Kind == LegCanceled || ev.Kind == LegHungUp {
				out.Hangup(ctx, "the caller gave up")
				if answered {
					r.callerLeftTransfer(ctx, ev.Reason)
					return ev, true
				}
				r.event(EventCanceled, nil)
				r.c.Status, r.c.SIPCode, r.c.Reason = CallCanceled, 487, "caller canceled before answer"
				r.failed(FailedOnTrunk, StageRinging)
				r.finish(ctx, PartyCaller)
				return ev, true
			}
		case m := <-r.lc.ops:
			switch m.kind {
			case opConsent:
				r.setConsent(m.consent)
			case opEnd:
				out.Hangup(ctx, endedByAPI)
				r.endWaiting(ctx, answered, false)
				return LegEvent{}, true
			}
		case <-ctx.Done():
			out.Hangup(context.Background(), "service shutting down")
			r.endWaiting(ctx, answered, true)
			return LegEvent{}, true
		}
	}
}

// answerForwarded answers the caller's leg once the party a call was
// sent to (a forward, another instance's operator) answered. When the
// caller's leg fails, that party is hung up on and the call is over.
func (r *callRun) answerForwarded(ctx context.Context, out OutboundLeg) bool {
	if err := r.leg.Answer(ctx); err != nil {
		out.Hangup(ctx, "the caller's leg failed")
		r.c.Status, r.c.Reason = CallFailed, "answer not acknowledged: "+err.Error()
		r.failed(FailedOnTrunk, StageMediaSetup)
		r.finish(ctx, PartySystem)
		return false
	}
	now := r.s.now()
	r.c.Status, r.c.AnsweredAt, r.c.SIPCode = CallAnswered, &now, 200
	r.c.TimeToAnswerMS = now.Sub(r.c.CreatedAt).Milliseconds()
	return true
}

// forwardedTalk waits for either side of a forwarded call to end it.
//
// recorded is the bridge a call's recording may tap: a call handed to an
// operator on another instance is recorded here, and consent and pauses
// stated for it (through the API) apply to it. Nil for calls forwarded
// out of the tenant's operators: consent is noted, nothing recorded.
func (r *callRun) forwardedTalk(ctx context.Context, out OutboundLeg, recorded *Bridge) (Party, string) {
	for {
		select {
		case ev, ok := <-r.leg.Events():
			switch {
			case !ok || ev.Kind == LegHungUp:
				out.Hangup(ctx, "the caller hung up")
				r.event(EventHungUp, map[string]any{"by": PartyCaller, "reason": ev.Reason})
				return PartyCaller, "caller hung up"
			case ev.Kind == LegMediaTimeout:
				out.Hangup(ctx, "the caller's media stopped")
				r.hangup(ctx, ev.Reason)
				r.c.Status = CallFailed
				r.failed(FailedOnTrunk, StageMedia)
				return PartySystem, ev.Reason
			}
		case ev, ok := <-out.Events():
			if !ok || ev.Kind == LegHungUp || ev.Kind == LegFailed {
				r.hangup(ctx, "the forwarded party hung up")
				r.event(EventHungUp, map[string]any{"by": PartyForwarded, "reason": ev.Reason})
				return PartyForwarded, "the forwarded party hung up"
			}
		case m := <-r.lc.ops:
			switch {
			case m.kind == opEnd:
				out.Hangup(ctx, endedByAPI)
				r.hangup(ctx, endedByAPI)
				return PartySystem, endedByAPI
			case m.kind == opConsent:
				r.setConsent(m.consent)
				if recorded != nil {
					r.applyConsent(ctx, recorded)
				}
			case m.kind == opPause && recorded != nil:
				r.pauseRecording(recorded, m.paused)
			}
		case <-ctx.Done():
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out.Hangup(hctx, "service shutting down")
			r.hangup(hctx, "service shutting down")
			cancel()
			return PartySystem, "service shutting down"
		}
	}
}
