package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// The tenant's webhooks, for its admins (the service checks the role).

// postWebhook registers {"url": "...", "events": ["call.ended", ...]} and
// returns the signing secret, shown only now.
func (s *Server) postWebhook(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "webhooks are not available here"))
		return
	}
	var in struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	h, secret, err := s.deps.Webhooks.CreateWebhook(r.Context(), in.URL, in.Events)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, map[string]any{"webhook": h, "secret": secret})
}

func (s *Server) webhookID(w http.ResponseWriter, r *http.Request) (sb.ID, bool) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil || s.deps.Webhooks == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "webhook not found"))
		return sb.ID{}, false
	}
	return id, true
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := s.webhookID(w, r)
	if !ok {
		return
	}
	if err := s.deps.Webhooks.DeleteWebhook(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listDeliveries is a webhook's latest deliveries, each with its attempts
// and the receiver's last answer.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	id, ok := s.webhookID(w, r)
	if !ok {
		return
	}
	d, err := s.deps.Webhooks.FindDeliveries(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"deliveries": d})
}

// postWebhookSecret adds a second signing secret, shown only now; both
// sign every delivery until the old one is retired.
func (s *Server) postWebhookSecret(w http.ResponseWriter, r *http.Request) {
	id, ok := s.webhookID(w, r)
	if !ok {
		return
	}
	secret, err := s.deps.Webhooks.AddWebhookSecret(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, map[string]string{"secret": secret})
}

// retireWebhookSecret drops the old secret: the new one signs alone.
func (s *Server) retireWebhookSecret(w http.ResponseWriter, r *http.Request) {
	id, ok := s.webhookID(w, r)
	if !ok {
		return
	}
	if err := s.deps.Webhooks.RetireWebhookSecret(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) findWebhooks(ctx context.Context) ([]*sb.Webhook, error) {
	if s.deps.Webhooks == nil {
		return []*sb.Webhook{}, nil
	}
	return s.deps.Webhooks.FindWebhooks(ctx)
}
