package sip

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// capturedListener records the messages of the connections it accepts.
// Connections from sources the shield refuses are closed at once.
type capturedListener struct {
	net.Listener
	c         *capture
	transport string
	shield    *shield
	proxies   trustedProxies // whose SourceHeader the shield counts each message by
}

func (l *capturedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	for err == nil && !l.shield.admit(addrPort(conn.RemoteAddr()).Addr()) {
		conn.Close()
		conn, err = l.Listener.Accept()
	}
	if err != nil {
		return nil, err
	}
	c := &capturedConn{Conn: conn, c: l.c, transport: l.transport, shield: l.shield, proxies: l.proxies,
		local: addrPort(conn.LocalAddr()), remote: addrPort(conn.RemoteAddr())}
	l.shield.track(c.remote.Addr(), c, true)
	return c, nil
}

// capturedConn records a stream's messages. Writes are whole messages (sipgo
// writes each in one call); reads are cut into messages by their
// Content-Length. Each message read is the shield's to admit, as a
// datagram is: a stream whose message is refused is closed before the
// parser sees that message, and a ban closes the source's streams.
type capturedConn struct {
	net.Conn
	c             *capture
	transport     string
	shield        *shield
	proxies       trustedProxies
	local, remote netip.AddrPort
	in            []byte
	closeOnce     sync.Once
}

func (s *capturedConn) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	if n > 0 {
		s.in = append(s.in, b[:n]...)
		if !s.split() {
			s.Close()
			return 0, net.ErrClosed
		}
	}
	return n, err
}

// Close closes the stream and tells the shield it is gone.
func (s *capturedConn) Close() error {
	s.closeOnce.Do(func() { s.shield.track(s.remote.Addr(), s, false) })
	return s.Conn.Close()
}

// split records each whole message at the start of the buffered stream.
// It reports false when the shield refuses one.
func (s *capturedConn) split() bool {
	for {
		s.in = bytes.TrimLeft(s.in, "\r\n") // keepalives
		end := bytes.Index(s.in, []byte("\r\n\r\n"))
		if end < 0 {
			if len(s.in) > maxStream {
				s.in = s.in[:0] // not SIP; the parser will say so
			}
			return true
		}
		length, count := headerValues(s.in[:end+4], "content-length", "l")
		body, err := strconv.Atoi(length)
		if count > 1 || msgSize(end, body) > maxStream {
			// Where this message ends is not clear (two lengths, which
			// the parser may read otherwise than we do), or it is too big
			// to be SIP: the stream is not to be trusted further.
			return false
		}
		if err != nil || body < 0 {
			body = 0
		}
		size := end + 4 + body
		if len(s.in) < size {
			return true
		}
		if !s.proxies.admits(s.shield, s.in[:size], s.remote.Addr()) && !s.proxies.trusts(s.remote.Addr()) {
			// A trusted proxy's connection carries everyone's calls: a
			// source banned behind it is counted, but closing the
			// connection would cut them all, so it is refused by trunk
			// recognition instead.
			return false
		}
		s.c.record(s.in[:size], s.c.now(), true, s.transport, s.remote, s.local)
		s.in = append(s.in[:0], s.in[size:]...)
	}
}

// msgSize is a message's length from its header section's end and its body's.
func msgSize(end, body int) int { return end + 4 + max(body, 0) }

func (s *capturedConn) Write(b []byte) (int, error) {
	at := s.c.now()
	n, err := s.Conn.Write(b)
	if n > 0 && len(bytes.Trim(b[:n], "\r\n")) > 0 {
		s.c.record(b[:n], at, false, s.transport, s.local, s.remote)
	}
	return n, err
}
