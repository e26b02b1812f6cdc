package switchboard

import (
	"context"
	"time"
)

// TransferTarget is where an answered call is handed on (blind transfer):
// one operator, a queue, or a SIP URI. Exactly one is set.
type TransferTarget struct {
	OperatorID *ID    `json:"operator_id,omitempty"`
	QueueID    *ID    `json:"queue_id,omitempty"`
	URI        string `json:"uri,omitempty"` // sip:user@host[:port][;transport=tcp]
}

// Validate checks that the target names one place.
func (t TransferTarget) Validate() error {
	n := 0
	if t.OperatorID != nil {
		n++
	}
	if t.QueueID != nil {
		n++
	}
	if t.URI != "" {
		n++
		if _, _, err := ParseSIPURI(t.URI); err != nil {
			return err
		}
	}
	if n != 1 {
		return Errorf(EINVALID, "a transfer names one of operator_id, queue_id or uri")
	}
	return nil
}

func (t TransferTarget) detail(from ID) map[string]any {
	d := map[string]any{"from_operator_id": from}
	switch {
	case t.OperatorID != nil:
		d["to_operator_id"] = *t.OperatorID
	case t.QueueID != nil:
		d["to_queue_id"] = *t.QueueID
	default:
		d["to_uri"] = t.URI
	}
	return d
}

// TransferCall hands the operator's answered call to t. Returns ENOTFOUND
// if the operator is not on that call or the operator named is not
// connected in the tenant, EINVALID for a bad target.
func (s *Switch) TransferCall(opID, callID ID, t TransferTarget) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.OperatorID != nil {
		return s.Transfer(opID, callID, *t.OperatorID)
	}
	if t.URI != "" && s.dialer == nil {
		return Errorf(EUNAVAILABLE, "calls cannot be placed here")
	}
	return s.toCall(opID, callID, agentBusy, opMsg{kind: opTransfer, opID: opID, transfer: &t})
}

// TransferByAPI is TransferCall for an integration: the call is the
// tenant's, answered by an operator. Returns ECONFLICT if it is not
// answered by one.
func (s *Switch) TransferByAPI(tenantID, callID ID, t TransferTarget) error {
	s.mu.Lock()
	var opID *ID
	for id, a := range s.agents {
		if a.callID == callID && a.state == agentBusy && a.conn.TenantID() == tenantID {
			opID = &id
			break
		}
	}
	s.mu.Unlock()
	if opID == nil {
		return Errorf(ECONFLICT, "the call is not in progress with an operator")
	}
	return s.TransferCall(*opID, callID, t)
}

// transferQueue is the queue an answered call is transferred into, and
// how long the caller may wait in it; none when the transfer is not to a
// queue, or the queue cannot be read (then any operator takes it).
func (r *callRun) transferQueue(ctx context.Context) (*Queue, time.Time) {
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
	r.event(EventQueued, map[string]any{"queue_id": q.ID, "queue": q.Name, "transfer": true})
	return q, r.s.now().Add(q.MaxWait)
}

// refer asks the caller's side to call uri itself (REFER), when it takes
// REFER; once the target answered, switchboard leaves the call and it is
// over. It reports false when the caller is still ours to transfer.
func (r *callRun) refer(ctx context.Context, uri string) bool {
	rl, ok := r.leg.(Referrer)
	if !ok {
		return false
	}
	if err := rl.Refer(ctx, uri); err != nil {
		r.log.Info("REFER not used; bridging the transfer", "err", err)
		return false
	}
	r.event(EventReferred, map[string]any{"uri": uri})
	r.c.Reason = "transferred by REFER"
	r.hangup(ctx, "transferred")
	r.finish(ctx, PartySystem)
	return true
}

// transferOut hands an answered caller to a SIP URI: switchboard places
// the call and bridges the two once it is answered (the caller hears
// silence meanwhile); if it is not, the caller is hung up on with the
// reason.
func (r *callRun) transferOut(ctx context.Context, uri string) {
	route, user, err := ParseSIPURI(uri)
	if err == nil {
		err = r.dialable()
	}
	if err != nil || r.s.dialer == nil {
		r.log.Warn("transfer to a SIP URI", "err", err)
		r.hangup(ctx, "the transfer could not be placed")
		r.finish(ctx, PartySystem)
		return
	}
	out, err := r.s.dialer.Dial(ctx, route, user)
	if err != nil {
		r.log.Warn("transfer to a SIP URI", "err", err)
		r.hangup(ctx, "the transfer could not be placed")
		r.finish(ctx, PartySystem)
		return
	}
	defer out.Close()
	for answered := false; !answered; {
		select {
		case ev, ok := <-out.Events():
			if !ok {
				ev = LegEvent{Kind: LegFailed, Code: 500, Reason: "the leg closed"}
			}
			switch ev.Kind {
			case LegAnswered:
				answered = true
			case LegFailed:
				r.event(EventRejected, map[string]any{"transfer": true, "sip_code": ev.Code, "reason": ev.Reason})
				r.hangup(ctx, "the transfer was not answered")
				r.finish(ctx, PartySystem)
				return
			}
		case ev, ok := <-r.leg.Events():
			if !ok || ev.Kind == LegHungUp {
				out.Hangup(ctx, "the caller hung up")
				r.event(EventHungUp, map[string]any{"by": PartyCaller, "reason": ev.Reason})
				r.c.Reason = "caller hung up during the transfer"
				r.finish(ctx, PartyCaller)
				return
			}
		case m := <-r.lc.ops:
			if m.kind == opEnd {
				out.Hangup(ctx, endedByAPI)
				r.hangup(ctx, endedByAPI)
				r.finish(ctx, PartySystem)
				return
			}
		case <-ctx.Done():
			hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out.Hangup(hctx, "service shutting down")
			r.hangup(hctx, "service shutting down")
			cancel()
			r.finish(ctx, PartySystem)
			return
		}
	}
	b := NewBridge(r.leg.Media(), out.Media())
	b.Start()
	r.event(EventAnswered, map[string]any{"transferred_to": uri})
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
