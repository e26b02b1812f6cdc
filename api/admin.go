package api

import (
	"context"
	"net/http"

	sb "github.com/switchboard-voice/switchboard"
)

// The admin pages' API: people and roles, keys, trunks, and the audit
// chain's check. The services check the roles.

// trunkView is a trunk as its admins see it, with where its outbound
// registration stands.
type trunkView struct {
	*sb.Trunk
	Registration *sb.Registration `json:"registration,omitempty"`
}

// findTrunks lists the tenant's trunks, where a trunk service is wired.
func (s *Server) findTrunks(ctx context.Context) ([]trunkView, error) {
	if s.deps.Trunks == nil {
		return []trunkView{}, nil
	}
	trunks, err := s.deps.Trunks.FindTrunks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]trunkView, len(trunks))
	for i, t := range trunks {
		out[i].Trunk = t
		if s.deps.Registrations != nil {
			if r, ok := s.deps.Registrations.RegistrationState(t.ID); ok {
				out[i].Registration = &r
			}
		}
	}
	return out, nil
}

// verifyAudit checks the audit chain for a tenant's admin: the button on
// the audit page.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	if s.deps.AuditReader == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "no audit log here"))
		return
	}
	whole, broken, err := s.deps.AuditReader.VerifyAudit(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"whole": whole, "first_broken": broken})
}

// Queues lists a tenant's queues and how many callers wait in each.
type Queues struct {
	// Find is the actor's tenant's queues (supervisors and admins).
	Find func(ctx context.Context) ([]*sb.Queue, error)
	// Waiting counts the callers in line, by queue; the Switch's.
	Waiting func(tenantID sb.ID) map[sb.ID]int
}

// queueView is a queue as the API shows it.
type queueView struct {
	*sb.Queue
	MaxWaitSeconds float64 `json:"max_wait_seconds"`
	Waiting        int     `json:"waiting"` // callers in line now, on this instance
}

// viewOf shows q with waiting, the tenant's callers in line by queue.
func viewOf(q *sb.Queue, waiting map[sb.ID]int) queueView {
	if q.Members == nil {
		q.Members = []sb.ID{}
	}
	return queueView{Queue: q, MaxWaitSeconds: q.MaxWait.Seconds(), Waiting: waiting[q.ID]}
}

// waiting counts the tenant's callers in line, by queue.
func (s *Server) waiting(tenantID sb.ID) map[sb.ID]int {
	if s.deps.Queues == nil || s.deps.Queues.Waiting == nil {
		return nil
	}
	return s.deps.Queues.Waiting(tenantID)
}

// queueView shows one queue, or passes on err.
func (s *Server) queueView(q *sb.Queue, err error) (queueView, error) {
	if err != nil {
		return queueView{}, err
	}
	return viewOf(q, s.waiting(q.TenantID)), nil
}

func (s *Server) findQueues(ctx context.Context) ([]queueView, error) {
	if s.deps.Queues == nil {
		return []queueView{}, nil
	}
	qs, err := s.deps.Queues.Find(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]queueView, len(qs))
	var waiting map[sb.ID]int
	if len(qs) > 0 {
		waiting = s.waiting(qs[0].TenantID)
	}
	for i, q := range qs {
		out[i] = viewOf(q, waiting)
	}
	return out, nil
}
