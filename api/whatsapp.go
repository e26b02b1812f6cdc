package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// WhatsApp in Graph API mode: the tenant's admins connect business phone
// numbers (the service checks the role and audits), Meta posts each
// connection's webhooks to its own URL, and a permission to call can be
// asked of a WhatsApp user.

// WhatsApp is what the HTTP side needs of WhatsApp calling.
type WhatsApp struct {
	Admin sb.WhatsAppAdmin
	// Webhook answers Meta for a connection; *whatsapp.Service's
	// ServeWebhook.
	Webhook func(w http.ResponseWriter, r *http.Request, connectionID sb.ID)
	// RequestPermission sends a user the request to let the business
	// call, once it is checked (who asks, the number and text, the
	// tenant's connection) and budget allows it; budget's error is
	// returned as it is. *whatsapp.Service's.
	RequestPermission func(ctx context.Context, to, text string, budget func() error) error
}

// errPermissionBudget is the tenant's call permission requests spent for
// the minute.
var errPermissionBudget = errors.New("api: the tenant's call permission requests are spent")

// whatsAppWebhookPath is where Meta posts a connection's events.
const whatsAppWebhookPath = "/v1/whatsapp/{id}/webhook"

// whatsAppWebhook is GET (the subscription handshake) and POST (signed
// events) of one connection's webhook: authenticated by the verify token
// and the app secret's signature, never by a cookie.
func (s *Server) whatsAppWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil || s.deps.WhatsApp == nil {
		http.Error(w, "no such connection", http.StatusNotFound)
		return
	}
	s.deps.WhatsApp.Webhook(w, r, id)
}

// postWhatsApp connects a business phone number: {"name", "phone_number_id",
// "number", "app_secret", "access_token", "graph_url"?}; the answer has the
// verify token and the webhook's path to give Meta, shown only now.
func (s *Server) postWhatsApp(w http.ResponseWriter, r *http.Request) {
	if s.deps.WhatsApp == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "WhatsApp calling is not available here"))
		return
	}
	var in struct {
		Name          string `json:"name"`
		PhoneNumberID string `json:"phone_number_id"`
		Number        string `json:"number"`
		GraphURL      string `json:"graph_url"`
		AppSecret     string `json:"app_secret"`
		AccessToken   string `json:"access_token"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	c := &sb.WhatsAppConnection{Name: in.Name, PhoneNumberID: in.PhoneNumberID, Number: in.Number, GraphURL: in.GraphURL}
	verify, err := s.deps.WhatsApp.Admin.CreateWhatsApp(r.Context(), c, in.AppSecret, in.AccessToken)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, map[string]any{"connection": c, "verify_token": verify,
		"webhook_path": "/v1/whatsapp/" + c.ID.String() + "/webhook"})
}

func (s *Server) findWhatsApp(ctx context.Context) ([]*sb.WhatsAppConnection, error) {
	if s.deps.WhatsApp == nil {
		return []*sb.WhatsAppConnection{}, nil
	}
	return s.deps.WhatsApp.Admin.FindWhatsApp(ctx)
}

func (s *Server) deleteWhatsApp(w http.ResponseWriter, r *http.Request) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil || s.deps.WhatsApp == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "WhatsApp connection not found"))
		return
	}
	if err := s.deps.WhatsApp.Admin.DeleteWhatsApp(r.Context(), id); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postWhatsAppPermission asks a WhatsApp user, {"to", "text"}, to let the
// tenant's business call them: a message the business pays for, so a
// tenant sends at most ten a minute (per instance), each audited; a
// request refused before it would be sent does not count.
func (s *Server) postWhatsAppPermission(w http.ResponseWriter, r *http.Request) {
	if s.deps.WhatsApp == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "WhatsApp calling is not available here"))
		return
	}
	var in struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	// The budget is taken only for a request that would be sent: one
	// refused for its sender's role, its input or the tenant's lack of a
	// connection costs nothing, or anyone of the tenant could spend what
	// its admins need.
	budget := func() error {
		if a := sb.ActorFromContext(r.Context()); a != nil && !s.limits.allowPermissionRequest(a.TenantID.String()) {
			return errPermissionBudget
		}
		return nil
	}
	err := s.deps.WhatsApp.RequestPermission(r.Context(), in.To, in.Text, budget)
	if errors.Is(err, errPermissionBudget) {
		w.Header().Set("Retry-After", "6")
		s.writeJSON(w, http.StatusTooManyRequests, errorBody{Code: "rate_limited",
			Message: "too many call permission requests: at most " + strconv.Itoa(permissionBurst) + " a minute for the tenant"})
		return
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
