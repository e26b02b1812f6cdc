package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// serve's boolean settings are boolean flags like every other: -name is
// true, -name=false false, left out the default (or the variable); a
// value that is not true or false is refused.
func TestBooleanSettings(t *testing.T) {
	for _, c := range []struct {
		args, env      []string
		loopback, path bool
		error          string
	}{
		{args: nil, loopback: false, path: true},
		{args: []string{"-webrtc-loopback", "-s3-path-style=false"}, loopback: true, path: false},
		{args: []string{"-webrtc-loopback=true", "-s3-path-style=0"}, loopback: true, path: false},
		{env: []string{"SWITCHBOARD_WEBRTC_LOOPBACK=true", "SWITCHBOARD_S3_PATH_STYLE=false"}, loopback: true, path: false},
		{env: []string{"SWITCHBOARD_WEBRTC_LOOPBACK=true"}, args: []string{"-webrtc-loopback=false"}, loopback: false, path: true},
		{args: []string{"-secure-cookies=yes"}, error: `secure-cookies "yes" must be true or false`},
		{env: []string{"SWITCHBOARD_SECURE_COOKIES=yes"}, error: `secure-cookies "yes" must be true or false`},
		{args: []string{"-metrics-pprof", "-metrics-addr=off"}, error: "metrics-pprof needs metrics-addr"},
	} {
		t.Run(strings.Join(append(c.env, c.args...), " "), func(t *testing.T) {
			cfg := serveConfig(t, c.env, c.args, c.error)
			if cfg == nil {
				return
			}
			if cfg.WebRTCLoopback != c.loopback || cfg.S3.PathStyle != c.path {
				t.Errorf("webrtc-loopback %v, s3-path-style %v; want %v, %v", cfg.WebRTCLoopback, cfg.S3.PathStyle, c.loopback, c.path)
			}
		})
	}
}

// The service sheds new calls past its capacity unless told not to: both
// overload delays are on by default, and 0 turns each off.
func TestOverloadDelays(t *testing.T) {
	for _, c := range []struct {
		args, env []string
		sip, db   time.Duration
		error     string
	}{
		{sip: 100 * time.Millisecond, db: time.Second},
		{args: []string{"-overload-sip-delay=0", "-overload-db-delay=0"}},
		{env: []string{"SWITCHBOARD_OVERLOAD_SIP_DELAY=250ms", "SWITCHBOARD_OVERLOAD_DB_DELAY=2s"}, sip: 250 * time.Millisecond, db: 2 * time.Second},
		{args: []string{"-overload-db-delay=-1s"}, error: `overload-db-delay "-1s" must be a duration`},
	} {
		t.Run(strings.Join(append(c.env, c.args...), " "), func(t *testing.T) {
			cfg := serveConfig(t, c.env, c.args, c.error)
			if cfg == nil {
				return
			}
			if cfg.OverloadSIPDelay != c.sip || cfg.OverloadDBDelay != c.db {
				t.Errorf("overload delays: SIP %v, database %v; want %v, %v", cfg.OverloadSIPDelay, cfg.OverloadDBDelay, c.sip, c.db)
			}
		})
	}
}

// serveConfig is serve's configuration from env (NAME=value) and args, or
// nil when it is refused with wantErr, as it must be when wantErr is set.
func serveConfig(t *testing.T, env, args []string, wantErr string) *Config {
	t.Helper()
	t.Setenv("SWITCHBOARD_DATABASE_URL", "postgres://sb@127.0.0.1/sb")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config := configFlags(fs, nil)
	if err := parseArgs(fs, args); err != nil {
		t.Fatal(err)
	}
	cfg, err := config()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("config: %v, want %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
