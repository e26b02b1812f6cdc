package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// /readyz: an advisory part that fails (the recording store) is named in
// the body but leaves the instance ready; a check that hangs is cut at its
// bound and makes it unready, without holding up the others.
func TestReadyzAdvisoriesAndHangingChecks(t *testing.T) {
	storeDown := errors.New("s3: connection refused")
	var hang atomic.Bool
	s := NewServer(Config{}, Deps{
		Users:   &fakeUsers{},
		APIKeys: &fakeKeys{},
		Health:  func(context.Context) error { return nil },
		Checks: map[string]func(context.Context) error{"sip": func(ctx context.Context) error {
			if hang.Load() {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}},
		Advisories: map[string]func(context.Context) error{"storage": func(context.Context) error { return storeDown }},
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	res, body := request(t, srv, http.MethodGet, "/readyz")
	if res.StatusCode != http.StatusOK || body["status"] != "ok" || body["storage"] != "unavailable" || body["database"] != "ok" || body["sip"] != "ok" {
		t.Errorf("with the store down: %d %v; want 200 naming the store", res.StatusCode, body)
	}
	hang.Store(true)
	start := time.Now()
	res, body = request(t, srv, http.MethodGet, "/readyz")
	if res.StatusCode != http.StatusServiceUnavailable || body["status"] != "unavailable" || body["sip"] != "unavailable" || body["database"] != "ok" {
		t.Errorf("with the SIP check hanging: %d %v; want 503 naming sip, the database ok", res.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("/readyz took %v with a hanging check", d)
	}
}
