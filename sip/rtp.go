package sip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// rtpPort is the trunk leg's RTP socket, as a switchboard.MediaPort.
//
// Symmetric RTP: audio goes to the address in the caller's SDP until the
// first packet arrives, then to where the caller's packets come from
// (callers behind NAT announce addresses nobody can reach). Once latched,
// packets from other addresses are dropped, so a stranger cannot inject
// audio into the call. With SRTP, packets that do not authenticate are
// dropped before they can latch.
type rtpPort struct {
	conn  *net.UDPConn
	codec atomic.Pointer[sb.Codec] // set again once a late offer's answer comes
	srtp  *srtpSession             // nil: plain RTP
	// forged counts SRTP packets that failed authentication or replay
	// checks.
	forged atomic.Uint64

	sink     atomic.Pointer[func([]byte)]
	remote   atomic.Pointer[netip.AddrPort] // where we send
	latched  atomic.Bool
	lastRecv atomic.Int64 // unix nanoseconds of the last packet from the caller
	received atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
}

var _ sb.MediaPort = (*rtpPort)(nil)

// listenRTP opens an RTP socket on ip, on an even port of r (any port when
// r is zero).
func listenRTP(ip netip.Addr, r sb.PortRange) (*net.UDPConn, error) {
	if r.IsZero() {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	}
	lo, span := int(r.Min+r.Min%2), int(r.Max)-int(r.Min+r.Min%2)+1
	if span <= 0 {
		return nil, errors.New("sip: rtp port range has no even port")
	}
	start := rand.IntN(span)
	for i := 0; i < span; i += 2 {
		p := lo + (start+i)%span
		p -= p % 2
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p))))
		if err == nil {
			return conn, nil
		}
	}
	return nil, fmt.Errorf("sip: no free RTP port in %d-%d", r.Min, r.Max)
}

func newRTPPort(conn *net.UDPConn, codec sb.Codec, remote netip.AddrPort, sec *srtpSession) *rtpPort {
	p := &rtpPort{conn: conn, srtp: sec, done: make(chan struct{})}
	p.codec.Store(&codec)
	p.remote.Store(&remote)
	p.lastRecv.Store(time.Now().UnixNano())
	go p.readLoop()
	return p
}

func (p *rtpPort) Codec() sb.Codec { return *p.codec.Load() }

func (p *rtpPort) SetSink(sink func([]byte)) {
	if sink == nil {
		p.sink.Store(nil)
		return
	}
	p.sink.Store(&sink)
}

func (p *rtpPort) WriteRTP(pkt []byte) error {
	to := p.remote.Load()
	if !to.Addr().IsValid() || to.Addr().IsUnspecified() || to.Port() == 0 {
		return nil // on hold the RFC 2543 way: nowhere to send
	}
	if p.srtp != nil {
		return p.srtp.encrypt(pkt, func(b []byte) error {
			_, err := p.conn.WriteToUDPAddrPort(b, *to)
			return err
		})
	}
	_, err := p.conn.WriteToUDPAddrPort(pkt, *to)
	return err
}

// LocalAddr is the socket's address, announced in our SDP.
func (p *rtpPort) LocalAddr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// setRemote points the port at a new address from a re-INVITE and lets it
// latch again.
func (p *rtpPort) setRemote(to netip.AddrPort) {
	if cur := p.remote.Load(); *cur == to {
		return
	}
	p.remote.Store(&to)
	p.latched.Store(false)
}

// idle returns how long no RTP has come from the caller.
func (p *rtpPort) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, p.lastRecv.Load()))
}

func (p *rtpPort) readLoop() {
	buf := make([]byte, 1500)
	var plain []byte
	if p.srtp != nil {
		plain = make([]byte, 1500)
	}
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors surface here on some systems; keep reading
		}
		if n < 12 || buf[0]>>6 != 2 {
			continue // not RTP
		}
		pkt := buf[:n]
		if p.srtp != nil {
			if buf[1] >= 192 && buf[1] <= 223 {
				continue // SRTCP (RFC 5761 demultiplexing): not used
			}
			if pkt, err = p.srtp.decrypt(plain[:0], pkt); err != nil {
				p.forged.Add(1)
				continue
			}
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !p.latched.Load() {
			p.remote.Store(&from)
			p.latched.Store(true)
		} else if *p.remote.Load() != from {
			continue
		}
		p.lastRecv.Store(time.Now().UnixNano())
		p.received.Add(1)
		if sink := p.sink.Load(); sink != nil {
			(*sink)(pkt)
		}
	}
}

func (p *rtpPort) Close() error {
	var err error
	p.closeOnce.Do(func() {
		err = p.conn.Close()
		close(p.done)
	})
	return err
}
