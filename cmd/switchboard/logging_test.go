package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// Each component logs at its own level; lines are JSON objects.
func TestComponentLevels(t *testing.T) {
	levels, err := parseLevels("sip=debug, api=error")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := newLogger(&out, "info", "json", levels)
	log.With("component", "sip").Debug("sip detail", "sip_call_id", "abc")
	log.With("component", "api").Warn("api warning")
	log.With("component", "calls").Debug("calls detail")
	log.With("component", "calls").Info("call ended", "call_id", "c1")
	log.Debug("base detail")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		got = append(got, rec["msg"].(string))
	}
	if strings.Join(got, "|") != "sip detail|call ended" {
		t.Errorf("logged %q, want the SIP debug line and the call's info line", got)
	}
	for _, bad := range []string{"sip", "sip=loud", "=debug"} {
		if _, err := parseLevels(bad); err == nil {
			t.Errorf("parseLevels(%q) took it", bad)
		}
	}
	if newLogger(&out, "warn", "text", nil).Enabled(context.Background(), slog.LevelInfo) {
		t.Error("info enabled at warn")
	}
}
