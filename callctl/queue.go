package callctl

import (
	"slices"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// maxOverflows bounds a call's walk from queue to queue (a loop of
// overflows would otherwise keep a caller waiting for ever).
const maxOverflows = 4

// WithQueues routes calls through the tenants' queues.
func WithQueues(d sb.QueueDirectory) SwitchOption { return func(s *Switch) { s.queues = d } }

// waiter is a call waiting in a queue for a free operator.
type waiter struct {
	callID, tenantID sb.ID
	queue            *sb.Queue
	tried            map[sb.ID]bool // read under the Switch's lock while waiting
	assigned         chan *agent    // the operator reserved for the call
	since            time.Time      // when the caller joined the line
}

// eligible reports whether the operator may be offered the call.
func eligible(a *agent, tenantID sb.ID, q *sb.Queue, tried map[sb.ID]bool) bool {
	id := a.conn.OperatorID()
	return a.conn.TenantID() == tenantID && !tried[id] && q.Takes(id)
}

// pickOrWait reserves the eligible available operator idle the longest;
// when there is none and the caller may wait, it puts the call in line,
// in the same step, so that no operator's freeing is missed.
func (s *Switch) pickOrWait(callID, tenantID sb.ID, q *sb.Queue, tried map[sb.ID]bool, wait bool) (a *agent, busy bool, w *waiter) {
	s.mu.Lock()
	s.presenceChanged()
	defer s.mu.Unlock()
	for _, cand := range s.agents {
		if !eligible(cand, tenantID, q, tried) {
			continue
		}
		switch cand.state {
		case agentAvailable:
			if a == nil || cand.idleSince.Before(a.idleSince) {
				a = cand
			}
		case agentRinging, agentBusy:
			busy = true
		}
	}
	if a != nil {
		a.state, a.callID = agentRinging, callID
		return a, busy, nil
	}
	if wait {
		w = &waiter{callID: callID, tenantID: tenantID, queue: q, tried: tried, assigned: make(chan *agent, 1), since: s.now()}
		s.waiting = append(s.waiting, w)
	}
	return nil, busy, w
}

// offerWaiting gives a newly free operator to the caller who has waited
// longest for one of their queues.
func (s *Switch) offerWaiting(a *agent) {
	s.mu.Lock()
	s.presenceChanged()
	defer s.mu.Unlock()
	if s.agents[a.conn.OperatorID()] != a || a.state != agentAvailable {
		return
	}
	for i, w := range s.waiting {
		if eligible(a, w.tenantID, w.queue, w.tried) {
			s.waiting = slices.Delete(s.waiting, i, i+1)
			a.state, a.callID = agentRinging, w.callID
			w.assigned <- a
			return
		}
	}
}

// unwait takes a call out of line. If an operator was reserved for it in
// the meantime, it returns them, still reserved.
func (s *Switch) unwait(w *waiter) *agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.waiting, w); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
		return nil
	}
	return <-w.assigned // sent under the lock before it left the line
}

// Waiting returns how many callers wait in each of the tenant's queues.
func (s *Switch) Waiting(tenantID sb.ID) map[sb.ID]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[sb.ID]int{}
	for _, w := range s.waiting {
		if w.tenantID == tenantID && w.queue != nil {
			n[w.queue.ID]++
		}
	}
	return n
}

// members are the operators who take the queue's calls; none (or no
// queue) means all of the tenant's.
func queueMembers(q *sb.Queue) []sb.ID {
	if q == nil {
		return nil
	}
	return q.Members
}
