package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// inNetnsEnv marks the re-executed test process that runs inside a private
// network namespace.
const inNetnsEnv = "SWITCHBOARD_TEST_IN_NETNS"

// runInPrivateNetns re-runs the named test inside a new network namespace
// with only loopback up. Chromium gathers no loopback ICE candidates on a
// machine with other interfaces; alone with loopback it does, and nothing
// it sends can leave the machine. It returns true in the child, where the
// test should go on.
func runInPrivateNetns(t *testing.T, name string) bool {
	t.Helper()
	if os.Getenv(inNetnsEnv) == "1" {
		return true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		requireDependency(t, "unshare (util-linux)")
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
		os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1", "SWITCHBOARD_TEST_DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	t.Logf("inside a private network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("%s in a private network namespace: %v", name, err)
	}
	return false
}

// requireDependency skips a test whose outside dependency is missing, but
// fails it under CI, where a skip would hide the gap.
func requireDependency(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (scripts/deps.sh installs it)", what)
	}
	t.Skipf("%s is missing; run scripts/deps.sh", what)
}

// newChromium starts headless Chromium with a fake microphone.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		requireDependency(t, "chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}
