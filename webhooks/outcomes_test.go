package webhooks

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// Each attempt's outcome is counted: delivered (2xx), rejected (the
// receiver answered another status), unreachable (no answer).
func TestDeliveryOutcomesCounted(t *testing.T) {
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := "http://" + closed.Addr().String()
	closed.Close() // nothing listens there now
	var got []string
	st := &store{}
	h := New(st, slog.New(slog.DiscardHandler), WithPrivateTargets(), WithOutcomes(func(o string) { got = append(got, o) }))
	for _, c := range []struct {
		url    string
		status int
	}{{srv.URL, http.StatusNoContent}, {srv.URL, http.StatusInternalServerError}, {srv.URL, http.StatusGone}, {nobody, 0}} {
		status = c.status
		st.due = &sb.WebhookDelivery{ID: sb.NewID(), URL: c.url, Payload: []byte(`{}`), Secrets: [][]byte{[]byte("s")}}
		if _, err := h.Send(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"delivered", "rejected", "rejected", "unreachable"}
	if len(got) != len(want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("outcomes %v, want %v", got, want)
			break
		}
	}
}

// A receiver's URL may carry a token in its user, path or query: what a
// failed delivery logs and keeps as its last error names only its scheme
// and host.
func TestDeliveryErrorsHideURLSecrets(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := closed.Addr().String()
	closed.Close() // nothing listens there now
	var log bytes.Buffer
	st := &store{}
	h := New(st, slog.New(slog.NewTextHandler(&log, nil)), WithPrivateTargets())
	st.due = &sb.WebhookDelivery{ID: sb.NewID(), URL: "http://hookuser:HOOKPASS@" + host + "/services/PATHSECRET?token=QUERYSECRET",
		Payload: []byte(`{}`), Secrets: [][]byte{[]byte("s")}}
	if _, err := h.Send(context.Background()); err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"log": log.String(), "last error": st.due.LastError} {
		if !strings.Contains(text, "http://"+host) {
			t.Errorf("the %s does not name the receiver http://%s: %q", what, host, text)
		}
		for _, secret := range []string{"hookuser", "HOOKPASS", "PATHSECRET", "QUERYSECRET"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s shows %s: %q", what, secret, text)
			}
		}
	}
}
