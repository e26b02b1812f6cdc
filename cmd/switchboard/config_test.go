package main

import (
	"flag"
	"io"
	"strings"
	"testing"
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
			t.Setenv("SWITCHBOARD_DATABASE_URL", "postgres://sb@127.0.0.1/sb")
			for _, kv := range c.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			config := configFlags(fs, nil)
			if err := parseArgs(fs, c.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := config()
			if c.error != "" {
				if err == nil || !strings.Contains(err.Error(), c.error) {
					t.Fatalf("config: %v, want %q", err, c.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.WebRTCLoopback != c.loopback || cfg.S3.PathStyle != c.path {
				t.Errorf("webrtc-loopback %v, s3-path-style %v; want %v, %v", cfg.WebRTCLoopback, cfg.S3.PathStyle, c.loopback, c.path)
			}
		})
	}
}
