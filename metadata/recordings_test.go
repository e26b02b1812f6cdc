package metadata

import (
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// A destroyed recording stays as its first destruction left it: a second
// destruction (two instances at once) and a recorder finishing late are
// both ECONFLICT, and the wrapped key is never written back.
func TestDestroyedRecordingStaysDestroyed(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := &sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, Status: sb.CallCompleted, CreatedAt: now}
	if err := NewCallStore(db).CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	records := NewRecordingStore(db)
	rec := &sb.Recording{ID: sb.NewID(), TenantID: tenant.ID, CallID: c.ID, Status: sb.RecordingActive, Codec: "PCMU", ClockRate: 8000,
		StartedAt: now, Consent: sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: now, Policy: sb.RecordWithConsent},
		ObjectKey: "k", KeyVersion: 1, WrappedKey: []byte("wrapped key")}
	if err := records.CreateRecording(ctx, rec); err != nil {
		t.Fatal(err)
	}
	ended := now.Add(time.Minute)
	first := *rec
	first.Status, first.EndedAt, first.WrappedKey = sb.RecordingDestroyed, &ended, nil
	if err := records.UpdateRecording(ctx, &first); err != nil || first.WrappedKey != nil {
		t.Fatalf("first destruction: %v, key %v", err, first.WrappedKey != nil)
	}
	later := now.Add(time.Hour)
	for name, st := range map[string]sb.RecordingStatus{"a second destruction": sb.RecordingDestroyed, "a late finish": sb.RecordingComplete} {
		again := *rec
		again.Status, again.EndedAt, again.SizeBytes = st, &later, 12345
		if err := records.UpdateRecording(ctx, &again); sb.ErrorCode(err) != sb.ECONFLICT {
			t.Errorf("%s: %v, want ECONFLICT", name, err)
		}
	}
	r, err := records.FindRecordingByID(ctx, tenant.ID, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != sb.RecordingDestroyed || r.WrappedKey != nil || !r.EndedAt.Equal(ended) || r.SizeBytes != 0 {
		t.Errorf("after: %s, key %v, ended %v, %d bytes; want as the first destruction left it", r.Status, r.WrappedKey != nil, r.EndedAt, r.SizeBytes)
	}
}
