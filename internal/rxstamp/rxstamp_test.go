package rxstamp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

func mustPair(t *testing.T) (rx, tx *net.UDPConn) {
	t.Helper()
	lo := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0"))
	rx, err := net.ListenUDP("udp", lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	tx, err = net.DialUDP("udp", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	return rx, tx
}

// The kernel stamps each datagram as it arrives: the stamp lies between
// the send and the read, and a read allocates nothing.
func TestReaderStampsEachDatagram(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_TIMESTAMPNS is Linux's")
	}
	rx, tx := mustPair(t)
	r := NewReader(rx)
	buf := make([]byte, 1500)
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	before := time.Now().UnixNano()
	if _, err := tx.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	n, from, at, err := r.Read(buf)
	after := time.Now().UnixNano()
	if err != nil || string(buf[:n]) != "hello" || from != tx.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("read %q from %v, %v", buf[:n], from, err)
	}
	if at < before || at > after {
		t.Errorf("stamp %d not between the send %d and the read %d", at, before, after)
	}
	x := []byte("x")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := tx.Write(x); err != nil {
			t.Fatal(err)
		}
		if _, _, at, err := r.Read(buf); err != nil || at == 0 {
			t.Fatalf("stamp %d, %v", at, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read, want none", allocs)
	}
}

func rtpPacket(ssrc uint32, seq uint16, pt byte) []byte {
	return []byte{0x80, pt, byte(seq >> 8), byte(seq), 0, 0, 0, 0, byte(ssrc >> 24), byte(ssrc >> 16), byte(ssrc >> 8), byte(ssrc), 1, 2, 3}
}

// The table finds a packet's time by SSRC and sequence number, and only
// that packet's: another packet, RTCP, STUN or DTLS are not recorded or
// found.
func TestTableKeysBySSRCAndSequence(t *testing.T) {
	var tb Table
	tb.Put(rtpPacket(0xdeadbeef, 7, 0), 1000)
	if got := tb.Get(0xdeadbeef, 7); got != 1000 {
		t.Errorf("Get = %d, want 1000", got)
	}
	if got := tb.Get(0xdeadbeef, 8); got != 0 {
		t.Errorf("another sequence number: %d, want 0", got)
	}
	if got := tb.Get(0xdeadbeee, 7); got != 0 {
		t.Errorf("another SSRC: %d, want 0", got)
	}
	tb.Put(rtpPacket(1, 1, 200), 2000) // RTCP sender report
	if got := tb.Get(1, 1); got != 0 {
		t.Errorf("RTCP recorded: %d", got)
	}
	stun := rtpPacket(2, 2, 0)
	stun[0] = 0x00
	tb.Put(stun, 3000)
	if got := tb.Get(2, 2); got != 0 {
		t.Errorf("a non-RTP datagram recorded: %d", got)
	}
	tb.Put(rtpPacket(3, 3, 0), 0) // no stamp
	if got := tb.Get(3, 3); got != 0 {
		t.Errorf("an unstamped packet recorded: %d", got)
	}
}

// Several sockets write one table at once (one reader goroutine per local
// address): a reader gets a packet's own time or 0, never another's, even
// when writers collide on slots.
func TestTableWritersDoNotMixTimes(t *testing.T) {
	var tab Table
	pkt := func(ssrc uint32, seq uint16) []byte {
		p := make([]byte, 12)
		p[0] = 0x80
		binary.BigEndian.PutUint16(p[2:4], seq)
		binary.BigEndian.PutUint32(p[8:12], ssrc)
		return p
	}
	// Each packet's time encodes its own key, so a mixed-up time shows.
	at := func(ssrc uint32, seq uint16) int64 { return int64(ssrc)<<16 | int64(seq) + 1 }
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20000 {
				ssrc, seq := uint32(i%7+w*7), uint16(i)
				tab.Put(pkt(ssrc, seq), at(ssrc, seq))
			}
		}()
	}
	for i := range 20000 * 4 {
		ssrc, seq := uint32(i%28), uint16(i/4)
		if got := tab.Get(ssrc, seq); got != 0 && got != at(ssrc, seq) {
			t.Fatalf("ssrc %d seq %d: time %d, another packet's", ssrc, seq, got)
		}
	}
	wg.Wait()
}
