// Package diag holds what diagnosing calls needs besides the call itself:
// a call's signalling as a pcap file for Wireshark, HEPv3 export to a
// Homer collector, and the E-model's estimate of how a direction sounded.
package diag

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"

	sb "github.com/switchboard-voice/switchboard"
)

// The pcap is the classic libpcap format with microsecond timestamps
// (magic 0xa1b2c3d4): every version of Wireshark and tcpdump reads it.
// Frames are Ethernet with made-up MAC addresses, IPv4 or IPv6 as the
// message's addresses are, and UDP or, for TCP and TLS, TCP with sequence
// numbers that run on per direction so Wireshark reassembles the stream,
// the way text2pcap does. TLS messages are exported as the SIP they carry,
// decrypted, over TCP.
const (
	linkEthernet = 1
	snapLen      = 262144
	ethHeader    = 14
	ipv4Header   = 20
	ipv6Header   = 40
	udpHeader    = 8
	tcpHeader    = 20
	maxSegment   = 1400 // TCP payload per frame, under any Ethernet MTU
)

// WritePcap writes a call's SIP messages as a pcap file.
func WritePcap(w io.Writer, msgs []sb.SIPMessage) error {
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], snapLen)
	binary.LittleEndian.PutUint32(hdr[20:], linkEthernet)
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("diag: pcap header: %w", err)
	}
	seqs := map[[2]netip.AddrPort]uint32{} // next TCP sequence number per direction
	for i, m := range msgs {
		if !m.Src.IsValid() || !m.Dst.IsValid() {
			return fmt.Errorf("diag: message %d has no addresses", i)
		}
		src, dst := m.Src, m.Dst
		if src.Addr().Is4In6() || dst.Addr().Is4In6() {
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		}
		if src.Addr().Is4() != dst.Addr().Is4() {
			return fmt.Errorf("diag: message %d goes from %s to %s: the families differ", i, src, dst)
		}
		payload := []byte(m.Message)
		if m.Transport == "udp" {
			if len(payload) > 65535-udpHeader-ipv6Header {
				return fmt.Errorf("diag: message %d: %d bytes do not fit one UDP datagram", i, len(payload))
			}
			if err := writeFrame(w, m, src, dst, udpSegment(src, dst, payload)); err != nil {
				return err
			}
			continue
		}
		key := [2]netip.AddrPort{src, dst}
		if _, ok := seqs[key]; !ok {
			seqs[key] = 1
		}
		for len(payload) > 0 {
			n := min(len(payload), maxSegment)
			seg := tcpSegment(src, dst, seqs[key], seqs[[2]netip.AddrPort{dst, src}], payload[:n])
			if err := writeFrame(w, m, src, dst, seg); err != nil {
				return err
			}
			seqs[key] += uint32(n)
			payload = payload[n:]
		}
	}
	return nil
}

// writeFrame writes one record: Ethernet, the IP header, and seg (a UDP
// or TCP segment, checksummed).
func writeFrame(w io.Writer, m sb.SIPMessage, src, dst netip.AddrPort, seg []byte) error {
	proto := byte(17)
	if m.Transport != "udp" {
		proto = 6
	}
	frame := make([]byte, 0, ethHeader+ipv6Header+len(seg))
	frame = append(frame, 0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01) // dst, src: locally administered
	if src.Addr().Is4() {
		frame = append(frame, 0x08, 0x00)
		ip := make([]byte, ipv4Header)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipv4Header+len(seg)))
		ip[6] = 0x40 // don't fragment
		ip[8] = 64
		ip[9] = proto
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
		frame = append(frame, ip...)
	} else {
		frame = append(frame, 0x86, 0xdd)
		ip := make([]byte, ipv6Header)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(seg)))
		ip[6] = proto
		ip[7] = 64
		s6, d6 := src.Addr().As16(), dst.Addr().As16()
		copy(ip[8:], s6[:])
		copy(ip[24:], d6[:])
		frame = append(frame, ip...)
	}
	frame = append(frame, seg...)
	var rec [16]byte
	at := m.At.UTC()
	binary.LittleEndian.PutUint32(rec[0:], uint32(at.Unix()))
	binary.LittleEndian.PutUint32(rec[4:], uint32(at.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
	if _, err := w.Write(rec[:]); err != nil {
		return fmt.Errorf("diag: pcap record: %w", err)
	}
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("diag: pcap record: %w", err)
	}
	return nil
}

func udpSegment(src, dst netip.AddrPort, payload []byte) []byte {
	seg := make([]byte, udpHeader, udpHeader+len(payload))
	binary.BigEndian.PutUint16(seg[0:], src.Port())
	binary.BigEndian.PutUint16(seg[2:], dst.Port())
	binary.BigEndian.PutUint16(seg[4:], uint16(udpHeader+len(payload)))
	seg = append(seg, payload...)
	c := checksum(seg, pseudoHeader(src.Addr(), dst.Addr(), 17, len(seg)))
	if c == 0 {
		c = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(seg[6:], c)
	return seg
}

func tcpSegment(src, dst netip.AddrPort, seq, ack uint32, payload []byte) []byte {
	seg := make([]byte, tcpHeader, tcpHeader+len(payload))
	binary.BigEndian.PutUint16(seg[0:], src.Port())
	binary.BigEndian.PutUint16(seg[2:], dst.Port())
	binary.BigEndian.PutUint32(seg[4:], seq)
	binary.BigEndian.PutUint32(seg[8:], ack)
	seg[12] = tcpHeader / 4 << 4
	seg[13] = 0x18 // PSH, ACK
	binary.BigEndian.PutUint16(seg[14:], 65535)
	seg = append(seg, payload...)
	binary.BigEndian.PutUint16(seg[16:], checksum(seg, pseudoHeader(src.Addr(), dst.Addr(), 6, len(seg))))
	return seg
}

// pseudoHeader is the sum of the IP pseudo-header UDP and TCP checksums
// cover.
func pseudoHeader(src, dst netip.Addr, proto byte, length int) uint32 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	sum += uint32(proto) + uint32(length)
	return sum
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
