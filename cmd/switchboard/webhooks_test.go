package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/api"
	"github.com/switchboard-voice/switchboard/internal/apispec"
	"github.com/switchboard-voice/switchboard/sip/siptest"
	"github.com/switchboard-voice/switchboard/webhooks"
)

// A tenant's webhook receives the call's events, signed; a receiver that
// fails is retried and every attempt is recorded.
func TestWebhooksSignedAndRetried(t *testing.T) {
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Acme", "2000", 1)
	admin := mustLogin(t, m, mustUser(t, m, f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))

	spec := apispec.Load(t, api.Description()) // what the receiver gets is as described
	var mu sync.Mutex
	var secret string
	var got []string
	failed := map[string]bool{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		sig := r.Header.Get(webhooks.SignatureHeader)
		ts := strings.TrimPrefix(strings.Split(sig, ",")[0], "t=")
		var at int64
		if _, err := fmt.Sscan(ts, &at); err != nil || webhooks.Sign([]byte(secret), body, time.Unix(at, 0)) != sig {
			t.Errorf("bad signature %q", sig)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := spec.CheckWebhook(r.Header, body); err != nil {
			t.Errorf("%v", err)
		}
		event := r.Header.Get("Switchboard-Event")
		if event == "call.ended" && !failed[event] {
			failed[event] = true // the first attempt fails
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p struct {
			Event  string  `json:"event"`
			CallID string  `json:"call_id"`
			Call   sb.Call `json:"call"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Event != event {
			t.Errorf("payload %s: %v", body, err)
		}
		got = append(got, event)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	var created struct {
		Webhook sb.Webhook `json:"webhook"`
		Secret  string     `json:"secret"`
	}
	if code, body := admin.do("POST", "/v1/webhooks", `{"url":"`+receiver.URL+`/hook","events":["call.offered","call.answered","call.ended"]}`, &created); code != 201 ||
		!strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("create webhook: %d %s", code, body)
	}
	mu.Lock()
	secret = created.Secret
	mu.Unlock()
	if code, _ := admin.do("POST", "/v1/webhooks", `{"url":"ftp://x","events":["call.ended"]}`, nil); code != 400 {
		t.Errorf("an ftp URL: %d, want 400", code)
	}
	if code, _ := (&person{t: t, m: m, key: f.APIKey}).do("GET", "/v1/webhooks", "", nil); code != 403 {
		t.Errorf("a supervisor listing webhooks: %d, want 403", code)
	}

	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the receiver got %v", got)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if strings.Join(got, " ") != "call.offered call.answered call.ended" {
		t.Errorf("events %v", got)
	}
	var deliveries struct {
		Deliveries []sb.WebhookDelivery `json:"deliveries"`
	}
	if code, _ := admin.do("GET", "/v1/webhooks/"+created.Webhook.ID.String()+"/deliveries", "", &deliveries); code != 200 || len(deliveries.Deliveries) != 3 {
		t.Fatalf("deliveries: %d %+v", code, deliveries)
	}
	for _, d := range deliveries.Deliveries {
		want := 1
		if d.Event == "call.ended" {
			want = 2
		}
		if d.Status != "delivered" || d.Attempts != want || d.LastStatus != 204 {
			t.Errorf("delivery %s: %s after %d attempts (last %d), want delivered after %d", d.Event, d.Status, d.Attempts, d.LastStatus, want)
		}
	}
	if got := auditActions(t, m, f.Tenant.ID); !containsInOrder(got, "webhook.create") {
		t.Errorf("audit %v lacks the webhook", got)
	}
}
