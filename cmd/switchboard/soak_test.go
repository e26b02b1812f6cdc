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
// s, to twenty-five operators (a caller who hangs up and calls again at
// once may find their last operator not yet free, the call still ending,
// which on a loaded machine is long enough for a run at exactly full
// capacity to meet "all operators busy"). Every call is answered and its
// audio arrives intact both ways, and once the last has ended the service
// holds what it held before the first: the same goroutines and open
// files, and no call still in progress. The heap is logged, not checked:
// what it holds depends on when the garbage collector last ran, and a
// leak of calls shows in their goroutines, sockets and registry first.
// scripts/soak.sh runs the same for longer and writes the figures to
// docs/performance.md.
func TestSoakLeavesNothingBehind(t *testing.T) {
	s := mustStartBinary(t)
	dbURL := s.databaseURL()
	report := filepath.Join(t.TempDir(), "soak.json")
	cmd := exec.Command(buildLoadTool(t), "-database-url", dbURL, "-http-url", s.httpURL, "-metrics-url", s.metricsURL, "-sip-addr", s.sipAddr,
		"-calls", "20", "-operators", "25", "-rate", "20", "-hold", "2s", "-duration", "30s", "-json", report)
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
		ActiveCalls float64 `json:"active_calls"`
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
	if after.Goroutines > before.Goroutines+2 || after.OpenFDs > before.OpenFDs+2 || after.ActiveCalls != 0 {
		t.Errorf("after %d calls the service holds %.0f goroutines (before: %.0f), %.0f open files (%.0f), %.0f calls in progress",
			rep.Attempts, after.Goroutines, before.Goroutines, after.OpenFDs, before.OpenFDs, after.ActiveCalls)
	}
}

// buildLoadTool builds cmd/switchboard-load into a temporary folder.
func buildLoadTool(t *testing.T) string {
	t.Helper()
	load := filepath.Join(t.TempDir(), "switchboard-load")
	if out, err := exec.Command("go", "build", "-o", load, "../switchboard-load").CombinedOutput(); err != nil {
		t.Fatalf("go build switchboard-load: %v\n%s", err, out)
	}
	return load
}

// databaseURL is the service's database.
func (s *binaryService) databaseURL() string {
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "SWITCHBOARD_DATABASE_URL="); ok {
			return v
		}
	}
	return ""
}

// The load tool's SIPp run: SIPp's UAC calls through the binary, which
// forwards every call to SIPp's UAS; all are placed, none fails, and each
// has its completed record in the database.
func TestLoadToolThroughSIPp(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	s := mustStartBinary(t)
	report := filepath.Join(t.TempDir(), "sipp.json")
	cmd := exec.Command(buildLoadTool(t), "-sipp", "-database-url", s.databaseURL(), "-sip-addr", s.sipAddr,
		"-rate", "40", "-hold", "500ms", "-duration", "4s", "-json", report)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("switchboard-load -sipp: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Calls      int     `json:"calls_placed"`
		Successful int     `json:"calls_successful"`
		Failed     int     `json:"calls_failed"`
		Records    int     `json:"records_completed"`
		SetupMS    float64 `json:"setup_ms_avg"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Calls != 160 || rep.Successful != rep.Calls || rep.Failed != 0 || rep.Records != rep.Calls || rep.SetupMS <= 0 {
		t.Errorf("%d calls placed, %d successful, %d failed, %d records, setup %.1f ms: want all 160 through, each recorded",
			rep.Calls, rep.Successful, rep.Failed, rep.Records, rep.SetupMS)
	}
}
