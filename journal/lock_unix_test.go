//go:build unix

package journal

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A journal in use by one process is refused to another, with a message
// that says what to do; the same process may open it again.
func TestJournalIsOneProcesss(t *testing.T) {
	if path := os.Getenv("JOURNAL_LOCK_CHILD"); path != "" {
		_, err := Open(path, newDB(), unreachable, slog.New(slog.DiscardHandler))
		fmt.Printf("child: %v\n", err)
		return
	}
	path := filepath.Join(t.TempDir(), "journal")
	first, err := Open(path, newDB(), unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, newDB(), unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("the same process again: %v", err)
	}
	// The lock is the open recorders' file: a collected recorder's file is
	// closed, and its lock gone, whenever the collector runs.
	defer runtime.KeepAlive(again)
	defer runtime.KeepAlive(first)
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalIsOneProcesss$")
	cmd.Env = append(os.Environ(), "JOURNAL_LOCK_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "child: journal: "+path+" is in use by another process") {
		t.Errorf("another process opening the journal: %s; want it refused", out)
	}
	other := filepath.Join(t.TempDir(), "journal")
	cmd = exec.Command(os.Args[0], "-test.run=^TestJournalIsOneProcesss$")
	cmd.Env = append(os.Environ(), "JOURNAL_LOCK_CHILD="+other)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "child: <nil>") {
		t.Errorf("another process opening its own journal: %v, %s", err, out)
	}
}
