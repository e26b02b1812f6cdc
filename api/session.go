package api

import (
	"net/http"

	sb "github.com/switchboard-voice/switchboard"
)

// getSession is GET /v1/session: who the browser's session is, or
// {"user": null} without one. The pages ask it as they load: unlike
// GET /v1/me it answers 200 to a visitor not logged in, so a first load
// logs no 401 in the browser's console.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	a, err := s.sessionActor(r)
	if sb.ErrorCode(err) == sb.EUNAUTHORIZED {
		s.writeJSON(w, http.StatusOK, map[string]any{"user": nil})
		return
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.deps.Users.FindUserByID(sb.NewContextWithActor(r.Context(), a), a.UserID)
	if sb.ErrorCode(err) == sb.ENOTFOUND {
		s.writeJSON(w, http.StatusOK, map[string]any{"user": nil})
		return
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"user": u})
}
