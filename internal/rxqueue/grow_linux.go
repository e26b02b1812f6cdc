package rxqueue

import (
	"net"

	"golang.org/x/sys/unix"
)

// Grow sizes c's receive queue to n bytes: past the host's
// net.core.rmem_max when the process may (SO_RCVBUFFORCE needs
// CAP_NET_ADMIN), else as far as rmem_max lets SO_RCVBUF go. It returns
// the size the queue got, which is less than n when rmem_max held it
// back.
func Grow(c *net.UDPConn, n int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil || serr != nil {
		if err := c.SetReadBuffer(n); err != nil {
			return 0, err
		}
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil {
		return 0, err
	}
	// The kernel reports twice what was set, for its bookkeeping.
	return got / 2, gerr
}
