package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	sb "github.com/switchboard-voice/switchboard"
)

// requireToken serves next only to requests that bear token
// (Authorization: Bearer), compared in constant time; others get the
// API's JSON error.
func (s *Server) requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			s.writeJSON(w, http.StatusUnauthorized, errorBody{Code: sb.EUNAUTHORIZED, Message: "the metrics token is needed"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
