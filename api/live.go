package api

import (
	"net/http"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// Floor is the tenant's operators and queue waiters on this instance;
// *callctl.Switch implements it.
type Floor interface {
	Floor(tenantID sb.ID) sb.Floor
}

// getLive is GET /v1/live, the supervisors' view of the floor, which the
// console polls: the tenant's calls in progress (from the records, so on
// every instance), and the operators connected to this instance with
// where each stands and the callers waiting in its queues' lines, with
// how long each has waited. Supervisors and admins only.
func (s *Server) getLive(w http.ResponseWriter, r *http.Request) {
	a := sb.ActorFromContext(r.Context())
	if a.Role != sb.RoleSupervisor && a.Role != sb.RoleAdmin {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "the live view is for supervisors and admins"))
		return
	}
	calls, err := s.deps.Calls.FindCalls(r.Context(), sb.CallFilter{InProgress: true, Limit: sb.MaxPage})
	if err != nil {
		s.error(w, r, err)
		return
	}
	floor := sb.Floor{Operators: []sb.OperatorPresence{}, Waiting: []sb.QueueWaiter{}}
	if s.deps.Floor != nil {
		floor = s.deps.Floor.Floor(a.TenantID)
	}
	var mentioned []sb.ID
	for _, o := range floor.Operators {
		mentioned = append(mentioned, o.OperatorID)
	}
	for _, q := range floor.Waiting {
		mentioned = append(mentioned, q.QueueID)
	}
	names := s.names(r.Context(), mentioned)
	now := s.conf.Now()
	type operator struct {
		sb.OperatorPresence
		Name string `json:"name,omitempty"`
	}
	type waiter struct {
		sb.QueueWaiter
		QueueName     string  `json:"queue_name,omitempty"`
		WaitedSeconds float64 `json:"waited_seconds"`
	}
	ops := make([]operator, len(floor.Operators))
	for i, o := range floor.Operators {
		ops[i] = operator{OperatorPresence: o, Name: names[o.OperatorID]}
	}
	waiting := make([]waiter, len(floor.Waiting))
	for i, q := range floor.Waiting {
		waiting[i] = waiter{QueueWaiter: q, QueueName: names[q.QueueID], WaitedSeconds: max(0, now.Sub(q.Since).Round(time.Second).Seconds())}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"calls": calls, "operators": ops, "waiting": waiting, "at": now.UTC()})
}
