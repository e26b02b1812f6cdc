package switchboard

import (
	"context"
	"strings"
	"time"
)

// RouteDirectory says how a tenant's calls go out: its outbound trunks,
// first choice first.
type RouteDirectory interface {
	OutboundRoutes(ctx context.Context, tenantID ID) ([]OutboundRoute, error)
}

// WithDialer lets operators place calls through their tenant's trunks.
func WithDialer(d Dialer, routes RouteDirectory) SwitchOption {
	return func(s *Switch) { s.dialer, s.routes = d, routes }
}

// SetDialer is WithDialer for a dialer made after the Switch (the SIP
// server takes the Switch as its dispatcher). Call it before operators
// connect.
func (s *Switch) SetDialer(d Dialer, routes RouteDirectory) { s.dialer, s.routes = d, routes }

// NormalizeNumber reads a dialled number the way people write it (spaces,
// dashes, dots, brackets; 00 for +) into digits with an optional leading
// +, E.164-style. Anything else is EINVALID.
func NormalizeNumber(s string) (string, error) {
	n := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()/", r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if strings.HasPrefix(n, "00") {
		n = "+" + n[2:]
	}
	digits := strings.TrimPrefix(n, "+")
	if len(digits) < 3 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return "", Errorf(EINVALID, "%q is not a phone number: digits with an optional leading +, 3 to 15 of them", s)
	}
	return n, nil
}

// Dial places a call from an available operator to number through the
// tenant's outbound trunks, trying the next one when a trunk fails (5xx,
// or no answer at all). It returns the call's ID at once; the operator
// hears early media and the answer through their usual call messages.
func (s *Switch) Dial(opID ID, number string) (ID, error) {
	return s.place(nil, opID, number)
}

// Originate is click-to-call for an integration: the tenant's operator is
// rung first, and once they answer the number is dialled. Returns
// ECONFLICT if the operator is not available, ENOTFOUND if they are not
// connected in the tenant.
func (s *Switch) Originate(tenantID, opID ID, number string) (ID, error) {
	return s.place(&tenantID, opID, number)
}

// place starts a call we place for an operator: at once (Dial), or after
// ringing them (Originate, when tenantID is set).
func (s *Switch) place(tenantID *ID, opID ID, number string) (ID, error) {
	if s.dialer == nil {
		return ID{}, Errorf(EUNAVAILABLE, "outbound calls are not configured")
	}
	to, err := NormalizeNumber(number)
	if err != nil {
		return ID{}, err
	}
	c := &Call{ID: NewID(), Direction: Outbound, To: to, Status: CallRinging, CreatedAt: s.now()}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	a := s.agents[opID]
	if a == nil || (tenantID != nil && a.conn.TenantID() != *tenantID) {
		s.mu.Unlock()
		cancel()
		return ID{}, Errorf(ENOTFOUND, "no such operator connected")
	}
	if a.state != agentAvailable || s.draining {
		s.mu.Unlock()
		cancel()
		return ID{}, Errorf(ECONFLICT, "only an available operator, not on a call, places a call")
	}
	a.state, a.callID = agentBusy, c.ID
	if tenantID != nil {
		a.state = agentRinging // until they answer the offer
	}
	c.TenantID, c.OperatorID = a.conn.TenantID(), &opID
	lc := &liveCall{id: c.ID, tenantID: c.TenantID, from: c.To, to: c.To, ops: make(chan opMsg, 16), cancel: cancel}
	s.calls[c.ID] = lc
	s.wg.Add(1)
	s.mu.Unlock()
	r := &callRun{s: s, c: c, lc: lc, ag: a, leg: noLeg{}, log: s.log.With("call_id", c.ID, "direction", "outbound")}
	go func() {
		defer s.wg.Done()
		defer cancel()
		if tenantID != nil && !r.ringOperator(ctx, a) {
			return
		}
		r.runOutbound(ctx, a)
	}()
	return c.ID, nil
}

// ringOperator offers a click-to-call to its operator and reports whether
// they answered; otherwise the call is over.
func (r *callRun) ringOperator(ctx context.Context, a *agent) bool {
	r.create(ctx)
	if err := a.conn.Offer(CallOffer{CallID: r.c.ID, From: r.c.To, To: r.c.To}); err != nil {
		r.s.release(a, r.c.ID, false, "")
		r.c.Status, r.c.Reason = CallFailed, "the operator could not be offered the call"
		r.failed(FailedOnBrowser, StageRinging)
		r.finish(ctx, PartySystem)
		return false
	}
	r.event(EventOffered, map[string]any{"operator_id": a.conn.OperatorID(), "click_to_call": true})
	var declined int
	switch r.ring(ctx, a, &declined) {
	case ringAccepted:
		return true
	case ringOver:
		return false
	}
	r.c.Status, r.c.Reason = CallNoAnswer, "the operator did not take the call"
	r.failed(FailedOnBrowser, StageRinging)
	r.finish(ctx, PartySystem)
	return false
}

// runOutbound tries the tenant's routes in turn until one answers, the
// number refuses, or the operator gives up.
func (r *callRun) runOutbound(ctx context.Context, a *agent) {
	if !r.created {
		r.create(ctx)
	}
	r.event(EventDialing, map[string]any{"operator_id": a.conn.OperatorID()})
	rctx, cancel := dbContext(ctx)
	routes, err := r.s.routes.OutboundRoutes(rctx, r.c.TenantID)
	cancel()
	if err != nil || len(routes) == 0 {
		r.log.Warn("no outbound route", "err", err)
		r.c.Status, r.c.Reason = CallFailed, "the tenant has no outbound trunk"
		r.failed(FailedOnService, StageRouting)
		r.endPlaced(ctx, a, PartySystem)
		return
	}
	for i, route := range routes {
		r.c.TrunkID, r.c.From, r.c.Source = &route.TrunkID, route.CallerID, route.Transport+":"+route.Target
		leg, err := r.s.dialer.Dial(ctx, route, r.c.To)
		if err != nil {
			r.event(EventTrunkFailed, map[string]any{"trunk_id": route.TrunkID, "reason": err.Error()})
			continue
		}
		r.leg, r.c.SIPCallID = placedLeg{leg}, leg.SIPCallID()
		r.update(ctx)
		switch r.placed(ctx, a) {
		case placedAnswered, placedOver:
			return
		}
		// The trunk failed: on to the next, if any.
		if i < len(routes)-1 {
			r.leg.Close()
			r.event(EventTrunkFailed, map[string]any{"trunk_id": route.TrunkID, "sip_code": r.c.SIPCode, "reason": r.c.Reason})
			r.c.SIPCode, r.c.Reason = 0, ""
		}
	}
	r.c.Status = CallFailed
	r.failed(FailedOnTrunk, StageRinging)
	r.endPlaced(ctx, a, PartySystem)
}

type placedOutcome int

const (
	placedAnswered  placedOutcome = iota
	placedOver                    // refused, canceled, or the service stopped: the call is over
	placedTrunkDown               // 5xx or no answer: try the next trunk
)

// placed follows one attempt: ringing, early media (the operator hears it
// at once), the answer, or the end.
func (r *callRun) placed(ctx context.Context, a *agent) placedOutcome {
	var bridge *Bridge
	rang := false
	for {
		select {
		case ev, ok := <-r.leg.Events():
			if !ok {
				ev = LegEvent{Kind: LegFailed, Code: 500, Reason: "the leg closed"}
			}
			switch ev.Kind {
			case LegRinging:
				if !rang {
					rang = true
					r.event(EventRinging, nil)
					r.c.PostDialDelayMS = r.s.now().Sub(r.c.CreatedAt).Milliseconds()
				}
			case LegEarlyMedia:
				r.event(EventEarlyMedia, nil)
				if !rang {
					rang = true
					r.c.PostDialDelayMS = r.s.now().Sub(r.c.CreatedAt).Milliseconds()
				}
				bridge = r.bridgeTo(a)
			case LegAnswered:
				if bridge == nil {
					bridge = r.bridgeTo(a)
				}
				now := r.s.now()
				r.c.Status, r.c.AnsweredAt, r.c.SIPCode = CallAnswered, &now, 200
				r.c.Codec = r.leg.Media().Codec().Name
				r.c.TimeToAnswerMS = now.Sub(r.c.CreatedAt).Milliseconds()
				r.event(EventAnswered, map[string]any{"codec": r.c.Codec})
				r.update(ctx)
				r.flush(ctx)
				r.afterAnswer(ctx, a, bridge)
				return placedAnswered
			case LegFailed:
				if bridge != nil {
					bridge.Stop()
				}
				r.c.SIPCode, r.c.Reason = ev.Code, ev.Reason
				if ev.Code == 408 || ev.Code >= 500 && ev.Code < 600 {
					return placedTrunkDown
				}
				r.c.Status = placedStatus(ev.Code)
				r.event(EventRejected, map[string]any{"sip_code": ev.Code, "reason": ev.Reason})
				r.failed(FailedOnTrunk, StageRinging)
				r.endPlaced(ctx, a, PartyCaller)
				return placedOver
			}
		case m := <-r.lc.ops:
			by, reason := PartyOperator, "operator hung up before the answer"
			if m.kind == opEnd {
				by, reason = PartySystem, endedByAPI
			} else if m.opID != a.conn.OperatorID() || (m.kind != opHangup && m.kind != opGone) {
				continue
			}
			// The operator, or an integration, gives up before the answer:
			// CANCEL.
			if bridge != nil {
				bridge.Stop()
			}
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := r.leg.Hangup(hctx, reason); err != nil {
				r.log.Warn("CANCEL failed", "err", err)
			}
			cancel()
			r.c.Status, r.c.SIPCode, r.c.Reason = CallCanceled, 487, reason
			r.event(EventCanceled, nil)
			r.endPlaced(ctx, a, by)
			return placedOver
		case <-ctx.Done():
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			r.leg.Hangup(hctx, "service shutting down")
			cancel()
			r.c.Status, r.c.Reason = CallFailed, "service shutting down"
			r.failed(FailedOnService, StageRinging)
			r.endPlaced(ctx, a, PartySystem)
			return placedOver
		}
	}
}

// placedStatus is the record's status for the final response of a call
// we placed.
func placedStatus(code int) CallStatus {
	switch code {
	case 486, 600:
		return CallBusy
	case 480, 408:
		return CallNoAnswer
	case 487:
		return CallCanceled
	case 403, 603:
		return CallRejected
	}
	return CallFailed
}

// bridgeTo joins the operator to the leg: early media or the answer.
func (r *callRun) bridgeTo(a *agent) *Bridge {
	r.matchOperator(a)
	b := NewBridge(r.leg.Media(), a.conn.Media(),
		WithRewriters(a.toOperator, NewStreamRewriter(r.leg.Media().Codec().ClockRate)),
		WithBridgeClock(r.s.now))
	b.Start()
	a.conn.Connected(r.c.ID)
	return b
}

// afterAnswer is an answered call we placed, until one side ends it.
func (r *callRun) afterAnswer(ctx context.Context, a *agent, bridge *Bridge) {
	r.dtmf = make(chan dtmfKey, 32)
	by, reason := r.waitEnd(ctx, &a, &bridge)
	bridge.Stop()
	r.addStats(bridge)
	r.sample(bridge)
	if r.c.Status == CallAnswered {
		r.c.Status = CallCompleted
	}
	if r.c.Reason == "" {
		r.c.Reason = reason
	}
	r.endPlaced(ctx, a, by)
}

// endPlaced frees the operator, tells them, and ends the record.
func (r *callRun) endPlaced(ctx context.Context, a *agent, by Party) {
	r.s.release(a, r.c.ID, false, "")
	a.conn.Ended(r.c.ID, r.c.Reason)
	if r.leg == nil {
		r.leg = placedLeg{}
	}
	r.finish(ctx, by)
}

// placedLeg lets call control drive a call we placed with the code it
// drives inbound legs with.
type placedLeg struct{ OutboundLeg }

func (l placedLeg) Ring(context.Context) error   { return nil }
func (l placedLeg) Answer(context.Context) error { return nil }
func (l placedLeg) Reject(ctx context.Context, _ int, reason string) error {
	return l.Hangup(ctx, reason)
}

// A placed leg that never existed (no route) has nothing to close.
func (l placedLeg) Close() error {
	if l.OutboundLeg == nil {
		return nil
	}
	return l.OutboundLeg.Close()
}

func (l placedLeg) SIPTrace() []SIPMessage {
	if l.OutboundLeg == nil {
		return nil
	}
	return l.OutboundLeg.SIPTrace()
}

// noLeg stands in for the SIP leg of a call not dialled yet: nothing
// happens on it.
type noLeg struct{}

func (noLeg) Ring(context.Context) error                { return nil }
func (noLeg) Answer(context.Context) error              { return nil }
func (noLeg) Reject(context.Context, int, string) error { return nil }
func (noLeg) Hangup(context.Context, string) error      { return nil }
func (noLeg) Hold(context.Context, bool) error          { return nil }
func (noLeg) Events() <-chan LegEvent                   { return nil }
func (noLeg) Media() MediaPort                          { return nil }
func (noLeg) Close() error                              { return nil }
func (noLeg) SIPTrace() []SIPMessage                    { return nil }
