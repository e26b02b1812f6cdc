package webrtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/ice/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/rxqueue"
	"github.com/switchboard-voice/switchboard/internal/rxstamp"
)

// udpMux is the one UDP port every operator's ICE runs over, on each
// local address candidates are gathered from. One port instead of one
// per PeerConnection: one socket and one read buffer for all operators,
// and one rule in a firewall.
type udpMux struct {
	mux   ice.UDPMux
	port  int
	addrs []netip.AddrPort // each socket's
	queue int              // the receive queue each socket got, in bytes
}

// muxReadBuffer is the shared socket's receive queue. The kernel counts
// each queued datagram's whole buffer (about 1 KB for a 200-byte audio
// packet), so 16 MB holds about 16,000 packets: a third of a second of
// 1,000 operators' audio (8 MB lost 1.5% of it at 1,000 calls on a
// starved 2-CPU machine). The default (rmem_default, about 200 KB)
// overflows in a 100 ms stall at a few hundred calls. Memory is taken
// only while packets wait.
const muxReadBuffer = 16 << 20

// openUDPMux listens on port, the same on every address; port 0 takes
// the first free one of r, or one the system picks when r is zero. It
// hands operators' sessions' packets to lite, and notes the receive time
// of each RTP packet it passes on to pion in rx.
func openUDPMux(port int, r sb.PortRange, loopbackOnly bool, rx *rxstamp.Table, lite *liteMux) (*udpMux, error) {
	addrs, err := muxAddrs(loopbackOnly)
	if err != nil {
		return nil, err
	}
	var conns []*net.UDPConn
	var p int
	switch {
	case port == 0 && !r.IsZero():
		err = errors.New("no free port in the range")
		for try := int(r.Min); try <= int(r.Max) && err != nil; try++ {
			conns, p, err = listenAll(addrs, try)
		}
	case port == 0:
		// The port the first address got may be taken on another.
		err = errors.New("no free port")
		for try := 0; try < 4 && err != nil; try++ {
			conns, p, err = listenAll(addrs, 0)
		}
	default:
		conns, p, err = listenAll(addrs, port)
	}
	if err != nil {
		return nil, fmt.Errorf("webrtc: UDP port for operators' media: %w", err)
	}
	muxes := make([]ice.UDPMux, len(conns))
	bound := make([]netip.AddrPort, len(conns))
	queue := muxReadBuffer
	for i, c := range conns {
		// One socket takes every operator's media: its queue must ride
		// out a moment the reader is not scheduled. Without CAP_NET_ADMIN
		// the kernel caps the size at net.core.rmem_max
		// (docs/operations.md).
		got, err := rxqueue.Grow(c, muxReadBuffer)
		if err != nil {
			return nil, fmt.Errorf("webrtc: UDP port for operators' media: %w", err)
		}
		queue = min(queue, got)
		muxes[i] = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: newLiteConn(c, rx, lite)})
		bound[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return &udpMux{mux: ice.NewMultiUDPMuxDefault(muxes...), port: p, addrs: bound, queue: queue}, nil
}

func listenAll(addrs []netip.Addr, port int) ([]*net.UDPConn, int, error) {
	var conns []*net.UDPConn
	for _, a := range addrs {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(port))))
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, 0, err
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		conns = append(conns, c)
	}
	return conns, port, nil
}

// muxAddrs are the addresses ICE gathers host candidates from: 127.0.0.1
// only, or every unicast address of the interfaces that are up, except
// loopback and link-local ones (as pion gathers by default).
func muxAddrs(loopbackOnly bool) ([]netip.Addr, error) {
	if loopbackOnly {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}, nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("webrtc: interfaces: %w", err)
	}
	var out []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
				continue
			}
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("webrtc: no network address to take operators' media on")
	}
	return out, nil
}
