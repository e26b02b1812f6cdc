package diag

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

type frame struct {
	at        time.Time
	v6        bool
	proto     byte
	src, dst  netip.AddrPort
	seq       uint32
	payload   []byte
	ipOK      bool
	l4OK      bool
	capturedN int
}

// readPcap is an independent reader: it checks what Wireshark would.
func readPcap(t *testing.T, b []byte) []frame {
	t.Helper()
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("pcap header % x", b[:min(len(b), 24)])
	}
	b = b[24:]
	var out []frame
	for len(b) > 0 {
		n := int(binary.LittleEndian.Uint32(b[8:]))
		f := frame{at: time.Unix(int64(binary.LittleEndian.Uint32(b)), int64(binary.LittleEndian.Uint32(b[4:]))*1000), capturedN: n}
		pkt := b[16 : 16+n]
		b = b[16+n:]
		et := binary.BigEndian.Uint16(pkt[12:])
		ip := pkt[14:]
		var l4 []byte
		var sum uint32
		switch et {
		case 0x0800:
			hl := int(ip[0]&0xf) * 4
			f.proto = ip[9]
			f.ipOK = checksum(ip[:hl], 0) == 0 && int(binary.BigEndian.Uint16(ip[2:])) == len(ip)
			s, _ := netip.AddrFromSlice(ip[12:16])
			d, _ := netip.AddrFromSlice(ip[16:20])
			l4 = ip[hl:]
			f.src, f.dst = netip.AddrPortFrom(s, binary.BigEndian.Uint16(l4)), netip.AddrPortFrom(d, binary.BigEndian.Uint16(l4[2:]))
			sum = pseudoHeader(s, d, f.proto, len(l4))
		case 0x86dd:
			f.v6 = true
			f.proto = ip[6]
			f.ipOK = int(binary.BigEndian.Uint16(ip[4:])) == len(ip)-40
			s, _ := netip.AddrFromSlice(ip[8:24])
			d, _ := netip.AddrFromSlice(ip[24:40])
			l4 = ip[40:]
			f.src, f.dst = netip.AddrPortFrom(s, binary.BigEndian.Uint16(l4)), netip.AddrPortFrom(d, binary.BigEndian.Uint16(l4[2:]))
			sum = pseudoHeader(s, d, f.proto, len(l4))
		default:
			t.Fatalf("ethertype %#x", et)
		}
		f.l4OK = checksum(l4, sum) == 0
		if f.proto == 17 {
			f.payload = l4[8:]
			f.l4OK = f.l4OK && int(binary.BigEndian.Uint16(l4[4:])) == len(l4)
		} else {
			f.seq = binary.BigEndian.Uint32(l4[4:])
			f.payload = l4[int(l4[12]>>4)*4:]
		}
		out = append(out, f)
	}
	return out
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// A call's signalling over UDP, TCP (one message long enough to span
// segments) and IPv6 reads back exactly: addresses, ports, checksums,
// times, payloads, and TCP sequence numbers that run on per direction.
func TestWritePcap(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 0, 0, 123456000, time.UTC)
	long := "INVITE sip:2000@h SIP/2.0\r\nX-Pad: " + strings.Repeat("x", 2000) + "\r\n\r\n"
	msgs := []sb.SIPMessage{
		{At: at, Inbound: true, Transport: "udp", Src: ap("203.0.113.5:5060"), Dst: ap("192.0.2.1:5060"), Message: "INVITE sip:2000@h SIP/2.0\r\n\r\n"},
		{At: at.Add(time.Millisecond), Transport: "udp", Src: ap("192.0.2.1:5060"), Dst: ap("203.0.113.5:5060"), Message: "SIP/2.0 100 Trying\r\n\r\n"},
		{At: at.Add(2 * time.Millisecond), Inbound: true, Transport: "tcp", Src: ap("203.0.113.5:40000"), Dst: ap("192.0.2.1:5060"), Message: long},
		{At: at.Add(3 * time.Millisecond), Transport: "tcp", Src: ap("192.0.2.1:5060"), Dst: ap("203.0.113.5:40000"), Message: "SIP/2.0 180 Ringing\r\n\r\n"},
		{At: at.Add(4 * time.Millisecond), Inbound: true, Transport: "tcp", Src: ap("203.0.113.5:40000"), Dst: ap("192.0.2.1:5060"), Message: "ACK x SIP/2.0\r\n\r\n"},
		{At: at.Add(5 * time.Millisecond), Transport: "tls", Src: ap("[2001:db8::1]:5061"), Dst: ap("[2001:db8::2]:50000"), Message: "BYE x SIP/2.0\r\n\r\n"},
	}
	var b bytes.Buffer
	if err := WritePcap(&b, msgs); err != nil {
		t.Fatal(err)
	}
	frames := readPcap(t, b.Bytes())
	if len(frames) != 7 { // the long message takes two TCP segments
		t.Fatalf("%d frames, want 7", len(frames))
	}
	for i, f := range frames {
		if !f.ipOK || !f.l4OK {
			t.Errorf("frame %d: IP ok %t, %d checksum ok %t", i, f.ipOK, f.proto, f.l4OK)
		}
	}
	if f := frames[0]; f.proto != 17 || f.src != msgs[0].Src || f.dst != msgs[0].Dst || string(f.payload) != msgs[0].Message || !f.at.Equal(at) {
		t.Errorf("first frame %+v", f)
	}
	if got := string(frames[2].payload) + string(frames[3].payload); got != long || frames[2].proto != 6 {
		t.Error("the long message does not read back whole across its segments")
	}
	if frames[2].seq != 1 || frames[3].seq != 1+uint32(len(frames[2].payload)) || frames[5].seq != 1+uint32(len(long)) {
		t.Errorf("TCP sequence numbers %d %d %d do not run on", frames[2].seq, frames[3].seq, frames[5].seq)
	}
	if frames[4].seq != 1 {
		t.Errorf("the other direction's first sequence number %d", frames[4].seq)
	}
	if f := frames[6]; !f.v6 || f.proto != 6 || f.src != msgs[5].Src || string(f.payload) != msgs[5].Message {
		t.Errorf("IPv6 frame %+v", f)
	}
	if err := WritePcap(&bytes.Buffer{}, []sb.SIPMessage{{Transport: "udp", Src: ap("192.0.2.1:1"), Dst: ap("[2001:db8::1]:2")}}); err == nil {
		t.Error("mixed address families were written")
	}
}

func BenchmarkWritePcap(b *testing.B) {
	msgs := []sb.SIPMessage{{At: time.Now(), Transport: "udp", Src: ap("203.0.113.5:5060"), Dst: ap("192.0.2.1:5060"),
		Message: "INVITE sip:2000@h SIP/2.0\r\n" + strings.Repeat("Header: value\r\n", 40) + "\r\n"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := WritePcap(&bytes.Buffer{}, msgs); err != nil {
			b.Fatal(err)
		}
	}
}
