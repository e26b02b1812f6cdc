//go:build !linux

package webrtc

import "net"

// setReadBuffer sizes c's receive queue to n bytes, as far as the system
// lets it.
func setReadBuffer(c *net.UDPConn, n int) error { return c.SetReadBuffer(n) }
