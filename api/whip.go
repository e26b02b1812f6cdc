package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// Browser callers (a website's widget, a messenger) bring calls in with
// WHIP (RFC 9725): the visitor's browser posts its SDP offer with a token
// the tenant's backend issued, gets our answer and a session URL, polls
// the session for where the call stands, and deletes it to hang up. These
// routes are authenticated by the token or the session URL alone, never
// by a cookie, so they are open to other origins (CORS) and bypass the
// cross-origin protection meant for cookie-bearing requests.

// VisitorLeg is a browser caller's leg; *webrtc.Visitor implements it.
type VisitorLeg interface {
	sb.TrunkLeg
	// State is "waiting", "answered" or "ended", with the reason it ended.
	State() (state, reason string)
	// Leave is the visitor hanging up.
	Leave()
	// Answered reports whether an operator ever took the call.
	Answered() bool
}

// Ingress brings browser callers in.
type Ingress struct {
	Tokens sb.IngressService
	// Check reads a visitor's offer without making anything of it,
	// refusing (EINVALID) one Answer would: it comes before the token is
	// redeemed, so an unreadable offer does not spend it. Optional: without
	// it only Answer reads the offer.
	Check func(offer string) error
	// Answer makes the visitor's leg from their offer, and our answer.
	Answer func(ctx context.Context, offer string) (VisitorLeg, string, error)
	// Dispatch hands the call to call control; the Switch's
	// DispatchInbound.
	Dispatch func(*sb.InboundCall)
}

// visitorLinger is how long an ended session still answers its visitor's
// page with the reason, before it is forgotten.
const visitorLinger = time.Minute

// maxVisitors bounds the sessions one instance keeps.
const maxVisitors = 10000

type visitorSession struct {
	leg       VisitorLeg
	token     sb.ID     // the token that placed the call
	tokenBack bool      // the token was given back (the call was never answered)
	left      bool      // the visitor hung up: their token is spent
	ended     time.Time // when first seen ended
}

// maxRetries is how often one token is given back for calls nobody took:
// a visitor may try again, a leaked link may not ring operators without
// end.
const maxRetries = 3

// visitors are the WHIP sessions of this instance, by their unguessable
// IDs (the session URL is the visitor's capability to hang up).
type visitors struct {
	mu      sync.Mutex
	m       map[string]*visitorSession
	retries map[sb.ID]int // tokens given back, how often
}

func (v *visitors) add(leg VisitorLeg, token sb.ID) (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]*visitorSession{}
	}
	for k, s := range v.m {
		if st, _ := s.leg.State(); st == "ended" {
			if s.ended.IsZero() {
				s.ended = now
			} else if now.Sub(s.ended) > visitorLinger {
				delete(v.m, k)
			}
		}
	}
	if len(v.m) >= maxVisitors {
		return "", sb.Errorf(sb.EUNAVAILABLE, "too many browser calls on this instance")
	}
	v.m[id] = &visitorSession{leg: leg, token: token}
	return id, nil
}

func (v *visitors) get(id string) (VisitorLeg, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[id]
	if !ok {
		return nil, false
	}
	return s.leg, true
}

// giveBack returns the token of session id once, if its call ended
// without an operator ever taking it and without the visitor hanging up,
// at most maxRetries times a token: the visitor may try again with it.
func (v *visitors) giveBack(id string) (sb.ID, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[id]
	if !ok || s.tokenBack || s.left {
		return sb.ID{}, false
	}
	if st, _ := s.leg.State(); st != "ended" || s.leg.Answered() {
		return sb.ID{}, false
	}
	if v.retries == nil || len(v.retries) >= maxVisitors {
		v.retries = map[sb.ID]int{} // a bound on memory; tokens expire anyway
	}
	if v.retries[s.token] >= maxRetries {
		return sb.ID{}, false
	}
	v.retries[s.token]++
	s.tokenBack = true
	return s.token, true
}

// leave marks session id as hung up by its visitor.
func (v *visitors) leave(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.m[id]; ok {
		s.left = true
	}
}

// cors opens the WHIP routes to the pages of other origins that embed the
// widget: they carry no cookie, only the token or the session URL.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Location")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "POST, GET, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// postWebRTCToken is POST /v1/webrtc/tokens: the tenant's backend issues a
// visitor a token to call one of the tenant's numbers once.
func (s *Server) postWebRTCToken(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ingress == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "browser calls are not available here"))
		return
	}
	var in struct {
		Number      string `json:"number"`
		From        string `json:"from"`
		ExternalRef string `json:"external_ref"`
		TTLSeconds  int    `json:"ttl_seconds"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	t := &sb.WebRTCToken{Number: in.Number, From: in.From, ExternalRef: in.ExternalRef}
	switch {
	case in.TTLSeconds < 0 || in.TTLSeconds > int(sb.MaxTokenTTL/time.Second):
		s.error(w, r, sb.Errorf(sb.EINVALID, "ttl_seconds: from 1 to %d", int(sb.MaxTokenTTL/time.Second)))
		return
	case in.TTLSeconds > 0:
		t.ExpiresAt = time.Now().Add(time.Duration(in.TTLSeconds) * time.Second)
	}
	secret, err := s.deps.Ingress.Tokens.IssueToken(r.Context(), t)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "expires_at": t.ExpiresAt, "whip_url": "/v1/whip"})
}

// postWHIP is POST /v1/whip: a visitor's SDP offer, with their token as
// the bearer; the answer is 201 with our SDP and the session's URL.
func (s *Server) postWHIP(w http.ResponseWriter, r *http.Request) {
	in := s.deps.Ingress
	if in == nil {
		s.error(w, r, sb.Errorf(sb.EUNAVAILABLE, "browser calls are not available here"))
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/sdp" {
		s.writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Code: sb.EINVALID, Message: "the offer must be application/sdp"})
		return
	}
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		s.error(w, r, sb.Errorf(sb.EUNAUTHORIZED, "a token is required: Authorization: Bearer <token>"))
		return
	}
	offer, err := io.ReadAll(r.Body)
	if err != nil {
		s.error(w, r, sb.Errorf(sb.EINVALID, "reading the offer: %v", err))
		return
	}
	// The token is spent only on an offer worth answering.
	if len(offer) == 0 {
		s.error(w, r, sb.Errorf(sb.EINVALID, "the offer is empty"))
		return
	}
	if in.Check != nil {
		if err := in.Check(string(offer)); err != nil {
			s.error(w, r, err)
			return
		}
	}
	tok, trunk, err := in.Tokens.RedeemToken(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		s.error(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	leg, answer, err := in.Answer(ctx, string(offer))
	if err != nil {
		s.error(w, r, err)
		return
	}
	id, err := s.visitors.add(leg, tok.ID)
	if err != nil {
		leg.Close()
		s.error(w, r, err)
		return
	}
	in.Dispatch(&sb.InboundCall{Trunk: trunk, From: tok.From, To: tok.Number, Source: sb.BrowserSource(s.clientAddr(r)),
		Leg: leg, ExternalRef: tok.ExternalRef})
	s.log.Info("browser call", "tenant", tok.TenantID, "token", tok.ID)
	w.Header().Set("Location", "/v1/whip/"+id)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	if _, err := io.WriteString(w, answer); err != nil {
		s.log.Debug("writing the WHIP answer", "err", err)
	}
}

// getWHIP is GET /v1/whip/{id}: where the visitor's call stands.
func (s *Server) getWHIP(w http.ResponseWriter, r *http.Request) {
	leg, ok := s.visitors.get(chi.URLParam(r, "id"))
	if !ok {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "no such browser call"))
		return
	}
	state, reason := leg.State()
	body := map[string]any{"state": state, "reason": reason}
	if tok, ok := s.visitors.giveBack(chi.URLParam(r, "id")); ok {
		// Nobody took the call: the visitor's token is theirs again, to
		// try later, while it is valid.
		again, err := s.deps.Ingress.Tokens.RestoreToken(r.Context(), tok)
		if err != nil {
			s.log.Warn("giving a visitor's token back", "err", err)
		}
		body["retry"] = again
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, body)
}

// deleteWHIP is DELETE /v1/whip/{id}: the visitor hangs up.
func (s *Server) deleteWHIP(w http.ResponseWriter, r *http.Request) {
	leg, ok := s.visitors.get(chi.URLParam(r, "id"))
	if !ok {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "no such browser call"))
		return
	}
	s.visitors.leave(chi.URLParam(r, "id"))
	leg.Leave()
	w.WriteHeader(http.StatusOK)
}
