package webrtc

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The shared socket's queue is as large as asked when the process may
// pass net.core.rmem_max (CAP_NET_ADMIN), and as large as rmem_max lets
// it otherwise: never the small default.
func TestSharedSocketQueueSize(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := setReadBuffer(c, muxReadBuffer); err != nil {
		t.Fatal(err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	want := muxReadBuffer
	if !mayPassRmemMax(t) {
		want = min(want, procInt(t, "/proc/sys/net/core/rmem_max"))
	}
	// The kernel reports twice what was set, for its bookkeeping.
	if got < 2*want {
		t.Errorf("receive queue %d bytes, want at least %d (asked %d, CAP_NET_ADMIN %v)", got, 2*want, muxReadBuffer, mayPassRmemMax(t))
	}
}

// mayPassRmemMax reports whether the process has CAP_NET_ADMIN.
func mayPassRmemMax(t *testing.T) bool {
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

func procInt(t *testing.T, path string) int {
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
