package metadata

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// A webhook's secret is rotated by its tenant's admins only: a second
// secret signs beside the first (the sender gets both, old first), then
// the old one is retired and the new signs alone. Another tenant's admin
// finds no such webhook; a supervisor may not.
func TestWebhookSecretRotation(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	acme, other := mustTenant(t, db, "Acme"), mustTenant(t, db, "Other")
	ring := mustKeyring(t, "1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	s := NewWebhookStore(db, ring)
	admin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: acme.ID, Role: sb.RoleAdmin})
	h, oldSecret, err := s.CreateWebhook(admin, "https://crm.test/hook", []string{"call.ended"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := func() []string {
		t.Helper()
		if _, err := db.pool.Exec(ctx, "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE webhook_id = $1", h.ID); err != nil {
			t.Fatal(err)
		}
		due, err := s.TakeDue(ctx, 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("due: %d, %v", len(due), err)
		}
		var out []string
		for _, sec := range due[0].Secrets {
			out = append(out, string(sec))
		}
		return out
	}
	if n, err := s.Enqueue(ctx, sb.WebhookEvent{TenantID: acme.ID, Event: "call.ended", Payload: []byte(`{"id":"x"}`)}); n != 1 || err != nil {
		t.Fatalf("enqueue: %d, %v", n, err)
	}
	if got := secrets(); len(got) != 1 || got[0] != oldSecret {
		t.Errorf("before rotating the sender signs with %d secrets", len(got))
	}

	stranger := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: other.ID, Role: sb.RoleAdmin})
	supervisor := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: acme.ID, Role: sb.RoleSupervisor})
	if _, err := s.AddWebhookSecret(stranger, h.ID); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another tenant's admin adding a secret: %v", err)
	}
	if _, err := s.AddWebhookSecret(supervisor, h.ID); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a supervisor adding a secret: %v", err)
	}
	if err := s.RetireWebhookSecret(admin, h.ID); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("retiring the only secret: %v", err)
	}

	newSecret, err := s.AddWebhookSecret(admin, h.ID)
	if err != nil || newSecret == oldSecret || len(newSecret) < 40 {
		t.Fatalf("add: %q, %v", newSecret, err)
	}
	if got := secrets(); len(got) != 2 || got[0] != oldSecret || got[1] != newSecret {
		t.Errorf("while rotating the sender signs with %d secrets, want the old and the new", len(got))
	}
	if _, err := s.AddWebhookSecret(admin, h.ID); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("a third secret: %v", err)
	}
	if err := s.RetireWebhookSecret(stranger, h.ID); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another tenant's admin retiring: %v", err)
	}
	if err := s.RetireWebhookSecret(admin, h.ID); err != nil {
		t.Fatal(err)
	}
	if got := secrets(); len(got) != 1 || got[0] != newSecret {
		t.Errorf("after retiring the sender signs with %d secrets, want the new one", len(got))
	}
	var actions []string
	rows, err := db.pool.Query(ctx, "SELECT action FROM audit_log WHERE tenant_id = $1 AND resource_id = $2 ORDER BY seq", acme.ID, h.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		actions = append(actions, a)
	}
	if want := "webhook.create webhook.secret.add webhook.secret.retire"; strings.Join(actions, " ") != want {
		t.Errorf("audited %v, want %s", actions, want)
	}
}
