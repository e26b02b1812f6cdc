package api

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// What a tenant's admins create, change and delete besides people and
// keys: trunks, their outbound routes, queues, webhooks, and the numbers
// view. The services check the role and the tenant, and audit every
// change in its transaction, naming who and from where.

// Resources are the admin services behind these routes.
type Resources struct {
	Trunks sb.TrunkAdmin
	Queues sb.QueueAdmin
}

// resourceID reads {id}; a malformed one is a resource not found.
func (s *Server) resourceID(w http.ResponseWriter, r *http.Request, what string) (sb.ID, bool) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil || s.deps.Resources == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "%s not found", what))
		return sb.ID{}, false
	}
	return id, true
}

// change does an admin's change and answers with what it returns (204
// for nothing). The service checks the role and audits the change in its
// own transaction: a refused change leaves no entry.
func change[T any](s *Server, w http.ResponseWriter, r *http.Request, status int, do func() (T, error)) {
	out, err := do()
	if err != nil {
		s.error(w, r, err)
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	s.writeJSON(w, status, out)
}

// trunkIn is a trunk as POST /v1/trunks takes it.
type trunkIn struct {
	Name             string         `json:"name"`
	Allow            []netip.Prefix `json:"allow"`
	Username         string         `json:"username"`
	Password         string         `json:"password"`
	Numbers          []string       `json:"numbers"`
	RecordingConsent bool           `json:"recording_consent"`
}

func (s *Server) postTrunk(w http.ResponseWriter, r *http.Request) {
	var in trunkIn
	if err := decodeJSON(r, &in); err != nil || s.deps.Resources == nil {
		s.error(w, r, orUnavailable(err))
		return
	}
	t := &sb.Trunk{ID: sb.NewID(), Name: in.Name, Allow: in.Allow, Username: in.Username, Numbers: in.Numbers, RecordingConsent: in.RecordingConsent}
	change(s, w, r, http.StatusCreated, func() (*sb.Trunk, error) {
		return t, s.deps.Resources.Trunks.CreateTrunk(r.Context(), t, in.Password)
	})
}

func (s *Server) getTrunk(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "trunk")
	if !ok {
		return
	}
	t, err := s.deps.Resources.Trunks.TrunkByID(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, t)
}

func (s *Server) patchTrunk(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "trunk")
	if !ok {
		return
	}
	var ch sb.TrunkChange
	if err := decodeJSON(r, &ch); err != nil {
		s.error(w, r, err)
		return
	}
	change(s, w, r, http.StatusOK, func() (*sb.Trunk, error) {
		return s.deps.Resources.Trunks.UpdateTrunk(r.Context(), id, ch)
	})
}

func (s *Server) deleteTrunk(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "trunk")
	if !ok {
		return
	}
	change(s, w, r, http.StatusNoContent, func() (*sb.Trunk, error) {
		return s.deps.Resources.Trunks.DeleteTrunk(r.Context(), id)
	})
}

// findRoutes lists the outbound routes, first choice first.
func (s *Server) findRoutes(ctx context.Context) ([]sb.Route, error) {
	if s.deps.Resources == nil {
		return []sb.Route{}, nil
	}
	return s.deps.Resources.Trunks.Routes(ctx)
}

// putRoute gives the trunk {id} an outbound route or changes it: PUT and
// PATCH alike, as a trunk has one route at most.
func (s *Server) putRoute(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "trunk")
	if !ok {
		return
	}
	var ch sb.RouteChange
	if err := decodeJSON(r, &ch); err != nil {
		s.error(w, r, err)
		return
	}
	change(s, w, r, http.StatusOK, func() (*sb.Route, error) {
		return s.deps.Resources.Trunks.SetRoute(r.Context(), id, ch)
	})
}

func (s *Server) deleteRoute(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "outbound route")
	if !ok {
		return
	}
	change(s, w, r, http.StatusNoContent, func() (struct{}, error) {
		return struct{}{}, s.deps.Resources.Trunks.DeleteRoute(r.Context(), id)
	})
}

func (s *Server) listNumbers(w http.ResponseWriter, r *http.Request) {
	if s.deps.Resources == nil {
		s.writeJSON(w, http.StatusOK, map[string]any{"numbers": []sb.Number{}})
		return
	}
	numbers, err := s.deps.Resources.Trunks.Numbers(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"numbers": numbers})
}

// queueIn is a queue as POST /v1/queues takes it.
type queueIn struct {
	Name           string      `json:"name"`
	MaxWaitSeconds float64     `json:"max_wait_seconds"`
	Members        []sb.ID     `json:"members"`
	Overflow       sb.Overflow `json:"overflow"`
	Numbers        []string    `json:"numbers"`
}

func (s *Server) postQueue(w http.ResponseWriter, r *http.Request) {
	var in queueIn
	if err := decodeJSON(r, &in); err != nil || s.deps.Resources == nil {
		s.error(w, r, orUnavailable(err))
		return
	}
	if in.Overflow.Kind == "" {
		in.Overflow.Kind = sb.OverflowReject
	}
	q := &sb.Queue{ID: sb.NewID(), Name: in.Name, MaxWait: time.Duration(in.MaxWaitSeconds * float64(time.Second)),
		Members: in.Members, Overflow: in.Overflow, Numbers: in.Numbers}
	change(s, w, r, http.StatusCreated, func() (queueView, error) {
		if err := s.deps.Resources.Queues.CreateQueue(r.Context(), q); err != nil {
			return queueView{}, err
		}
		return s.queueView(s.deps.Resources.Queues.QueueByID(r.Context(), q.ID))
	})
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "queue")
	if !ok {
		return
	}
	q, err := s.queueView(s.deps.Resources.Queues.QueueByID(r.Context(), id))
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, q)
}

func (s *Server) patchQueue(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "queue")
	if !ok {
		return
	}
	var ch sb.QueueChange
	if err := decodeJSON(r, &ch); err != nil {
		s.error(w, r, err)
		return
	}
	change(s, w, r, http.StatusOK, func() (queueView, error) {
		return s.queueView(s.deps.Resources.Queues.UpdateQueue(r.Context(), id, ch))
	})
}

func (s *Server) deleteQueue(w http.ResponseWriter, r *http.Request) {
	id, ok := s.resourceID(w, r, "queue")
	if !ok {
		return
	}
	change(s, w, r, http.StatusNoContent, func() (*sb.Queue, error) {
		return s.deps.Resources.Queues.DeleteQueue(r.Context(), id)
	})
}

// patchWebhook changes a webhook's url or events; its secret stays. The
// store audits it with the change.
func (s *Server) patchWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := s.webhookID(w, r)
	if !ok {
		return
	}
	var in struct {
		URL    *string   `json:"url"`
		Events *[]string `json:"events"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	h, err := s.deps.Webhooks.UpdateWebhook(r.Context(), id, in.URL, in.Events)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, h)
}

// orUnavailable is err, or, with none, that the admin services are not
// wired here.
func orUnavailable(err error) error {
	if err != nil {
		return err
	}
	return sb.Errorf(sb.EUNAVAILABLE, "not available here")
}
