package switchboard

import (
	"context"
	"maps"
	"slices"
	"time"
)

// EventHandedOver says the call was handed to an operator on another
// instance.
const EventHandedOver EventType = "handed_over"

// hopResult is how a hand-over's INVITE ended.
type hopResult int

const (
	hopTaken   hopResult = iota // the other instance's operator answered
	hopRefused                  // not taken there: try the next
	hopOver                     // the call is over (caller gone, ended, shutdown)
)

// handOver offers the call to operators free on other instances, one
// after another, and bridges it to the first who answers. It reports
// whether the call was taken there (and is now over); when not, the call
// goes on here, in line or refused.
func (r *callRun) handOver(ctx context.Context, members []ID, tried map[ID]bool, ringing *bool) bool {
	if r.s.cluster == nil || r.s.dialer == nil || r.dialable() != nil {
		return false // an Opus caller stays with this instance's operators
	}
	cctx, cancel := dbContext(ctx)
	cands, err := r.s.cluster.Candidates(cctx, r.c.TenantID, members, slices.Collect(maps.Keys(tried)))
	cancel()
	if err != nil {
		r.log.Warn("looking for operators on other instances", "err", err)
		return false
	}
	for _, op := range cands {
		tried[op.OperatorID] = true
		r.across = op
		if !*ringing {
			*ringing = true
			r.ringCaller(ctx)
		}
		hop := SealHop(r.s.hopSecret, Hop{CallID: r.c.ID, TenantID: r.c.TenantID, OperatorID: op.OperatorID,
			From: r.c.From, To: r.c.To, Instance: r.s.instance, Expires: time.Now().Add(hopLifetime)})
		r.event(EventHandedOver, map[string]any{"operator_id": op.OperatorID, "instance": op.Instance})
		r.flush(ctx)
		out, err := r.s.dialer.Dial(ctx, OutboundRoute{Target: op.SIPAddr, Transport: "udp", CallerID: r.c.From, Hop: hop}, r.c.To)
		if err != nil {
			r.log.Warn("handing over", "instance", op.Instance, "err", err)
			continue
		}
		res, code := r.hopAnswered(ctx, out)
		out.Close()
		switch {
		case res == hopTaken:
			return true
		case res == hopOver:
			return true
		case code == 486:
			// Taken by a call there in the meantime: free again later,
			// and worth offering this call again then.
			delete(tried, op.OperatorID)
		}
	}
	return false
}

// transferAcross hands a call transferred to an operator connected to
// another instance over to them. It reports whether they took it (the
// call is then over); when not, the transfer goes on here.
func (r *callRun) transferAcross(ctx context.Context) bool {
	id := r.transfer.OperatorID
	if id == nil || r.s.cluster == nil {
		return false
	}
	r.s.mu.Lock()
	_, local := r.s.agents[*id]
	r.s.mu.Unlock()
	if local {
		return false
	}
	ringing := true // the caller was answered long ago
	if r.handOver(ctx, []ID{*id}, map[ID]bool{}, &ringing) {
		return true
	}
	r.transfer.OperatorID = nil // not taken there: anyone available here
	return false
}

// hopAnswered waits for the other instance's answer to a hand-over; when
// its operator answers, the call is bridged there and over when it
// returns. A refusal comes with its SIP code.
func (r *callRun) hopAnswered(ctx context.Context, out OutboundLeg) (hopResult, int) {
	ev, over := r.dialAnswer(ctx, out)
	switch {
	case over:
		return hopOver, 0
	case ev.Kind == LegAnswered:
		r.talkAcross(ctx, out)
		return hopTaken, 200
	}
	r.event(EventDeclined, map[string]any{"handed_over": true, "sip_code": ev.Code, "reason": ev.Reason})
	return hopRefused, ev.Code
}

// talkAcross bridges the caller to the other instance's leg: this
// instance keeps the caller's leg, the record and the recording. A call
// transferred there was answered here already; its recording goes on.
func (r *callRun) talkAcross(ctx context.Context, out OutboundLeg) {
	transferred := r.c.AnsweredAt != nil
	if !transferred && !r.answerForwarded(ctx, out) {
		return
	}
	opID := r.across.OperatorID
	r.c.OperatorID = &opID
	r.c.Codec = r.leg.Media().Codec().Name
	b := NewBridge(r.leg.Media(), out.Media())
	b.Start()
	detail := map[string]any{"operator_id": opID, "instance": r.across.Instance, "codec": r.c.Codec}
	if transferred {
		detail["transfer"] = true
	}
	r.event(EventAnswered, detail)
	switch {
	case r.recording == nil:
		r.startRecording(ctx, b)
	case !r.paused:
		b.SetTap(r.recording.Tap)
	}
	r.update(ctx)
	r.flush(ctx)

	by, reason := r.forwardedTalk(ctx, out, b)
	if by == PartyForwarded {
		by, reason = PartyOperator, "operator hung up"
	}
	b.Stop()
	r.finishRecording(ctx)
	r.addStats(b)
	r.sample(b)
	if r.c.Reason == "" {
		r.c.Reason = reason
	}
	r.finish(ctx, by)
}

// runHop takes a call another instance handed over for one of this
// instance's operators: that operator is rung, and bridged when they
// answer. The record is the other instance's; this one adds its events.
func (r *callRun) runHop(ctx context.Context) {
	r.event(EventReceived, map[string]any{"source": r.c.Source, "handed_over_by": r.hop.Instance})
	a := r.s.reserve(r.c.TenantID, r.hop.OperatorID, r.c.ID)
	if a == nil {
		r.reject(ctx, 486, "the operator is no longer free", CallBusy)
		r.finish(ctx, PartySystem)
		return
	}
	r.ag = a
	if err := a.conn.Offer(CallOffer{CallID: r.c.ID, From: r.c.From, To: r.c.To}); err != nil {
		r.s.release(a, r.c.ID, false, "")
		r.reject(ctx, 480, "the operator could not be offered the call", CallNoAnswer)
		r.finish(ctx, PartySystem)
		return
	}
	r.event(EventOffered, map[string]any{"operator_id": a.conn.OperatorID()})
	r.ringCaller(ctx)
	declined := 0
	switch r.ring(ctx, a, &declined) {
	case ringAccepted:
		r.talk(ctx, a)
	case ringNext:
		r.reject(ctx, 480, "the operator did not answer", CallNoAnswer)
		r.finish(ctx, PartySystem)
	}
}
