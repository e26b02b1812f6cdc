// Package rxqueuetest tells tests what receive queue rxqueue.Grow must give on this host.
package rxqueuetest

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Expect is the queue rxqueue.Grow(c, n) must give on this host: n when the
// process has CAP_NET_ADMIN, else no more than net.core.rmem_max. For
// tests, here and in the packages whose sockets Grow sizes.
func Expect(t testing.TB, n int) int {
	t.Helper()
	if mayPassRmemMax(t) {
		return n
	}
	return min(n, procInt(t, "/proc/sys/net/core/rmem_max"))
}

// mayPassRmemMax reports whether the process has CAP_NET_ADMIN.
func mayPassRmemMax(t testing.TB) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return caps&(1<<unix.CAP_NET_ADMIN) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

func procInt(t testing.TB, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
