package callctl

import (
	"bytes"
	"slices"

	sb "github.com/switchboard-voice/switchboard"
)

// Floor is what the tenant's supervisors watch live on this instance: its
// connected operators and where each stands, and the callers waiting in
// its queues' lines, longest waiting first.
func (s *Switch) Floor(tenantID sb.ID) sb.Floor {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := sb.Floor{Operators: []sb.OperatorPresence{}, Waiting: []sb.QueueWaiter{}}
	for id, a := range s.agents {
		if a.conn.TenantID() != tenantID {
			continue
		}
		p := sb.OperatorPresence{OperatorID: id, State: a.state.String(), Reconnecting: a.detached}
		if a.state == agentAvailable {
			p.Since = a.idleSince
		}
		if a.state == agentRinging || a.state == agentBusy {
			callID := a.callID
			p.CallID = &callID
		}
		f.Operators = append(f.Operators, p)
	}
	slices.SortFunc(f.Operators, func(a, b sb.OperatorPresence) int { return bytes.Compare(a.OperatorID[:], b.OperatorID[:]) })
	for _, w := range s.waiting {
		if w.tenantID == tenantID && w.queue != nil {
			f.Waiting = append(f.Waiting, sb.QueueWaiter{CallID: w.callID, QueueID: w.queue.ID, Since: w.since})
		}
	}
	return f
}

// String names the state as pages and the cluster's presence do.
func (st agentState) String() string {
	switch st {
	case agentAvailable:
		return "available"
	case agentRinging:
		return "ringing"
	case agentBusy:
		return "busy"
	}
	return "away"
}
