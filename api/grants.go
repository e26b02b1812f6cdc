package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// postCallGrant asks for access to a call's recording:
// {"reason": "...", "ticket": "...", "ttl_seconds": 900, "download": false}.
// The service decides who may ask and whether a second person approves.
func (s *Server) postCallGrant(w http.ResponseWriter, r *http.Request) {
	id, ok := s.callID(w, r)
	if !ok {
		return
	}
	if s.deps.Grants == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "recording not found"))
		return
	}
	var in struct {
		Reason     string `json:"reason"`
		Ticket     string `json:"ticket"`
		TTLSeconds int    `json:"ttl_seconds"`
		Download   bool   `json:"download"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	g, err := s.deps.Grants.RequestGrant(r.Context(), sb.GrantRequest{CallID: id, Reason: in.Reason, Ticket: in.Ticket,
		TTL: time.Duration(in.TTLSeconds) * time.Second, Download: in.Download})
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, g)
}

// decodeJSON reads a small JSON object strictly, naming what is wrong.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return sb.Errorf(sb.EINVALID, "the body must be a JSON object: %v", err)
	}
	return nil
}

func (s *Server) grantID(w http.ResponseWriter, r *http.Request) (sb.ID, bool) {
	if s.deps.Grants == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "grant not found"))
		return sb.ID{}, false
	}
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "grant not found"))
		return sb.ID{}, false
	}
	return id, true
}

// listGrants is GET /v1/grants?status=&call_id=: a support engineer's own
// grants, or all of the tenant's for its supervisors and admins.
func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	if s.deps.Grants == nil {
		s.writeJSON(w, http.StatusOK, map[string]any{"grants": []any{}})
		return
	}
	f := sb.GrantFilter{Status: sb.GrantStatus(r.URL.Query().Get("status"))}
	switch f.Status {
	case "", sb.GrantPending, sb.GrantApproved, sb.GrantDenied, sb.GrantRevoked, sb.GrantExpired:
	default:
		s.error(w, r, sb.Errorf(sb.EINVALID, "status: %q is not a grant status", f.Status))
		return
	}
	if v := r.URL.Query().Get("call_id"); v != "" {
		id, err := sb.ParseID(v)
		if err != nil {
			s.error(w, r, sb.Errorf(sb.EINVALID, "call_id: %q is not an id", v))
			return
		}
		f.CallID = &id
	}
	p, err := parsePage(r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	grants, err := s.deps.Grants.FindGrants(r.Context(), f)
	if err == nil {
		grants, err = pageOf(grants, p, func(g *sb.AccessGrant) sb.ID { return g.ID }, false)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	writePage(s, w, "grants", p, s.namedGrants(r.Context(), grants...), func(g *sb.AccessGrant) sb.ID { return g.ID })
}

// namedGrants are copies of grants with their people named.
func (s *Server) namedGrants(ctx context.Context, grants ...*sb.AccessGrant) []*sb.AccessGrant {
	var people []sb.ID
	for _, g := range grants {
		people = append(people, ids(&g.RequestedBy, g.DecidedBy, g.EndedBy)...)
	}
	names := s.names(ctx, people)
	out := make([]*sb.AccessGrant, len(grants))
	for i, g := range grants {
		named := *g
		named.RequestedByName, named.DecidedByName, named.EndedByName = names[g.RequestedBy], nameOf(names, g.DecidedBy), nameOf(names, g.EndedBy)
		out[i] = &named
	}
	return out
}

func (s *Server) getGrant(w http.ResponseWriter, r *http.Request) {
	id, ok := s.grantID(w, r)
	if !ok {
		return
	}
	g, err := s.deps.Grants.FindGrantByID(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, s.namedGrants(r.Context(), g)[0])
}

// changeGrant approves, denies or revokes a grant.
func (s *Server) changeGrant(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.grantID(w, r)
		if !ok {
			return
		}
		var g *sb.AccessGrant
		var err error
		switch action {
		case "approve", "deny":
			g, err = s.deps.Grants.DecideGrant(r.Context(), id, action == "approve")
		case "revoke":
			g, err = s.deps.Grants.RevokeGrant(r.Context(), id)
		}
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.writeJSON(w, http.StatusOK, g)
	}
}

// grantAudio is GET /v1/grants/{id}/audio: the grant's recording as a WAV
// file, decrypted as it is read, with Range requests (each audited, each
// decrypting only the segments it touches). from and to (seconds) choose
// a window; download=1 asks to save it, which the grant must allow.
func (s *Server) grantAudio(w http.ResponseWriter, r *http.Request) {
	id, ok := s.grantID(w, r)
	if !ok {
		return
	}
	if s.deps.Player == nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "recording not found"))
		return
	}
	q := r.URL.Query()
	var window [2]time.Duration
	for i, name := range []string{"from", "to"} {
		if v := q.Get(name); v != "" {
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil || sec < 0 || sec > 7*24*3600 {
				s.error(w, r, sb.Errorf(sb.EINVALID, "%s: %q must be seconds into the recording", name, v))
				return
			}
			window[i] = time.Duration(sec * float64(time.Second))
		}
	}
	access := sb.AccessPlay
	if q.Get("download") == "1" {
		access = sb.AccessDownload
	}
	rng := r.Header.Get("Range")
	if len(rng) > 100 {
		s.error(w, r, sb.Errorf(sb.EINVALID, "Range: too long"))
		return
	}
	detail := "whole file"
	if rng != "" {
		detail = rng
	}
	if window != [2]time.Duration{} {
		detail += fmt.Sprintf(", window %s–%s", window[0], window[1])
	}
	audio, err := s.deps.Player.OpenAudio(r.Context(), id, access, window[0], window[1], detail)
	if err != nil {
		s.error(w, r, err)
		return
	}
	defer audio.Close()
	h := w.Header()
	h.Set("Content-Type", audio.ContentType())
	h.Set("Cache-Control", "no-store")
	disposition, ext := "inline", ".wav"
	if access == sb.AccessDownload {
		disposition = "attachment"
	}
	if audio.ContentType() == "audio/ogg" {
		ext = ".opus"
	}
	h.Set("Content-Disposition", disposition+`; filename="recording-`+id.String()+ext+`"`)
	// ServeContent answers Range and If-Range; a read the grant no longer
	// allows ends the response early.
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(audio, 0, audio.Size()))
}
