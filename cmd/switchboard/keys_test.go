package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/webhooks/signature"
)

// Keyrings of the rotation tests: version 1 (testKeyring), then version 2
// added and active, then version 1 removed.
var (
	keyV2           = "2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{43}, 32))
	testKeyringV1V2 = testKeyring + "," + keyV2
)

// mustMigratedDB returns a fresh database migrated by `switchboard
// migrate`, and a connection to it, with no service running.
func mustMigratedDB(t *testing.T) (string, *metadata.DB) {
	t.Helper()
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"migrate", "-database-url", url}, nil, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut.String())
	}
	db, err := metadata.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return url, db
}

// TestKeyRotationSkipsKeysThatFailOnce: data keys that cannot be unwrapped
// (their version left the keyring) and sort first do not stop the
// rotation: each is reported once, every other key is re-wrapped, and
// `-check` names exactly the ones left.
func TestKeyRotationSkipsKeysThatFailOnce(t *testing.T) {
	url, db := mustMigratedDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tenant := &sb.Tenant{Name: "Acme"}
	if err := metadata.NewTenantService(db).CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	call := &sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, From: "+15550001111", To: "2000", Status: sb.CallCompleted, CreatedAt: now}
	if err := metadata.NewCallStore(db).CreateCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	// More unreadable keys than one batch (500), all before the good ones.
	const bad, good = 600, 5
	conn := dbConn(t, &Main{Config: &Config{DatabaseURL: url}})
	if _, err := conn.Exec(ctx, `INSERT INTO recordings (id, tenant_id, call_id, status, codec, clock_rate, started_at, consent_given,
		consent_mechanism, consent_at, consent_policy, object_key, key_version, wrapped_key)
		SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, $1, $2, 'complete', 'PCMU', 8000, $3, true, 'api', $3, 'consent',
		'k' || i, 7, '\x0102'::bytea FROM generate_series(1, $4) i`, tenant.ID, call.ID, now, bad); err != nil {
		t.Fatal(err)
	}
	ring1, err := recordings.ParseKeyring(testKeyring)
	if err != nil {
		t.Fatal(err)
	}
	records := metadata.NewRecordingStore(db)
	var goods []*sb.Recording
	for i := 0; i < good; i++ {
		rec := &sb.Recording{ID: sb.NewID(), TenantID: tenant.ID, CallID: call.ID, Status: sb.RecordingComplete, Codec: "PCMU", ClockRate: 8000,
			StartedAt: now, Consent: sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: now, Policy: sb.RecordWithConsent}, ObjectKey: fmt.Sprint("good", i)}
		if rec.KeyVersion, rec.WrappedKey, err = ring1.Wrap(bytes.Repeat([]byte{byte(i)}, 32), rec.ID[:]); err != nil {
			t.Fatal(err)
		}
		if err := records.CreateRecording(ctx, rec); err != nil {
			t.Fatal(err)
		}
		goods = append(goods, rec)
	}

	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"keys", "rotate", "-database-url", url, "-keyring", testKeyringV1V2}, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(bad, " keys or secrets could not be opened")) {
		t.Errorf("keys rotate: %v, want %d failures", err, bad)
	}
	if !strings.Contains(stdout.String(), fmt.Sprint(good, " data keys re-wrapped")) {
		t.Errorf("keys rotate said %q, want the %d good keys re-wrapped", stdout.String(), good)
	}
	for i := 1; i <= bad; i++ {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if n := strings.Count(stderr.String(), "recording "+id); n != 1 {
			t.Fatalf("recording %s reported %d times, want once", id, n)
		}
	}
	ring2, err := recordings.ParseKeyring(keyV2)
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range goods {
		got, err := records.FindRecordingByID(ctx, tenant.ID, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ring2.Unwrap(got.KeyVersion, got.WrappedKey, rec.ID[:])
		if err != nil || !bytes.Equal(key, bytes.Repeat([]byte{byte(i)}, 32)) {
			t.Errorf("good recording %d after rotation: version %d, %v", i, got.KeyVersion, err)
		}
	}
	entries, err := metadata.NewAuditLog(db).Recent(ctx, nil, 10)
	if err != nil || len(entries) == 0 || entries[0].Action != "keys.rotate" ||
		entries[0].Detail != fmt.Sprintf("%d data keys re-wrapped, 0 secrets re-sealed, %d failed", good, bad) {
		t.Errorf("audited as %+v, %v", entries, err)
	}

	stdout.Reset()
	err = run(ctx, []string{"keys", "rotate", "-check", "-database-url", url, "-keyring", testKeyringV1V2}, nil, &stdout, &stderr)
	if err == nil || strings.Count(stdout.String(), "\n") != bad || strings.Count(stdout.String(), ": key version 7") != bad {
		t.Errorf("-check: %v, listed %d rows, want the %d on version 7", err, strings.Count(stdout.String(), "\n"), bad)
	}
}

// TestKeyRotationReachesEverySecret: `keys rotate` re-seals the trunk
// digest HA1s, carrier passwords, webhook secrets (both while a
// webhook's secret is being rotated) and WhatsApp connections' app secrets
// and access tokens sealed with the old
// version; -check lists them before and nothing after; then a service
// whose keyring holds only the new version still lets the digest trunk in,
// registers with the carrier, and signs webhooks with the same secrets.
func TestKeyRotationReachesEverySecret(t *testing.T) {
	url, db := mustMigratedDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	offline := &Main{DB: db, Config: &Config{DatabaseURL: url}}
	f := mustProvision(t, offline, "Acme", "2000", 1)
	const digestPassword = "trunk-digest-Secret-1"
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"trunk", "create", "-database-url", url, "-keyring", testKeyring, "-tenant", f.Tenant.ID.String(),
		"-name", "carrier-in", "-username", "carrier-in", "-number", "2100"}, strings.NewReader(digestPassword+"\n"), &out, &errOut); err != nil {
		t.Fatalf("trunk create: %v\n%s", err, errOut.String())
	}
	registrar, registered := carrierSIPp(ctx, t, "uas_registrar.xml")
	carrier := outboundTrunk(t, offline, f, "registered", registrar, 1, "-register")

	var mu sync.Mutex
	var signed []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(signature.Header)
		mu.Lock()
		signed = append(signed, sig+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	ring1, err := recordings.ParseKeyring(testKeyring)
	if err != nil {
		t.Fatal(err)
	}
	admin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: f.Tenant.ID, HomeTenantID: f.Tenant.ID, UserID: sb.NewID(), Role: sb.RoleAdmin})
	hook, secret, err := metadata.NewWebhookStore(db, ring1).CreateWebhook(admin, receiver.URL+"/hook", []string{"call.offered"})
	if err != nil {
		t.Fatal(err)
	}
	wa := &sb.WhatsAppConnection{Name: "Support line", PhoneNumberID: waPhoneID, Number: waBusiness}
	if _, err := metadata.NewWhatsAppStore(db, ring1).CreateWhatsApp(admin, wa, waAppSecret, waToken); err != nil {
		t.Fatal(err)
	}
	newSecret, err := metadata.NewWebhookStore(db, ring1).AddWebhookSecret(admin, hook.ID)
	if err != nil {
		t.Fatal(err)
	}

	check := func(keyring string) (string, error) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"keys", "rotate", "-check", "-database-url", url, "-keyring", keyring}, nil, &stdout, &stderr)
		return stdout.String(), err
	}
	var digestTrunk sb.ID
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	conn := dbConn(t, offline)
	if err := conn.QueryRow(ctx, "SELECT id FROM trunks WHERE username = 'carrier-in'").Scan(&digestTrunk); err != nil {
		t.Fatal(err)
	}
	listed, err := check(testKeyringV1V2)
	for _, want := range []string{"trunk digest HA1 " + digestTrunk.String(), "trunk outbound password " + carrier.String(), "webhook secret " + hook.ID.String(),
		"webhook new secret " + hook.ID.String(), "WhatsApp app secret " + wa.ID.String(), "WhatsApp access token " + wa.ID.String()} {
		if !strings.Contains(listed, want+" (tenant "+f.Tenant.ID.String()+"): key version 1") {
			t.Errorf("-check before rotating does not list %q:\n%s", want, listed)
		}
	}
	if err == nil || strings.Count(listed, "\n") != 6 {
		t.Errorf("-check before rotating: %v, listed\n%s", err, listed)
	}

	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"keys", "rotate", "-database-url", url, "-keyring", testKeyringV1V2}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "0 data keys re-wrapped and 6 secrets re-sealed with key version 2") {
		t.Errorf("keys rotate said %q", stdout.String())
	}
	if listed, err := check(keyV2); err != nil || !strings.Contains(listed, "every data key and sealed secret is under key version 2") {
		t.Errorf("-check after rotating: %v\n%s", err, listed)
	}

	ring2, err := recordings.ParseKeyring(keyV2)
	if err != nil {
		t.Fatal(err)
	}
	if _, sec, err := metadata.NewWhatsAppStore(db, ring2).WhatsAppByID(ctx, wa.ID); err != nil || sec.AppSecret != waAppSecret || sec.AccessToken != waToken {
		t.Errorf("the WhatsApp secrets under version 2 alone: %v", err)
	}

	// Version 1 leaves the keyring.
	m := mustStartService(t, map[string]string{"database-url": url, "keyring": keyV2, "register-sync": "100ms"})
	if err := <-registered; err != nil {
		t.Fatalf("the carrier's registration with the re-sealed password: %v", err)
	}
	digestTrunkCalls(t, m, f, digestPassword)
	for {
		mu.Lock()
		got := append([]string(nil), signed...)
		mu.Unlock()
		if len(got) > 0 {
			sig, body, _ := strings.Cut(got[0], " ")
			for _, s := range []string{secret, newSecret} {
				if err := signature.Verify(sig, []byte(body), []string{s}, time.Minute); err != nil {
					t.Errorf("the webhook was not signed with both its secrets: %q: %v", sig, err)
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no webhook delivered after the rotation; logs:\n%s", logsOf(m))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
