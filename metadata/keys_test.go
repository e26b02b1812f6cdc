package metadata

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/recordings"
)

func mustKeyring(tb testing.TB, s string) *recordings.Keyring {
	tb.Helper()
	k, err := recordings.ParseKeyring(s)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// A recording being made while `keys rotate` re-wraps its key keeps the
// re-wrapped key when it finishes: Finish does not write back the key the
// recording started with, which dies with the old keyring version.
func TestFinishKeepsTheKeyARotationReplaced(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	if err := NewTenantService(db).SetRecordingPolicy(ctx, tenant.ID, sb.RecordWithConsent); err != nil {
		t.Fatal(err)
	}
	v1 := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	v2 := "2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	running := mustKeyring(t, v1) // the instance recording still has only version 1
	store, err := recordings.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	records := NewRecordingStore(db)
	svc := recordings.NewService(store, running, records)
	c := &sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, From: "+15550001111", To: "2000", Status: sb.CallAnswered, CreatedAt: time.Now()}
	if err := NewCallStore(db).CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	active, err := svc.Begin(ctx, c, &sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: time.Now()}, sb.PCMU, sb.PCMU)
	if err != nil || active == nil {
		t.Fatalf("Begin: %v, %v", active, err)
	}
	now := time.Now()
	for i := 0; i < 10; i++ {
		active.Tap(true, bytes.Repeat([]byte{0xff}, 160), now.Add(time.Duration(i)*20*time.Millisecond))
	}

	rotation, err := NewKeyStore(db).Rotate(ctx, mustKeyring(t, v1+","+v2), nil, nil)
	if err != nil || rotation.DataKeys != 1 {
		t.Fatalf("rotation during the recording: %+v, %v", rotation, err)
	}
	rec, err := active.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := records.FindRecordingByID(ctx, tenant.ID, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != sb.RecordingComplete || got.KeyVersion != 2 || rec.KeyVersion != 2 {
		t.Fatalf("finished recording: status %s, key version %d (returned %d), want the rotation's 2", got.Status, got.KeyVersion, rec.KeyVersion)
	}
	// Version 1 destroyed: the recording still opens.
	if _, err := mustKeyring(t, v2).Unwrap(got.KeyVersion, got.WrappedKey, got.ID[:]); err != nil {
		t.Errorf("the recording's key under version 2 alone: %v", err)
	}
	if old, err := NewKeyStore(db).OldKeys(ctx, 2); err != nil || len(old) != 0 {
		t.Errorf("rows left on an old version: %v, %v", old, err)
	}
}

// Rotation reads data keys in batches by ID: keys that cannot be opened
// are passed to the report once each, however many batches they would
// have filled, and the secrets sealed with the keyring are re-sealed too.
func TestRotationGoesPastWhatFails(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	c := &sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, From: "+15550001111", To: "2000", Status: sb.CallCompleted, CreatedAt: time.Now()}
	if err := NewCallStore(db).CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	v1 := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	ring := mustKeyring(t, v1+",2:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))
	records := NewRecordingStore(db)
	add := func(version uint32, wrapped []byte, id sb.ID) {
		t.Helper()
		now := time.Now()
		if err := records.CreateRecording(ctx, &sb.Recording{ID: id, TenantID: tenant.ID, CallID: c.ID, Status: sb.RecordingComplete, Codec: "PCMU",
			ClockRate: 8000, StartedAt: now, Consent: sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: now, Policy: sb.RecordWithConsent},
			ObjectKey: id.String(), KeyVersion: version, WrappedKey: wrapped}); err != nil {
			t.Fatal(err)
		}
	}
	var bad []sb.ID
	for i := 0; i < 5; i++ {
		id := sb.NewID()
		add(1, []byte("not a wrapped key, long enough to be tried"), id)
		bad = append(bad, id)
	}
	for i := 0; i < 3; i++ {
		id := sb.NewID()
		_, wrapped, err := mustKeyring(t, v1).Wrap(bytes.Repeat([]byte{7}, 32), id[:])
		if err != nil {
			t.Fatal(err)
		}
		add(1, wrapped, id)
	}
	hook := sb.NewID()
	sealed, err := mustKeyring(t, v1).Seal([]byte("whsec_x"), hook[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, "INSERT INTO webhooks (id, tenant_id, url, secret, events, created_at) VALUES ($1, $2, 'https://crm.test/h', $3, '{call.ended}', now())",
		hook, tenant.ID, sealed); err != nil {
		t.Fatal(err)
	}
	keys := NewKeyStore(db)
	keys.batch = 2
	reported := map[sb.ID]int{}
	r, err := keys.Rotate(ctx, ring, nil, func(u KeyUse, err error) { reported[u.ID]++ })
	if err != nil || r != (RotationReport{DataKeys: 3, Secrets: 1, Failed: 5}) {
		t.Fatalf("rotation: %+v, %v", r, err)
	}
	for _, id := range bad {
		if reported[id] != 1 {
			t.Errorf("recording %s reported %d times, want once", id, reported[id])
		}
	}
	old, err := keys.OldKeys(ctx, 2)
	if err != nil || len(old) != len(bad) {
		t.Fatalf("left on an old version: %v, %v", old, err)
	}
	for i, u := range old {
		if u.ID != bad[i] || u.What != "recording" || u.Version != 1 {
			t.Errorf("left: %v, want recording %s", u, bad[i])
		}
	}
}
