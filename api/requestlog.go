package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	sb "github.com/switchboard-voice/switchboard"
)

// Every request gets an ID, a line in the log, a count in the metrics and,
// if its handler panics, a JSON 500 with the panic logged: one place for
// all routes.

// requestIDHeader carries a request's ID back to the client, and in from a
// proxy that set one.
const requestIDHeader = "X-Request-Id"

// saneRequestID is an ID taken from a client or proxy: a short token that
// cannot forge log fields or carry a secret of any length.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

type requestIDKey struct{}

// requestIDOf returns the request's ID, "" outside a request.
func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// observeRequests gives each request its ID (the one a proxy sent if it
// is sane, else a new one), answers it in X-Request-Id, and once the
// request is answered logs it (method, route pattern, status, duration,
// ID: never the query string, which may carry a token, nor any header) and
// hands it to the metrics.
func (s *Server) observeRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if !saneRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set(requestIDHeader, id)
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			d := time.Since(start)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK // the handler wrote nothing
			}
			route := ""
			if rc := chi.RouteContext(r.Context()); rc != nil {
				route = rc.RoutePattern()
			}
			if s.conf.Observe != nil {
				s.conf.Observe(route, r.Method, status, d)
			}
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelWarn
			case route == "/healthz" || route == "/readyz":
				level = slog.LevelDebug // the probes, every few seconds
			}
			s.log.LogAttrs(r.Context(), level, "request", slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", status), slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.Int("bytes", ww.BytesWritten()), slog.String("request_id", id))
		}()
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b[:])
}

// recoverPanics answers a request whose handler panicked with a JSON 500
// and logs the panic with its stack and the request's ID, in the service's
// log format; if the handler had begun its answer, the connection is cut
// instead (http.ErrAbortHandler, which the server does not log).
// http.ErrAbortHandler from a handler is already that, and passes on.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww, _ := w.(middleware.WrapResponseWriter)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			route := ""
			if rc := chi.RouteContext(r.Context()); rc != nil {
				route = rc.RoutePattern()
			}
			s.log.Error("handler panicked", "method", r.Method, "route", route, "request_id", requestIDOf(r.Context()),
				"panic", v, "stack", string(debug.Stack()))
			if ww != nil && ww.Status() != 0 {
				// Part of the answer is out: cut the connection, so the
				// client sees a broken answer rather than a short one.
				panic(http.ErrAbortHandler)
			}
			s.writeJSON(w, http.StatusInternalServerError, errorBody{Code: sb.EINTERNAL, Message: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}
