package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
)

// Logins, failed logins and logouts land in the audit log, with where they
// came from and without the email that was tried.
func TestLoginsAreAudited(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u := f.Operators[0]
	var he *opclient.HTTPError
	if _, err := opclient.Login(ctx, m.HTTPURL(), u.Email, "not the password"); !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("wrong password: %v", err)
	}
	c, err := opclient.Login(ctx, m.HTTPURL(), u.Email, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	log := metadata.NewAuditLog(m.DB)
	entries, err := log.Recent(ctx, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d audit entries, want the failed and the good login", len(entries))
	}
	good, failed := entries[0], entries[1] // newest first
	if failed.Action != "login" || failed.Outcome != "denied" || failed.TenantID != nil || failed.IP != "127.0.0.1" {
		t.Errorf("failed login entry %+v", failed)
	}
	if good.Action != "login" || good.Outcome != "ok" || good.ActorUserID == nil || *good.ActorUserID != u.ID ||
		good.TenantID == nil || *good.TenantID != f.Tenant.ID || good.UserAgent == "" {
		t.Errorf("login entry %+v", good)
	}
	for _, e := range entries {
		if strings.Contains(e.ResourceID+e.Reason+e.UserAgent, u.Email) {
			t.Errorf("an audit entry holds the email: %+v", e)
		}
	}
	if broken, err := log.Verify(ctx); err != nil || broken != 0 {
		t.Errorf("audit chain broken at %d: %v", broken, err)
	}
}

// The service signs the audit head (at least when it stops); `switchboard
// audit verify` checks the chain and the checkpoint.
func TestAuditVerifyCommand(t *testing.T) {
	seed := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	m := mustStartService(t, map[string]string{"audit-key": seed})
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx := context.Background()
	c, err := opclient.Login(ctx, m.HTTPURL(), f.Operators[0].Email, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := m.Close(); err != nil { // the head is signed at shutdown
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"audit", "verify", "-database-url", m.Config.DatabaseURL, "-audit-key", seed}, nil, &out, &errOut); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "audit log whole; 1 signed checkpoints hold") {
		t.Errorf("audit verify said %q", out.String())
	}
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))
	if err := run(ctx, []string{"audit", "verify", "-database-url", m.Config.DatabaseURL, "-audit-key", other}, nil, &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "checkpoint at entry 1") {
		t.Errorf("audit verify with another key: %v", err)
	}
}

// GET /v1/audit: a tenant's admins read its audit log; a supervisor is
// refused; another tenant's entries are not there.
func TestAuditAPIForAdmins(t *testing.T) {
	m := mustStartService(t, nil)
	a := mustProvision(t, m, "Acme", "2000", 1)
	b := mustProvision(t, m, "Other", "2001", 1)
	ctx := context.Background()
	for _, f := range []*tenantFixture{a, b} {
		c, err := opclient.Login(ctx, m.HTTPURL(), f.Operators[0].Email, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	_, adminKey, err := metadata.NewAPIKeyService(m.DB).CreateAPIKey(ctx, a.Tenant.ID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Entries []struct {
			Action   string  `json:"action"`
			TenantID *string `json:"tenant_id"`
			Outcome  string  `json:"outcome"`
		} `json:"entries"`
	}
	if code := apiGet(t, m, adminKey, "/v1/audit?action=login", &body); code != 200 {
		t.Fatalf("admin GET /v1/audit: %d", code)
	}
	if len(body.Entries) != 1 || body.Entries[0].TenantID == nil || *body.Entries[0].TenantID != a.Tenant.ID.String() || body.Entries[0].Outcome != "ok" {
		t.Errorf("admin sees %+v, want their tenant's one login", body.Entries)
	}
	if code := apiGet(t, m, a.APIKey, "/v1/audit", nil); code != 403 {
		t.Errorf("supervisor GET /v1/audit: %d, want 403", code)
	}
	if code := apiGet(t, m, adminKey, "/v1/audit?since=yesterday", nil); code != 400 {
		t.Errorf("bad since: %d, want 400", code)
	}
}

// `audit verify` says when signed checkpoints do not cover the log: there
// is none (the service runs without an audit key), or the last is older
// than two of the service's intervals.
func TestAuditVerifySaysWhenUncovered(t *testing.T) {
	seed := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	m := mustStartService(t, nil)
	ctx := context.Background()
	verify := func() string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"audit", "verify", "-database-url", m.Config.DatabaseURL, "-audit-key", seed}, nil, &out, &errOut); err != nil {
			t.Fatalf("audit verify: %v\n%s", err, errOut.String())
		}
		return out.String()
	}
	if out := verify(); !strings.Contains(out, "warning: no signed checkpoint") {
		t.Errorf("audit verify without checkpoints said %q", out)
	}
	key, err := parseAuditKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	log := metadata.NewAuditLog(m.DB)
	if err := log.Append(ctx, &sb.AuditEntry{Action: "login"}); err != nil {
		t.Fatal(err)
	}
	if _, err := log.Checkpoint(ctx, key); err != nil {
		t.Fatal(err)
	}
	if out := verify(); strings.Contains(out, "warning") {
		t.Errorf("audit verify with a fresh checkpoint said %q", out)
	}
	// The service stopped signing an hour ago (a superuser ages the row).
	conn := dbConn(t, m)
	if _, err := conn.Exec(ctx, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;
		UPDATE audit_checkpoints SET at = at - interval '1 hour';
		ALTER TABLE audit_checkpoints ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	if out := verify(); !strings.Contains(out, "warning: the last signed checkpoint is from") {
		t.Errorf("audit verify with an hour-old checkpoint said %q", out)
	}
}

// A tenant's admins read their audit log numbered 1, 2, 3... and chained
// entry to entry, however many entries other tenants had appended between
// theirs: neither the numbers nor the hashes they read count another
// tenant's audited actions.
func TestAuditLogIsNumberedPerTenant(t *testing.T) {
	m := mustStartService(t, nil)
	acme := mustProvision(t, m, "Acme", "2000", 0)
	globex := mustProvision(t, m, "Globex", "3000", 0)
	acmeAdmin := mustUser(t, m, acme.Tenant.ID, "admin@acme.test", sb.RoleAdmin)
	globexAdmin := mustUser(t, m, globex.Tenant.ID, "admin@globex.test", sb.RoleAdmin)
	mustLogin(t, m, acmeAdmin)          // acme's 1
	mustLogin(t, m, globexAdmin)        // globex's 1
	mustLogin(t, m, globexAdmin)        // globex's 2
	admin := mustLogin(t, m, acmeAdmin) // acme's 2

	var page struct {
		Entries []sb.AuditEntry
		Next    string
	}
	if code, body := admin.do("GET", "/v1/audit", "", &page); code != 200 || len(page.Entries) != 2 {
		t.Fatalf("acme's audit log: %d %s", code, body)
	}
	newest, oldest := page.Entries[0], page.Entries[1]
	if newest.Seq != 2 || oldest.Seq != 1 || !bytes.Equal(newest.PrevHash, oldest.Hash) {
		t.Errorf("acme's entries are numbered %d and %d, the newest chained to %x, the oldest's hash %x; want 2 on 1",
			newest.Seq, oldest.Seq, newest.PrevHash, oldest.Hash)
	}
	var first, second struct {
		Entries []sb.AuditEntry
		Next    string
	}
	admin.do("GET", "/v1/audit?limit=1", "", &first)
	admin.do("GET", "/v1/audit?limit=1&before="+first.Next, "", &second)
	if first.Next != "2" || len(second.Entries) != 1 || second.Entries[0].Seq != 1 {
		t.Errorf("acme's pages: next %q, then %+v", first.Next, second.Entries)
	}
	var verified struct {
		Whole       bool  `json:"whole"`
		FirstBroken int64 `json:"first_broken"`
	}
	if code, body := admin.do("POST", "/v1/audit/verify", "", &verified); code != 200 || !verified.Whole || verified.FirstBroken != 0 {
		t.Errorf("acme's check of the log: %d %s", code, body)
	}
}
