package sip

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/switchboard-voice/switchboard/internal/rxqueue/rxqueuetest"
)

// The SIP UDP socket's receive queue is as large as asked (or as
// net.core.rmem_max lets it), not the system's default of about a
// hundred messages, and it stamps what it receives with the kernel's
// time.
func TestSIPSocketQueue(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	rc, err := ts.udpConn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size, stamps int
	var err1, err2 error
	if err := rc.Control(func(fd uintptr) {
		size, err1 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		stamps, err2 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS)
	}); err != nil || err1 != nil || err2 != nil {
		t.Fatal(err, err1, err2)
	}
	// The kernel reports twice what was set, for its bookkeeping.
	if want := rxqueuetest.Expect(t, sipReadBuffer); size/2 < want {
		t.Errorf("receive queue %d bytes, want at least %d", size/2, want)
	}
	if stamps != 1 {
		t.Errorf("SO_TIMESTAMPNS %d, want 1", stamps)
	}
}
