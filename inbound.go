package switchboard

import (
	"context"
	"log/slog"
	"time"
)

// callRun is one call's state, owned by the call's goroutine.
type callRun struct {
	s      *Switch
	c      *Call
	lc     *liveCall
	leg    TrunkLeg
	log    *slog.Logger
	events []*CallEvent
	dtmf   chan dtmfKey
	ag     *agent // the operator ringing or on the call

	samples  []QualitySample // the call's quality over time
	link     LinkInfo        // the operator's WebRTC transport, as last seen
	transfer TransferTarget  // where the call is being transferred
	iceLost  bool            // the operator's ICE connection failed or dropped
	created  bool            // the record is written
	hop      *Hop            // another instance's call: it writes the record
	across   RemoteOperator  // the other instance's operator the call is handed to

	consent   *Consent        // what was stated about recording, if anything
	srtp      string          // the trunk leg's SRTP suite; empty: plain RTP
	held      bool            // the operator put the caller on hold
	digit     byte            // the key the caller presses to consent, 0 if none
	recording ActiveRecording // nil unless the call is being recorded
	paused    bool            // the recording is paused
}

// partyTransfer is what waitEnd returns when the operator transfers the
// call: nobody ended it.
const partyTransfer Party = "transfer"

// endedByAPI is the reason of a call an integration ended.
const endedByAPI = "ended through the API"

type dtmfKey struct {
	fromCaller bool
	digit      byte
}

// outcome of ringing one operator.
type ringResult int

const (
	ringAccepted ringResult = iota
	ringNext                // declined, timed out, or gone: try the next operator
	ringOver                // the caller canceled or the service is stopping
)

func (r *callRun) runInbound(ctx context.Context) {
	r.create(ctx)
	received := map[string]any{"source": r.c.Source}
	if r.srtp != "" {
		received["srtp"] = r.srtp
	}
	r.event(EventReceived, received)
	r.event(EventTrying, nil)
	if c := r.consent; c != nil {
		r.event(EventConsent, map[string]any{"given": c.Given, "mechanism": c.Mechanism, "by": c.By})
	}

	q := r.queueFor(ctx)
	if q != nil {
		r.event(EventQueued, map[string]any{"queue_id": q.ID, "queue": q.Name})
	}
	tried := make(map[ID]bool)
	ringing, declined, overflows := false, 0, 0
	var deadline time.Time // of the wait in the current queue, once it began
	for {
		mayWait := q != nil && q.MaxWait > 0 && (deadline.IsZero() || r.s.now().Before(deadline))
		a, busy, w := r.s.pickOrWait(r.c.ID, r.c.TenantID, q, tried, mayWait && r.s.cluster == nil)
		if a == nil && r.s.cluster != nil {
			// Nobody free here: an operator free on another instance, if
			// any, then in line here.
			var members []ID
			if q != nil {
				members = q.Members
			}
			if r.handOver(ctx, members, tried, &ringing) {
				return
			}
			a, busy, w = r.s.pickOrWait(r.c.ID, r.c.TenantID, q, tried, mayWait)
		}
		if w != nil {
			if deadline.IsZero() {
				deadline = r.s.now().Add(q.MaxWait)
			}
			if !ringing {
				ringing = true
				r.ringCaller(ctx)
			}
			var res waitResult
			switch res, a = r.wait(ctx, w, deadline, true); res {
			case waitOver:
				return
			case waitWoken:
				continue
			case waitTimeout:
				if q = r.overflow(ctx, q, busy, overflows); q == nil {
					return
				}
				overflows++
				deadline = time.Time{}
				continue
			}
		}
		if a == nil && q != nil && (!deadline.IsZero() || q.Overflow.Kind != OverflowReject) {
			// The wait is over, or there is none and the queue sends its
			// callers on.
			if q = r.overflow(ctx, q, busy, overflows); q == nil {
				return
			}
			overflows++
			deadline = time.Time{}
			continue
		}
		if a == nil {
			switch {
			case declined > 0 && declined == len(tried):
				r.reject(ctx, 480, "declined by every operator offered", CallRejected)
				r.failed(FailedOnBrowser, StageRinging)
			case busy:
				r.reject(ctx, 480, "all operators busy", CallBusy)
				r.failed(FailedOnBrowser, StageRouting)
			case len(tried) > 0:
				r.reject(ctx, 480, "no operator answered", CallNoAnswer)
				r.failed(FailedOnBrowser, StageRinging)
			default:
				r.reject(ctx, 480, "no operator available", CallNoAnswer)
				r.failed(FailedOnBrowser, StageRouting)
			}
			r.finish(ctx, PartySystem)
			return
		}
		tried[a.conn.OperatorID()] = true
		if !r.carriedBy(a) {
			continue
		}
		r.ag = a
		if err := a.conn.Offer(CallOffer{CallID: r.c.ID, From: r.c.From, To: r.c.To}); err != nil {
			r.log.Warn("offer failed", "operator_id", a.conn.OperatorID(), "err", err)
			r.s.release(a, r.c.ID, false, "")
			r.ag = nil
			continue
		}
		r.event(EventOffered, map[string]any{"operator_id": a.conn.OperatorID()})
		if !ringing {
			ringing = true
			r.ringCaller(ctx)
		}
		switch res := r.ring(ctx, a, &declined); res {
		case ringAccepted:
			r.talk(ctx, a)
			return
		case ringOver:
			return
		}
		r.ag = nil
	}
}

// carriedBy reports whether operator a's connection can carry the
// caller's codec, and releases them when it cannot: an Opus caller and a
// connection that negotiated no Opus. Someone else may carry it.
func (r *callRun) carriedBy(a *agent) bool {
	codec := r.leg.Media().Codec()
	if canCarry(a.conn.Media(), codec) {
		return true
	}
	r.log.Warn("operator's connection cannot carry the caller's codec", "operator_id", a.conn.OperatorID(), "codec", codec.Name)
	r.s.release(a, r.c.ID, false, "")
	return false
}

// ringCaller sends 180 Ringing: the caller hears ringback while operators
// are offered the call or while they wait in line.
func (r *callRun) ringCaller(ctx context.Context) {
	if err := r.leg.Ring(ctx); err != nil {
		r.log.Warn("180 failed", "err", err)
	}
	r.event(EventRinging, nil)
	r.c.PostDialDelayMS = r.s.now().Sub(r.c.CreatedAt).Milliseconds()
	r.flush(ctx)
}

// ring waits for one operator to answer.
func (r *callRun) ring(ctx context.Context, a *agent, declined *int) ringResult {
	opID := a.conn.OperatorID()
	timer := time.NewTimer(r.s.ringTimeout)
	defer timer.Stop()
	for {
		select {
		case m := <-r.lc.ops:
			if m.kind == opConsent {
				r.setConsent(m.consent) // recording, if any, starts at the answer
				continue
			}
			if m.kind == opPause {
				continue // nothing is recorded before the answer
			}
			if m.kind == opEnd {
				a.conn.Revoke(r.c.ID, endedByAPI)
				r.s.release(a, r.c.ID, false, "")
				r.reject(ctx, 480, endedByAPI, CallCanceled)
				r.finish(ctx, PartySystem)
				return ringOver
			}
			if m.opID != opID {
				continue
			}
			r.drainDTMF()
			switch m.kind {
			case opAccept:
				if r.s.markBusy(a, r.c.ID) {
					return ringAccepted
				}
				continue
			case opDecline:
				*declined++
				r.event(EventDeclined, map[string]any{"operator_id": opID})
				r.s.release(a, r.c.ID, false, "")
				return ringNext
			case opGone:
				r.event(EventDeclined, map[string]any{"operator_id": opID, "reason": "operator went away"})
				a.conn.Revoke(r.c.ID, "operator went away")
				r.s.release(a, r.c.ID, true, "")
				return ringNext
			}
		case <-timer.C:
			r.event(EventRingTimeout, map[string]any{"operator_id": opID})
			a.conn.Revoke(r.c.ID, "not answered in time")
			// An operator who let a call ring out is likely not at the desk
			// (RONA): stop offering them calls until they come back.
			r.s.release(a, r.c.ID, true, "missed call")
			return ringNext
		case ev, ok := <-r.leg.Events():
			if !ok || ev.Kind == LegCanceled || ev.Kind == LegHungUp {
				a.conn.Revoke(r.c.ID, "caller hung up")
				r.s.release(a, r.c.ID, false, "")
				if r.c.AnsweredAt != nil { // hung up while a transfer rang
					r.event(EventHungUp, map[string]any{"by": PartyCaller, "reason": ev.Reason})
					r.c.Status, r.c.Reason = CallCompleted, "caller hung up during the transfer"
					r.finishRecording(ctx)
					r.finish(ctx, PartyCaller)
					return ringOver
				}
				r.event(EventCanceled, nil)
				r.c.Status, r.c.SIPCode, r.c.Reason = CallCanceled, 487, "caller canceled before answer"
				r.failed(FailedOnTrunk, StageRinging)
				r.finish(ctx, PartyCaller)
				return ringOver
			}
		case <-ctx.Done():
			a.conn.Revoke(r.c.ID, "service shutting down")
			r.s.release(a, r.c.ID, false, "")
			r.reject(ctx, 503, "service shutting down", CallFailed)
			r.failed(FailedOnService, StageRinging)
			r.finish(ctx, PartySystem)
			return ringOver
		}
	}
}

// talk answers the call on the trunk, bridges it to the operator and waits
// for its end.
func (r *callRun) talk(ctx context.Context, a *agent) {
	opID := a.conn.OperatorID()
	if err := r.leg.Answer(ctx); err != nil {
		r.log.Warn("answer failed", "err", err)
		r.c.Status, r.c.Reason = CallFailed, "answer not acknowledged: "+err.Error()
		r.failed(FailedOnTrunk, StageMediaSetup)
		a.conn.Ended(r.c.ID, "call failed")
		r.s.release(a, r.c.ID, false, "")
		r.finish(ctx, PartySystem)
		return
	}
	now := r.s.now()
	answeredBy := opID // the record keeps its own: opID changes with a transfer
	r.c.Status, r.c.AnsweredAt, r.c.OperatorID, r.c.SIPCode = CallAnswered, &now, &answeredBy, 200
	r.c.Codec = r.leg.Media().Codec().Name // a late offer's codec is known only now
	r.c.TimeToAnswerMS = now.Sub(r.c.CreatedAt).Milliseconds()
	r.dtmf = make(chan dtmfKey, 32)
	bridge := r.connect(a)
	detail := map[string]any{"operator_id": opID, "codec": r.c.Codec}
	if lr, ok := a.conn.Media().(LinkReporter); ok {
		r.link = lr.Link()
		detail["webrtc"] = r.link
	}
	r.event(EventAnswered, detail)
	r.startRecording(ctx, bridge)
	r.update(ctx)
	r.flush(ctx)

	by, reason := r.waitEnd(ctx, &a, &bridge)
	for by == partyTransfer {
		// Blind transfer: the first operator is done; the caller waits for
		// the next, in silence.
		bridge.Stop()
		r.addStats(bridge)
		r.s.release(a, r.c.ID, false, "")
		a.conn.Ended(r.c.ID, "transferred")
		r.event(EventTransferred, r.transfer.detail(a.conn.OperatorID()))
		if r.transfer.URI != "" {
			r.finishRecording(ctx) // the recording's consent was for the tenant's operators
			if r.refer(ctx, r.transfer.URI) {
				return
			}
			r.transferOut(ctx, r.transfer.URI)
			return
		}
		if r.transferAcross(ctx) {
			return // taken by the operator on another instance; over now
		}
		if a = r.transferee(ctx); a == nil {
			if r.c.EndedAt != nil {
				return // the caller hung up while it rang; finish has run
			}
			r.hangup(ctx, "the transfer was not answered")
			r.finishRecording(ctx)
			r.finish(ctx, PartySystem)
			return
		}
		opID = a.conn.OperatorID()
		next := opID
		r.c.OperatorID = &next
		bridge = r.connect(a)
		r.event(EventAnswered, map[string]any{"operator_id": opID, "transfer": true})
		if r.held {
			// The hold was the first operator's; the next one talks.
			r.hold(ctx, bridge, a.conn, false)
		}
		r.update(ctx)
		r.flush(ctx)
		by, reason = r.waitEnd(ctx, &a, &bridge)
	}
	bridge.Stop()
	r.finishRecording(ctx)
	r.addStats(bridge)
	r.sample(bridge)
	if r.c.Status == CallAnswered {
		r.c.Status = CallCompleted
	}
	if r.c.Reason == "" {
		r.c.Reason = reason
	}
	// Free the operator before saying the call ended: whoever hears
	// "ended" may place the next call at once.
	r.s.release(a, r.c.ID, false, "")
	a.conn.Ended(r.c.ID, reason)
	r.finish(ctx, by)
}

// waitEnd relays what happens on a bridged call until one side ends it.
func (r *callRun) waitEnd(ctx context.Context, current **agent, currentBridge **Bridge) (Party, string) {
	a, bridge := *current, *currentBridge
	defer func() { *current, *currentBridge = a, bridge }()
	opID := a.conn.OperatorID()
	tick := time.NewTicker(r.s.sampleEvery)
	defer tick.Stop()
	var grace <-chan time.Time // while the operator's connection is down
	for {
		select {
		case <-tick.C:
			r.sample(bridge)
		case <-grace:
			r.hangup(ctx, "operator disconnected")
			r.failed(FailedOnBrowser, StageMedia)
			r.s.forgetDetached(a)
			return PartyOperator, "operator disconnected"
		case m := <-r.lc.ops:
			if m.kind == opConsent {
				r.setConsent(m.consent)
				r.applyConsent(ctx, bridge)
				continue
			}
			if m.kind == opPause {
				r.pauseRecording(bridge, m.paused)
				continue
			}
			if m.kind == opEnd {
				r.drainDTMF()
				r.hangup(ctx, endedByAPI)
				return PartySystem, endedByAPI
			}
			if m.opID != opID {
				continue
			}
			r.drainDTMF()
			switch m.kind {
			case opHangup:
				r.hangup(ctx, "operator hung up")
				return PartyOperator, "operator hung up"
			case opGone:
				r.sample(bridge) // how the operator's transport stood as they went
				r.hangup(ctx, "operator disconnected")
				r.failed(FailedOnBrowser, StageMedia)
				return PartyOperator, "operator disconnected"
			case opDetached:
				r.sample(bridge) // how the operator's transport stood as it went
				bridge.Stop()
				r.event(EventOperatorLost, map[string]any{"operator_id": opID, "grace_ms": r.s.reconnectGrace.Milliseconds()})
				grace = time.After(r.s.reconnectGrace)
			case opReattach:
				grace = nil
				bridge.Stop()
				r.addStats(bridge)
				a = m.agent
				bridge = r.connect(a)
				if r.held {
					a.conn.Held(r.c.ID, true)
				}
				if lr, ok := a.conn.Media().(LinkReporter); ok {
					r.link = lr.Link()
				}
				r.event(EventOperatorBack, map[string]any{"operator_id": opID})
			case opStats:
				r.samples = append(r.samples, *m.stats)
			case opMute:
				r.event(EventMuted(m.muted), map[string]any{"operator_id": opID})
			case opHold:
				r.hold(ctx, bridge, a.conn, m.held)
			case opTransfer:
				if r.c.Direction != Inbound {
					r.log.Info("transfer of a call we placed is not supported")
					continue
				}
				r.transfer = *m.transfer
				return partyTransfer, ""
			}
		case k := <-r.dtmf:
			r.key(ctx, bridge, k)
		case ev, ok := <-r.leg.Events():
			// Digits the bridge saw before this event go first in the
			// timeline; select does not promise that order.
			r.drainDTMF()
			switch {
			case !ok || ev.Kind == LegHungUp:
				r.event(EventHungUp, map[string]any{"by": PartyCaller, "reason": ev.Reason})
				return PartyCaller, "caller hung up"
			case ev.Kind == LegHeld:
				r.event(EventHeld, nil)
			case ev.Kind == LegResumed:
				r.event(EventResumed, nil)
			case ev.Kind == LegDTMF && len(ev.Reason) == 1:
				r.key(ctx, bridge, dtmfKey{fromCaller: true, digit: ev.Reason[0]})
			case ev.Kind == LegMediaTimeout:
				r.event(EventMediaTimeout, nil)
				r.hangup(ctx, "RTP timeout")
				r.c.Status = CallFailed
				r.failed(FailedOnTrunk, StageMedia)
				return PartySystem, "no media from the caller (RTP timeout)"
			}
		case <-ctx.Done():
			r.drainDTMF()
			r.hangup(ctx, "service shutting down")
			r.failed(FailedOnService, StageMedia)
			return PartySystem, "service shutting down"
		}
	}
}

// connect bridges the caller to operator a: the recording, if any, taps
// the new bridge too. A caller on hold stays on hold: the bridge waits.
func (r *callRun) connect(a *agent) *Bridge {
	r.matchOperator(a)
	b := NewBridge(r.leg.Media(), a.conn.Media(),
		WithRewriters(a.toOperator, NewStreamRewriter(r.leg.Media().Codec().ClockRate)),
		WithBridgeClock(r.s.now),
		WithDTMF(func(fromCaller bool, d byte) {
			select {
			case r.dtmf <- dtmfKey{fromCaller, d}:
			default:
			}
		}))
	if r.recording != nil && !r.paused {
		b.SetTap(r.recording.Tap)
	}
	if !r.held {
		b.Start()
	}
	a.conn.Connected(r.c.ID)
	return b
}

// matchOperator switches operator a's connection to the caller's codec,
// and their stream's clock with it.
func (r *callRun) matchOperator(a *agent) {
	if err := matchCodec(r.leg.Media(), a.conn.Media()); err != nil {
		r.log.Warn("codec mismatch", "operator_id", a.conn.OperatorID(), "err", err) // the relay drops what it cannot carry
	}
	a.toOperator.SetClockRate(a.conn.Media().Codec().ClockRate)
}

// addStats adds a bridge's media to the call's: a transferred call has
// one bridge per operator.
func (r *callRun) addStats(b *Bridge) {
	from, to := b.Stats()
	for _, d := range []struct{ dst, src *MediaStats }{{&r.c.FromCaller, &from}, {&r.c.ToCaller, &to}} {
		if d.src.Packets > 0 {
			// Silent until one bridge heard something.
			d.dst.Silent = d.src.Silent && (d.dst.Packets == 0 || d.dst.Silent)
		}
		d.dst.Packets += d.src.Packets
		d.dst.Bytes += d.src.Bytes
		d.dst.Lost += d.src.Lost
		d.dst.JitterMS = max(d.dst.JitterMS, d.src.JitterMS)
	}
}

// transferee rings the operator the call was transferred to, or, when
// they cannot take it, the tenant's other available operators (the
// queue's members, for a transfer to a queue); it returns the one who
// answered, or nil. With other instances, a call nobody here can take is
// handed to one free there; it is then over when this returns nil.
func (r *callRun) transferee(ctx context.Context) *agent {
	tried := map[ID]bool{}
	q, deadline := r.transferQueue(ctx)
	across := r.s.cluster != nil
	for {
		var a *agent
		if id := r.transfer.OperatorID; id != nil {
			a = r.s.reserve(r.c.TenantID, *id, r.c.ID)
		}
		if a == nil {
			mayWait := q != nil && r.s.now().Before(deadline)
			var w *waiter
			a, _, w = r.s.pickOrWait(r.c.ID, r.c.TenantID, q, tried, mayWait && !across)
			if a == nil && across {
				var members []ID
				if q != nil {
					members = q.Members
				}
				ringing := true // answered long ago
				if r.handOver(ctx, members, tried, &ringing) {
					return nil
				}
				a, _, w = r.s.pickOrWait(r.c.ID, r.c.TenantID, q, tried, mayWait)
			}
			if w != nil {
				var res waitResult
				switch res, a = r.wait(ctx, w, deadline, across); res {
				case waitOver:
					return nil
				case waitWoken:
					continue // someone is free elsewhere
				}
			}
		}
		if a == nil {
			return nil
		}
		tried[a.conn.OperatorID()] = true
		if !r.carriedBy(a) {
			r.transfer.OperatorID = nil // someone else, then
			continue
		}
		r.ag = a
		if err := a.conn.Offer(CallOffer{CallID: r.c.ID, From: r.c.From, To: r.c.To}); err != nil {
			r.s.release(a, r.c.ID, false, "")
			continue
		}
		r.event(EventOffered, map[string]any{"operator_id": a.conn.OperatorID(), "transfer": true})
		var declined int
		switch r.ring(ctx, a, &declined) {
		case ringAccepted:
			return a
		case ringOver:
			return nil
		}
		r.transfer.OperatorID = nil // the chosen one did not answer: anyone available
	}
}

// hold puts the caller on hold or takes them off, at the operator's word.
// A hold stops the bridge at once, before the trunk is told: what the
// operator says once they press hold never reaches the caller, however
// long the trunk takes to answer; if the trunk refuses, audio flows again
// and the operator is told the call is not held. Taking the caller back
// starts the bridge once the trunk has agreed.
func (r *callRun) hold(ctx context.Context, bridge *Bridge, op OperatorConn, held bool) {
	if held {
		bridge.Stop()
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := r.leg.Hold(hctx, held)
	cancel()
	if err != nil {
		r.log.Warn("hold", "held", held, "err", err)
		r.event(EventHoldFailed, map[string]any{"held": held, "reason": err.Error()})
		if held && !r.held {
			bridge.Start()
		}
		op.Held(r.c.ID, r.held)
		return
	}
	r.held = held
	if held {
		r.event(EventHeld, map[string]any{"by": PartyOperator})
		return
	}
	bridge.Start()
	r.event(EventResumed, map[string]any{"by": PartyOperator})
}

// key takes a DTMF key (RFC 4733 from the bridge, or SIP INFO): on the
// timeline, and the caller's consent when it is the tenant's consent key.
func (r *callRun) key(ctx context.Context, bridge *Bridge, k dtmfKey) {
	r.dtmfEvent(k)
	if k.fromCaller && r.digit != 0 && k.digit == r.digit && (r.consent == nil || !r.consent.Given) {
		r.setConsent(&Consent{Given: true, Mechanism: ConsentDTMF, At: r.s.now(), By: "caller"})
		r.applyConsent(ctx, bridge)
	}
}

func (r *callRun) dtmfEvent(k dtmfKey) {
	from := "operator"
	if k.fromCaller {
		from = "caller"
	}
	r.event(EventDTMF, map[string]any{"digit": string(k.digit), "from": from})
}

// drainDTMF records the digits already reported by the bridge.
func (r *callRun) drainDTMF() {
	for {
		select {
		case k := <-r.dtmf:
			r.dtmfEvent(k)
		default:
			return
		}
	}
}

// startRecording records the call if its tenant's policy and consent
// allow: the recording taps the bridge from now on.
func (r *callRun) startRecording(ctx context.Context, b *Bridge) {
	if r.s.recordings == nil || r.hop != nil {
		return
	}
	if r.digit == 0 && (r.consent == nil || !r.consent.Given) {
		dctx, cancel := dbContext(ctx)
		d, err := r.s.recordings.ConsentDigit(dctx, r.c.TenantID)
		cancel()
		if err != nil {
			r.log.Warn("consent key unknown", "err", err)
		}
		r.digit = d
	}
	if r.consent == nil || !r.consent.Given {
		return
	}
	rec, err := r.s.recordings.Begin(ctx, r.c, r.consent, r.leg.Media().Codec())
	switch {
	case err != nil:
		r.log.Error("recording did not start", "err", err)
		r.event(EventRecordingFailed, map[string]any{"stage": "start"})
	case rec != nil:
		r.recording = rec
		b.SetTap(rec.Tap)
		r.event(EventRecordingStarted, map[string]any{"mechanism": r.consent.Mechanism})
	}
}

// setConsent takes a consent stated during the call.
func (r *callRun) setConsent(c *Consent) {
	r.consent = c
	r.event(EventConsent, map[string]any{"given": c.Given, "mechanism": c.Mechanism, "by": c.By})
}

// applyConsent starts or ends the recording of a bridged call after its
// consent changed. Withdrawn consent destroys what was recorded.
func (r *callRun) applyConsent(ctx context.Context, b *Bridge) {
	switch {
	case r.consent.Given && r.recording == nil:
		r.startRecording(ctx, b)
	case !r.consent.Given && r.recording != nil:
		b.SetTap(nil)
		rec := r.recording
		r.recording, r.paused = nil, false
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := rec.Destroy(dctx, "consent withdrawn"); err != nil {
			r.log.Error("destroying a withdrawn recording", "err", err)
			r.event(EventRecordingFailed, map[string]any{"stage": "destroy"})
			return
		}
		r.event(EventRecordingDestroyed, map[string]any{"reason": "consent withdrawn"})
	}
}

// pauseRecording stops or restarts tapping and marks the gap.
func (r *callRun) pauseRecording(b *Bridge, paused bool) {
	if r.recording == nil || r.paused == paused {
		return
	}
	r.paused = paused
	now := r.s.now()
	if paused {
		b.SetTap(nil)
		r.recording.Pause(now)
		r.event(EventRecordingPaused, nil)
		return
	}
	r.recording.Resume(now)
	b.SetTap(r.recording.Tap)
	r.event(EventRecordingResumed, nil)
}

// finishRecording stores the recording once the bridge has stopped.
func (r *callRun) finishRecording(ctx context.Context) {
	if r.recording == nil {
		return
	}
	// The last part of the upload may take a while; the call is over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rec, err := r.recording.Finish(ctx)
	if err != nil {
		r.log.Error("recording not stored", "err", err)
		r.event(EventRecordingFailed, map[string]any{"stage": "store"})
		return
	}
	r.event(EventRecordingStored, map[string]any{"recording_id": rec.ID, "size_bytes": rec.SizeBytes, "dropped_packets": rec.Dropped})
}

// EventMuted returns the event type for a mute change.
func EventMuted(muted bool) EventType {
	if muted {
		return EventMute
	}
	return EventUnmute
}

func (r *callRun) hangup(ctx context.Context, reason string) {
	r.event(EventHungUp, map[string]any{"by": "switchboard", "reason": reason})
	if err := r.leg.Hangup(context.WithoutCancel(ctx), reason); err != nil {
		r.log.Warn("BYE failed", "err", err)
	}
}

func (r *callRun) reject(ctx context.Context, code int, reason string, status CallStatus) {
	r.c.Status, r.c.SIPCode, r.c.Reason = status, code, reason
	r.event(EventRejected, map[string]any{"sip_code": code, "reason": reason})
	if err := r.leg.Reject(context.WithoutCancel(ctx), code, reason); err != nil {
		r.log.Warn("final response failed", "code", code, "err", err)
	}
}

// finish is the one place a call ends: its record is completed and written,
// its leg closed and its registry entry removed.
func (r *callRun) finish(ctx context.Context, by Party) {
	now := r.s.now()
	r.c.EndedAt = &now
	r.c.HangupBy = by
	if r.c.Status == CallAnswered {
		r.c.Status = CallCompleted // an answered call that ended, whatever ended it
	}
	if r.c.AnsweredAt != nil {
		r.c.DurationMS = now.Sub(*r.c.AnsweredAt).Milliseconds()
	}
	if r.c.Q850Cause == 0 {
		r.c.Q850Cause = Q850Cause(r.c.SIPCode)
	}
	if r.c.AnsweredAt != nil {
		r.c.FromCaller.MOS, r.c.ToCaller.MOS, r.c.Tags = r.s.quality(r.c, r.samples)
		if r.iceLost {
			r.c.Tags = append(r.c.Tags, TagICEFailure)
		}
	}
	if r.hop == nil { // the instance that handed the call over ends its timeline
		r.event(EventEnded, map[string]any{"status": r.c.Status, "hangup_by": by, "reason": r.c.Reason})
	}
	if err := r.leg.Close(); err != nil {
		r.log.Warn("closing leg", "err", err)
	}
	r.s.forget(r.c.ID)
	// The final record goes last: once it says the call ended, its whole
	// timeline and trace are stored and nothing of the call is left running.
	r.flush(ctx)
	r.storeTrace(ctx)
	r.update(ctx)
	if r.s.observer != nil && r.hop == nil {
		r.s.observer.CallEnded(r.c)
	}
	r.log.Info("call ended", "status", r.c.Status, "hangup_by", by, "duration_ms", r.c.DurationMS,
		"sip_code", r.c.SIPCode, "reason", r.c.Reason)
}

// failed notes where the call went wrong; the first note stands.
func (r *callRun) failed(leg, stage string) {
	if r.c.FailureStage == "" {
		r.c.FailureLeg, r.c.FailureStage = leg, stage
	}
}

// sample notes both directions' receive quality as switchboard sees it,
// and a change of the operator's WebRTC transport.
func (r *callRun) sample(b *Bridge) {
	if r.ag != nil {
		if lr, ok := r.ag.conn.Media().(LinkReporter); ok {
			if l := lr.Link(); l != r.link {
				r.link = l
				r.iceLost = r.iceLost || l.ICE == "failed" || l.ICE == "disconnected"
				r.event(EventWebRTC, map[string]any{"webrtc": l})
			}
		}
	}
	now := r.s.now()
	from, to := b.Stats()
	r.samples = append(r.samples,
		QualitySample{At: now, Leg: "trunk", Source: "switchboard", Packets: from.Packets, Lost: from.Lost, JitterMS: from.JitterMS},
		QualitySample{At: now, Leg: "browser", Source: "switchboard", Packets: to.Packets, Lost: to.Lost, JitterMS: to.JitterMS})
}

// storeTrace writes the call's SIP messages and quality samples.
func (r *callRun) storeTrace(ctx context.Context) {
	t := &CallTrace{TenantID: r.c.TenantID, CallID: r.c.ID, SIP: r.leg.SIPTrace(), Quality: r.samples}
	if r.hop != nil {
		return // the hop between instances is not the call's signalling
	}
	ctx, cancel := dbContext(ctx)
	defer cancel()
	if err := r.s.rec.AddCallTrace(ctx, t); err != nil {
		r.log.Error("writing call trace", "err", err)
	}
}

func (r *callRun) event(t EventType, detail map[string]any) {
	e := &CallEvent{ID: NewID(), CallID: r.c.ID, TenantID: r.c.TenantID, At: r.s.now(), Type: t, Detail: detail}
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
	if r.hop != nil {
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
