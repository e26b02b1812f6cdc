package callctl

import (
	"context"

	sb "github.com/switchboard-voice/switchboard"
)

// WithDialer lets operators place calls through their tenant's trunks.
func WithDialer(d sb.Dialer, routes sb.RouteDirectory) SwitchOption {
	return func(s *Switch) { s.dialer, s.routes = d, routes }
}

// SetMessenger lets operators and integrations place calls to messenger
// users ("whatsapp:+..."). Call it before operators connect.
func (s *Switch) SetMessenger(d sb.MessengerDialer) { s.messenger = d }

// SetDialer is WithDialer for a dialer made after the Switch (the SIP
// server takes the Switch as its dispatcher). Call it before operators
// connect.
func (s *Switch) SetDialer(d sb.Dialer, routes sb.RouteDirectory) { s.dialer, s.routes = d, routes }

// Dial places a call from an available operator to number through the
// tenant's outbound trunks (or, for "whatsapp:" and a number, to that
// WhatsApp user through the tenant's connection), trying the next one when a trunk fails (5xx,
// or no answer at all). It returns the call's ID at once; the operator
// hears early media and the answer through their usual call messages.
func (s *Switch) Dial(opID sb.ID, number string) (sb.ID, error) {
	return s.place(nil, opID, number)
}

// Originate is click-to-call for an integration: the tenant's operator is
// rung first, and once they answer the number is dialled. Returns
// ECONFLICT if the operator is not available, ENOTFOUND if they are not
// connected in the tenant.
func (s *Switch) Originate(tenantID, opID sb.ID, number string) (sb.ID, error) {
	return s.place(&tenantID, opID, number)
}

// place starts a call we place for an operator: at once (Dial), or after
// ringing them (Originate, when tenantID is set).
func (s *Switch) place(tenantID *sb.ID, opID sb.ID, number string) (sb.ID, error) {
	channel, to, err := sb.DialTarget(number)
	if err != nil {
		return sb.ID{}, err
	}
	if channel == "" && s.dialer == nil || channel != "" && s.messenger == nil {
		return sb.ID{}, sb.Errorf(sb.EUNAVAILABLE, "outbound calls are not configured")
	}
	c := &sb.Call{ID: sb.NewID(), Direction: sb.Outbound, To: to, Channel: channel, Status: sb.CallRinging, CreatedAt: s.now()}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	a := s.agents[opID]
	if a == nil || (tenantID != nil && a.conn.TenantID() != *tenantID) {
		s.mu.Unlock()
		cancel()
		return sb.ID{}, sb.Errorf(sb.ENOTFOUND, "no such operator connected")
	}
	if a.state != agentAvailable || s.draining {
		s.mu.Unlock()
		cancel()
		return sb.ID{}, sb.Errorf(sb.ECONFLICT, "only an available operator, not on a call, places a call")
	}
	a.state, a.callID = agentBusy, c.ID
	if tenantID != nil {
		a.state = agentRinging // until they answer the offer
	}
	c.TenantID, c.OperatorID = a.conn.TenantID(), &opID
	lc := &liveCall{id: c.ID, tenantID: c.TenantID, from: c.To, to: c.To, channel: channel, ops: make(chan opMsg, 16), cancel: cancel}
	s.calls[c.ID] = lc
	s.wg.Add(1)
	s.mu.Unlock()
	r := s.newRun(c, lc, s.log.With("call_id", c.ID, "direction", "outbound"))
	r.ag, r.busy = a, tenantID == nil
	first := r.dial
	if tenantID != nil {
		first = r.ringOperator
	}
	go func() {
		defer s.wg.Done()
		defer cancel()
		r.run(ctx, first)
	}()
	return c.ID, nil
}

// ringOperator offers a click-to-call to its operator; the number is
// dialled once they take it.
func (r *callRun) ringOperator(ctx context.Context) phase {
	r.create(ctx)
	r.rt.tried = map[sb.ID]bool{}
	r.onAnswer = r.dial
	r.onMissed = func(context.Context) phase {
		r.over(ending{by: sb.PartySystem, status: sb.CallNoAnswer, reason: "the operator did not take the call",
			failLeg: sb.FailedOnBrowser, failStage: sb.StageRinging})
		return nil
	}
	if err := r.ag.conn.Offer(sb.CallOffer{CallID: r.c.ID, From: r.c.To, To: r.c.To, Channel: r.c.Channel}); err != nil {
		r.s.release(r.ag, r.c.ID, false, "")
		r.ag = nil
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "the operator could not be offered the call",
			failLeg: sb.FailedOnBrowser, failStage: sb.StageRinging})
		return nil
	}
	r.event(sb.EventOffered, map[string]any{"operator_id": r.ag.conn.OperatorID(), "click_to_call": true})
	return r.ringing
}

// dial looks up the tenant's outbound routes, first choice first.
func (r *callRun) dial(ctx context.Context) phase {
	if r.c.Channel != "" {
		return r.dialMessenger
	}
	r.create(ctx)
	r.event(sb.EventDialing, map[string]any{"operator_id": r.ag.conn.OperatorID()})
	rctx, cancel := dbContext(ctx)
	routes, err := r.s.routes.OutboundRoutes(rctx, r.c.TenantID)
	cancel()
	if err != nil || len(routes) == 0 {
		r.log.Warn("no outbound route", "err", err)
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "the tenant has no outbound trunk",
			failLeg: sb.FailedOnService, failStage: sb.StageRouting})
		return nil
	}
	r.routes, r.routeAt = routes, 0
	return r.tryTrunk
}

// tryTrunk places the call through the next route that takes it.
func (r *callRun) tryTrunk(ctx context.Context) phase {
	for ; r.routeAt < len(r.routes); r.routeAt++ {
		if ctx.Err() != nil {
			r.shutdown()
			return nil
		}
		route := r.routes[r.routeAt]
		// Opus is offered only to be carried unchanged to this operator.
		route.Opus = canCarry(r.ag.conn.Media(), sb.Opus)
		r.c.TrunkID, r.c.From, r.c.Source = &route.TrunkID, route.CallerID, route.Transport+":"+route.Target
		leg, err := r.s.dialer.Dial(ctx, route, r.c.To)
		if err != nil {
			r.event(sb.EventTrunkFailed, map[string]any{"trunk_id": route.TrunkID, "reason": err.Error()})
			continue
		}
		r.leg, r.c.SIPCallID = leg, leg.SIPCallID()
		r.update(ctx)
		return r.placing
	}
	r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: r.c.Reason, failLeg: sb.FailedOnTrunk, failStage: sb.StageRinging})
	return nil
}

// placing follows one attempt: ringing, early media (the operator hears it
// at once), the answer, or the end. A trunk that fails (5xx, or no answer
// at all) hands the call to the next.
func (r *callRun) placing(ctx context.Context) phase {
	for {
		ev, ok := r.await(ctx, watch{})
		if !ok {
			return nil
		}
		if ev.kind == evOperator {
			if m := ev.op; m.kind == opHangup || m.kind == opGone || m.kind == opDetached {
				// The operator gives up, or their page is gone, before the
				// answer: CANCEL. Nobody would hear the answer.
				r.event(sb.EventCanceled, nil)
				r.over(ending{by: sb.PartyOperator, status: sb.CallCanceled, code: 487, reason: "operator hung up before the answer",
					bye: "operator hung up before the answer"})
				return nil
			}
			continue
		}
		switch ev.leg.Kind {
		case sb.LegRinging:
			if !r.rang {
				r.rang = true
				r.event(sb.EventRinging, nil)
				r.c.PostDialDelayMS = r.s.now().Sub(r.c.CreatedAt).Milliseconds()
			}
		case sb.LegEarlyMedia:
			r.event(sb.EventEarlyMedia, nil)
			if !r.rang {
				r.rang = true
				r.c.PostDialDelayMS = r.s.now().Sub(r.c.CreatedAt).Milliseconds()
			}
			if r.bridge == nil {
				r.bridgeOperator(ctx, r.ag)
			}
		case sb.LegAnswered:
			now := r.s.now()
			r.c.Status, r.c.AnsweredAt, r.c.SIPCode = sb.CallAnswered, &now, 200
			r.c.Codec = r.leg.Media().Codec().Name
			r.c.TimeToAnswerMS = now.Sub(r.c.CreatedAt).Milliseconds()
			r.event(sb.EventAnswered, map[string]any{"codec": r.c.Codec})
			if r.bridge == nil {
				r.bridgeOperator(ctx, r.ag)
			} else {
				// Bridged for early media: the recording starts now, and the
				// page, told "not recorded" then, hears that it does.
				r.record(ctx)
				r.showRecording()
			}
			r.write(ctx, false)
			return r.talking
		case sb.LegFailed:
			r.unbridge()
			r.c.SIPCode, r.c.Reason = ev.leg.Code, ev.leg.Reason
			if (ev.leg.Code == 408 || ev.leg.Code >= 500 && ev.leg.Code < 600) && r.routeAt < len(r.routes)-1 {
				r.event(sb.EventTrunkFailed, map[string]any{"trunk_id": r.routes[r.routeAt].TrunkID, "sip_code": ev.leg.Code, "reason": ev.leg.Reason})
				r.leg.Close()
				r.leg, r.rang = nil, false
				r.c.SIPCode, r.c.Reason = 0, ""
				r.routeAt++
				return r.tryTrunk
			}
			if ev.leg.Code == 408 || ev.leg.Code >= 500 && ev.leg.Code < 600 {
				r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: ev.leg.Reason, failLeg: sb.FailedOnTrunk, failStage: sb.StageRinging})
				return nil
			}
			r.event(sb.EventRejected, map[string]any{"sip_code": ev.leg.Code, "reason": ev.leg.Reason})
			r.over(ending{by: sb.PartyCaller, status: placedStatus(ev.leg.Code), reason: ev.leg.Reason, failLeg: sb.FailedOnTrunk, failStage: sb.StageRinging})
			return nil
		}
	}
}

// placedStatus is the record's status for the final response of a call
// we placed.
func placedStatus(code int) sb.CallStatus {
	switch code {
	case 486, 600:
		return sb.CallBusy
	case 480, 408:
		return sb.CallNoAnswer
	case 487:
		return sb.CallCanceled
	case 403, 603:
		return sb.CallRejected
	}
	return sb.CallFailed
}
