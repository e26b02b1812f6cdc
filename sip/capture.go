package sip

import (
	"bytes"
	"container/list"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/rxstamp"
)

// The capture sees every SIP message that crosses the server's sockets, as
// bytes on the wire, in both directions: it sits between sipgo and the
// sockets (a PacketConn for UDP, the accepted connections for TCP and,
// after decryption, TLS). Messages of calls in progress are kept for the
// call's trace; every message goes to the exporter (HEP), if one is set.
//
// What leaves the process follows the tenant's trace policy: once a call's
// trunk is recognised (setPolicy), its messages go to the exporter redacted
// by its tenant's policy; until then, and for messages of no known call,
// by the strictest one (unknownPolicy). A logged message's numbers are
// always masked: logs hold no numbers.

const (
	// maxTraceMessages and maxTraceBytes bound one call's trace: a call
	// has tens of messages of a few KiB; a flood of retransmissions is
	// cut, not kept.
	maxTraceMessages = 500
	maxTraceBytes    = 1 << 20
	// maxUnclaimedBytes bounds the trace of an INVITE that is not (yet) a
	// call, from a source not yet known to be anyone's, and
	// maxUnclaimedTotal all of them together: beyond, messages of
	// INVITEs nobody claimed are cut.
	maxUnclaimedBytes = 64 << 10
	maxUnclaimedTotal = 32 << 20
	// unclaimedTTL is how long the messages of an INVITE that did not
	// become a call (refused, or never answered by the transaction layer)
	// are kept for the refusal's record.
	unclaimedTTL = time.Minute
	// maxStream bounds what a TCP connection may buffer while a message is
	// incomplete.
	maxStream = 256 << 10
	// callMessages is how many messages a simple call's trace has room
	// for once it is more than an INVITE: INVITE, 100, 180, 200, ACK,
	// BYE and its 200 are seven.
	callMessages = 8
)

// Exporter receives every SIP message the server sends or receives, with
// its Call-ID, redacted by its tenant's trace policy; it must not block.
type Exporter func(m sb.SIPMessage, sipCallID string)

// unknownPolicy redacts what is exported before a call's tenant is known
// (its first INVITE, calls we place, strays): numbers masked, bodies
// dropped.
var unknownPolicy = sb.TracePolicy{DropBodies: true, MaskNumbers: true}

type capture struct {
	now    func() time.Time
	export Exporter
	// unknown is the policy of messages whose tenant is not known:
	// unknownPolicy, but in tests of how streams are cut.
	unknown sb.TracePolicy

	mu        sync.Mutex
	calls     map[string]*trace // by SIP Call-ID
	unclaimed int               // bytes kept for traces not claimed
	// pending holds the traces not claimed, oldest first (each a
	// *trace), so a sweep looks only at those due to go: a sweep
	// over every trace, at each INVITE, cost as much as the calls in
	// progress.
	pending list.List
}

// trace is one call's messages so far.
type trace struct {
	created time.Time
	claimed bool
	msgs    []sb.SIPMessage
	bytes   int // of msgs
	cut     int // messages dropped past the bounds
	// pending is its entry in capture.pending while not claimed, and
	// callID its key in capture.calls.
	pending *list.Element
	callID  string
	// log, when set, logs each message as it crosses the wire, redacted
	// by policy: SIP logging switched on for the call or its trunk.
	log *slog.Logger
	// policy is the tenant's trace policy, once known.
	policy sb.TracePolicy
	known  bool
}

// exportPolicy is what the exporter's copy of the call's messages follows.
func (c *capture) exportPolicy(t *trace) sb.TracePolicy {
	if t == nil || !t.known {
		return c.unknown
	}
	return t.policy
}

func (t *trace) logMessage(m sb.SIPMessage) {
	dir := "out"
	if m.Inbound {
		dir = "in"
	}
	p := t.policy
	p.MaskNumbers = true // logs hold no numbers, whatever the trace keeps
	t.log.Info("sip message", "direction", dir, "transport", m.Transport, "src", m.Src, "dst", m.Dst, "message", m.Redact(p).Message)
}

func newCapture(now func() time.Time, export Exporter) *capture {
	return &capture{now: now, export: export, unknown: unknownPolicy, calls: map[string]*trace{}}
}

// record takes one whole message as it crossed the wire at at. A sent
// message is stamped when its write began: the answer to it may be read
// before the write returns.
func (c *capture) record(raw []byte, at time.Time, inbound bool, transport string, src, dst netip.AddrPort) {
	id, _ := headerBytes(raw, "call-id", "i")
	if len(id) == 0 {
		return // keepalives, garbage: the parser answers what it can
	}
	// The Call-ID is taken from the message's own copy, not copied
	// again: each message would cost one more allocation.
	msg := string(raw)
	start := cap(raw) - cap(id) // id is a slice of raw
	callID := msg[start : start+len(id)]
	// Credentials and media keys never leave the wire: not to the
	// exporter, the log, nor the stored trace.
	m := sb.SIPMessage{At: at, Inbound: inbound, Transport: transport, Src: src, Dst: dst, Message: sb.RedactSecrets(msg)}
	if m.Message != msg {
		callID = strings.Clone(callID) // a trace's key must not keep the secrets' copy alive
	}
	policy := c.keep(m, callID, inbound, raw)
	if c.export != nil {
		c.export(m.Redact(policy), callID)
	}
}

// keep adds m to its call's trace and logs it if asked, and returns the
// policy its exported copy follows.
func (c *capture) keep(m sb.SIPMessage, callID string, inbound bool, raw []byte) sb.TracePolicy {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.calls[callID]
	if t == nil {
		// A call starts with an INVITE received; one we send is claimed
		// before it goes.
		if !inbound || !bytes.HasPrefix(raw, []byte("INVITE ")) {
			return c.unknown // not a call's first message: OPTIONS, strays
		}
		c.sweep(m.At)
		t = &trace{created: m.At, callID: callID}
		if !c.fits(t, len(m.Message)) {
			return c.unknown // no room: not even an empty trace is kept
		}
		c.calls[callID] = t
		t.pending = c.pending.PushBack(t)
	}
	if t.log != nil {
		t.logMessage(m)
	}
	if !c.fits(t, len(m.Message)) {
		t.cut++
		return c.exportPolicy(t)
	}
	t.bytes += len(m.Message)
	if !t.claimed {
		c.unclaimed += len(m.Message)
	}
	// Keep the trace in time order: a write stamped before a read may be
	// recorded after it.
	i := len(t.msgs)
	for i > 0 && t.msgs[i-1].At.After(m.At) {
		i--
	}
	if len(t.msgs) > 0 && len(t.msgs) == cap(t.msgs) && len(t.msgs) < callMessages {
		// A call's first message may be all there is (an INVITE
		// refused, or a flood of them): room for a whole call's comes
		// with its second, in one allocation, not four.
		t.msgs = slices.Grow(t.msgs, callMessages-len(t.msgs))
	}
	t.msgs = slices.Insert(t.msgs, i, m)
	return c.exportPolicy(t)
}

// fits reports whether a message of size bytes may join t; under the
// lock.
func (c *capture) fits(t *trace, size int) bool {
	switch {
	case len(t.msgs) >= maxTraceMessages || t.bytes+size > maxTraceBytes:
		return false
	case t.claimed:
		return true
	}
	return t.bytes+size <= maxUnclaimedBytes && c.unclaimed+size <= maxUnclaimedTotal
}

// forget drops a trace; under the lock.
func (c *capture) forget(callID string, t *trace) {
	delete(c.calls, callID)
	if !t.claimed {
		c.unclaimed -= t.bytes
	}
	c.unpend(t)
}

// unpend takes t off the traces not claimed; under the lock.
func (c *capture) unpend(t *trace) {
	if t.pending != nil {
		c.pending.Remove(t.pending)
		t.pending = nil
	}
}

// setPolicy says whose call callID is: its messages are exported redacted
// by the tenant's trace policy p from now on.
func (c *capture) setPolicy(callID string, p sb.TracePolicy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.calls[callID]; t != nil {
		t.policy, t.known = p, true
	}
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
		t.log, t.policy, t.known = log, policy, true
		for _, m := range t.msgs {
			t.logMessage(m)
		}
	}
	t.log = log
	return true
}

// sweep forgets INVITEs that did not become calls in time.
func (c *capture) sweep(now time.Time) {
	for e := c.pending.Front(); e != nil; e = c.pending.Front() {
		t := e.Value.(*trace)
		if now.Sub(t.created) <= unclaimedTTL {
			return
		}
		c.forget(t.callID, t)
	}
}

// claim keeps the call's trace until release.
func (c *capture) claim(callID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.calls[callID]; t != nil {
		if !t.claimed {
			c.unclaimed -= t.bytes
		}
		t.claimed = true
		c.unpend(t)
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
	if t == nil {
		return nil
	}
	c.forget(callID, t)
	return t.msgs
}

// headerValue finds a header's value in a raw message's header section, by
// its full or compact name, case-insensitively.
func headerValue(raw []byte, name, compact string) string {
	v, _ := headerValues(raw, name, compact)
	return v
}

// headerValues is headerValue, and how many times the header appears.
func headerValues(raw []byte, name, compact string) (first string, n int) {
	v, n := headerBytes(raw, name, compact)
	return string(v), n
}

// headerBytes is headerValues without a copy: the first value is a slice
// of raw.
func headerBytes(raw []byte, name, compact string) (first []byte, n int) {
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
			if n == 0 {
				first = bytes.TrimSpace(line[colon+1:])
			}
			n++
		}
	}
	return first, n
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
	rx     *rxstamp.Reader // reads with the kernel's receive time; nil: not a UDP socket
	delay  *queueDelay     // what the receive times say of the queue

	proxies trustedProxies // whose SourceHeader the shield counts by
}

func (p *capturedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := p.read(b)
		if err == nil && n > 0 {
			src := addrPort(addr)
			if !p.proxies.admits(p.shield, b[:n], src.Addr()) {
				continue
			}
			p.c.record(b[:n], p.c.now(), true, "udp", src, addrPort(p.LocalAddr()))
		}
		return n, addr, err
	}
}

// read reads a datagram, and notes how long it waited in the queue.
func (p *capturedPacketConn) read(b []byte) (int, net.Addr, error) {
	if p.rx == nil {
		return p.PacketConn.ReadFrom(b)
	}
	n, from, at, err := p.rx.Read(b)
	if err != nil {
		return n, nil, err
	}
	p.delay.observe(at)
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (p *capturedPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	at := p.c.now()
	n, err := p.PacketConn.WriteTo(b, addr)
	if err == nil {
		p.c.record(b[:n], at, false, "udp", addrPort(p.LocalAddr()), addrPort(addr))
	}
	return n, err
}
