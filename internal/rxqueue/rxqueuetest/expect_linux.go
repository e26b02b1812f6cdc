// Package rxqueuetest tells tests what receive queue rxqueue.Grow must give on this host.
package rxqueuetest

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Expect is the queue rxqueue.Grow(c, n) must give on this host: n when
// the process may pass net.core.rmem_max (SO_RCVBUFFORCE, which needs
// CAP_NET_ADMIN in the socket's network namespace: tried on a scratch
// socket, since a capability shown in a user namespace may not be one the
// host honours), else no more than rmem_max.
func Expect(t testing.TB, n int) int {
	t.Helper()
	if mayPassRmemMax(t, n) {
		return n
	}
	return min(n, procInt(t, "/proc/sys/net/core/rmem_max"))
}

// mayPassRmemMax reports whether a socket of this process takes a receive
// queue of n bytes past rmem_max.
func mayPassRmemMax(t testing.TB, n int) bool {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) }); err != nil {
		t.Fatal(err)
	}
	return serr == nil
}

func procInt(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
