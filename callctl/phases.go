package callctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The phases of an inbound call: routed to an operator (route), waiting in
// line (queued), offered and ringing (ringing), answered and bridged
// (talking), handed on by the operator (transferring). Calls placed for
// the caller (forwarding, a transfer to a SIP URI, a hand-over to another
// instance) are in dialing.go; calls operators place in outbound.go.

// routing is who is offered the call next.
type routing struct {
	queue     *sb.Queue
	tried     map[sb.ID]bool
	deadline  time.Time // of the wait in the current queue, once it began
	overflows int
	declined  int
	busy      bool
	target    *sb.ID // a transfer's chosen operator, offered first
	transfer  bool   // the caller was answered: this is a transfer
}

// received is an inbound call's first phase.
func (r *callRun) received(ctx context.Context) phase {
	r.create(ctx)
	received := map[string]any{"source": r.c.Source}
	if r.srtp != "" {
		received["srtp"] = r.srtp
	}
	r.event(sb.EventReceived, received)
	r.event(sb.EventTrying, nil)
	if c := r.consent; c != nil {
		r.event(sb.EventConsent, map[string]any{"given": c.Given, "mechanism": c.Mechanism, "by": c.By})
	}
	r.rt = routing{queue: r.queueFor(ctx), tried: map[sb.ID]bool{}}
	if q := r.rt.queue; q != nil {
		r.event(sb.EventQueued, map[string]any{"queue_id": q.ID, "queue": q.Name})
	}
	r.onAnswer, r.onMissed = r.answer, r.route
	return r.route
}

// route offers the call to the operator free here idle longest, or to one
// free on another instance, or puts it in line, or sends it on when
// nobody can take it.
func (r *callRun) route(ctx context.Context) phase {
	rt := &r.rt
	var a *agent
	if rt.target != nil {
		a = r.s.reserve(r.c.TenantID, *rt.target, r.c.ID)
	}
	if a == nil {
		mayWait := rt.queue != nil && rt.queue.MaxWait > 0 && (rt.deadline.IsZero() || r.s.now().Before(rt.deadline))
		across := r.s.cluster != nil
		var w *waiter
		a, rt.busy, w = r.s.pickOrWait(r.c.ID, r.c.TenantID, rt.queue, rt.tried, mayWait && !across)
		if a == nil && across {
			// Nobody free here: an operator free on another instance, if
			// any, then in line here.
			if r.remote == nil {
				r.remote = r.candidates(ctx, queueMembers(rt.queue))
			}
			if len(r.remote) > 0 {
				return r.handOver
			}
			r.remote = nil // the next look asks the other instances again
			a, rt.busy, w = r.s.pickOrWait(r.c.ID, r.c.TenantID, rt.queue, rt.tried, mayWait)
		}
		if w != nil {
			r.waiter = w
			return r.queued
		}
	}
	if a == nil {
		return r.nobody
	}
	return r.offer(ctx, a)
}

// queued keeps the caller in line, hearing ringback, until an operator is
// free for them or the queue's longest wait passes; with other instances,
// also until one says it has an operator free.
func (r *callRun) queued(ctx context.Context) phase {
	rt := &r.rt
	if rt.deadline.IsZero() {
		rt.deadline = r.s.now().Add(rt.queue.MaxWait)
	}
	r.ringCaller(ctx)
	// A caller may wait long in line: their timeline so far can be read
	// meanwhile. (An offer or a forward is answered, missed or ended
	// within its ring time, and written then.)
	r.flush(ctx)
	timer := time.NewTimer(rt.deadline.Sub(r.s.now()))
	defer timer.Stop()
	w := watch{timer: timer.C, assigned: r.waiter.assigned}
	if r.s.cluster != nil {
		w.woken = r.s.woken()
	}
	ev, ok := r.await(ctx, w)
	if !ok {
		return nil
	}
	var a *agent
	if ev.kind == evAssigned {
		a = ev.agent
	} else {
		a = r.s.unwait(r.waiter) // an operator freed just in time is taken
	}
	r.waiter = nil
	switch {
	case a != nil:
		return r.offer(ctx, a)
	case ev.kind == evWoken:
		return r.route
	}
	return r.nobody
}

// nobody sends on a call no operator can take now: to the queue's
// overflow, or refused with the reason; a transfer nobody took is hung up.
func (r *callRun) nobody(ctx context.Context) phase {
	rt := &r.rt
	if rt.transfer {
		r.over(ending{by: sb.PartySystem, reason: "the transfer was not answered", bye: "the transfer was not answered"})
		return nil
	}
	if q := rt.queue; q != nil && (!rt.deadline.IsZero() || q.Overflow.Kind != sb.OverflowReject) {
		// The wait is over, or there is none and the queue sends its
		// callers on.
		return r.overflow
	}
	refuse := func(reason string, status sb.CallStatus, stage string) phase {
		r.over(ending{by: sb.PartySystem, status: status, reject: 480, reason: reason, failLeg: sb.FailedOnBrowser, failStage: stage})
		return nil
	}
	switch {
	case rt.declined > 0 && rt.declined == len(rt.tried):
		return refuse("declined by every operator offered", sb.CallRejected, sb.StageRinging)
	case rt.busy:
		return refuse("all operators busy", sb.CallBusy, sb.StageRouting)
	case len(rt.tried) > 0:
		return refuse("no operator answered", sb.CallNoAnswer, sb.StageRinging)
	}
	return refuse("no operator available", sb.CallNoAnswer, sb.StageRouting)
}

// overflow sends a caller who waited the queue's longest on: to the next
// queue, to a SIP URI, or away with a clear refusal.
func (r *callRun) overflow(ctx context.Context) phase {
	rt := &r.rt
	q := rt.queue
	r.event(sb.EventQueueTimeout, map[string]any{"queue_id": q.ID, "overflow": q.Overflow.Kind})
	refuse := func(reason string) phase {
		status := sb.CallNoAnswer
		if rt.busy {
			status = sb.CallBusy
		}
		r.over(ending{by: sb.PartySystem, status: status, reject: 480, reason: reason, failLeg: sb.FailedOnBrowser, failStage: sb.StageRouting})
		return nil
	}
	switch q.Overflow.Kind {
	case sb.OverflowQueue:
		if rt.overflows >= maxOverflows || q.Overflow.QueueID == nil {
			return refuse(fmt.Sprintf("no operator free in queue %s; too many overflows", q.Name))
		}
		qctx, cancel := dbContext(ctx)
		next, err := r.s.queues.QueueByID(qctx, r.c.TenantID, *q.Overflow.QueueID)
		cancel()
		if err != nil {
			r.log.Warn("overflow queue", "queue_id", *q.Overflow.QueueID, "err", err)
			return refuse(fmt.Sprintf("no operator free in queue %s", q.Name))
		}
		r.event(sb.EventQueued, map[string]any{"queue_id": next.ID, "queue": next.Name, "overflow_from": q.ID})
		rt.queue, rt.deadline = next, time.Time{}
		rt.overflows++
		return r.route
	case sb.OverflowURI:
		return r.forward(ctx, q.Overflow.URI, fmt.Sprintf("no operator free in queue %s", q.Name))
	}
	return refuse(fmt.Sprintf("no operator free in queue %s within %s", q.Name, q.MaxWait))
}

// offer shows the call to operator a, who is reserved for it.
func (r *callRun) offer(ctx context.Context, a *agent) phase {
	r.rt.tried[a.conn.OperatorID()] = true
	if !r.carriedBy(a) {
		r.rt.target = nil // someone else, then
		return r.route
	}
	if err := a.conn.Offer(sb.CallOffer{CallID: r.c.ID, From: r.c.From, To: r.c.To, Channel: r.c.Channel}); err != nil {
		r.log.Warn("offer failed", "operator_id", a.conn.OperatorID(), "err", err)
		r.s.release(a, r.c.ID, false, "")
		return r.route
	}
	r.ag = a
	detail := map[string]any{"operator_id": a.conn.OperatorID()}
	if r.rt.transfer {
		detail["transfer"] = true
	}
	r.event(sb.EventOffered, detail)
	r.ringCaller(ctx)
	return r.ringing
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

// ringCaller sends 180 Ringing once: the caller hears ringback while
// operators are offered the call or while they wait in line.
func (r *callRun) ringCaller(ctx context.Context) {
	if r.rang || r.in == nil || r.answered() {
		return
	}
	r.rang = true
	if err := r.in.Ring(ctx); err != nil {
		r.log.Warn("180 failed", "err", err)
	}
	r.event(sb.EventRinging, nil)
	r.c.PostDialDelayMS = r.s.now().Sub(r.c.CreatedAt).Milliseconds()
}

// ringing waits for the operator offered the call to take it. A decline,
// a ring timeout or the operator going away withdraws the offer from
// their page and moves on.
func (r *callRun) ringing(ctx context.Context) phase {
	a := r.ag
	opID := a.conn.OperatorID()
	timer := time.NewTimer(r.s.ringTimeout)
	defer timer.Stop()
	// missed withdraws the offer; away sets the operator away.
	missed := func(revoke string, away bool, note string) phase {
		// On the timeline before the page hears of it: its recent calls,
		// read at once, list the call as missed or declined.
		r.flush(ctx)
		a.conn.Revoke(r.c.ID, revoke)
		r.s.release(a, r.c.ID, away, note)
		r.ag = nil
		r.rt.target = nil // the chosen one did not answer: anyone available
		return r.onMissed
	}
	for {
		ev, ok := r.await(ctx, watch{timer: timer.C})
		if !ok {
			return nil
		}
		if ev.kind == evTimer {
			r.event(sb.EventRingTimeout, map[string]any{"operator_id": opID})
			// An operator who let a call ring out is likely not at the
			// desk (RONA): stop offering them calls until they come back.
			return missed("not answered in time", true, "missed call")
		}
		switch ev.op.kind {
		case opAccept:
			if r.s.markBusy(a, r.c.ID) {
				r.busy = true
				return r.onAnswer
			}
		case opDecline:
			r.rt.declined++
			r.event(sb.EventDeclined, map[string]any{"operator_id": opID})
			return missed("declined", false, "")
		case opGone:
			r.event(sb.EventDeclined, map[string]any{"operator_id": opID, "reason": "operator went away"})
			return missed("operator went away", true, "")
		}
	}
}

// answer answers the caller once an operator took the call (or bridges
// the operator a transfer reached), and starts the recording if consent
// allows.
func (r *callRun) answer(ctx context.Context) phase {
	a := r.ag
	opID := a.conn.OperatorID()
	r.c.OperatorID = &opID
	if r.answered() {
		r.bridgeOperator(ctx, a)
		r.event(sb.EventAnswered, map[string]any{"operator_id": opID, "transfer": true})
		if r.held {
			// The hold was the first operator's; the next one talks.
			r.hold(ctx, false)
		}
		r.write(ctx, false)
		return r.talking
	}
	if !r.answerCaller(ctx) {
		return nil
	}
	r.c.Codec = r.leg.Media().Codec().Name // a late offer's codec is known only now
	detail := map[string]any{"operator_id": opID, "codec": r.c.Codec}
	if lr, ok := a.conn.Media().(sb.LinkReporter); ok {
		r.link = lr.Link()
		detail["webrtc"] = r.link
	}
	// The answer goes on the timeline before the recording it starts.
	r.event(sb.EventAnswered, detail)
	r.bridgeOperator(ctx, a)
	r.write(ctx, false)
	return r.talking
}

// answerCaller sends the caller the 200 OK and waits for its ACK. A caller
// who hangs up instead (BYE as the answer reached them) ends an answered
// call themselves; one whose CANCEL got there first (answered 487) ends it
// unanswered; one whose ACK never comes fails it; a service that stops
// meanwhile ends it. It reports whether the call is up.
func (r *callRun) answerCaller(ctx context.Context) bool {
	err := r.in.Answer(ctx)
	if errors.Is(err, sb.ErrCanceled) {
		r.callerLeft("CANCEL before the 200 OK")
		return false
	}
	if err != nil && !errors.Is(err, sb.ErrHungUp) && ctx.Err() != nil {
		// The 200 is out: the dialog it made ends with a BYE (RFC 3261
		// §15), which the leg sends once the caller's ACK comes.
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: shuttingDown, bye: shuttingDown,
			failLeg: sb.FailedOnService, failStage: sb.StageMediaSetup})
		return false
	}
	if err != nil && !errors.Is(err, sb.ErrHungUp) {
		r.log.Warn("answer failed", "err", err)
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "answer not acknowledged: " + err.Error(),
			failLeg: sb.FailedOnTrunk, failStage: sb.StageMediaSetup})
		return false
	}
	now := r.s.now()
	r.c.Status, r.c.AnsweredAt, r.c.SIPCode = sb.CallAnswered, &now, 200
	r.c.TimeToAnswerMS = now.Sub(r.c.CreatedAt).Milliseconds()
	if err != nil {
		r.callerLeft("BYE before the ACK")
		return false
	}
	return true
}

// talking is the caller and an operator of this instance bridged, until
// one of them ends it or the operator hands it on.
func (r *callRun) talking(ctx context.Context) phase {
	var grace <-chan time.Time // while the operator's connection is down
	for {
		ev, ok := r.await(ctx, watch{grace: grace})
		if !ok {
			return nil
		}
		opID := r.ag.conn.OperatorID()
		if ev.kind == evGrace {
			r.s.forgetDetached(r.ag)
			r.over(ending{by: sb.PartyOperator, reason: "operator disconnected", bye: "operator disconnected",
				failLeg: sb.FailedOnBrowser, failStage: sb.StageMedia})
			return nil
		}
		if ev.kind == evLeg {
			continue // a call we placed that is up reports nothing else of its own
		}
		switch m := ev.op; m.kind {
		case opHangup:
			r.over(ending{by: sb.PartyOperator, reason: "operator hung up", bye: "operator hung up"})
			return nil
		case opGone:
			r.over(ending{by: sb.PartyOperator, reason: "operator disconnected", bye: "operator disconnected",
				failLeg: sb.FailedOnBrowser, failStage: sb.StageMedia})
			return nil
		case opDetached:
			r.sample() // how the operator's transport stood as it went
			r.bridge.Stop()
			r.event(sb.EventOperatorLost, map[string]any{"operator_id": opID, "grace_ms": r.s.reconnectGrace.Milliseconds()})
			grace = time.After(r.s.reconnectGrace)
		case opReattach:
			grace = nil
			r.unbridge()
			r.ag = m.agent
			r.bridgeOperator(ctx, r.ag)
			if r.held {
				r.ag.conn.Held(r.c.ID, true)
			}
			if lr, ok := r.ag.conn.Media().(sb.LinkReporter); ok {
				r.link = lr.Link()
			}
			r.event(sb.EventOperatorBack, map[string]any{"operator_id": opID})
		case opHold:
			r.hold(ctx, m.held)
		case opTransfer:
			if r.in == nil {
				r.log.Info("transfer of a call we placed is not supported")
				continue
			}
			r.transfer = *m.transfer
			return r.transferring
		}
	}
}

// transferring hands the answered caller on (blind): the first operator
// is free at once, and the caller waits in silence for the next: an
// operator here or on another instance, a queue, or a SIP URI.
func (r *callRun) transferring(ctx context.Context) phase {
	a := r.ag
	r.unbridge()
	if conn := r.s.release(a, r.c.ID, false, ""); conn != nil {
		conn.Ended(r.c.ID, "transferred")
	}
	r.ag, r.busy, r.remote = nil, false, nil
	r.event(sb.EventTransferred, transferDetail(r.transfer, a.conn.OperatorID()))
	r.bridgeNobody()
	if uri := r.transfer.URI; uri != "" {
		r.storeRecording(ctx) // the recording's consent was for the tenant's operators
		if r.refer(ctx, uri) {
			return nil
		}
		return r.dialTransfer(ctx, uri)
	}
	// The operator who handed the call on is not offered it again.
	r.rt = routing{tried: map[sb.ID]bool{a.conn.OperatorID(): true}, target: r.transfer.OperatorID, transfer: true}
	r.rt.queue, r.rt.deadline = r.transferQueue(ctx)
	r.onMissed = r.route
	if id := r.transfer.OperatorID; id != nil && r.s.cluster != nil && !r.s.connectedHere(*id) {
		// Connected to another instance: handed over to them there, or
		// to anyone available here.
		r.rt.target = nil
		r.remote = r.candidates(ctx, []sb.ID{*id})
		if len(r.remote) > 0 {
			return r.handOver
		}
	}
	return r.route
}

// transferQueue is the queue an answered call is transferred into, and
// how long the caller may wait in it; none when the transfer is not to a
// queue, or the queue cannot be read (then any operator takes it).
func (r *callRun) transferQueue(ctx context.Context) (*sb.Queue, time.Time) {
	if r.transfer.QueueID == nil || r.s.queues == nil {
		return nil, time.Time{}
	}
	qctx, cancel := dbContext(ctx)
	q, err := r.s.queues.QueueByID(qctx, r.c.TenantID, *r.transfer.QueueID)
	cancel()
	if err != nil {
		r.log.Warn("transfer queue", "queue_id", *r.transfer.QueueID, "err", err)
		return nil, time.Time{}
	}
	r.event(sb.EventQueued, map[string]any{"queue_id": q.ID, "queue": q.Name, "transfer": true})
	return q, r.s.now().Add(q.MaxWait)
}

// refer asks the caller's side to call uri itself (REFER), when it takes
// REFER; once the target answered, switchboard leaves the call and it is
// over. It reports false when the caller is still ours to transfer.
func (r *callRun) refer(ctx context.Context, uri string) bool {
	rl, ok := r.leg.(sb.Referrer)
	if !ok {
		return false
	}
	if err := rl.Refer(ctx, uri); err != nil {
		r.log.Info("REFER not used; bridging the transfer", "err", logSafe(err))
		return false
	}
	r.event(sb.EventReferred, map[string]any{"uri": uri})
	r.over(ending{by: sb.PartySystem, reason: "transferred by REFER", bye: "transferred"})
	return true
}

// queueFor finds the queue the call's number leads to; a directory that
// fails leaves the call to all of the tenant's operators, which is better
// than refusing it.
func (r *callRun) queueFor(ctx context.Context) *sb.Queue {
	if r.s.queues == nil {
		return nil
	}
	qctx, cancel := dbContext(ctx)
	defer cancel()
	q, err := r.s.queues.QueueForNumber(qctx, r.c.TenantID, r.c.To)
	if err != nil {
		r.log.Warn("finding the number's queue; offering to all operators", "err", err)
		return nil
	}
	return q
}
