package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// API keys: listed (never their secrets), made (the secret shown once) and
// revoked. Keys are looked up in the database on every request, so a
// revoked or expired key is refused at its next request on every instance.

func apiKeyID(k *sb.APIKey) sb.ID { return k.ID }

// postAPIKey makes a key: {"role", "label", "expires_at"}.
func (s *Server) postAPIKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Role      sb.Role    `json:"role"`
		Label     string     `json:"label"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	k, secret, err := s.deps.APIKeys.IssueAPIKey(r.Context(), sb.APIKeyRequest{Role: in.Role, Label: in.Label, ExpiresAt: in.ExpiresAt})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, map[string]any{"api_key": k, "secret": secret})
}

// deleteAPIKey revokes a key.
func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "api key not found"))
		return
	}
	if err := s.deps.APIKeys.RevokeAPIKey(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
