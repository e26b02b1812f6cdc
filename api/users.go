package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// People: invitations, roles, names, disabling, passwords. The user
// service checks the roles and audits each change in its transaction.

// passwordPage is where a one-time link leads; the token rides in the
// fragment, which browsers never send to a server or in a Referer.
const passwordPage = "/password#token="

func userID(u *sb.User) sb.ID { return u.ID }

// userParam reads the {id} of a person's route; a malformed one is no
// person of the tenant.
func (s *Server) userParam(w http.ResponseWriter, r *http.Request) (sb.ID, bool) {
	id, err := sb.ParseID(chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "user not found"))
		return sb.ID{}, false
	}
	return id, true
}

// postUser invites a person: {"email", "name", "role", "password"}; without
// a password the answer carries the one-time link (shown once) with which
// they set it.
func (s *Server) postUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string  `json:"email"`
		Name     string  `json:"name"`
		Role     sb.Role `json:"role"`
		Password string  `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	u := &sb.User{Email: in.Email, Name: in.Name, Role: in.Role}
	token, err := s.deps.Users.InviteUser(r.Context(), u, in.Password)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := map[string]any{"user": u}
	if token != "" {
		out["password_link"] = passwordPage + token
	}
	s.writeJSON(w, http.StatusCreated, out)
}

// patchUser changes a person: any of {"role", "name", "disabled"}. A new
// role or a disabling closes their operator socket here at once; the
// other instances close theirs on the service's sign-out notice.
func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	id, ok := s.userParam(w, r)
	if !ok {
		return
	}
	var c sb.UserChange
	if err := decodeJSON(r, &c); err != nil {
		s.error(w, r, err)
		return
	}
	if c.Role == nil && c.Name == nil && c.Disabled == nil {
		s.error(w, r, sb.Errorf(sb.EINVALID, "say what changes: role, name or disabled"))
		return
	}
	u, err := s.deps.Users.UpdateUser(r.Context(), id, c)
	if err != nil {
		s.error(w, r, err)
		return
	}
	switch {
	case u.Disabled:
		s.SignedOut(u.ID)
	case c.Role != nil:
		s.ops.closeUser(u.ID, "role changed")
	}
	s.writeJSON(w, http.StatusOK, u)
}

// resetPassword is an admin's reset: {"password"} sets it (204); {} makes
// a one-time link, in the answer once. Either way the person's sessions
// and operator socket end.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	id, ok := s.userParam(w, r)
	if !ok {
		return
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	token, err := s.deps.Users.ResetPassword(r.Context(), id, in.Password)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.SignedOut(id)
	if token == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"password_link": passwordPage + token})
}

// changeOwnPassword is a person's own change: {"old_password",
// "new_password"}. Wrong old passwords count as failed logins. Every
// session of theirs ends; this browser gets a new one.
func (s *Server) changeOwnPassword(w http.ResponseWriter, r *http.Request) {
	a := sb.ActorFromContext(r.Context())
	if a.UserID == (sb.ID{}) {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "an API key has no password"))
		return
	}
	var in struct {
		Old string `json:"old_password"`
		New string `json:"new_password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.deps.Users.FindUserByID(r.Context(), a.UserID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	addr, account := s.clientAddr(r), accountKey(u.Email)
	if wait, _ := s.limits.attempt(addr, account); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		s.writeJSON(w, http.StatusTooManyRequests, errorBody{Code: "rate_limited", Message: "too many wrong passwords; try again later"})
		return
	}
	err = s.deps.Users.ChangePassword(r.Context(), in.Old, in.New)
	switch code := sb.ErrorCode(err); {
	case err == nil:
		s.limits.succeeded(addr, account)
	case code == sb.EFORBIDDEN:
		s.error(w, r, err) // a guess: it stays counted
		return
	default:
		s.limits.unchecked(addr, account)
		s.error(w, r, err)
		return
	}
	token, sess, err := s.deps.Sessions.CreateSession(r.Context(), u, s.conf.SessionTTL)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.setSessionCookie(w, token, sess.ExpiresAt)
	w.WriteHeader(http.StatusNoContent)
}

// setPassword spends a one-time link: {"token", "password"}. It needs no
// login: the token is the credential.
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	// Only where the request came from: the token says who it is.
	from := &sb.Actor{IP: s.clientAddr(r), UserAgent: truncate(r.UserAgent(), 200)}
	if _, err := s.deps.Users.SetPassword(sb.NewContextWithActor(r.Context(), from), in.Token, in.Password); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// SignedOut closes the person's operator socket on this instance, if they
// have one: their sessions were ended (disabled, new role, password
// reset, changed or set by a link, tenant deleted), here or on another
// instance.
func (s *Server) SignedOut(userID sb.ID) {
	s.ops.closeUser(userID, "signed out")
}
