package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

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
func (s *store) RecordAttempt(_ context.Context, d *sb.WebhookDelivery) error {
	s.status, s.attempt = d.LastStatus, nil
	if d.LastError != "" {
		s.attempt = errors.New(d.LastError)
	}
	return nil
}

// A tenant admin's webhook URL cannot reach the service's own network:
// loopback and private addresses are refused unless allowed.
func TestDeliveriesGoToPublicAddressesOnly(t *testing.T) {
	var got int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got++ }))
	defer srv.Close()
	st := &store{due: &sb.WebhookDelivery{ID: sb.NewID(), URL: srv.URL, Payload: []byte(`{}`), Secrets: [][]byte{[]byte("s")}}}
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
