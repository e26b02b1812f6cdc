package callctl

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The phases of a call switchboard places for the caller: a queue's
// overflow to a SIP URI (forward), an operator's blind transfer to a SIP
// URI (dialTransfer), and a hand-over to an operator on another instance
// (handOver). The placed leg rings (dialing), then the two are bridged
// (talkingOut) until one side leaves.

// dialPurpose is why a leg was placed for the caller.
type dialPurpose int

const (
	dialForward  dialPurpose = iota + 1 // a queue's overflow: the caller is answered when the far end is
	dialTransfer                        // an answered caller's transfer to a SIP URI
	dialHop                             // an operator on another instance
)

// allowDial checks a SIP URI's route against the tenant's dial targets:
// a name must be listed and resolve to public addresses (or listed ones),
// an address must be listed. Without a dial policy (tests of other parts)
// every URI may be called.
func (s *Switch) allowDial(ctx context.Context, tenantID sb.ID, route sb.OutboundRoute) error {
	if s.dialPolicy == nil {
		return nil
	}
	targets, err := s.dialPolicy.DialTargets(ctx, tenantID)
	if err != nil {
		return sb.Errorf(sb.EUNAVAILABLE, "the tenant's dial targets cannot be read now")
	}
	host, _, err := net.SplitHostPort(route.Target)
	if err != nil {
		return sb.Errorf(sb.EINVALID, "%q has no host to call", route.Target)
	}
	var addrs []netip.Addr
	switch a, err := netip.ParseAddr(host); {
	case err == nil:
		addrs = []netip.Addr{a}
	case targets.Lists(host):
		// Only a listed name is looked up; none resolved is refused below.
		addrs, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	return targets.Allow(host, addrs)
}

// uriRoute is where a call placed for the caller to uri goes, once it is
// known that one may be: the URI reads, the caller's codec can go there,
// the tenant allows it, and calls can be placed here.
func (r *callRun) uriRoute(ctx context.Context, uri string) (sb.OutboundRoute, string, error) {
	route, user, err := sb.ParseSIPURI(uri)
	if err == nil {
		err = r.dialable()
	}
	if err == nil {
		err = r.s.allowDial(ctx, r.c.TenantID, route)
	}
	if err == nil && r.s.dialer == nil {
		err = sb.Errorf(sb.EUNAVAILABLE, "calls cannot be placed here")
	}
	return route, user, err
}

// logSafe is err as a log may carry it: the URI an error names holds a
// party's number, and logs hold no numbers (masked as on the operator's
// page).
func logSafe(err error) string { return sb.MaskNumber(err.Error()) }

// dialable fails when the caller's audio cannot go onto a leg we place:
// those offer G.711 only, and Opus is carried unchanged or not at all.
func (r *callRun) dialable() error {
	if c := r.leg.Media().Codec(); !c.IsG711() {
		return sb.Errorf(sb.EINVALID, "no common codec: the caller speaks %s and calls we place offer G.711 only", c.Name)
	}
	return nil
}

// forward places a call to uri for a caller not answered yet, who is
// answered once the far end answers. The forwarded call is not recorded:
// the recording's consent was for the tenant's operators.
func (r *callRun) forward(ctx context.Context, uri, why string) phase {
	route, user, err := r.uriRoute(ctx, uri)
	if err != nil {
		r.log.Warn("cannot forward", "err", logSafe(err))
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reject: 480, reason: why + "; forwarding is not possible",
			failLeg: sb.FailedOnService, failStage: sb.StageRouting})
		return nil
	}
	if r.hops == sb.NoHops {
		// The INVITE's Max-Forwards is spent: a forward that leads back
		// here would loop.
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reject: 483, reason: why + "; forwarding would exceed Max-Forwards",
			failLeg: sb.FailedOnTrunk, failStage: sb.StageRouting})
		return nil
	}
	route.MaxForwards = r.forwardHops()
	r.event(sb.EventForwarded, map[string]any{"uri": uri, "reason": why})
	if r.out, err = r.s.dialer.Dial(ctx, route, user); err != nil {
		r.log.Warn("forwarding", "err", logSafe(err))
		r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reject: 480, reason: why + "; forwarding failed",
			failLeg: sb.FailedOnService, failStage: sb.StageRouting})
		return nil
	}
	r.dialFor, r.dialURI, r.forwardWhy = dialForward, uri, why
	return r.dialing
}

// maxForwardHops caps the Max-Forwards of a call placed from another: a
// forward that leads back here costs one hop a turn, so a loop through us
// ends within this many calls, not the caller's 70. A call's real path
// beyond us crosses far fewer proxies.
const maxForwardHops = 10

// forwardHops is the Max-Forwards of a call placed from this one: the
// hops its INVITE left, at most maxForwardHops (0: the default, 70, for a
// call that did not come by SIP, which no loop through us can repeat).
func (r *callRun) forwardHops() int {
	if r.hops == 0 {
		return 0
	}
	return min(r.hops, maxForwardHops)
}

// dialTransfer places a call to uri for an answered caller, who hears
// silence until it is answered.
func (r *callRun) dialTransfer(ctx context.Context, uri string) phase {
	route, user, err := r.uriRoute(ctx, uri)
	if err == nil && r.hops == sb.NoHops {
		err = errors.New("the caller's INVITE left no hop (Max-Forwards) for a call placed from it")
	}
	if err == nil {
		route.MaxForwards = r.forwardHops()
		r.out, err = r.s.dialer.Dial(ctx, route, user)
	}
	if err != nil {
		r.log.Warn("transfer to a SIP URI", "err", logSafe(err))
		r.over(ending{by: sb.PartySystem, reason: "the transfer could not be placed", bye: "the transfer could not be placed"})
		return nil
	}
	r.dialFor, r.dialURI = dialTransfer, uri
	return r.dialing
}

// candidates lists the operators free on other instances who may take
// the call (members only, when members is not empty), without those
// tried; none when the call cannot be handed over.
func (r *callRun) candidates(ctx context.Context, members []sb.ID) []sb.RemoteOperator {
	none := []sb.RemoteOperator{}
	if r.s.cluster == nil || r.s.dialer == nil || r.dialable() != nil {
		return none // an Opus caller stays with this instance's operators
	}
	cctx, cancel := dbContext(ctx)
	cands, err := r.s.cluster.Candidates(cctx, r.c.TenantID, members, slices.Collect(maps.Keys(r.rt.tried)))
	cancel()
	if err != nil {
		r.log.Warn("looking for operators on other instances", "err", err)
		return none
	}
	return append(none, cands...)
}

// handOver offers the call to the next operator free on another
// instance: that instance is called with a hop token naming the call.
func (r *callRun) handOver(ctx context.Context) phase {
	op := r.remote[0]
	r.remote = r.remote[1:]
	r.rt.tried[op.OperatorID] = true
	r.across = op
	r.ringCaller(ctx)
	hop := sb.SealHop(r.s.hopSecret, sb.Hop{CallID: r.c.ID, TenantID: r.c.TenantID, OperatorID: op.OperatorID,
		From: r.c.From, To: r.c.To, Instance: r.s.instance, Expires: time.Now().Add(sb.HopLifetime)})
	r.event(sb.EventHandedOver, map[string]any{"operator_id": op.OperatorID, "instance": op.Instance})
	r.flush(ctx)
	out, err := r.s.dialer.Dial(ctx, sb.OutboundRoute{Target: op.SIPAddr, Transport: "udp", CallerID: r.c.From, Hop: hop, MaxForwards: r.forwardHops()}, r.c.To)
	if err != nil {
		r.log.Warn("handing over", "instance", op.Instance, "err", logSafe(err))
		return r.route
	}
	r.out, r.dialFor = out, dialHop
	return r.dialing
}

// dialing waits for the leg placed for the caller to be answered or to
// fail.
func (r *callRun) dialing(ctx context.Context) phase {
	for {
		ev, ok := r.await(ctx, watch{out: r.out.Events()})
		if !ok {
			return nil
		}
		if ev.kind != evOut {
			continue
		}
		switch ev.leg.Kind {
		case sb.LegRinging, sb.LegEarlyMedia:
			// The party called for the caller rings: so does the caller,
			// if nothing rang them yet (a queue that forwards at once).
			r.ringCaller(ctx)
		case sb.LegAnswered:
			return r.outAnswered
		case sb.LegFailed:
			r.out.Close()
			r.out = nil
			return r.notTaken(ev.leg)
		}
	}
}

// notTaken is what follows when the leg placed for the caller failed.
func (r *callRun) notTaken(ev sb.LegEvent) phase {
	switch r.dialFor {
	case dialHop:
		r.event(sb.EventDeclined, map[string]any{"handed_over": true, "sip_code": ev.Code, "reason": ev.Reason})
		if ev.Code == 486 {
			// Taken by a call there in the meantime: free again later,
			// and worth offering this call again then.
			delete(r.rt.tried, r.across.OperatorID)
		}
		if len(r.remote) > 0 {
			return r.handOver
		}
		return r.route
	case dialTransfer:
		r.event(sb.EventRejected, map[string]any{"transfer": true, "sip_code": ev.Code, "reason": ev.Reason})
		r.over(ending{by: sb.PartySystem, reason: "the transfer was not answered", bye: "the transfer was not answered"})
	default:
		r.event(sb.EventRejected, map[string]any{"forwarded": true, "sip_code": ev.Code, "reason": ev.Reason})
		r.over(ending{by: sb.PartySystem, status: placedStatus(ev.Code), reject: forwardedRefusal(ev.Code), reason: r.forwardWhy + "; the forwarded call was not answered",
			failLeg: sb.FailedOnTrunk, failStage: sb.StageRinging})
	}
	return nil
}

// forwardedRefusal is what the caller hears when the party the call was
// forwarded to did not take it: busy and decline as they said, so the
// caller's side can tell them apart (a PBX plays busy tone, or tries
// elsewhere); anything else is the forwarded party's, not the caller's,
// and is 480.
func forwardedRefusal(code int) int {
	switch code {
	case 486, 600:
		return 486
	case 603:
		return 603
	}
	return 480
}

// outAnswered answers the caller, if they were not yet, and bridges them
// to the leg placed for them. A call handed to an operator on another
// instance is recorded here, as consent allows; a forwarded one is not.
func (r *callRun) outAnswered(ctx context.Context) phase {
	transferred := r.answered()
	if !transferred && !r.answerCaller(ctx) {
		return nil
	}
	r.c.Codec = r.leg.Media().Codec().Name
	r.releaseHold(ctx) // the hold was the operator's who handed the call on
	switch r.dialFor {
	case dialHop:
		opID := r.across.OperatorID
		r.c.OperatorID = &opID
		detail := map[string]any{"operator_id": opID, "instance": r.across.Instance, "codec": r.c.Codec}
		if transferred {
			detail["transfer"] = true
		}
		r.event(sb.EventAnswered, detail)
		r.bridgeOut(ctx, bridgedAcross)
	case dialTransfer:
		r.event(sb.EventAnswered, map[string]any{"transferred_to": r.dialURI})
		r.bridgeOut(ctx, bridgedForwarded)
	default:
		r.event(sb.EventAnswered, map[string]any{"forwarded_to": r.dialURI, "codec": r.c.Codec})
		r.bridgeOut(ctx, bridgedForwarded)
	}
	r.write(ctx, false)
	return r.talkingOut
}

// talkingOut is the caller bridged to a leg placed for them, until either
// side leaves.
func (r *callRun) talkingOut(ctx context.Context) phase {
	for {
		ev, ok := r.await(ctx, watch{out: r.out.Events()})
		if !ok {
			return nil
		}
		expired := ev.leg.Kind == sb.LegSessionExpired
		if ev.kind != evOut || (ev.leg.Kind != sb.LegHungUp && ev.leg.Kind != sb.LegFailed && !expired) {
			continue
		}
		if expired {
			// Its refresh never came (RFC 4028): our BYE goes before the
			// expiry, and the caller is told why.
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			r.out.Hangup(hctx, "session expired")
			cancel()
			r.out.Close()
			r.out = nil
			r.event(sb.EventSessionExpired, map[string]any{"leg": "forwarded", "reason": ev.leg.Reason})
			r.over(ending{by: sb.PartySystem, status: sb.CallFailed, reason: "session expired on the forwarded leg: " + ev.leg.Reason,
				bye: "session expired", failLeg: sb.FailedOnTrunk, failStage: sb.StageMedia})
			return nil
		}
		r.out.Close()
		r.out = nil
		r.event(sb.EventHungUp, map[string]any{"by": sb.PartyForwarded, "reason": ev.leg.Reason})
		if r.dialFor == dialHop {
			r.over(ending{by: sb.PartyOperator, reason: "operator hung up", bye: "the forwarded party hung up"})
			return nil
		}
		r.over(ending{by: sb.PartyForwarded, reason: "the forwarded party hung up", bye: "the forwarded party hung up"})
		return nil
	}
}

// runHop is the first phase of a call another instance handed over for
// one of this instance's operators: that operator is rung, and bridged
// when they answer. The record is the other instance's; this one adds
// its events.
func (r *callRun) runHop(ctx context.Context) phase {
	r.event(sb.EventReceived, map[string]any{"source": r.c.Source, "handed_over_by": r.hop.Instance})
	r.rt.tried = map[sb.ID]bool{}
	a := r.s.reserve(r.c.TenantID, r.hop.OperatorID, r.c.ID)
	if a == nil {
		r.over(ending{by: sb.PartySystem, status: sb.CallBusy, reject: 486, reason: "the operator is no longer free"})
		return nil
	}
	r.onAnswer = r.answer
	r.onMissed = func(context.Context) phase {
		r.over(ending{by: sb.PartySystem, status: sb.CallNoAnswer, reject: 480, reason: "the operator did not answer"})
		return nil
	}
	if err := a.conn.Offer(sb.CallOffer{CallID: r.c.ID, From: r.c.From, To: r.c.To, Channel: r.c.Channel}); err != nil {
		r.s.release(a, r.c.ID, false, "")
		r.over(ending{by: sb.PartySystem, status: sb.CallNoAnswer, reject: 480, reason: "the operator could not be offered the call"})
		return nil
	}
	r.ag = a
	r.event(sb.EventOffered, map[string]any{"operator_id": a.conn.OperatorID()})
	r.ringCaller(ctx)
	return r.ringing
}
