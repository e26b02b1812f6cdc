package api

import (
	"net/http"

	sb "github.com/switchboard-voice/switchboard"
)

// auditFirst audits an action on a call before it is taken, so
// that nothing happens unrecorded: an entry that cannot be written stops
// the action. If the action then fails, a second entry says so.
func (s *Server) auditFirst(r *http.Request, a *sb.Actor, action, resourceType string, id sb.ID, do func() error) error {
	if err := s.auditActor(r, a, action, resourceType, id); err != nil {
		return err
	}
	err := do()
	if err == nil {
		return nil
	}
	// The reason is what the caller is told, never the internal detail
	// (the log has that): admins read the entry through the API.
	e := actorEntry(a, action, resourceType, id)
	e.Outcome, e.Reason = "failed", truncate(sb.ErrorMessage(err), 200)
	if aerr := s.audit(r, e); aerr != nil {
		s.log.Error("auditing a failed action", "action", action, "err", aerr)
	}
	return err
}

// actorEntry is an audit entry of the actor's action on a resource.
func actorEntry(a *sb.Actor, action, resourceType string, id sb.ID) *sb.AuditEntry {
	e := &sb.AuditEntry{TenantID: &a.TenantID, ActorRole: a.Role, Action: action, ResourceType: resourceType, ResourceID: id.String()}
	if a.UserID != (sb.ID{}) {
		e.ActorUserID = &a.UserID
	}
	if a.APIKeyID != (sb.ID{}) {
		e.ActorKeyID = &a.APIKeyID
	}
	return e
}
