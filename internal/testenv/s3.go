package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// S3 is a real S3-compatible server for one test: versitygw over a
// private folder, on a loopback port of its own, with one empty bucket.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Bucket    string
	// Root is the folder versitygw serves; the bucket is a folder in it,
	// and each object a file, so a test can see what is really stored.
	Root string
	// Stop ends the server before the test does, to play an outage;
	// Start brings it back on the same port and folder.
	Stop  func()
	Start func()
}

// versitygwBinary finds versitygw on PATH or in Go's bin folder, where
// scripts/deps.sh installs it.
func versitygwBinary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// NewS3 starts versitygw for the test and stops it when the test ends.
// Without versitygw the test is skipped, or fails under CI=true.
func NewS3(tb testing.TB) *S3 {
	tb.Helper()
	bin := versitygwBinary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("testenv: versitygw is missing (scripts/deps.sh installs it)")
		}
		tb.Skip("testenv: versitygw is missing; run scripts/deps.sh")
	}
	dir := tb.TempDir()
	s := &S3{AccessKey: "test" + randomHex(4), SecretKey: randomSecret(), Bucket: "recordings", Root: dir}
	if err := os.MkdirAll(filepath.Join(dir, s.Bucket), 0o755); err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + addr

	var cmd *exec.Cmd
	s.Start = func() {
		tb.Helper()
		cmd = exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "posix", dir)
		// Its stdout only says it runs in single-account mode, which would
		// land in the middle of benchmark result lines.
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			tb.Fatalf("testenv: start versitygw: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				return
			}
			select {
			case <-ctx.Done():
				tb.Fatalf("testenv: versitygw did not listen on %s", addr)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	s.Stop = func() {
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
			cmd = nil
		}
	}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

func randomSecret() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}
