package diag

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// decodeHEP is an independent reader of HEPv3 chunks.
func decodeHEP(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	if string(b[:4]) != "HEP3" || int(binary.BigEndian.Uint16(b[4:])) != len(b) {
		t.Fatalf("HEP header % x, %d bytes", b[:6], len(b))
	}
	out := map[uint16][]byte{}
	for p := b[6:]; len(p) > 0; {
		vendor, typ, n := binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), int(binary.BigEndian.Uint16(p[4:]))
		if vendor != 0 || n < 6 || n > len(p) {
			t.Fatalf("chunk vendor %d type %#x length %d", vendor, typ, n)
		}
		out[typ] = p[6:n]
		p = p[n:]
	}
	return out
}

func TestEncodeHEP3(t *testing.T) {
	at := time.Unix(1795550000, 123456000)
	m := sb.SIPMessage{At: at, Inbound: true, Transport: "udp", Src: ap("203.0.113.5:5060"), Dst: ap("192.0.2.1:5070"), Message: "INVITE sip:2000@h SIP/2.0\r\n\r\n"}
	c := decodeHEP(t, EncodeHEP3(m, 2001, "secret", "call-1@pbx"))
	want := map[uint16][]byte{
		hepFamily: {2}, hepProto: {17}, hepSrcIPv4: {203, 0, 113, 5}, hepDstIPv4: {192, 0, 2, 1},
		hepSrcPort: {0x13, 0xc4}, hepDstPort: {0x13, 0xce}, hepTimeSec: binary.BigEndian.AppendUint32(nil, 1795550000),
		hepTimeUsec: binary.BigEndian.AppendUint32(nil, 123456), hepProtoType: {1}, hepCaptureID: binary.BigEndian.AppendUint32(nil, 2001),
		hepAuthKey: []byte("secret"), hepPayload: []byte(m.Message), hepCorrID: []byte("call-1@pbx"),
	}
	for typ, v := range want {
		if string(c[typ]) != string(v) {
			t.Errorf("chunk %#x = % x, want % x", typ, c[typ], v)
		}
	}
	if len(c) != len(want) {
		t.Errorf("%d chunks, want %d", len(c), len(want))
	}
	v6 := decodeHEP(t, EncodeHEP3(sb.SIPMessage{At: at, Transport: "tcp", Src: ap("[2001:db8::1]:5060"), Dst: ap("[2001:db8::2]:5060")}, 1, "", ""))
	if v6[hepFamily][0] != 10 || v6[hepProto][0] != 6 || len(v6[hepSrcIPv6]) != 16 || v6[hepAuthKey] != nil || v6[hepCorrID] != nil {
		t.Errorf("IPv6 chunks %v", v6)
	}
}

// The sender delivers to a collector on loopback; a full queue drops
// rather than blocking the call.
func TestHEPSender(t *testing.T) {
	collector, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer collector.Close()
	s, err := NewHEPSender(collector.LocalAddr().String(), 7, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m := sb.SIPMessage{At: time.Now(), Transport: "udp", Src: ap("127.0.0.1:5060"), Dst: ap("127.0.0.1:5070"), Message: "OPTIONS sip:h SIP/2.0\r\n\r\n"}
	s.Send(m, "abc")
	buf := make([]byte, 2048)
	collector.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := collector.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if c := decodeHEP(t, buf[:n]); string(c[hepPayload]) != m.Message || string(c[hepCorrID]) != "abc" {
		t.Errorf("the collector got %v", c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Send(m, "after close") // dropped, not a panic

	full := &HEPSender{queue: make(chan []byte, 1)}
	start := time.Now()
	for range 3 {
		full.Send(m, "x")
	}
	if full.Dropped() != 2 || time.Since(start) > time.Second {
		t.Errorf("a full queue dropped %d of 3 in %s", full.Dropped(), time.Since(start))
	}
}

func BenchmarkEncodeHEP3(b *testing.B) {
	m := sb.SIPMessage{At: time.Now(), Transport: "udp", Src: ap("203.0.113.5:5060"), Dst: ap("192.0.2.1:5060"), Message: string(make([]byte, 800))}
	b.ReportAllocs()
	for b.Loop() {
		EncodeHEP3(m, 1, "", "call-1")
	}
}
