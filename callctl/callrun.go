package callctl

import (
	"context"
	"log/slog"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// A call is one goroutine running one loop (run): the call is always in
// one phase, a function that handles only its own events and returns the
// next phase, or nil once the call's end is decided. Every phase waits
// through await, which does what the call must do whatever its phase
// (hang-up, an integration ending the call, consent, pause, DTMF, quality
// samples, shutdown) and hands the phase only what is its own. The end is
// a value (ending), decided once, and acted on in one place (end).
//
// What each phase does with each event is tabled in docs/ARCHITECTURE.md;
// phases_test.go walks that table.

// phase is one state of a call.
type phase func(ctx context.Context) phase

// callRun is one call's state, owned by the call's goroutine.
type callRun struct {
	s   *Switch
	c   *sb.Call
	lc  *liveCall
	log *slog.Logger

	// leg is the call's own SIP (or WHIP) leg: the caller's on an inbound
	// call, the one we placed on an outbound call (nil until dialled).
	// in is the same leg when it came in: it is rung, answered or refused.
	leg sb.Leg
	in  sb.TrunkLeg
	// hops bounds a call forwarded from this one (InboundCall.Hops).
	hops int

	events []*sb.CallEvent
	dtmf   chan dtmfKey
	tick   *time.Ticker // quality samples while bridged

	ag     *agent  // the operator ringing for or on the call
	busy   bool    // ag took the call
	bridge *Bridge // the call's audio path now; nil while nobody is bridged
	// bridged is who the bridge reaches: an operator here or on another
	// instance (recorded), or a party we forwarded to (not recorded).
	bridged bridgeKind
	waiter  *waiter        // the call's place in line while queued
	out     sb.OutboundLeg // a leg we placed for the caller: forward, transfer, hand-over
	dialFor dialPurpose    // why out was placed
	dialURI string         // where a forward or a transfer goes
	// forwardWhy is why a call was forwarded, for the reasons of what follows.
	forwardWhy string
	across     sb.RemoteOperator
	remote     []sb.RemoteOperator // operators free on other instances, still to try; nil: ask

	rt       routing           // who is offered the call next
	onAnswer phase             // what follows when the operator rung takes the call
	onMissed phase             // what follows when they do not
	transfer sb.TransferTarget // where the call is being transferred
	routes   []sb.OutboundRoute
	routeAt  int // the outbound route being tried

	samples []sb.QualitySample // the call's quality over time
	counted [2]mediaCounted    // what countMedia reported, from and to the caller
	link    sb.LinkInfo        // the operator's WebRTC transport, as last seen
	iceLost bool               // the operator's ICE connection failed or dropped
	created bool               // the record is written
	hop     *sb.Hop            // another instance's call: it writes the record
	rang    bool               // 180 sent; on a call we placed, the far end rings

	consent   *sb.Consent        // what was stated about recording, if anything
	srtp      string             // the trunk leg's SRTP suite; empty: plain RTP
	held      bool               // the operator put the caller on hold
	digit     byte               // the key the caller presses to consent, 0 if none
	digitRead bool               // digit was read from the tenant's settings
	recording sb.ActiveRecording // the call's recording, while it exists
	recCodec  sb.Codec           // the codec the recording keeps the operator's side in
	stored    bool               // the recording is stored whole (the call went on elsewhere)
	paused    bool               // the recording is paused, or is to start paused
	shown     sb.RecordingView   // the recording's state as last shown to shownTo
	shownTo   sb.OperatorConn

	ending *ending // how the call ends, once decided
}

type bridgeKind int

const (
	bridgedOperator  bridgeKind = iota + 1 // an operator of this instance
	bridgedAcross                          // an operator on another instance, through its leg
	bridgedForwarded                       // a party outside the tenant's operators
	bridgedNobody                          // nobody: the caller waits for a transfer, their keys still heard
)

// reachesOperator reports whether the bridge reaches one of the tenant's
// operators: only then is the call's audio recorded.
func (k bridgeKind) reachesOperator() bool { return k == bridgedOperator || k == bridgedAcross }

type dtmfKey struct {
	fromCaller bool
	digit      byte
}

// endedByAPI is the reason of a call an integration ended.
const endedByAPI = "ended through the API"

// shuttingDown is the reason of a call the service ended as it stopped.
const shuttingDown = "service shutting down"

// newRun prepares a call's state; run runs it.
func (s *Switch) newRun(c *sb.Call, lc *liveCall, log *slog.Logger) *callRun {
	return &callRun{s: s, c: c, lc: lc, log: log, dtmf: make(chan dtmfKey, 32)}
}

// run moves the call from phase to phase until its end is decided, then
// ends it.
func (r *callRun) run(ctx context.Context, first phase) {
	r.tick = time.NewTicker(r.s.sampleEvery)
	defer r.tick.Stop()
	for p := first; p != nil && r.ending == nil; {
		p = p(ctx)
	}
	if r.ending == nil {
		r.over(ending{by: sb.PartySystem, reason: "call control lost track of the call", status: sb.CallFailed, reject: 500, bye: "internal error",
			failLeg: sb.FailedOnService})
	}
	r.end(ctx)
}

// over decides how the call ends; the first decision stands.
func (r *callRun) over(e ending) {
	if r.ending == nil {
		r.ending = &e
	}
}

// eventKind is what a phase is handed by await.
type eventKind int

const (
	evOperator eventKind = iota + 1 // the operator ringing or on the call acted
	evLeg                           // the call's own leg: ringing, early media, answer, failure of a call we placed
	evOut                           // the leg placed for the caller
	evTimer                         // the phase's timer
	evGrace                         // the operator's reconnect grace ran out
	evAssigned                      // an operator was reserved for the queued call
	evWoken                         // another instance has an operator free
)

type event struct {
	kind  eventKind
	op    opMsg
	leg   sb.LegEvent
	agent *agent
}

// watch is what a phase waits for besides what every phase does.
type watch struct {
	timer, grace <-chan time.Time
	assigned     <-chan *agent
	woken        <-chan struct{}
	out          <-chan sb.LegEvent
}

// await returns the phase's next event, doing meanwhile what every phase
// must. It reports false once the call's end is decided.
func (r *callRun) await(ctx context.Context, w watch) (event, bool) {
	for r.ending == nil {
		var legEvents <-chan sb.LegEvent
		if r.leg != nil {
			legEvents = r.leg.Events()
		}
		var tick <-chan time.Time
		if r.bridge != nil {
			tick = r.tick.C
		}
		// An operator's action waiting when the leg reports too goes
		// first: a mute the page was told of before the caller's BYE
		// is on the timeline. (Which came first is not known once the
		// loop was held up, by a hold's re-INVITE or a record's write;
		// an accept that overtakes a CANCEL so meets a leg that says
		// it was canceled.)
		select {
		case m := <-r.lc.ops:
			r.drainDTMF(ctx)
			if r.duty(ctx, m) {
				return event{kind: evOperator, op: m}, true
			}
			continue
		default:
		}
		select {
		case <-ctx.Done():
			r.drainDTMF(ctx)
			r.shutdown()
		case k := <-r.dtmf:
			r.key(ctx, k)
		case <-tick:
			r.sample()
		case m := <-r.lc.ops:
			r.drainDTMF(ctx) // digits the bridge saw first go first in the timeline
			if r.duty(ctx, m) {
				return event{kind: evOperator, op: m}, true
			}
		case ev, ok := <-legEvents:
			r.drainDTMF(ctx)
			if !ok {
				ev = r.closedLeg()
			}
			if r.legDuty(ctx, ev) {
				return event{kind: evLeg, leg: ev}, true
			}
		case ev, ok := <-w.out:
			if !ok {
				ev = sb.LegEvent{Kind: sb.LegFailed, Code: 500, Reason: "the leg closed"}
			}
			return event{kind: evOut, leg: ev}, true
		case <-w.timer:
			return event{kind: evTimer}, true
		case <-w.grace:
			return event{kind: evGrace}, true
		case a := <-w.assigned:
			return event{kind: evAssigned, agent: a}, true
		case <-w.woken:
			return event{kind: evWoken}, true
		}
	}
	return event{}, false
}

// closedLeg is what a leg's closed event channel means: a call we placed
// that never answered failed; any other leg hung up.
func (r *callRun) closedLeg() sb.LegEvent {
	if r.in == nil && r.c.AnsweredAt == nil {
		return sb.LegEvent{Kind: sb.LegFailed, Code: 500, Reason: "the leg closed"}
	}
	return sb.LegEvent{Kind: sb.LegHungUp, Reason: "the leg closed"}
}

// duty does what every phase does with a message for the call, and
// reports whether it is the phase's own: an action of the operator
// ringing for or on the call.
func (r *callRun) duty(ctx context.Context, m opMsg) bool {
	mine := r.ag != nil && m.opID == r.ag.conn.OperatorID()
	switch m.kind {
	case opEnd:
		r.endedByAPI()
	case opConsent:
		r.consentChanged(ctx, m.consent)
	case opPause:
		r.setPaused(ctx, m.paused, m.pausedBy())
	case opStats:
		if mine && r.busy {
			r.samples = append(r.samples, *m.stats)
		}
	case opMute:
		if mine && r.busy {
			r.event(EventMuted(m.muted), map[string]any{"operator_id": m.opID})
		}
	default:
		return mine
	}
	return false
}

// legDuty does what every phase does with what the call's leg reports,
// and reports whether it is the phase's own (how a call we placed
// progresses).
func (r *callRun) legDuty(ctx context.Context, ev sb.LegEvent) bool {
	switch ev.Kind {
	case sb.LegCanceled, sb.LegHungUp:
		r.callerLeft(ev.Reason)
	case sb.LegHeld:
		r.event(sb.EventHeld, nil)
	case sb.LegResumed:
		if r.bridge != nil {
			r.bridge.Rebase() // what the trunk skipped while it held the call is not loss
		}
		r.event(sb.EventResumed, nil)
	case sb.LegDTMF:
		if len(ev.Reason) == 1 {
			r.key(ctx, dtmfKey{fromCaller: true, digit: ev.Reason[0]})
		}
	case sb.LegMediaTimeout:
		r.event(sb.EventMediaTimeout, nil)
		if r.in != nil && !r.answered() {
			// A browser caller's connection failed before anyone answered.
			r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reject: 480, reason: "the caller's media failed before the answer",
				failLeg: sb.FailedOnTrunk, failStage: sb.StageMediaSetup})
			return false
		}
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "no media from the caller (RTP timeout)", bye: "RTP timeout",
			failLeg: sb.FailedOnTrunk, failStage: sb.StageMedia})
	case sb.LegMediaFailed:
		// No keyed path to the far end (ICE or DTLS-SRTP failed): nothing
		// it says can be heard, so the call ends, saying why.
		r.event(sb.EventMediaFailed, map[string]any{"reason": ev.Reason})
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "media failed: " + ev.Reason, bye: "media failed",
			failLeg: sb.FailedOnTrunk, failStage: sb.StageMediaSetup})
	case sb.LegSessionExpired:
		// The far end stopped refreshing the session: it is gone, or will
		// drop the call itself. Our BYE goes before the expiry.
		r.event(sb.EventSessionExpired, map[string]any{"reason": ev.Reason})
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "session expired: " + ev.Reason, bye: "session expired",
			failLeg: sb.FailedOnTrunk, failStage: sb.StageMedia})
	case sb.LegFailed:
		if r.in == nil || r.answered() {
			return true // how a call we placed ends: the phase's own
		}
		// The SIP side ended the caller's INVITE itself (its reliable 180
		// never acknowledged): the caller has its final response already.
		r.event(sb.EventRejected, map[string]any{"sip_code": ev.Code, "reason": ev.Reason})
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, code: ev.Code, reason: ev.Reason,
			failLeg: sb.FailedOnTrunk, failStage: sb.StageRinging})
	default:
		return true
	}
	return false
}

// answered reports whether the call's own leg was answered.
func (r *callRun) answered() bool { return r.c.AnsweredAt != nil }

// inTransfer reports whether the answered call is on its way to someone
// else: nobody talks to the caller.
func (r *callRun) inTransfer() bool {
	return r.answered() && !r.busy && (r.bridge == nil || r.bridged == bridgedNobody)
}

// callerLeft ends the call the caller (or, on a call we placed, the far
// end) left.
func (r *callRun) callerLeft(why string) {
	switch {
	case r.answered():
		r.event(sb.EventHungUp, map[string]any{"by": sb.PartyCaller, "reason": why})
		reason := "caller hung up"
		if r.inTransfer() {
			reason = "caller hung up during the transfer"
		}
		r.over(ending{by: sb.PartyCaller, reason: reason})
	case r.waiter != nil:
		r.event(sb.EventCanceled, map[string]any{"waited_ms": r.s.now().Sub(r.c.CreatedAt).Milliseconds()})
		r.over(ending{by: sb.PartyCaller, status: sb.CallCanceled, code: 487, reason: "caller gave up waiting",
			failLeg: sb.FailedOnTrunk, failStage: sb.StageRinging})
	default:
		r.event(sb.EventCanceled, nil)
		r.over(ending{by: sb.PartyCaller, status: sb.CallCanceled, code: 487, reason: "caller canceled before answer",
			failLeg: sb.FailedOnTrunk, failStage: sb.StageRinging})
	}
}

// endedByAPI ends the call as an integration asked: an answered call is
// hung up, one ringing here refused, one we place canceled.
func (r *callRun) endedByAPI() {
	switch {
	case r.answered():
		r.over(ending{by: sb.PartySystem, reason: endedByAPI, bye: endedByAPI})
	case r.in != nil:
		r.over(ending{by: sb.PartySystem, status: sb.CallCanceled, reject: 480, reason: endedByAPI})
	case r.leg == nil: // a click-to-call ringing its operator: nothing dialled yet
		r.over(ending{by: sb.PartySystem, status: sb.CallCanceled, reason: endedByAPI})
	default:
		r.event(sb.EventCanceled, nil)
		r.over(ending{by: sb.PartySystem, status: sb.CallCanceled, code: 487, reason: endedByAPI, bye: endedByAPI})
	}
}

// shutdown ends the call as the service stops.
func (r *callRun) shutdown() {
	switch {
	case r.answered():
		r.over(ending{by: sb.PartySystem, reason: shuttingDown, bye: shuttingDown, failLeg: sb.FailedOnService, failStage: sb.StageMedia})
	case r.in != nil:
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reject: 503, reason: shuttingDown, failLeg: sb.FailedOnService, failStage: sb.StageRinging})
	default:
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: shuttingDown, bye: shuttingDown, failLeg: sb.FailedOnService, failStage: sb.StageRinging})
	}
}
