package recordings

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// failingDeletes fails the first deletion of an object, as a bucket that
// is briefly down.
type failingDeletes struct {
	Store
	mu     sync.Mutex
	failed bool
}

func (f *failingDeletes) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	first := !f.failed
	f.failed = true
	f.mu.Unlock()
	if first {
		return errors.New("bucket unavailable")
	}
	return f.Store.Delete(ctx, key)
}

// destructions counts the audited destructions of recording id.
func (w *world) destructions(t *testing.T, id sb.ID) int {
	t.Helper()
	entries, err := metadata.NewAuditLog(w.db).FindAuditEntries(w.admin, sb.AuditFilter{Action: "recording.destroy", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.ResourceID == id.String() {
			n++
		}
	}
	return n
}

// finished records a new call whole and ends it.
func (w *world) finished(t *testing.T, svc *Service) *sb.Recording {
	t.Helper()
	c, rec := w.beginWith(t, svc, sb.PCMU)
	talk(rec, 0, 100, 160)
	if _, err := rec.Finish(w.admin); err != nil {
		t.Fatal(err)
	}
	w.end(t, c)
	return w.row(t, rec.rec.ID)
}

// A destruction whose object could not be deleted is audited all the
// same (the erased key is the destruction), and the object is deleted by
// the next sweep; destroying it again deletes, but does not audit again.
func TestDestroyAuditedWhenTheDeleteFails(t *testing.T) {
	w := mustWorld(t)
	svc := w.service(&failingDeletes{Store: w.spool}, WithAudit(metadata.NewAuditLog(w.db)))
	rec := w.finished(t, svc)

	if err := svc.Destroy(w.admin, rec, "erasure request"); err == nil {
		t.Fatal("Destroy: the failed deletion was not reported")
	}
	if r := w.row(t, rec.ID); r.Status != sb.RecordingDestroyed || r.WrappedKey != nil {
		t.Fatalf("after Destroy: %s, key %v", r.Status, r.WrappedKey != nil)
	}
	if n := w.destructions(t, rec.ID); n != 1 {
		t.Fatalf("%d destructions audited, want 1", n)
	}
	if _, err := w.spool.Open(w.admin, rec.ObjectKey); err != nil {
		t.Fatalf("the object is gone though its deletion failed: %v", err)
	}
	if _, err := svc.Sweep(w.admin); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if _, err := w.spool.Open(w.admin, rec.ObjectKey); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("after the sweep, the destroyed recording's object: %v", err)
	}
	if err := svc.Destroy(w.admin, rec, "erasure request"); err != nil {
		t.Errorf("Destroy again: %v", err)
	}
	if n := w.destructions(t, rec.ID); n != 1 {
		t.Errorf("%d destructions audited after destroying again, want 1", n)
	}
}

// Two instances destroying one recording (an erasure and retention) audit
// one destruction, and the second leaves the first's record as it was.
func TestDestroyedOnce(t *testing.T) {
	w := mustWorld(t)
	rec := w.finished(t, w.svc)
	log := metadata.NewAuditLog(w.db)
	first, second := w.service(w.spool, WithAudit(log)), w.service(w.spool, WithAudit(log))
	a, b := w.row(t, rec.ID), w.row(t, rec.ID) // each read it before either destroyed it
	if err := first.Destroy(w.admin, a, "erasure request"); err != nil {
		t.Fatalf("first Destroy: %v", err)
	}
	ended := w.row(t, rec.ID).EndedAt
	w.now = w.now.Add(time.Hour)
	b.EndedAt = nil
	if err := second.Destroy(w.admin, b, "retention period ended"); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if n := w.destructions(t, rec.ID); n != 1 {
		t.Errorf("%d destructions audited, want 1", n)
	}
	if r := w.row(t, rec.ID); r.Status != sb.RecordingDestroyed || !r.EndedAt.Equal(*ended) {
		t.Errorf("after the second Destroy: %s, ended %v, want %v", r.Status, r.EndedAt, ended)
	}
}

// droppedVersion lists the instance's stuck recordings as wrapped under
// a keyring version no longer held, so that none can be reaped.
type droppedVersion struct{ *metadata.RecordingStore }

func (d droppedVersion) StuckRecordings(ctx context.Context, instance string, endedBefore time.Time, limit int) ([]*sb.Recording, error) {
	recs, err := d.RecordingStore.StuckRecordings(ctx, instance, endedBefore, limit)
	for _, r := range recs {
		r.KeyVersion = 99
	}
	return recs, err
}

// A recording that cannot be reaped does not stop retention: the sweep
// still destroys what has expired, and reports the one it could not reap.
func TestSweepPastAnUnreapableRecording(t *testing.T) {
	w := mustWorld(t)
	expired := w.finished(t, w.svc)
	// Stored whole, but its record was not written: stuck in recording.
	c, stuck := w.beginWith(t, w.service(w.spool), sb.PCMU)
	stuck.s.records = &failingUpdates{RecordingStore: w.records}
	talk(stuck, 0, 100, 160)
	if _, err := stuck.Finish(w.admin); err == nil {
		t.Fatal("Finish recorded the recording though its update failed")
	}
	w.end(t, c)

	w.now = w.start.Add(3651 * 24 * time.Hour)
	svc := NewService(w.spool, w.ring, droppedVersion{w.records}, WithServiceClock(func() time.Time { return w.now }), WithInstance(testInstance))
	n, err := svc.Sweep(w.admin)
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Sweep: %v, want the unreapable recording reported", err)
	}
	if n != 1 {
		t.Errorf("Sweep destroyed %d, want 1", n)
	}
	if r := w.row(t, expired.ID); r.Status != sb.RecordingDestroyed {
		t.Errorf("the expired recording: %s", r.Status)
	}
	if r := w.row(t, stuck.rec.ID); r.Status != sb.RecordingActive {
		t.Errorf("the unreapable recording: %s", r.Status)
	}
}
