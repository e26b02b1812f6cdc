package sip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/rxstamp"
)

// probation is how many packets in sequence (one SSRC, each sequence
// number one more than the last) a source other than the SDP's address
// must send before a port latches onto it: Asterisk's strict RTP default.
const probation = 4

// rtpDrops counts, across a server's ports, the RTP packets dropped, and
// the ports open.
type rtpDrops struct {
	foreign   atomic.Uint64 // from an address the port does not take media from
	probation atomic.Uint64 // from an allowed address, before it passed probation
	forged    atomic.Uint64 // SRTP that failed authentication or replay checks
	open      atomic.Int64  // ports open now
}

// rtpPort is the trunk leg's RTP socket, as a switchboard.MediaPort.
//
// Strict symmetric RTP: media is taken only from the address the SDP
// gives, or from the IP address the call's signalling comes from (callers
// behind NAT announce addresses nobody can reach and send from their
// public address with another port). The SDP's address is latched onto at
// its first packet; any other allowed source only after probation packets
// in sequence, so a stranger elsewhere spraying the port range cannot win
// the port, and one on the caller's IP must send a stream before the
// caller does.
// Until then audio goes to the SDP's address, after it to where the
// caller's packets come from; packets from anywhere else are dropped and
// counted. Only signalling (a new address in an offer or answer) unlatches.
// With SRTP, packets must also authenticate before they can latch, which
// is proof enough to latch on the first.
type rtpPort struct {
	conn  *net.UDPConn
	codec atomic.Pointer[sb.Codec] // set again once a late offer's answer comes
	srtp  *srtpSession             // nil: plain RTP
	// ice, when set, is the port's path: DTLS-SRTP over ICE, which owns
	// the socket, chooses the address and authenticates every packet
	// (sip/dtls.go); the strict-RTP latching below is then not used.
	ice *iceTransport
	// forged counts SRTP packets that failed authentication or replay
	// checks; foreign those from sources media is not taken from.
	forged  atomic.Uint64
	foreign atomic.Uint64
	drops   *rtpDrops // the server's totals

	sink    atomic.Pointer[func([]byte)]
	remote  atomic.Pointer[netip.AddrPort] // where we send
	latched atomic.Bool
	// silent is set while the far end receives nothing (it holds the call
	// sendonly, or made it inactive): what the bridge hands us then is
	// dropped, not sent (RFC 3264 §5.1).
	silent   atomic.Bool
	lastRecv atomic.Int64 // unix nanoseconds of the last packet from the caller
	received atomic.Uint64
	rxAt     int64 // the kernel's receive time of the packet in the sink; read loop only

	mu        sync.Mutex     // guards sdp, probe, and latching
	sdp       netip.AddrPort // the address the last offer or answer gave
	signaling netip.Addr     // where the call's SIP comes from; zero: unknown
	probe     struct {       // the source on probation
		from netip.AddrPort
		ssrc uint32
		seq  uint16
		n    int
	}

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

// newRTPPort reads and writes RTP on conn for a peer whose SDP gives
// remote (zero until known) and whose SIP comes from signaling; drops
// counts what is dropped (nil: counted only by the port).
func newRTPPort(conn *net.UDPConn, codec sb.Codec, remote netip.AddrPort, signaling netip.Addr, sec *srtpSession, drops *rtpDrops) *rtpPort {
	if drops == nil {
		drops = new(rtpDrops)
	}
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	p := &rtpPort{conn: conn, srtp: sec, drops: drops, sdp: remote, signaling: signaling.Unmap(), done: make(chan struct{})}
	drops.open.Add(1)
	p.codec.Store(&codec)
	p.remote.Store(&remote)
	p.lastRecv.Store(time.Now().UnixNano())
	go p.readLoop()
	return p
}

// newICEPort is a port whose media goes over t: DTLS-SRTP over ICE on
// conn, which t reads.
func newICEPort(conn *net.UDPConn, codec sb.Codec, t *iceTransport, drops *rtpDrops) *rtpPort {
	p := &rtpPort{conn: conn, ice: t, drops: drops, done: make(chan struct{})}
	p.codec.Store(&codec)
	p.remote.Store(&netip.AddrPort{})
	p.lastRecv.Store(time.Now().UnixNano())
	t.deliver = p.deliver
	t.forged = func() {
		p.forged.Add(1)
		p.drops.forged.Add(1)
	}
	return p
}

// security is what protects the port's media, for our SDP; nil: plain RTP.
func (p *rtpPort) security() security {
	switch {
	case p.ice != nil:
		return p.ice
	case p.srtp != nil:
		return p.srtp
	}
	return nil
}

func (p *rtpPort) Codec() sb.Codec { return *p.codec.Load() }

var _ sb.ReceiveClock = (*rtpPort)(nil)

// ReceivedAt is the kernel's receive timestamp of the packet the sink is
// being handed (SO_TIMESTAMPNS), or 0 where the system gives none.
func (p *rtpPort) ReceivedAt() int64 { return p.rxAt }

func (p *rtpPort) SetSink(sink func([]byte)) {
	if sink == nil {
		p.sink.Store(nil)
		return
	}
	p.sink.Store(&sink)
}

func (p *rtpPort) WriteRTP(pkt []byte) error {
	if p.silent.Load() {
		return nil
	}
	if p.ice != nil {
		return p.ice.writeRTP(pkt)
	}
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

// farDirection takes the direction the far end's offer or answer gave:
// one that sends only, or nothing, receives nothing from us.
func (p *rtpPort) farDirection(dir string) {
	p.silent.Store(dir == "sendonly" || dir == "inactive")
}

// LocalAddr is the socket's address, announced in our SDP.
func (p *rtpPort) LocalAddr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// setRemote takes the address of an offer or answer: a new one points the
// port there and lets it latch again; the same one changes nothing, so a
// caller behind NAT stays latched through hold and resume.
func (p *rtpPort) setRemote(to netip.AddrPort) {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sdp == to {
		return
	}
	p.sdp = to
	p.remote.Store(&to)
	p.latched.Store(false)
	p.probe.n = 0
}

// Dropped is how many packets came from sources the port takes no media
// from.
func (p *rtpPort) Dropped() uint64 { return p.foreign.Load() }

// logDrops notes, at the end of a call, what came from elsewhere than the
// call's peer: someone else sending media to its port.
func (p *rtpPort) logDrops(log *slog.Logger) {
	if n := p.foreign.Load(); n > 0 {
		log.Warn("RTP from other sources dropped", "packets", n, "peer", *p.remote.Load(), "received", p.received.Load())
	}
}

// allows reports whether media is taken from from at all: the latched
// address once there is one, else the SDP's address or the signalling IP.
func (p *rtpPort) allows(from netip.AddrPort) bool {
	if p.latched.Load() {
		return *p.remote.Load() == from
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.allowsLocked(from)
}

// allowsLocked is allows with p.mu held.
func (p *rtpPort) allowsLocked(from netip.AddrPort) bool {
	if p.latched.Load() {
		return *p.remote.Load() == from
	}
	return from == p.sdp || (p.signaling.IsValid() && from.Addr() == p.signaling)
}

// learn decides whether a packet from an allowed source, not latched onto,
// latches the port: at once from the SDP's address or on SRTP, else once
// the source has passed probation. pkt is at least an RTP header.
func (p *rtpPort) learn(from netip.AddrPort, pkt []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.latched.Load() || !p.allowsLocked(from) {
		// Signalling moved the port since allows.
		return p.latched.Load() && *p.remote.Load() == from
	}
	if from != p.sdp && p.srtp == nil {
		ssrc, seq := binary.BigEndian.Uint32(pkt[8:12]), binary.BigEndian.Uint16(pkt[2:4])
		if pr := &p.probe; pr.n > 0 && pr.from == from && pr.ssrc == ssrc && seq == pr.seq+1 {
			pr.n++
		} else {
			pr.from, pr.ssrc, pr.n = from, ssrc, 1
		}
		p.probe.seq = seq
		if p.probe.n < probation {
			return false
		}
	}
	to := from
	p.remote.Store(&to)
	p.latched.Store(true)
	p.probe.n = 0
	return true
}

// idle returns how long no RTP has come from the caller.
func (p *rtpPort) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, p.lastRecv.Load()))
}

// rtpBufs holds the read buffers of the RTP ports that closed, for the
// next calls': a call's two would otherwise be garbage when it ends. A
// port's buffers are its own while it reads; nothing keeps a packet past
// its delivery, as the next read overwrites it.
var rtpBufs = sync.Pool{New: func() any { return new([rtpBufSize]byte) }}

const rtpBufSize = 1500

func (p *rtpPort) readLoop() {
	b := rtpBufs.Get().(*[rtpBufSize]byte)
	defer rtpBufs.Put(b)
	buf := b[:]
	var plain []byte
	if p.srtp != nil {
		pb := rtpBufs.Get().(*[rtpBufSize]byte)
		defer rtpBufs.Put(pb)
		plain = pb[:]
	}
	rd := rxstamp.NewReader(p.conn)
	for {
		n, from, at, err := rd.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors surface here on some systems; keep reading
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !p.allows(from) {
			p.foreign.Add(1)
			p.drops.foreign.Add(1)
			continue
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
				p.drops.forged.Add(1)
				continue
			}
		}
		if !p.latched.Load() && !p.learn(from, pkt) {
			p.drops.probation.Add(1)
			continue
		}
		p.rxAt = at
		p.deliver(pkt)
	}
}

// deliver hands a packet the far end sent to the sink.
func (p *rtpPort) deliver(pkt []byte) {
	p.lastRecv.Store(time.Now().UnixNano())
	p.received.Add(1)
	if sink := p.sink.Load(); sink != nil {
		(*sink)(pkt)
	}
}

func (p *rtpPort) Close() error {
	var err error
	p.closeOnce.Do(func() {
		if p.ice != nil {
			p.ice.close()
		}
		err = p.conn.Close()
		close(p.done)
		p.drops.open.Add(-1)
	})
	return err
}
