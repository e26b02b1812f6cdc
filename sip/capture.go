package sip

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The capture sees every SIP message that crosses the server's sockets, as
// bytes on the wire, in both directions: it sits between sipgo and the
// sockets (a PacketConn for UDP, the accepted connections for TCP and,
// after decryption, TLS). Messages of calls in progress are kept for the
// call's trace; every message goes to the exporter (HEP), if one is set.

const (
	// maxTraceMessages bounds one call's trace: a call has tens of
	// messages; a flood of retransmissions is cut, not kept.
	maxTraceMessages = 500
	// unclaimedTTL is how long the messages of an INVITE that did not
	// become a call (refused, or never answered by the transaction layer)
	// are kept for the refusal's record.
	unclaimedTTL = time.Minute
	// maxStream bounds what a TCP connection may buffer while a message is
	// incomplete.
	maxStream = 256 << 10
)

// Exporter receives every SIP message the server sends or receives, with
// its Call-ID; it must not block.
type Exporter func(m sb.SIPMessage, sipCallID string)

type capture struct {
	now    func() time.Time
	export Exporter

	mu    sync.Mutex
	calls map[string]*trace // by SIP Call-ID
}

// trace is one call's messages so far.
type trace struct {
	created time.Time
	claimed bool
	msgs    []sb.SIPMessage
	cut     int // messages dropped past maxTraceMessages
	// log, when set, logs each message as it crosses the wire, redacted
	// by policy: SIP logging switched on for the call or its trunk.
	log    *slog.Logger
	policy sb.TracePolicy
}

func (t *trace) logMessage(m sb.SIPMessage) {
	dir := "out"
	if m.Inbound {
		dir = "in"
	}
	t.log.Info("sip message", "direction", dir, "transport", m.Transport, "src", m.Src, "dst", m.Dst, "message", m.Redact(t.policy).Message)
}

func newCapture(now func() time.Time, export Exporter) *capture {
	return &capture{now: now, export: export, calls: map[string]*trace{}}
}

// record takes one whole message as it crossed the wire at at. A sent
// message is stamped when its write began: the answer to it may be read
// before the write returns.
func (c *capture) record(raw []byte, at time.Time, inbound bool, transport string, src, dst netip.AddrPort) {
	callID := headerValue(raw, "call-id", "i")
	if callID == "" {
		return // keepalives, garbage: the parser answers what it can
	}
	m := sb.SIPMessage{At: at, Inbound: inbound, Transport: transport, Src: src, Dst: dst, Message: string(raw)}
	if c.export != nil {
		c.export(m, callID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.calls[callID]
	if t == nil {
		// A call starts with an INVITE received; one we send is claimed
		// before it goes.
		if !inbound || !bytes.HasPrefix(raw, []byte("INVITE ")) {
			return // not a call's first message: OPTIONS, strays
		}
		c.sweep(m.At)
		t = &trace{created: m.At}
		c.calls[callID] = t
	}
	if t.log != nil {
		t.logMessage(m)
	}
	if len(t.msgs) >= maxTraceMessages {
		t.cut++
		return
	}
	// Keep the trace in time order: a write stamped before a read may be
	// recorded after it.
	i := len(t.msgs)
	for i > 0 && t.msgs[i-1].At.After(m.At) {
		i--
	}
	t.msgs = slices.Insert(t.msgs, i, m)
}

// setLogging switches logging of a call's messages on (log not nil) or
// off; switched on, what crossed the wire so far is logged at once. It
// reports whether the call is known.
func (c *capture) setLogging(callID string, log *slog.Logger, policy sb.TracePolicy) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.calls[callID]
	if t == nil {
		return false
	}
	if log != nil && t.log == nil {
		t.log, t.policy = log, policy
		for _, m := range t.msgs {
			t.logMessage(m)
		}
	}
	t.log = log
	return true
}

// sweep forgets INVITEs that did not become calls in time.
func (c *capture) sweep(now time.Time) {
	for id, t := range c.calls {
		if !t.claimed && now.Sub(t.created) > unclaimedTTL {
			delete(c.calls, id)
		}
	}
}

// claim keeps the call's trace until release.
func (c *capture) claim(callID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.calls[callID]; t != nil {
		t.claimed = true
		return
	}
	c.calls[callID] = &trace{created: c.now(), claimed: true}
}

// messages returns a copy of the call's trace so far.
func (c *capture) messages(callID string) []sb.SIPMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.calls[callID]
	if t == nil {
		return nil
	}
	return append([]sb.SIPMessage(nil), t.msgs...)
}

// release returns the call's trace and forgets it.
func (c *capture) release(callID string) []sb.SIPMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.calls[callID]
	delete(c.calls, callID)
	if t == nil {
		return nil
	}
	return t.msgs
}

// headerValue finds a header's value in a raw message's header section, by
// its full or compact name, case-insensitively.
func headerValue(raw []byte, name, compact string) string {
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i]
	}
	for len(head) > 0 {
		line := head
		if i := bytes.Index(head, []byte("\r\n")); i >= 0 {
			line, head = head[:i], head[i+2:]
		} else {
			head = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		h := bytes.TrimSpace(line[:colon])
		if bytes.EqualFold(h, []byte(name)) || (compact != "" && bytes.EqualFold(h, []byte(compact))) {
			return string(bytes.TrimSpace(line[colon+1:]))
		}
	}
	return ""
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// capturedPacketConn records the datagrams of a UDP socket.
// Datagrams the shield refuses are dropped here, before they are parsed.
type capturedPacketConn struct {
	net.PacketConn
	c      *capture
	shield *shield

	proxies trustedProxies // whose SourceHeader the shield counts by
}

func (p *capturedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := p.PacketConn.ReadFrom(b)
		if err == nil && n > 0 {
			src := addrPort(addr)
			if !p.shield.admit(p.proxies.shieldSource(b[:n], src.Addr())) {
				continue
			}
			p.c.record(b[:n], p.c.now(), true, "udp", src, addrPort(p.LocalAddr()))
		}
		return n, addr, err
	}
}

func (p *capturedPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	at := p.c.now()
	n, err := p.PacketConn.WriteTo(b, addr)
	if err == nil {
		p.c.record(b[:n], at, false, "udp", addrPort(p.LocalAddr()), addrPort(addr))
	}
	return n, err
}

// capturedListener records the messages of the connections it accepts.
// Connections from sources the shield refuses are closed at once.
type capturedListener struct {
	net.Listener
	c         *capture
	transport string
	shield    *shield
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
	return &capturedConn{Conn: conn, c: l.c, transport: l.transport,
		local: addrPort(conn.LocalAddr()), remote: addrPort(conn.RemoteAddr())}, nil
}

// capturedConn records a stream's messages. Writes are whole messages (sipgo
// writes each in one call); reads are cut into messages by their
// Content-Length.
type capturedConn struct {
	net.Conn
	c             *capture
	transport     string
	local, remote netip.AddrPort
	in            []byte
}

func (s *capturedConn) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	if n > 0 {
		s.in = append(s.in, b[:n]...)
		s.split()
	}
	return n, err
}

// split records each whole message at the start of the buffered stream.
func (s *capturedConn) split() {
	for {
		s.in = bytes.TrimLeft(s.in, "\r\n") // keepalives
		end := bytes.Index(s.in, []byte("\r\n\r\n"))
		if end < 0 {
			if len(s.in) > maxStream {
				s.in = s.in[:0] // not SIP; the parser will say so
			}
			return
		}
		body, err := strconv.Atoi(headerValue(s.in[:end+4], "content-length", "l"))
		if err != nil || body < 0 {
			body = 0
		}
		size := end + 4 + body
		if size > maxStream {
			s.in = s.in[:0]
			return
		}
		if len(s.in) < size {
			return
		}
		s.c.record(s.in[:size], s.c.now(), true, s.transport, s.remote, s.local)
		s.in = append(s.in[:0], s.in[size:]...)
	}
}

func (s *capturedConn) Write(b []byte) (int, error) {
	at := s.c.now()
	n, err := s.Conn.Write(b)
	if n > 0 && len(bytes.Trim(b[:n], "\r\n")) > 0 {
		s.c.record(b[:n], at, false, s.transport, s.local, s.remote)
	}
	return n, err
}
