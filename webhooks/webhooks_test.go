package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The signature is HMAC-SHA256 over "<unix seconds>.<body>", as a
// receiver recomputes it from the header and the body it got.
func TestSign(t *testing.T) {
	secret, body, at := []byte("whsec_test"), []byte(`{"event":"call.ended"}`), time.Unix(1795550000, 0)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("1795550000." + string(body)))
	want := "t=1795550000,v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := Sign(secret, body, at); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if Sign([]byte("other"), body, at) == want || Sign(secret, []byte(`{"event":"call.offered"}`), at) == want ||
		Sign(secret, body, at.Add(time.Second)) == want {
		t.Error("the signature does not cover the secret, the body and the time")
	}
}

// store is a Store with one delivery due, recording its attempt.
type store struct {
	due     *sb.WebhookDelivery
	status  int
	attempt error
}

func (s *store) Enqueue(context.Context, ...sb.WebhookEvent) (int, error) { return 0, nil }
func (s *store) TakeDue(context.Context, int) ([]*sb.WebhookDelivery, error) {
	return []*sb.WebhookDelivery{s.due}, nil
}
func (s *store) RecordAttempt(_ context.Context, _ *sb.WebhookDelivery, status int, err error) error {
	s.status, s.attempt = status, err
	return nil
}

// A tenant admin's webhook URL cannot reach the service's own network:
// loopback and private addresses are refused unless allowed.
func TestDeliveriesGoToPublicAddressesOnly(t *testing.T) {
	var got int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got++ }))
	defer srv.Close()
	st := &store{due: &sb.WebhookDelivery{ID: sb.NewID(), URL: srv.URL, Payload: []byte(`{}`), Secret: []byte("s")}}
	log := slog.New(slog.DiscardHandler)
	if n, err := New(st, log).Send(context.Background()); n != 0 || err != nil || got != 0 || st.attempt == nil ||
		!strings.Contains(st.attempt.Error(), "not a public address") {
		t.Errorf("to loopback: %d sent, %v; receiver got %d; attempt %v", n, err, got, st.attempt)
	}
	if n, err := New(st, log, WithPrivateTargets()).Send(context.Background()); n != 1 || err != nil || got != 1 || st.status != 200 {
		t.Errorf("to loopback, allowed: %d sent, %v; receiver got %d; status %d", n, err, got, st.status)
	}
	for addr, public := range map[string]bool{"8.8.8.8": true, "2001:4860::8888": true, "10.1.2.3": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "::1": false, "fd00::1": false, "0.0.0.0": false} {
		if publicAddr(netip.MustParseAddr(addr)) != public {
			t.Errorf("%s public: %v", addr, !public)
		}
	}
}
