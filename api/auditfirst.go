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

// auditAfter takes an action that only lessens what is kept of a caller
// (a recording paused, consent withdrawn or refused) and audits it after:
// whatever the audit log's state, someone who asked not to be recorded is
// not recorded on. An entry that cannot be written is logged; an action
// that failed is audited as failed.
func (s *Server) auditAfter(r *http.Request, a *sb.Actor, action, resourceType string, id sb.ID, do func() error) error {
	err := do()
	e := actorEntry(a, action, resourceType, id)
	if err != nil {
		e.Outcome, e.Reason = "failed", truncate(sb.ErrorMessage(err), 200)
	}
	if aerr := s.audit(r, e); aerr != nil {
		s.log.Error("auditing an action taken", "action", action, "err", aerr)
	}
	return err
}

// auditRecordingChange audits a change of what is recorded of a caller:
// first when it records more (consent given, a recording resumed), so
// that nothing more is kept unaudited; after when it records less.
func (s *Server) auditRecordingChange(r *http.Request, a *sb.Actor, action string, lessens bool, id sb.ID, do func() error) error {
	if lessens {
		return s.auditAfter(r, a, action, "call", id, do)
	}
	return s.auditFirst(r, a, action, "call", id, do)
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
