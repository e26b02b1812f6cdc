package sip

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// udpCounter is a socket on ip that counts the datagrams it receives: a
// stranger, or an address media is announced at.
type udpCounter struct {
	conn *net.UDPConn
	got  atomic.Int64
	each chan struct{} // one per datagram, while there is room
	seq  uint16
	ssrc uint32
}

func mustUDPCounter(t *testing.T, ip string) *udpCounter {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	u := &udpCounter{conn: conn, each: make(chan struct{}, 64), ssrc: 0x5742a9e1, seq: 7}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			u.got.Add(1)
			select {
			case u.each <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return u
}

func (u *udpCounter) addr() netip.AddrPort { return u.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// send sends n A-law frames in sequence to to, as a caller would; with
// same set, the same packet n times, as a sprayer replaying one would.
func (u *udpCounter) send(t *testing.T, to netip.AddrPort, n int, same bool) {
	t.Helper()
	for i := 0; i < n; i++ {
		pkt := append(media.AppendHeader(nil, false, 0, u.seq, uint32(u.seq)*160, u.ssrc), make([]byte, 160)...)
		if !same {
			u.seq++
		}
		if _, err := u.conn.WriteToUDPAddrPort(pkt, to); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor waits, boundedly, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// noPacket checks nothing has reached got.
func (got packets) noPacket(t *testing.T, what string) {
	t.Helper()
	select {
	case pkt := <-got:
		t.Fatalf("%s: a packet reached the leg: %x", what, pkt[:12])
	default:
	}
}

// A stranger sending RTP to a call's port, while it rings and once it is
// answered, is never heard by the operator and hears nothing of them;
// the caller is not silenced.
func TestStrangerRTPIsDropped(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{Codec: sb.PCMU})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, ts.addr("udp"), "3000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { call.Close() })
	in := nextCall(t, ts)
	got := legSink(in.Leg)
	port := in.Leg.Media().(*rtpPort).LocalAddr()
	// One stranger on another address sends a stream in sequence; one on
	// the caller's signalling address replays one packet.
	far, near := mustUDPCounter(t, "127.0.0.2"), mustUDPCounter(t, "127.0.0.1")

	if err := in.Leg.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	<-call.Ringing()
	far.send(t, port, 20, false)
	near.send(t, port, 20, true)
	// Every packet is dropped (and counted) or reaches the sink, in the
	// order sent: once all are counted, none got through.
	rp := in.Leg.Media().(*rtpPort)
	waitFor(t, "the strangers' packets counted", func() bool {
		d := ts.RTPDrops()
		return d["foreign_source"] == 20 && d["probation"] == 20
	})
	got.noPacket(t, "strangers while ringing")

	answered := make(chan error, 1)
	go func() { answered <- in.Leg.Answer(ctx) }()
	if err := call.Wait(ctx); err != nil {
		t.Fatalf("phone: %v", err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("answer: %v", err)
	}
	// The operator speaks before the caller has sent anything.
	sendToPhone(t, in.Leg, call, 0, media.PatternFrame(make([]byte, 160), 1, time.Now()))

	frame := media.PatternFrame(make([]byte, 160), 2, time.Now())
	if err := call.SendRTP(frame, true); err != nil {
		t.Fatal(err)
	}
	got.expect(t, "the caller's first frame", frame)

	far.send(t, port, 20, false)
	near.send(t, port, 20, false)
	next := media.PatternFrame(make([]byte, 160), 3, time.Now())
	if err := call.SendRTP(next, false); err != nil {
		t.Fatal(err)
	}
	// The caller's frame is the next packet the leg gets: it was sent
	// after the strangers', and none of theirs came through.
	got.expect(t, "the caller after the strangers", next)
	if n := rp.Dropped(); n != 60 {
		t.Errorf("the port counted %d packets from strangers, want 60", n)
	}
	if d := ts.RTPDrops(); d["foreign_source"] != 60 || d["probation"] != 20 || d["unauthenticated"] != 0 {
		t.Errorf("the server counted drops %v, want 60 foreign_source, 20 probation", d)
	}
	sendToPhone(t, in.Leg, call, 0, media.PatternFrame(make([]byte, 160), 4, time.Now()))

	if n, m := far.got.Load(), near.got.Load(); n != 0 || m != 0 {
		t.Errorf("the strangers received %d and %d packets of the operator's, want none", n, m)
	}
}

// A caller behind NAT announces an address nobody can reach and sends
// from its signalling address with another port: after a few packets in
// sequence the leg latches there, and audio goes both ways.
func TestNATedCallerLatchesAfterProbation(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	private := mustUDPCounter(t, "127.0.0.3") // the address in the SDP
	phone := mustPhone(t, siptest.Options{Codec: sb.PCMU, AnnounceRTP: private.addr()})
	in, call := answer(t, ts, phone, "udp")
	got := legSink(in.Leg)

	var last []byte
	for i := 0; i < 8; i++ {
		last = media.PatternFrame(make([]byte, 160), uint32(10+i), time.Now())
		if err := call.SendRTP(last, i == 0); err != nil {
			t.Fatal(err)
		}
	}
	// The first packets are on probation; the last one gets through.
	deadline := time.After(3 * time.Second)
	for arrived := 0; ; arrived++ {
		select {
		case pkt := <-got:
			h, _ := media.ParseHeader(pkt)
			if string(pkt[h.PayloadOffset:h.PayloadEnd]) != string(last) {
				continue
			}
			if arrived+1 < 8-(probation-1) {
				t.Errorf("%d of 8 packets reached the leg, want at least %d", arrived+1, 8-(probation-1))
			}
		case <-deadline:
			t.Fatalf("the NATed caller's packets never reached the leg (%d arrived)", arrived)
		}
		break
	}
	if d := ts.RTPDrops(); d["probation"] != probation-1 || d["foreign_source"] != 0 {
		t.Errorf("drops %v, want %d on probation and none foreign", d, probation-1)
	}
	sendToPhone(t, in.Leg, call, 0, media.PatternFrame(make([]byte, 160), 20, time.Now()))
	// A hold and a resume that name the same address keep the latch.
	holdAndResume(t, in.Leg, call)
	sendToPhone(t, in.Leg, call, 0, media.PatternFrame(make([]byte, 160), 21, time.Now()))
	if n := private.got.Load(); n != 0 {
		t.Errorf("%d packets went to the unreachable address in the SDP", n)
	}
}

// holdAndResume has the caller put the call on hold and take it off.
func holdAndResume(t *testing.T, leg sb.TrunkLeg, call *siptest.Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := call.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, leg, sb.LegHeld)
	if err := call.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, leg, sb.LegResumed)
}

// A re-INVITE that names a new media address is followed: the operator's
// audio goes there, and the caller's from there is heard.
func TestReinviteMovesMedia(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{Codec: sb.PCMU})
	in, call := answer(t, ts, phone, "udp")
	got := legSink(in.Leg)
	frame := media.PatternFrame(make([]byte, 160), 1, time.Now())
	if err := call.SendRTP(frame, true); err != nil {
		t.Fatal(err)
	}
	got.expect(t, "before the move", frame)

	moved := mustUDPCounter(t, "127.0.0.4")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := call.MoveMedia(ctx, moved.addr()); err != nil {
		t.Fatal(err)
	}
	out := append(media.AppendHeader(nil, false, 0, 1, 160, 99), frame...)
	for i := 0; i < 3; i++ {
		if err := in.Leg.Media().WriteRTP(out); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		select {
		case <-moved.each:
		case <-time.After(3 * time.Second):
			t.Fatalf("%d of 3 packets reached the new address", moved.got.Load())
		}
	}
	moved.send(t, in.Leg.Media().(*rtpPort).LocalAddr(), 1, false)
	select {
	case <-got:
	case <-time.After(3 * time.Second):
		t.Fatal("RTP from the new address never reached the leg")
	}
	// The old address is a stranger now.
	if err := call.SendRTP(frame, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old address's packet dropped", func() bool { return ts.RTPDrops()["foreign_source"] == 1 })
	got.noPacket(t, "the old address after the move")
}

// BenchmarkRTPPortReceive is the trunk leg's read loop per packet, on a
// real loopback socket: a packet from the latched caller is checked and
// handed to the sink. The sender waits for each packet to arrive, so the
// socket never overflows.
func BenchmarkRTPPortReceive(b *testing.B) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	caller, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer caller.Close()
	from := caller.LocalAddr().(*net.UDPAddr).AddrPort()
	p := newRTPPort(conn, sb.PCMU, from, from.Addr(), nil, nil)
	defer p.Close()
	arrived := make(chan struct{}, 1)
	p.SetSink(func([]byte) { arrived <- struct{}{} })
	to := p.LocalAddr()
	pkt := append(media.AppendHeader(nil, false, 0, 0, 0, 42), make([]byte, 160)...)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		if _, err := caller.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
		<-arrived
	}
}
