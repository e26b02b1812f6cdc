package callctl

import (
	"context"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// ending is how a call ends, decided once (callRun.over) by whatever ended
// it, and carried out in one place (callRun.end).
type ending struct {
	by     sb.Party
	reason string // for the record and the operator
	// status is the record's, when the call's state does not say it: an
	// answered call that ends is completed.
	status sb.CallStatus
	// reject is the final response a caller not answered yet gets from
	// us; code is the final response the record names when the SIP side
	// sent it itself (487 after a CANCEL).
	reject, code int
	// bye hangs up the call's own leg with this reason (BYE, or CANCEL on
	// a call we placed that is not answered); empty when its far end is
	// gone already.
	bye string
	// Where the call went wrong, if it did.
	failLeg, failStage string
}

// end carries out the call's ending, in the order that keeps every promise:
// nobody is left ringing or in line, the legs are closed, the audio
// stops, the recording is stored or was destroyed, the operator is free
// for the next call, the record is written last, and only then is the
// operator told the call ended.
func (r *callRun) end(ctx context.Context) {
	e := r.ending
	// From now on the call takes nothing more (consent, pauses, an
	// operator's action): the API says it is not in progress rather than
	// accept what would not be acted on.
	r.s.forget(r.c.ID)
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if r.waiter != nil {
		if a := r.s.unwait(r.waiter); a != nil {
			r.s.release(a, r.c.ID, false, "") // reserved for the call just as it ended
		}
		r.waiter = nil
	}
	if r.ag != nil && !r.busy {
		revoke := e.reason
		if e.by == sb.PartyCaller {
			revoke = "caller hung up"
		}
		r.flush(hctx) // the caller's giving up is on the timeline before the page reads its recent calls
		r.ag.conn.Revoke(r.c.ID, revoke)
		r.s.release(r.ag, r.c.ID, false, "")
		r.ag = nil
	}
	if r.out != nil {
		why := e.reason
		if e.by == sb.PartyCaller {
			why = "the caller hung up"
		}
		if err := r.out.Hangup(hctx, why); err != nil {
			r.log.Debug("hanging up the leg placed for the caller", "err", err)
		}
		r.out.Close()
		r.out = nil
	}
	switch {
	case r.in != nil && !r.answered() && e.reject != 0:
		r.reject(hctx, e.reject, e.reason)
	case e.bye != "" && r.leg != nil && r.answered():
		r.hangup(hctx, e.bye)
	case e.bye != "" && r.leg != nil:
		if err := r.leg.Hangup(hctx, e.bye); err != nil {
			r.log.Warn("CANCEL failed", "err", err)
		}
	}
	if r.bridge != nil {
		r.sample()
		r.unbridge()
	}
	r.storeRecording(ctx)
	// The operator is free for the next call now, and told this one ended
	// once its record is final: a page that lists its recent calls on
	// "ended" finds it there, complete. A next offer may reach the page
	// first; it belongs to another call.
	var told sb.OperatorConn
	if r.ag != nil {
		told = r.s.release(r.ag, r.c.ID, false, "")
	}

	switch {
	case e.status != "":
		r.c.Status = e.status
	case r.c.Status == sb.CallRinging:
		r.c.Status = sb.CallFailed
	}
	if e.reject != 0 {
		r.c.SIPCode = e.reject
	} else if e.code != 0 {
		r.c.SIPCode = e.code
	}
	if e.reason != "" {
		r.c.Reason = e.reason
	}
	if e.failStage != "" {
		r.failed(e.failLeg, e.failStage)
	}
	r.finish(ctx, e.by)
	if told != nil { // the connection that held the call: a reconnected page's too
		told.Ended(r.c.ID, r.c.Reason)
	}
}

// finish completes the record and writes it: the timeline, the trace, and
// last the final record, so that once it says the call ended, everything
// of the call is stored and nothing of it is left running.
func (r *callRun) finish(ctx context.Context, by sb.Party) {
	now := r.s.now()
	r.c.EndedAt = &now
	r.c.HangupBy = by
	if r.c.Status == sb.CallAnswered {
		r.c.Status = sb.CallCompleted // an answered call that ended, whatever ended it
	}
	if r.c.AnsweredAt != nil {
		r.c.DurationMS = now.Sub(*r.c.AnsweredAt).Milliseconds()
	}
	if r.c.Q850Cause == 0 {
		r.c.Q850Cause = sb.Q850Cause(r.c.SIPCode)
	}
	if r.c.AnsweredAt != nil {
		r.c.FromCaller.MOS, r.c.ToCaller.MOS, r.c.Tags = r.s.quality(r.c, r.samples)
		if r.iceLost {
			r.c.Tags = append(r.c.Tags, sb.TagICEFailure)
		}
	}
	if r.hop == nil { // the instance that handed the call over ends its timeline
		r.event(sb.EventEnded, map[string]any{"status": r.c.Status, "hangup_by": by, "reason": r.c.Reason})
	}
	if r.leg != nil {
		if err := r.leg.Close(); err != nil {
			r.log.Warn("closing leg", "err", err)
		}
	}
	r.write(ctx, true)
	r.countMedia()
	if r.s.observer != nil && r.hop == nil {
		r.s.observer.CallEnded(r.c)
	}
	r.log.Info("call ended", "status", r.c.Status, "hangup_by", by, "duration_ms", r.c.DurationMS,
		"sip_code", r.c.SIPCode, "reason", r.c.Reason)
}

// hangup sends BYE on the call's answered leg.
func (r *callRun) hangup(ctx context.Context, reason string) {
	r.event(sb.EventHungUp, map[string]any{"by": "switchboard", "reason": reason})
	if err := r.leg.Hangup(ctx, reason); err != nil {
		r.log.Warn("BYE failed", "err", err)
	}
}

// reject sends the caller a final non-2xx response.
func (r *callRun) reject(ctx context.Context, code int, reason string) {
	r.event(sb.EventRejected, map[string]any{"sip_code": code, "reason": reason})
	if err := r.in.Reject(ctx, code, reason); err != nil {
		r.log.Warn("final response failed", "code", code, "err", err)
	}
}

// failed notes where the call went wrong; the first note stands.
func (r *callRun) failed(leg, stage string) {
	if r.c.FailureStage == "" {
		r.c.FailureLeg, r.c.FailureStage = leg, stage
	}
}

// sample notes both directions' receive quality as switchboard sees it on
// the call's bridge, and a change of the operator's WebRTC transport; and
// counts the media relayed so far.
func (r *callRun) sample() {
	if r.ag != nil && r.busy {
		if lr, ok := r.ag.conn.Media().(sb.LinkReporter); ok {
			if l := lr.Link(); l != r.link {
				r.link = l
				r.iceLost = r.iceLost || l.ICE == "failed" || l.ICE == "disconnected"
				r.event(sb.EventWebRTC, map[string]any{"webrtc": l})
			}
		}
	}
	if r.bridge == nil || r.bridged == bridgedNobody {
		return
	}
	now := r.s.now()
	from, to := r.bridge.Stats()
	r.samples = append(r.samples,
		sb.QualitySample{At: now, Leg: "trunk", Source: "switchboard", Packets: from.Packets, Lost: from.Lost, JitterMS: from.JitterMS},
		sb.QualitySample{At: now, Leg: "browser", Source: "switchboard", Packets: to.Packets, Lost: to.Lost, JitterMS: to.JitterMS})
	r.countMedia()
}

// trace is the call's SIP messages and quality samples, nil if it has
// none.
func (r *callRun) trace() *sb.CallTrace {
	var sip []sb.SIPMessage
	if r.leg != nil {
		sip = r.leg.SIPTrace()
	}
	if len(sip) == 0 && len(r.samples) == 0 {
		return nil
	}
	return &sb.CallTrace{TenantID: r.c.TenantID, CallID: r.c.ID, SIP: sip, Quality: r.samples}
}

func (r *callRun) event(t sb.EventType, detail map[string]any) {
	e := &sb.CallEvent{ID: sb.NewID(), CallID: r.c.ID, TenantID: r.c.TenantID, At: r.s.now(), Type: t, Detail: detail}
	r.events = append(r.events, e)
	if r.s.observer != nil && r.hop == nil {
		r.s.observer.CallEvent(e)
	}
}

// dbContext bounds a record write. It outlives the call's context, so that a
// call ended by shutdown is still written.
func dbContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

func (r *callRun) create(ctx context.Context) {
	if r.hop != nil || r.created {
		return
	}
	r.created = true
	ctx, cancel := dbContext(ctx)
	defer cancel()
	if err := r.s.rec.CreateCall(ctx, r.c); err != nil {
		r.log.Error("writing call record", "err", err)
	}
}

func (r *callRun) update(ctx context.Context) {
	if r.hop != nil {
		return
	}
	ctx, cancel := dbContext(ctx)
	defer cancel()
	if err := r.s.rec.UpdateCall(ctx, r.c); err != nil {
		r.log.Error("updating call record", "err", err)
	}
}

// write writes what the call's record gained since its last write, as
// one step: the events on its timeline, its trace when it ended (traced),
// and its state. The hop between instances writes its events only: its
// record and signalling are the other instance's.
func (r *callRun) write(ctx context.Context, traced bool) {
	step := &sb.CallStep{Events: r.events}
	if r.hop == nil {
		step.Call = r.c
		if traced {
			step.Trace = r.trace()
		}
	}
	if step.Call == nil && len(step.Events) == 0 {
		return
	}
	ctx, cancel := dbContext(ctx)
	defer cancel()
	if err := r.s.rec.WriteCallStep(ctx, step); err != nil {
		r.log.Error("writing call record", "err", err, "events", len(r.events), "traced", step.Trace != nil)
	}
	r.events = r.events[:0]
}

func (r *callRun) flush(ctx context.Context) {
	if len(r.events) == 0 {
		return
	}
	ctx, cancel := dbContext(ctx)
	defer cancel()
	if err := r.s.rec.AddCallEvents(ctx, r.events...); err != nil {
		r.log.Error("writing call events", "err", err, "events", len(r.events))
	}
	r.events = r.events[:0]
}
