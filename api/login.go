package api

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// maxLoginBody bounds a login request.
const maxLoginBody = 4 << 10

// login checks an email and password and sets the session cookie. Only
// JSON is taken: a cross-site form cannot send it, which with the
// SameSite=Strict cookie keeps logins and sockets first-party.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Code: sb.EINVALID, Message: "send the login as application/json"})
		return
	}
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody)).Decode(&in); err != nil {
		s.error(w, r, sb.Errorf(sb.EINVALID, "the login must be a JSON object with email and password"))
		return
	}
	addr := s.clientAddr(r)
	account := accountKey(in.Email)
	// The attempt counts before the password is checked: argon2 takes its
	// time, and guesses sent together must not all pass the lock.
	if wait, first := s.limits.attempt(addr, account); wait > 0 {
		// Not even checked: a guesser learns nothing while locked out.
		// The lock's first refusal is audited; the rest say no more.
		minutes := int((wait + time.Minute - 1) / time.Minute)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		if first {
			if aerr := s.audit(r, &sb.AuditEntry{Action: "login", Outcome: "throttled",
				Reason: "locked out after failed logins; attempts until the lock ends are refused unaudited"}); aerr != nil {
				s.log.Error("audit of a throttled login", "err", aerr)
			}
		}
		s.writeJSON(w, http.StatusTooManyRequests, errorBody{Code: "rate_limited",
			Message: "too many failed logins; try again in " + strconv.Itoa(minutes) + " minutes"})
		return
	}
	u, err := s.deps.Users.Authenticate(r.Context(), in.Email, in.Password)
	if sb.ErrorCode(err) == sb.EUNAUTHORIZED {
		// One message whatever was wrong, so emails cannot be probed. The
		// audit entry names nobody: the email is personal data.
		s.log.Info("login failed", "remote", addr)
		if aerr := s.audit(r, &sb.AuditEntry{Action: "login", Outcome: "denied"}); aerr != nil {
			s.log.Error("audit of a failed login", "err", aerr)
		}
		s.error(w, r, sb.Errorf(sb.EUNAUTHORIZED, "invalid email or password"))
		return
	} else if sb.ErrorCode(err) == sb.EFORBIDDEN {
		// The right password of a disabled account: refused, and said so.
		if aerr := s.audit(r, &sb.AuditEntry{Action: "login", Outcome: "denied", Reason: "account disabled"}); aerr != nil {
			s.log.Error("audit of a refused login", "err", aerr)
		}
		s.error(w, r, err)
		return
	} else if err != nil {
		s.limits.unchecked(addr, account)
		s.error(w, r, err)
		return
	}
	// A login that cannot be audited does not happen.
	if err := s.audit(r, &sb.AuditEntry{TenantID: &u.TenantID, ActorUserID: &u.ID, ActorRole: u.Role, Action: "login",
		ResourceType: "user", ResourceID: u.ID.String()}); err != nil {
		s.error(w, r, err)
		return
	}
	s.limits.succeeded(addr, account)
	token, sess, err := s.deps.Sessions.CreateSession(r.Context(), u, s.conf.SessionTTL)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.setSessionCookie(w, token, sess.ExpiresAt)
	s.log.Info("login", "user", u.ID, "role", u.Role)
	s.writeJSON(w, http.StatusOK, map[string]any{"user": u})
}

// setSessionCookie gives the browser its session.
func (s *Server) setSessionCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.conf.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if sess, err := s.deps.Sessions.FindSession(r.Context(), c.Value); err == nil {
			s.ops.closeUser(sess.UserID, "logged out")
			if err := s.audit(r, &sb.AuditEntry{TenantID: &sess.TenantID, ActorUserID: &sess.UserID, ActorRole: sess.Role,
				Action: "logout", ResourceType: "user", ResourceID: sess.UserID.String()}); err != nil {
				s.log.Error("audit of a logout", "err", err)
			}
		}
		if err := s.deps.Sessions.DeleteSession(r.Context(), c.Value); err != nil {
			s.error(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Expires: time.Unix(0, 0), MaxAge: -1,
		HttpOnly: true, Secure: s.conf.SecureCookies, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	a := sb.ActorFromContext(r.Context())
	if a.UserID == (sb.ID{}) {
		s.writeJSON(w, http.StatusOK, map[string]any{"api_key": a.APIKeyID, "tenant_id": a.TenantID, "role": a.Role})
		return
	}
	u, err := s.deps.Users.FindUserByID(r.Context(), a.UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"user": u})
}

// auditActor audits the actor's action on a resource.
func (s *Server) auditActor(r *http.Request, a *sb.Actor, action, resourceType string, id sb.ID) error {
	return s.audit(r, actorEntry(a, action, resourceType, id))
}

// audit appends e with where the request came from. Without an audit log
// configured it records nothing.
func (s *Server) audit(r *http.Request, e *sb.AuditEntry) error {
	if s.deps.Audit == nil {
		return nil
	}
	e.IP = s.clientAddr(r)
	e.UserAgent = truncate(r.UserAgent(), 200)
	// Bounded: an operator's socket waits on it, and its request lives
	// as long as the socket.
	ctx, cancel := context.WithTimeout(r.Context(), auditTimeout)
	defer cancel()
	return s.deps.Audit.Append(ctx, e)
}

// auditTimeout bounds the write of one audit entry.
const auditTimeout = 5 * time.Second
