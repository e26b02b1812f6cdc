//go:build linux

package journal

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	sb "github.com/switchboard-voice/switchboard"
)

// An append that fails part-way (EFBIG here, ENOSPC on a full disk)
// leaves a torn line at the end of the file while the process goes on;
// the next entry, acknowledged as durable, must not be glued to it and
// dropped as unreadable.
func TestFailedAppendDoesNotSwallowTheNext(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	r := mustTearAnAppend(t, d)
	c := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	if _, err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.calls[c.ID]; !ok {
		t.Errorf("call %s, journaled after a failed append, was lost", c.ID)
	}
}

// The same, with a drain between the failed append and the next write:
// the drain keeps the torn bytes (cut copies them) and leaves down set
// with nothing pending.
// An append that fails part-way (EFBIG here, ENOSPC on a full disk)
// leaves a torn line at the end of the file while the process goes on;
// the next entry, acknowledged as durable, must not be glued to it and
// dropped as unreadable.
func TestFailedAppendThenDrainDoesNotSwallowTheNext(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	r := mustTearAnAppend(t, d)
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	if n, err := r.Drain(ctx); n != 1 || err != nil {
		t.Fatalf("drain: %d, %v", n, err)
	}
	c := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.calls[c.ID]; !ok {
		t.Errorf("call %s, journaled after a failed append, was lost", c.ID)
	}
}

// mustTearAnAppend opens a journal on d, down, with one entry, and makes
// the next append fail part-way: the file size limit lets 20 bytes of it
// land.
func mustTearAnAppend(t *testing.T, d *db) *Recorder {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	d.down = true
	r, err := Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CreateCall(ctx, &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(st.Size()) + 20
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	berr := r.CreateCall(ctx, &sb.Call{ID: sb.NewID(), Status: sb.CallRinging})
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if berr == nil {
		t.Fatal("the append past the file size limit did not fail")
	}
	return r
}
