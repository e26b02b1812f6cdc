package recordings

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// failingUpdates fails the first update of a recording's record, as a
// database that drops the connection while a recording is finished.
type failingUpdates struct {
	*metadata.RecordingStore
	failed bool
}

func (f *failingUpdates) UpdateRecording(ctx context.Context, r *sb.Recording) error {
	if !f.failed {
		f.failed = true
		return errors.New("connection reset")
	}
	return f.RecordingStore.UpdateRecording(ctx, r)
}

// No recording stays in `recording` once its call is over: whatever a
// crash or a failed update left is finished or destroyed by the sweep,
// and Destroy takes a recording in any state.
func TestNoRecordingStaysInRecording(t *testing.T) {
	w := mustWorld(t)
	perSegment := segmentPayload / (recordHeader + 160)

	// A crash before the spool file held one whole segment: nothing to
	// keep, so the recording is destroyed, its key erased.
	small, smallRec := w.begin(t, sb.PCMU)
	talk(smallRec, 0, 50, 160)
	crash(smallRec)
	again, err := NewSpoolStore(w.spoolAt, w.backend)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := again.Recover(); err != nil || len(keys) != 0 {
		t.Fatalf("Recover: %v, %v: want nothing recovered", keys, err)
	}

	// Finish stored the object but could not write the record.
	failing := &failingUpdates{RecordingStore: w.records}
	whole, wholeRec := w.beginWith(t, NewService(again, w.ring, failing, WithServiceClock(func() time.Time { return w.now }), WithInstance(testInstance)), sb.PCMU)
	talk(wholeRec, 0, 3*perSegment/2, 160) // three segments
	if _, err := wholeRec.Finish(w.admin); err == nil {
		t.Fatal("Finish recorded the recording though its update failed")
	}

	// A folder store after a crash: its hidden upload is recovered at
	// start and plays to its last whole segment.
	dir, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	folder, folderRec := w.beginWith(t, w.service(dir), sb.PCMU)
	talk(folderRec, 0, 700, 160)
	crash(folderRec)
	keys, err := dir.Recover()
	if err != nil || len(keys) != 1 || keys[0] != folderRec.rec.ObjectKey {
		t.Fatalf("folder Recover: %v, %v", keys, err)
	}
	if n, err := w.service(dir).Recovered(w.admin, keys); n != 1 || err != nil {
		t.Fatalf("Recovered: %d, %v", n, err)
	}
	if r := w.row(t, folderRec.rec.ID); r.Status != sb.RecordingFailed || !r.Truncated || r.Segments != 2*700/perSegment {
		t.Errorf("folder recording recovered as %s, truncated %v, %d segments", r.Status, r.Truncated, r.Segments)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Join(dir.dir, keys[0])), ".*")); len(matches) != 0 {
		t.Errorf("hidden uploads left: %v", matches)
	}

	for _, c := range []*sb.Call{small, whole, folder} {
		w.end(t, c)
	}
	for _, id := range []sb.ID{smallRec.rec.ID, wholeRec.rec.ID} {
		if r := w.row(t, id); r.Status != sb.RecordingActive {
			t.Fatalf("before the sweep: %s", r.Status)
		}
	}
	// A minute's margin after the call: a recording being finished is
	// not reaped.
	if n, err := w.service(again).Reap(w.admin); n != 0 || err != nil {
		t.Fatalf("Reap at once: %d, %v", n, err)
	}
	w.now = w.now.Add(2 * time.Minute)
	// Each instance reaps its own calls' recordings; a command run beside
	// the service (no instance) reaps none.
	for name, svc := range map[string]*Service{"another instance": w.service(again, WithInstance("elsewhere")),
		"no instance": NewService(again, w.ring, w.records, WithServiceClock(func() time.Time { return w.now }))} {
		if n, err := svc.Reap(w.admin); n != 0 || err != nil {
			t.Errorf("Reap by %s: %d, %v", name, n, err)
		}
	}
	if _, err := w.service(again).Sweep(w.admin); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if r := w.row(t, smallRec.rec.ID); r.Status != sb.RecordingDestroyed || r.WrappedKey != nil || r.EndedAt == nil {
		t.Errorf("the recording with no whole segment: %s, key %v", r.Status, r.WrappedKey != nil)
	}
	r := w.row(t, wholeRec.rec.ID)
	if r.Status != sb.RecordingComplete || r.Truncated || r.Segments != 3 || len(r.SegmentStarts) != 3 ||
		r.DurationMS != int64(3*perSegment/2*20) {
		t.Errorf("the recording stored whole: %s, truncated %v, %d segments, %d ms", r.Status, r.Truncated, r.Segments, r.DurationMS)
	}

	// Destroy works on a recording still being made (an erasure): the
	// recorder's Finish then finds it destroyed and leaves nothing.
	live, liveRec := w.begin(t, sb.PCMU)
	talk(liveRec, 0, perSegment, 160)
	if err := w.svc.Destroy(w.admin, w.row(t, liveRec.rec.ID), "erasure request"); err != nil {
		t.Fatalf("Destroy while recording: %v", err)
	}
	talk(liveRec, perSegment, perSegment, 160)
	if _, err := liveRec.Finish(w.admin); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("Finish after Destroy: %v, want ECONFLICT", err)
	}
	if r := w.row(t, liveRec.rec.ID); r.Status != sb.RecordingDestroyed || r.WrappedKey != nil {
		t.Errorf("a destroyed recording came back as %s (key %v)", r.Status, r.WrappedKey != nil)
	}
	if _, err := w.spool.Open(w.admin, liveRec.rec.ObjectKey); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("the destroyed recording's object: %v", err)
	}
	_ = live
	if entries, _ := os.ReadDir(w.spoolAt); len(entries) != 0 {
		t.Errorf("spool holds %d files", len(entries))
	}
}
