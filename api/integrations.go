package api

import (
	"context"
	"net/http"

	sb "github.com/switchboard-voice/switchboard"
)

// patchCall attaches a call's reference in another system and its labels:
// {"external_ref": "CRM-1234", "labels": ["vip"]}.
func (s *Server) patchCall(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	if s.deps.References == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "call not found"))
		return
	}
	var in struct {
		ExternalRef *string  `json:"external_ref"`
		Labels      []string `json:"labels"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	c, err := s.deps.Calls.FindCallByID(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ref, labels := c.ExternalRef, c.Labels
	if in.ExternalRef != nil {
		ref = *in.ExternalRef
	}
	if in.Labels != nil {
		labels = in.Labels
	}
	if c, err = s.deps.References.SetCallReference(r.Context(), id, ref, labels); err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, c)
}

// hangupCall ends a call in progress for an integration or a supervisor:
// a ringing call is refused, an answered one hung up, one being placed
// canceled.
func (s *Server) hangupCall(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	a := sb.ActorFromContext(r.Context())
	if a.Role != sb.RoleSupervisor && a.Role != sb.RoleAdmin {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "calls are ended through the API by integrations, supervisors and admins"))
		return
	}
	if _, err := s.deps.Calls.FindCallByID(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	if s.deps.Ender == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "calls cannot be ended here"))
		return
	}
	err := s.auditFirst(r, a, "call.hangup", "call", id, func() error {
		err := s.deps.Ender.EndCall(a.TenantID, id)
		if sb.ErrorCode(err) == sb.ENOTFOUND {
			err = sb.Errorf(sb.ECONFLICT, "the call is not in progress")
		}
		return err
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusAccepted, map[string]string{"status": "ending"})
}

// postCall is click-to-call: {"operator_id": "...", "number": "+4930..."}
// rings the operator, and dials the number once they answer. For
// integrations, supervisors and admins.
func (s *Server) postCall(w http.ResponseWriter, r *http.Request) {
	a := sb.ActorFromContext(r.Context())
	if a.Role != sb.RoleSupervisor && a.Role != sb.RoleAdmin {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "calls are placed through the API by integrations, supervisors and admins"))
		return
	}
	var in struct {
		OperatorID sb.ID  `json:"operator_id"`
		Number     string `json:"number"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	// A number written wrongly is refused before anything is audited: the
	// refusal quotes it, and the audit log, which no erasure reaches,
	// holds no number.
	if _, _, err := sb.DialTarget(in.Number); err != nil {
		s.error(w, r, err)
		return
	}
	if s.deps.Originator == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "calls cannot be placed here"))
		return
	}
	// The call has no ID before it is placed: the entry names the operator
	// it rings first, and the call's record names the operator too.
	var id sb.ID
	err := s.auditFirst(r, a, "call.originate", "operator", in.OperatorID, func() (err error) {
		id, err = s.deps.Originator.Originate(a.TenantID, in.OperatorID, in.Number)
		return err
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, map[string]sb.ID{"call_id": id})
}

// transferTarget reads where a transfer goes: one of an operator's ID, a
// queue's ID or a SIP URI.
func transferTarget(op, queue, uri string) (sb.TransferTarget, error) {
	var t sb.TransferTarget
	for _, f := range []struct {
		name, value string
		dst         **sb.ID
	}{{"operator_id", op, &t.OperatorID}, {"queue_id", queue, &t.QueueID}} {
		if f.value == "" {
			continue
		}
		id, err := sb.ParseID(f.value)
		if err != nil {
			return t, sb.Errorf(sb.EINVALID, "%s %q is not an id", f.name, truncate(f.value, 64))
		}
		*f.dst = &id
	}
	t.URI = uri
	return t, t.Validate()
}

// transferCall is POST /v1/calls/{id}/transfer: an integration, a
// supervisor or an admin hands an answered call on (blind) to an operator,
// a queue or a SIP URI: {"operator_id": ...} | {"queue_id": ...} | {"uri": "sip:..."}.
// A queue not the tenant's is not found before anything is audited.
func (s *Server) transferCall(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	a := sb.ActorFromContext(r.Context())
	if a.Role != sb.RoleSupervisor && a.Role != sb.RoleAdmin {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "calls are transferred through the API by integrations, supervisors and admins"))
		return
	}
	var in struct {
		OperatorID string `json:"operator_id"`
		QueueID    string `json:"queue_id"`
		URI        string `json:"uri"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	t, err := transferTarget(in.OperatorID, in.QueueID, in.URI)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := s.deps.Calls.FindCallByID(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	if t.QueueID != nil {
		if err := s.tenantQueue(r.Context(), *t.QueueID); err != nil {
			s.error(w, r, err)
			return
		}
	}
	if s.deps.Ender == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "calls cannot be transferred here"))
		return
	}
	if err := s.auditFirst(r, a, "call.transfer", "call", id, func() error { return s.deps.Ender.TransferByAPI(a.TenantID, id, t) }); err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusAccepted, map[string]string{"status": "transferring"})
}

// tenantQueue returns ENOTFOUND unless id is one of the actor's tenant's
// queues. Call control takes a transfer's queue as given, and one it
// cannot read in the call's tenant leaves the call to any operator: the
// transfer would be accepted, and go elsewhere.
func (s *Server) tenantQueue(ctx context.Context, id sb.ID) error {
	if s.deps.Resources == nil || s.deps.Resources.Queues == nil {
		return sb.Errorf(sb.ENOTFOUND, "queue not found")
	}
	_, err := s.deps.Resources.Queues.QueueByID(ctx, id)
	return err
}
