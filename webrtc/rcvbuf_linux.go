package webrtc

import (
	"net"

	"golang.org/x/sys/unix"
)

// setReadBuffer sizes c's receive queue to n bytes: past the host's
// net.core.rmem_max when the process may (SO_RCVBUFFORCE needs
// CAP_NET_ADMIN), else as far as rmem_max lets SO_RCVBUF go.
func setReadBuffer(c *net.UDPConn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err == nil && serr == nil {
		return nil
	}
	return c.SetReadBuffer(n)
}
