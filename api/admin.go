package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// The admin pages' API: people and roles, keys, trunks, and the audit
// chain's check. The services check the roles.

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.deps.Users.FindUsers(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

// patchUser changes a person's role: {"role": "supervisor"}.
func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "user not found"))
		return
	}
	var in struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	role, err := sb.ParseRole(in.Role)
	if err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.deps.Users.SetUserRole(r.Context(), id, role)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.ops.closeUser(u.ID, "role changed")
	s.writeJSON(w, http.StatusOK, u)
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.deps.APIKeys.FindAPIKeys(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"api_keys": keys})
}

func (s *Server) listTrunks(w http.ResponseWriter, r *http.Request) {
	if s.deps.Trunks == nil {
		s.writeJSON(w, http.StatusOK, map[string]any{"trunks": []any{}})
		return
	}
	trunks, err := s.deps.Trunks.FindTrunks(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"trunks": trunks})
}

// verifyAudit checks the audit chain for a tenant's admin: the button on
// the audit page.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	if s.deps.AuditReader == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "no audit log here"))
		return
	}
	broken, err := s.deps.AuditReader.VerifyAudit(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"whole": broken == 0, "first_broken": broken})
}
