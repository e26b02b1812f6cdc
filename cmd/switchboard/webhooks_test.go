package main

import (
	"context"
	"encoding/json"
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
	"github.com/switchboard-voice/switchboard/webhooks/signature"
)

// A tenant's webhook receives the call's events, signed, each with an id
// that stays the same when it is retried; a receiver that fails is retried
// and every attempt is recorded. An admin rotates the secret: adds one,
// retires the old, each step audited.
func TestWebhooksSignedAndRetried(t *testing.T) {
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Acme", "2000", 1)
	admin := mustLogin(t, m, mustUser(t, m, f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))

	spec := apispec.Load(t, api.Description()) // what the receiver gets is as described
	var mu sync.Mutex
	var secret string
	var got []string
	failed := map[string]bool{}
	ids := map[string][]string{} // event → the id of each attempt
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := signature.Verify(r.Header.Get(signature.Header), body, []string{secret}, time.Minute); err != nil {
			t.Errorf("bad signature %q: %v", r.Header.Get(signature.Header), err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := spec.CheckWebhook(r.Header, body); err != nil {
			t.Errorf("%v", err)
		}
		event := r.Header.Get("Switchboard-Event")
		var id struct {
			ID sb.ID `json:"id"`
		}
		if err := json.Unmarshal(body, &id); err != nil || id.ID == (sb.ID{}) {
			t.Errorf("payload %s has no id: %v", body, err)
		}
		ids[event] = append(ids[event], id.ID.String())
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
	conn := dbConn(t, m)
	for {
		// The retry's wait (10 s and more) is not this test's subject
		// (TestRetriesForADay is): a failed delivery is made due now.
		if _, err := conn.Exec(ctx, "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending' AND attempts > 0"); err != nil {
			t.Fatal(err)
		}
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
	mu.Lock()
	if e := ids["call.ended"]; len(e) != 2 || e[0] != e[1] || len(ids["call.offered"]) != 1 || ids["call.offered"][0] == e[0] {
		t.Errorf("event ids %v: want one per event, the same in its retry", ids)
	}
	mu.Unlock()
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

	// Rotation: a second secret, shown once; both sign until the old is
	// retired (signature.TestVerify, TestKeyRotationReachesEverySecret).
	secrets := "/v1/webhooks/" + created.Webhook.ID.String() + "/secrets"
	var added struct {
		Secret string `json:"secret"`
	}
	if code, body := admin.do("POST", secrets, "", &added); code != 201 || !strings.HasPrefix(added.Secret, "whsec_") || added.Secret == created.Secret {
		t.Fatalf("add a secret: %d %s", code, body)
	}
	if code, _ := admin.do("POST", secrets, "", nil); code != 409 {
		t.Errorf("a third secret: %d, want 409", code)
	}
	if code, _ := (&person{t: t, m: m, key: f.APIKey}).do("POST", secrets, "", nil); code != 403 {
		t.Errorf("a supervisor adding a secret: %d, want 403", code)
	}
	var listed struct {
		Webhooks []sb.Webhook `json:"webhooks"`
	}
	if code, _ := admin.do("GET", "/v1/webhooks", "", &listed); code != 200 || len(listed.Webhooks) != 1 || listed.Webhooks[0].NewSecretAt == nil {
		t.Errorf("while rotating: %d %+v, want new_secret_at", code, listed)
	}
	if code, body := admin.do("POST", secrets+"/retire", "", nil); code != 204 {
		t.Errorf("retire the old secret: %d %s", code, body)
	}
	if code, _ := admin.do("POST", secrets+"/retire", "", nil); code != 409 {
		t.Errorf("retire with one secret left: %d, want 409", code)
	}
	if code, _ := admin.do("POST", "/v1/webhooks/"+sb.NewID().String()+"/secrets", "", nil); code != 404 {
		t.Errorf("a secret for no webhook: %d, want 404", code)
	}
	listed.Webhooks = nil
	if code, _ := admin.do("GET", "/v1/webhooks", "", &listed); code != 200 || len(listed.Webhooks) != 1 || listed.Webhooks[0].NewSecretAt != nil {
		t.Errorf("after the rotation: %d %+v", code, listed)
	}
	if got := auditActions(t, m, f.Tenant.ID); !containsInOrder(got, "webhook.create", "webhook.secret.add", "webhook.secret.retire") {
		t.Errorf("audit %v lacks the webhook and its rotation", got)
	}
}
