//go:build !linux

package rxqueue

import "net"

// Grow sizes c's receive queue to n bytes, as far as the system lets it.
// The size it got is not known here: it returns n.
func Grow(c *net.UDPConn, n int) (int, error) { return n, c.SetReadBuffer(n) }
