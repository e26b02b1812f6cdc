package main

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// switchboard version prints the version set with -ldflags -X (and "dev"
// without it), the revision from the toolchain's VCS stamp ("unknown"
// without one; the Dockerfile's -X main.revision is checked by
// TestDockerfileMakesAStaticNonRootImage) and the Go version; the running
// service reports the same in switchboard_build_info.
func TestVersionAndBuildInfo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "switchboard")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=7.7.7-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// The toolchain stamps the revision only where it can read the
	// repository (and GOFLAGS does not say -buildvcs=false).
	m := regexp.MustCompile(`^switchboard 7\.7\.7-test \(revision (unknown|[0-9a-f]{40}(?:-dirty)?), (go\S+)\)\n$`).FindStringSubmatch(string(out))
	if m == nil || m[2] != runtime.Version() {
		t.Fatalf("switchboard version: %q", out)
	}
	revision := m[1]
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && revision != "unknown" && !strings.HasPrefix(revision, strings.TrimSpace(string(head))) {
		t.Errorf("revision %s, want the checkout's %s", revision, head)
	}

	s := mustStartBinaryOf(t, bin)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	want := `switchboard_build_info{goversion="` + runtime.Version() + `",revision="` + revision + `",version="7.7.7-test"} 1`
	if !strings.Contains(body, want+"\n") {
		t.Errorf("/metrics has no %s:\n%s", want, grepLines(body, "build_info"))
	}

	if out, err := exec.Command(mustBuildBinary(t), "version").Output(); err != nil || !strings.HasPrefix(string(out), "switchboard dev (revision ") {
		t.Errorf("switchboard version without -ldflags: %v %q", err, out)
	}
}

// grepLines returns the lines of s that hold sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
