// Package callctl is call control: it takes inbound calls from the
// adapters (sip, the WHIP widget, other instances), offers them to
// operators, bridges them, transfers, queues, forwards and hands them over,
// places operators' calls, and ends each call once, writing its record.
//
// The root package holds the vocabulary (calls, legs, events, queues,
// transfer targets, recordings); api and sip reach call control through
// their own small interfaces, which Switch implements.
package callctl

import (
	"context"
	"log/slog"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// Switch is call control: it takes inbound calls from trunks, offers each to
// the tenant's available operator who has been idle longest, moves on after
// a decline or ring timeout, bridges the answered call and ends it once,
// through one place, writing its record.
//
// Each call is owned by one goroutine; operators and legs talk to it through
// channels. The operator registry is guarded by one mutex.
type Switch struct {
	rec         sb.CallRecorder
	recordings  sb.Recordings // nil: nothing is ever recorded
	log         *slog.Logger
	now         func() time.Time
	ringTimeout time.Duration
	sampleEvery time.Duration
	scorer      sb.QualityScorer                         // nil: no MOS, no tags
	observer    sb.CallObserver                          // nil: nobody listens
	countMedia  func(fromCaller, toCaller sb.MediaCount) // nil: nobody counts
	relayDelay  func(fromCaller bool, d time.Duration)   // nil: not measured
	dialer      sb.Dialer                                // nil: no calls are placed
	messenger   sb.MessengerDialer                       // nil: no calls to messenger users
	routes      sb.RouteDirectory
	dialPolicy  sb.DialPolicy     // nil: SIP URIs are called wherever they point (tests)
	queues      sb.QueueDirectory // nil: every number leads to all of a tenant's operators
	// reconnectGrace is how long a call waits for an operator whose
	// connection dropped.
	reconnectGrace time.Duration
	// With several instances: where presence is shared, this instance's
	// name, and the secret hand-overs are signed with.
	cluster   sb.Cluster
	instance  string
	hopSecret []byte
	poke      chan struct{} // presence changed: publish it
	wake      chan struct{} // closed when another instance has an operator free

	ctx    context.Context // calls' parent; canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	agents   map[sb.ID]*agent
	calls    map[sb.ID]*liveCall
	waiting  []*waiter // callers in line for a queue, longest waiting first
	draining bool
}

// SwitchOption tunes a Switch.
type SwitchOption func(*Switch)

// WithRingTimeout sets how long one operator is rung before the call moves
// on (default 20 s).
func WithRingTimeout(d time.Duration) SwitchOption { return func(s *Switch) { s.ringTimeout = d } }

// WithClock sets the clock for call times.
func WithClock(now func() time.Time) SwitchOption { return func(s *Switch) { s.now = now } }

// WithRecordings lets call control record calls whose tenant policy and
// consent allow it. Without it no call is recorded.
func WithRecordings(r sb.Recordings) SwitchOption { return func(s *Switch) { s.recordings = r } }

// WithQuality scores answered calls' quality as they end.
func WithQuality(q sb.QualityScorer) SwitchOption { return func(s *Switch) { s.scorer = q } }

// WithObserver lets o hear every call.
func WithObserver(o sb.CallObserver) SwitchOption { return func(s *Switch) { s.observer = o } }

// WithMediaCounter hands fn what each call relayed, as it goes: every
// quality sample and at the call's end, counts since the last. It is
// called on the call's goroutine and must not block.
func WithMediaCounter(fn func(fromCaller, toCaller sb.MediaCount)) SwitchOption {
	return func(s *Switch) { s.countMedia = fn }
}

// WithRelayDelay gives fn the time each relayed packet spent in the
// service, from its arrival on the host to its hand-over to the kernel on
// the other leg (see WithDelay). fn runs on media goroutines, once a
// packet: it must not block or allocate.
func WithRelayDelay(fn func(fromCaller bool, d time.Duration)) SwitchOption {
	return func(s *Switch) { s.relayDelay = fn }
}

// OperatorStates counts the connected operators by state: available
// (idle), ringing, on a call, and away.
func (s *Switch) OperatorStates() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[string]int{"available": 0, "ringing": 0, "busy": 0, "away": 0}
	for _, a := range s.agents {
		switch a.state {
		case agentAvailable:
			n["available"]++
		case agentRinging:
			n["ringing"]++
		case agentBusy:
			n["busy"]++
		default:
			n["away"]++
		}
	}
	return n
}

// WithQualitySampling sets how often a call's receive quality is noted
// (default 5 s).
func WithQualitySampling(d time.Duration) SwitchOption { return func(s *Switch) { s.sampleEvery = d } }

// quality scores a call that ends, if a scorer is set.
func (s *Switch) quality(c *sb.Call, samples []sb.QualitySample) (float64, float64, []string) {
	if s.scorer == nil {
		return 0, 0, nil
	}
	return s.scorer(c, samples)
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) SwitchOption { return func(s *Switch) { s.log = l } }

// NewSwitch returns call control that writes call records to rec.
func NewSwitch(rec sb.CallRecorder, opts ...SwitchOption) *Switch {
	s := &Switch{
		rec:         rec,
		log:         slog.Default(),
		now:         time.Now,
		ringTimeout: 20 * time.Second,
		sampleEvery: 5 * time.Second,
		agents:      make(map[sb.ID]*agent),
		calls:       make(map[sb.ID]*liveCall),
	}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.cluster != nil {
		s.poke, s.wake = make(chan struct{}, 1), make(chan struct{})
	}
	return s
}

type agentState int

const (
	agentAway agentState = iota
	agentAvailable
	agentRinging
	agentBusy
)

// agent is a connected operator as call control tracks them.
type agent struct {
	conn       sb.OperatorConn
	state      agentState
	idleSince  time.Time
	callID     sb.ID // the call ringing for or bridged to them
	awayAfter  bool  // asked to go away while on a call
	detached   bool  // the connection dropped mid-call: the call waits for the operator to come back
	toOperator *media.Rewriter
}

// liveCall is the registry's handle on a call's goroutine.
type liveCall struct {
	id       sb.ID
	tenantID sb.ID
	from, to string // for an operator who comes back to the call
	channel  string
	// handedOver is set on a call another instance handed over: its
	// recording and consent are kept there.
	handedOver bool
	ops        chan opMsg
	cancel     context.CancelFunc
}

type opKind int

const (
	opAccept opKind = iota + 1
	opDecline
	opHangup
	opMute
	opGone    // socket closed or operator went away while ringing
	opConsent // recording consent stated during the call
	opPause   // pause or resume the recording (by)
	opStats   // the operator's browser reports what it receives
	opEnd     // an integration ends the call
	opHold    // the operator puts the caller on hold, or takes them off
	opTransfer
	opDetached // the operator's connection dropped mid-call
	opReattach // the operator is back on a new connection
)

// opMsg is one of liveCall.ops; its flags go together at the end, so
// that each call's buffer of them is a fifth smaller.
type opMsg struct {
	kind     opKind
	opID     sb.ID
	consent  *sb.Consent
	stats    *sb.QualitySample
	transfer *sb.TransferTarget
	agent    *agent // opReattach: the operator on their new connection
	by       string // opPause: who asked, as the timeline names them ("user <id>")
	muted    bool
	paused   bool
	held     bool
}

// pausedBy names who paused or resumed a recording on the timeline: who
// asked through the API, or the operator on the call.
func (m opMsg) pausedBy() string {
	if m.by == "" && m.opID != (sb.ID{}) {
		return "operator " + m.opID.String()
	}
	return m.by
}

// ActiveCalls returns the number of calls in progress.
func (s *Switch) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// DispatchInbound takes a new call from a trunk. It returns at once; the call
// proceeds in its own goroutine, which owns the leg from now on.
func (s *Switch) DispatchInbound(in *sb.InboundCall) {
	now := s.now()
	id, trunkID := sb.NewID(), &in.Trunk.ID
	if in.Hop != nil {
		id, trunkID = in.Hop.CallID, nil
	}
	c := &sb.Call{
		ID:          id,
		TenantID:    in.Trunk.TenantID,
		Direction:   sb.Inbound,
		TrunkID:     trunkID,
		From:        in.From,
		To:          in.To,
		Source:      in.Source,
		SIPCallID:   in.SIPCallID,
		ExternalRef: in.ExternalRef,
		Channel:     in.Channel,
		Status:      sb.CallRinging,
		Codec:       in.Leg.Media().Codec().Name,
		CreatedAt:   now,
	}
	ctx, cancel := context.WithCancel(s.ctx)
	lc := &liveCall{id: c.ID, tenantID: c.TenantID, from: c.From, to: c.To, channel: c.Channel, handedOver: in.Hop != nil, ops: make(chan opMsg, 16), cancel: cancel}

	s.mu.Lock()
	draining := s.draining
	if !draining {
		s.calls[c.ID] = lc
		s.wg.Add(1)
	}
	s.mu.Unlock()

	r := s.newRun(c, lc, s.log.With("call_id", c.ID, "sip_call_id", c.SIPCallID))
	r.leg, r.in, r.consent, r.srtp, r.hops = in.Leg, in.Leg, in.Consent, in.SRTP, in.Hops
	first := r.received
	if in.Hop != nil {
		// Another instance's call for one of our operators: the record is
		// that instance's; recording and consent stay there too.
		r.hop, r.consent, first = in.Hop, nil, r.runHop
		r.log = r.log.With("handed_over_by", in.Hop.Instance)
	}
	if draining {
		// Record the refused attempt too: every call has a record.
		r.log.Info("refusing call: shutting down")
		r.create(ctx)
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reject: 503, reason: shuttingDown})
		r.end(ctx)
		cancel()
		return
	}
	go func() {
		defer s.wg.Done()
		defer cancel()
		r.run(ctx, first)
	}()
}

// RecordRefused writes the record of an INVITE the sip adapter refused:
// status, code, where it failed, its timeline and its trace. As at the end
// of every call, the final record goes last: once a refusal is listed, its
// timeline and trace can be read.
func (s *Switch) RecordRefused(in *sb.RefusedCall) {
	now := s.now()
	c := &sb.Call{ID: sb.NewID(), TenantID: in.Trunk.TenantID, Direction: sb.Inbound, TrunkID: &in.Trunk.ID, From: in.From, To: in.To,
		Source: in.Source, SIPCallID: in.SIPCallID, Status: sb.CallRinging, CreatedAt: now}
	r := s.newRun(c, nil, s.log.With("call_id", c.ID, "sip_call_id", c.SIPCallID))
	ctx, cancel := dbContext(s.ctx)
	defer cancel()
	if err := s.rec.CreateCall(ctx, c); err != nil {
		r.log.Error("writing a refused call's record", "err", err)
		return
	}
	c.Status, c.SIPCode, c.Reason, c.HangupBy, c.EndedAt = sb.CallRejected, in.Code, in.Reason, sb.PartySystem, &now
	c.FailureLeg, c.FailureStage, c.Q850Cause = in.Leg, in.Stage, sb.Q850Cause(in.Code)
	r.event(sb.EventReceived, map[string]any{"source": c.Source})
	switch {
	case in.Code == 487: // the caller's CANCEL came before our refusal
		c.Status, c.HangupBy = sb.CallCanceled, sb.PartyCaller
		r.event(sb.EventCanceled, nil)
	case in.Code >= 500:
		c.Status = sb.CallFailed
		fallthrough
	default:
		r.event(sb.EventRejected, map[string]any{"sip_code": in.Code, "reason": in.Reason})
	}
	r.event(sb.EventEnded, map[string]any{"status": c.Status, "hangup_by": c.HangupBy, "reason": c.Reason})
	step := &sb.CallStep{Call: c, Events: r.events}
	if len(in.Trace) > 0 {
		step.Trace = &sb.CallTrace{TenantID: c.TenantID, CallID: c.ID, SIP: in.Trace}
	}
	if err := s.rec.WriteCallStep(ctx, step); err != nil {
		r.log.Error("writing a refused call's record", "err", err)
	}
	r.log.Info("call refused", "sip_code", in.Code, "reason", in.Reason, "stage", in.Stage)
	if s.observer != nil {
		s.observer.CallEnded(c)
	}
}

// Available makes the operator available for calls, registering their
// connection. While the switch drains it moves the operator instead and
// returns EUNAVAILABLE.
func (s *Switch) Available(op sb.OperatorConn) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		op.Move(drainingReason)
		return sb.Errorf(sb.EUNAVAILABLE, drainingReason)
	}
	s.presenceChanged()
	a := s.agents[op.OperatorID()]
	if a == nil || a.conn != op {
		// A new connection replaces an old one; its call, if any, stays
		// with the old registration until it ends.
		if a != nil && a.state != agentAway && a.state != agentAvailable {
			s.mu.Unlock()
			return sb.Errorf(sb.ECONFLICT, "this operator is on a call on another connection")
		}
		a = &agent{conn: op, toOperator: NewStreamRewriter(op.Media().Codec().ClockRate)}
		s.agents[op.OperatorID()] = a
	}
	a.awayAfter = false
	if a.state == agentAway {
		a.state = agentAvailable
		a.idleSince = s.now()
	}
	available := a.state == agentAvailable
	s.mu.Unlock()
	if available {
		op.StateChanged(true, "")
		s.offerWaiting(a) // after saying available, so the offer comes second
	}
	return nil
}

// Away stops offering calls to the operator. A call ringing for them is
// declined; a call in progress continues, and they go away when it ends.
func (s *Switch) Away(opID sb.ID) {
	s.mu.Lock()
	s.presenceChanged()
	a := s.agents[opID]
	if a == nil {
		s.mu.Unlock()
		return
	}
	var notify *liveCall
	switch a.state {
	case agentAvailable:
		a.state = agentAway
	case agentRinging:
		notify = s.calls[a.callID]
		a.awayAfter = true
	case agentBusy:
		a.awayAfter = true
	}
	conn, away := a.conn, a.state == agentAway
	s.mu.Unlock()
	if notify != nil {
		notify.send(opMsg{kind: opGone, opID: opID})
	}
	if away {
		conn.StateChanged(false, "")
	}
}

// Accept answers the call offered to the operator. Returns ENOTFOUND if no
// such call is ringing for them.
func (s *Switch) Accept(opID, callID sb.ID) error {
	return s.toCall(opID, callID, agentRinging, opMsg{kind: opAccept, opID: opID})
}

// Decline declines the call offered to the operator; it is offered to the
// next operator. Returns ENOTFOUND if no such call is ringing for them.
func (s *Switch) Decline(opID, callID sb.ID) error {
	return s.toCall(opID, callID, agentRinging, opMsg{kind: opDecline, opID: opID})
}

// Hangup ends the operator's current call. Returns ENOTFOUND if they are
// not on that call.
func (s *Switch) Hangup(opID, callID sb.ID) error {
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opHangup, opID: opID})
}

// Mute records that the operator muted or unmuted the call.
func (s *Switch) Mute(opID, callID sb.ID, muted bool) error {
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opMute, opID: opID, muted: muted})
}

// SetConsent records a recording consent stated during a call (by an
// integration, the operator, a key press). Given, it starts the recording
// if the tenant's policy allows; refused or withdrawn, it stops the
// recording and destroys what was recorded. Returns ENOTFOUND if the call
// is not in progress in that tenant.
func (s *Switch) SetConsent(tenantID, callID sb.ID, c sb.Consent) error {
	if err := s.recordedHere(callID); err != nil {
		return err
	}
	return s.toLiveCall(tenantID, callID, opMsg{kind: opConsent, consent: &c})
}

// errRecordedElsewhere refuses consent and recording control on a call
// another instance handed over: its recording is kept there, and taking
// consent here would say it was recorded when it is not.
var errRecordedElsewhere = sb.Errorf(sb.ECONFLICT, "this call was handed over from another instance, which keeps its recording: state consent there (through the trunk or the API)")

// recordedHere refuses calls whose recording another instance keeps.
func (s *Switch) recordedHere(callID sb.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lc := s.calls[callID]; lc != nil && lc.handedOver {
		return errRecordedElsewhere
	}
	return nil
}

// OperatorConsent records recording consent the operator confirmed on
// their call (after the announcement) or the caller refused. Returns
// ENOTFOUND if the operator is not on that call.
func (s *Switch) OperatorConsent(opID, callID sb.ID, given bool) error {
	if err := s.recordedHere(callID); err != nil {
		return err
	}
	c := &sb.Consent{Given: given, Mechanism: sb.ConsentOperator, At: s.now(), By: "operator " + opID.String()}
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opConsent, opID: opID, consent: c})
}

// Hold puts the operator's caller on hold (the caller is told with a
// re-INVITE, and neither side hears the other) or takes them off. Returns
// ENOTFOUND if the operator is not on that call.
func (s *Switch) Hold(opID, callID sb.ID, held bool) error {
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opHold, opID: opID, held: held})
}

// Transfer hands the operator's call to another operator of the tenant
// (blind): the first is free at once, the caller waits while the other is
// rung; if they do not answer, the tenant's other available operators
// are. The other may be connected to another instance, if they are free
// there: the call is handed over. Returns ENOTFOUND if the operator is not
// on that call or the other is not an operator of the tenant.
func (s *Switch) Transfer(opID, callID, toOpID sb.ID) error {
	s.mu.Lock()
	from, to := s.agents[opID], s.agents[toOpID]
	ok := from != nil && to != nil && to.conn.TenantID() == from.conn.TenantID() && toOpID != opID
	s.mu.Unlock()
	if !ok && from != nil && to == nil && s.cluster != nil {
		// Connected to another instance, and free there.
		ctx, cancel := dbContext(s.ctx)
		cands, err := s.cluster.Candidates(ctx, from.conn.TenantID(), []sb.ID{toOpID}, nil)
		cancel()
		ok = err == nil && len(cands) > 0
	}
	if !ok {
		return sb.Errorf(sb.ENOTFOUND, "no such operator to transfer to")
	}
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opTransfer, opID: opID, transfer: &sb.TransferTarget{OperatorID: &toOpID}})
}

// reserve marks operator opID ringing for the call if they are available
// in the tenant.
func (s *Switch) reserve(tenantID, opID, callID sb.ID) *agent {
	s.mu.Lock()
	s.presenceChanged()
	defer s.mu.Unlock()
	a := s.agents[opID]
	if a == nil || a.conn.TenantID() != tenantID || a.state != agentAvailable {
		return nil
	}
	a.state, a.callID = agentRinging, callID
	return a
}

// EndCall ends a call in progress in the tenant, as an integration asks:
// a ringing call is refused, an answered one hung up, one we place
// canceled. Returns ENOTFOUND if the call is not in progress there.
func (s *Switch) EndCall(tenantID, callID sb.ID) error {
	return s.toLiveCall(tenantID, callID, opMsg{kind: opEnd})
}

// OperatorStats takes what the operator's browser reports about the audio
// it receives on its call: a quality sample of the browser leg. Returns
// ENOTFOUND if the operator is not on that call.
func (s *Switch) OperatorStats(opID, callID sb.ID, q sb.QualitySample) error {
	q.At, q.Leg, q.Source = s.now(), "browser", "browser"
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opStats, opID: opID, stats: &q})
}

// PauseRecording pauses (or resumes) the recording of a call in progress:
// nothing is kept while paused, and the gap is marked in the recording.
// A call that is not being recorded is left as it is. Returns ENOTFOUND
// if the call is not in progress in that tenant. by names who asked on the
// timeline, as a consent's By does ("user <id>", "api key <id>").
func (s *Switch) PauseRecording(tenantID, callID sb.ID, paused bool, by string) error {
	if err := s.recordedHere(callID); err != nil {
		return err
	}
	return s.toLiveCall(tenantID, callID, opMsg{kind: opPause, paused: paused, by: by})
}

// OperatorPause pauses (or resumes) the recording of the operator's call,
// as PauseRecording does, for a card number read out. Returns ENOTFOUND if
// the operator is not on that call.
func (s *Switch) OperatorPause(opID, callID sb.ID, paused bool) error {
	if err := s.recordedHere(callID); err != nil {
		return err
	}
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opPause, opID: opID, paused: paused})
}

// Presence is the state of each of the tenant's operators connected to
// this instance: "available", "ringing", "busy" or "away".
func (s *Switch) Presence(tenantID sb.ID) map[sb.ID]string {
	out := map[sb.ID]string{}
	for _, p := range s.presence() {
		if p.TenantID == tenantID {
			out[p.OperatorID] = p.State
		}
	}
	return out
}

// toLiveCall hands m to a call in progress in the tenant; another tenant's
// call is as missing as an ended one.
func (s *Switch) toLiveCall(tenantID, callID sb.ID, m opMsg) error {
	s.mu.Lock()
	lc := s.calls[callID]
	s.mu.Unlock()
	if lc == nil || lc.tenantID != tenantID {
		return sb.Errorf(sb.ENOTFOUND, "no call %s in progress", callID)
	}
	select {
	case lc.ops <- m:
		return nil
	default:
		return sb.Errorf(sb.EUNAVAILABLE, "the call is busy; try again")
	}
}

// Disconnected forgets the operator's connection: a call ringing for them
// moves on, a call in progress is hung up.
func (s *Switch) Disconnected(opID sb.ID) {
	s.mu.Lock()
	s.presenceChanged()
	a := s.agents[opID]
	var lc *liveCall
	kind := opGone
	if a != nil {
		if a.state == agentRinging || a.state == agentBusy {
			lc = s.calls[a.callID]
		}
		if a.state == agentBusy && s.reconnectGrace > 0 && lc != nil {
			// The call waits a while for the operator's page to come back.
			a.detached, kind = true, opDetached
		} else {
			delete(s.agents, opID)
		}
	}
	s.mu.Unlock()
	if lc != nil {
		lc.send(opMsg{kind: kind, opID: opID})
	}
}

// WithDialPolicy checks every transfer and forward to a SIP URI against
// the tenant's dial targets.
func WithDialPolicy(p sb.DialPolicy) SwitchOption { return func(s *Switch) { s.dialPolicy = p } }

// WithReconnectGrace keeps a call whose operator's connection drops for
// up to d: the caller hears silence, and the operator's page, connecting
// again, takes the call back (Reattach). Zero ends such a call at once.
func WithReconnectGrace(d time.Duration) SwitchOption {
	return func(s *Switch) { s.reconnectGrace = d }
}

// Reattach gives an operator's new connection the call they were on when
// their last one dropped, or that is still up on a connection that died
// unseen. announce is told the call first (the page shows it), then the
// call is bridged to the new connection's media. It reports whether there
// was a call to take back.
func (s *Switch) Reattach(op sb.OperatorConn, announce func(sb.CallOffer)) bool {
	s.mu.Lock()
	s.presenceChanged()
	a := s.agents[op.OperatorID()]
	if a == nil || a.state != agentBusy || a.conn.TenantID() != op.TenantID() || (!a.detached && a.conn == op) {
		s.mu.Unlock()
		return false
	}
	lc := s.calls[a.callID]
	if lc == nil {
		s.mu.Unlock()
		return false
	}
	// A new agent for the new connection (an agent's connection never
	// changes: the call's goroutine reads it unlocked); the old one is
	// forgotten, and the call takes the new one.
	back := &agent{conn: op, state: agentBusy, callID: a.callID, idleSince: a.idleSince, awayAfter: a.awayAfter,
		toOperator: NewStreamRewriter(op.Media().Codec().ClockRate)} // a new PeerConnection: a new stream
	s.agents[op.OperatorID()] = back
	s.mu.Unlock()
	announce(sb.CallOffer{CallID: lc.id, From: lc.from, To: lc.to, Channel: lc.channel})
	lc.send(opMsg{kind: opReattach, opID: op.OperatorID(), agent: back})
	return true
}

// connectedHere reports whether the operator is connected to this
// instance.
func (s *Switch) connectedHere(opID sb.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.agents[opID]
	return ok
}

// forgetDetached drops an operator whose connection never came back.
func (s *Switch) forgetDetached(a *agent) {
	s.mu.Lock()
	s.presenceChanged()
	if id := a.conn.OperatorID(); s.agents[id] == a && a.detached {
		delete(s.agents, id)
	}
	s.mu.Unlock()
}

func (s *Switch) toCall(opID, callID sb.ID, want agentState, m opMsg) error {
	s.mu.Lock()
	a := s.agents[opID]
	var lc *liveCall
	if a != nil && a.state == want && a.callID == callID {
		lc = s.calls[callID]
	}
	s.mu.Unlock()
	if lc == nil {
		return sb.Errorf(sb.ENOTFOUND, "no such call for this operator")
	}
	lc.send(m)
	return nil
}

// send delivers an operator's action without blocking; the buffer is far
// larger than the handful of actions one call can see.
func (lc *liveCall) send(m opMsg) {
	select {
	case lc.ops <- m:
	default:
	}
}

// Shutdown stops taking calls and waits for the calls in progress to end.
// When ctx is done first, the remaining calls are ended at once.
func (s *Switch) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.presenceChanged()
	s.draining = true
	// Operators not on a call move to an instance that takes calls; the
	// others follow when their call ends (release).
	var idle []sb.OperatorConn
	for _, a := range s.agents {
		if a.state == agentAvailable || a.state == agentAway {
			idle = append(idle, a.conn)
		}
	}
	s.mu.Unlock()
	for _, op := range idle {
		op.Move(drainingReason)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done
		return ctx.Err()
	}
}

// drainingReason is what operators are told when they are moved off a
// draining instance.
const drainingReason = "this instance is shutting down"

// Draining reports whether the switch has stopped taking calls.
func (s *Switch) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Close ends every call now and waits until they are written.
func (s *Switch) Close() error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// release ends an operator's part in a call: whichever connection of
// theirs holds the call now (a reconnect replaces the agent the call
// knew). If away is set (a missed call) the operator is set away. A
// connection that dropped while on the call is forgotten, not made
// available: nobody is there to be offered the next call. It returns the
// connection released, nil when the operator no longer held the call.
func (s *Switch) release(a *agent, callID sb.ID, away bool, reason string) sb.OperatorConn {
	s.mu.Lock()
	s.presenceChanged()
	id := a.conn.OperatorID()
	a = s.agents[id]
	if a == nil || a.callID != callID {
		s.mu.Unlock()
		return nil
	}
	if a.detached {
		delete(s.agents, id)
		s.mu.Unlock()
		return nil
	}
	wasBusy := a.state == agentBusy
	a.callID = sb.ID{}
	if away || a.awayAfter {
		a.state = agentAway
		a.awayAfter = false
	} else {
		a.state = agentAvailable
		if wasBusy {
			a.idleSince = s.now()
		}
	}
	available, draining := a.state == agentAvailable, s.draining
	s.mu.Unlock()
	a.conn.StateChanged(available, reason)
	if draining {
		a.conn.Move(drainingReason)
	} else if available {
		s.offerWaiting(a)
	}
	return a.conn
}

func (s *Switch) markBusy(a *agent, callID sb.ID) bool {
	s.mu.Lock()
	s.presenceChanged()
	defer s.mu.Unlock()
	if s.agents[a.conn.OperatorID()] != a || a.callID != callID || a.state != agentRinging {
		return false
	}
	a.state = agentBusy
	return true
}

func (s *Switch) forget(id sb.ID) {
	s.mu.Lock()
	delete(s.calls, id)
	s.mu.Unlock()
}
