package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A bounded soak: the load tool (cmd/switchboard-load, built here) places
// a few hundred short calls through the binary, twenty at a time, for 30
// s. Every call is answered and its audio arrives intact both ways, and
// once the last has ended the service holds what it held before the
// first: the same goroutines and open files, and no heap that grew with
// the calls. scripts/soak.sh runs the same for longer and writes the
// figures to docs/performance.md.
func TestSoakLeavesNothingBehind(t *testing.T) {
	s := mustStartBinary(t)
	var dbURL string
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "SWITCHBOARD_DATABASE_URL="); ok {
			dbURL = v
		}
	}
	load := filepath.Join(t.TempDir(), "switchboard-load")
	if out, err := exec.Command("go", "build", "-o", load, "../switchboard-load").CombinedOutput(); err != nil {
		t.Fatalf("go build switchboard-load: %v\n%s", err, out)
	}
	report := filepath.Join(t.TempDir(), "soak.json")
	cmd := exec.Command(load, "-database-url", dbURL, "-http-url", s.httpURL, "-sip-addr", s.sipAddr,
		"-calls", "20", "-rate", "20", "-hold", "2s", "-duration", "30s", "-json", report)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("switchboard-load: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	type runtime struct {
		Goroutines  float64 `json:"goroutines"`
		HeapInuseMB float64 `json:"heap_inuse_mb"`
		OpenFDs     float64 `json:"open_fds"`
	}
	type direction struct {
		Received int     `json:"frames_received"`
		Corrupt  int     `json:"frames_corrupt"`
		LossPct  float64 `json:"loss_pct"`
	}
	var rep struct {
		Attempts   int       `json:"calls_attempted"`
		Answered   int       `json:"calls_answered"`
		ToOperator direction `json:"caller_to_operator"`
		ToCaller   direction `json:"operator_to_caller"`
		Before     *runtime  `json:"service_runtime_before"`
		After      *runtime  `json:"service_runtime_after"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Attempts < 200 || rep.Answered != rep.Attempts {
		t.Errorf("%d calls answered of %d placed, want all of at least 200", rep.Answered, rep.Attempts)
	}
	for name, d := range map[string]direction{"caller → operator": rep.ToOperator, "operator → caller": rep.ToCaller} {
		if d.Received == 0 || d.Corrupt > 0 || d.LossPct > 0.1 {
			t.Errorf("%s: %d frames received, %d corrupt, %.3f%% lost", name, d.Received, d.Corrupt, d.LossPct)
		}
	}
	if rep.Before == nil || rep.After == nil {
		t.Fatal("the report has no service runtime figures")
	}
	before, after := *rep.Before, *rep.After
	t.Logf("%d calls: goroutines %.0f → %.0f, open files %.0f → %.0f, heap %.1f → %.1f MB",
		rep.Attempts, before.Goroutines, after.Goroutines, before.OpenFDs, after.OpenFDs, before.HeapInuseMB, after.HeapInuseMB)
	if after.Goroutines > before.Goroutines+2 || after.OpenFDs > before.OpenFDs+2 || after.HeapInuseMB > before.HeapInuseMB+32 {
		t.Errorf("after %d calls the service holds %.0f goroutines (before: %.0f), %.0f open files (%.0f), %.1f MB heap (%.1f)",
			rep.Attempts, after.Goroutines, before.Goroutines, after.OpenFDs, before.OpenFDs, after.HeapInuseMB, before.HeapInuseMB)
	}
}
