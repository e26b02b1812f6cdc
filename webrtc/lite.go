package webrtc

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/stun/v4"

	"github.com/switchboard-voice/switchboard/internal/rxstamp"
)

// Operators' media runs as ICE-lite (RFC 8445 §2.5) on the shared UDP
// port: the browser, always the full and controlling agent, checks the
// one host candidate per local address; switchboard answers its checks,
// takes the address it nominates, and runs DTLS-SRTP (RFC 5763/5764) to
// it. One goroutine reads each socket and hands every operator's audio to
// its bridge as it decrypts it, with no goroutine, buffer or interceptor
// per connection between the kernel and the bridge. Visitors' and
// anything else's packets (full ICE, pion's PeerConnections) go on to
// pion's UDP mux on the same socket.

// liteMux routes what the shared sockets read to operators' sessions:
// STUN checks by the username's first half (our ufrag), everything else
// by the address a check proved.
type liteMux struct {
	mu      sync.RWMutex
	byUfrag map[string]*liteSession
	byAddr  map[netip.AddrPort]liteBinding
}

// liteBinding is the session an address's packets go to, and when a
// check from the address last proved it.
type liteBinding struct {
	s       *liteSession
	checked time.Time
}

func newLiteMux() *liteMux {
	return &liteMux{byUfrag: map[string]*liteSession{}, byAddr: map[netip.AddrPort]liteBinding{}}
}

func (m *liteMux) add(s *liteSession) {
	m.mu.Lock()
	m.byUfrag[s.ufrag] = s
	m.mu.Unlock()
}

// remove forgets s and every address it was reached at.
func (m *liteMux) remove(s *liteSession) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byUfrag[s.ufrag] == s {
		delete(m.byUfrag, s.ufrag)
	}
	for a, b := range m.byAddr {
		if b.s == s {
			delete(m.byAddr, a)
		}
	}
}

// bind routes what comes from addr to s as of a check at now that proved
// the sender knows s's password. An address another session was checked
// from within consentExpiry stays that session's (false): one operator
// cannot take another's packets with checks of its own.
func (m *liteMux) bind(s *liteSession, addr netip.AddrPort, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.byAddr[addr]; ok && b.s != s && now.Sub(b.checked) < consentExpiry {
		return false
	}
	m.byAddr[addr] = liteBinding{s: s, checked: now}
	return true
}

// unbind stops routing addr to s.
func (m *liteMux) unbind(s *liteSession, addr netip.AddrPort) {
	m.mu.Lock()
	if m.byAddr[addr].s == s {
		delete(m.byAddr, addr)
	}
	m.mu.Unlock()
}

func (m *liteMux) byAddress(addr netip.AddrPort) *liteSession {
	m.mu.RLock()
	b := m.byAddr[addr]
	m.mu.RUnlock()
	return b.s
}

func (m *liteMux) byUsername(ufrag string) *liteSession {
	m.mu.RLock()
	s := m.byUfrag[ufrag]
	m.mu.RUnlock()
	return s
}

// sessions returns the sessions open now.
func (m *liteMux) sessions() []*liteSession {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*liteSession, 0, len(m.byUfrag))
	for _, s := range m.byUfrag {
		out = append(out, s)
	}
	return out
}

// tick runs each session's timers (consent, handshake, sender reports)
// every interval until stop is closed.
func (m *liteMux) tick(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			for _, s := range m.sessions() {
				s.tick(now)
			}
		case <-stop:
			return
		}
	}
}

// liteConn is one shared socket as pion's UDP mux sees it: it reads with
// the kernel's receive timestamps, keeps what belongs to an operator's
// session, and passes the rest on.
type liteConn struct {
	*net.UDPConn
	r     *rxstamp.Reader
	table *rxstamp.Table // receive times of what goes on to pion
	lite  *liteMux
	// Scratch for the one goroutine reading the socket.
	msg stun.Message
	hdr rtp.Header
	dec []byte
}

func newLiteConn(c *net.UDPConn, table *rxstamp.Table, lite *liteMux) *liteConn {
	return &liteConn{UDPConn: c, r: rxstamp.NewReader(c), table: table, lite: lite, dec: make([]byte, 0, 1500)}
}

// ReadFromAddrPort returns the next datagram that is not an operator
// session's; those it handles as it reads them.
func (c *liteConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, at, err := c.r.Read(b)
		if err != nil {
			return n, from, err
		}
		if c.handle(b[:n], from, at) {
			continue
		}
		c.table.Put(b[:n], at)
		return n, from, nil
	}
}

// ReadFrom is net.PacketConn's read.
func (c *liteConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort sends b to addr.
func (c *liteConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// handle takes pkt if it is an operator session's: a STUN check naming
// one, or anything from an address a check proved (RFC 7983's first-byte
// ranges tell DTLS from SRTP and SRTCP).
func (c *liteConn) handle(pkt []byte, from netip.AddrPort, at int64) bool {
	if len(pkt) == 0 {
		return false
	}
	if pkt[0] < 4 { // STUN
		return c.check(pkt, from)
	}
	s := c.lite.byAddress(from)
	if s == nil {
		return false
	}
	switch {
	case pkt[0] >= 20 && pkt[0] <= 63:
		s.dtlsIn(pkt)
	case pkt[0] >= 128 && pkt[0] <= 191:
		s.srtpIn(c, pkt, at)
	}
	return true // nothing else is ours to pass on, nor pion's
}

// check answers a connectivity check for one of our sessions; checks
// naming no session of ours (a visitor's, a stranger's) go on to pion.
func (c *liteConn) check(pkt []byte, from netip.AddrPort) bool {
	m := &c.msg
	m.Reset()
	m.Raw = append(m.Raw[:0], pkt...)
	if err := m.Decode(); err != nil || m.Type != stun.BindingRequest {
		return false
	}
	var user stun.Username
	if err := user.GetFrom(m); err != nil {
		return false
	}
	ufrag, _, ok := strings.Cut(string(user), ":")
	if !ok {
		return false
	}
	s := c.lite.byUsername(ufrag)
	if s == nil {
		return false
	}
	s.checkIn(c, m, from, string(user))
	return true
}
