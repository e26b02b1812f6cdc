package webrtc

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// peer is a plain pion PeerConnection playing the browser.
type peer struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	got   chan *rtp.Packet
}

func newPeer(tb testing.TB) *peer { return newPeerWith(tb, nil) }

// newPeerWith is newPeer with its settings changed by set.
func newPeerWith(tb testing.TB, set func(*webrtc.SettingEngine)) *peer {
	tb.Helper()
	se := webrtc.SettingEngine{}
	if set != nil {
		set(&se)
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		tb.Fatal(err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000}, PayloadType: 101}, webrtc.RTPCodecTypeAudio); err != nil {
		tb.Fatal(err)
	}
	// No interceptors: what the benchmarks count is the server's work.
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	p := &peer{pc: pc, got: make(chan *rtp.Packet, 256)}
	if p.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "browser"); err != nil {
		tb.Fatal(err)
	}
	if _, err := pc.AddTrack(p.track); err != nil {
		tb.Fatal(err)
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			if len(p.got) == cap(p.got) {
				continue // nobody is looking (a benchmark): allocate nothing
			}
			pkt := new(rtp.Packet)
			if pkt.Unmarshal(append([]byte(nil), buf[:n]...)) != nil {
				continue
			}
			select {
			case p.got <- pkt:
			default:
			}
		}
	})
	tb.Cleanup(func() { pc.Close() })
	return p
}

// mustConnect negotiates s with a new peer, trickling candidates both ways.
func mustConnect(tb testing.TB, s Session) *peer {
	tb.Helper()
	return mustConnectPeer(tb, s, newPeer(tb))
}

// answerOffer has the test peer p answer s's offer, and gives s the answer.
func answerOffer(tb testing.TB, s Session, p *peer, offer string) {
	tb.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		tb.Fatal(err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	if err := s.SetAnswer(p.pc.LocalDescription().SDP); err != nil {
		tb.Fatal(err)
	}
}

// mustConnectPeer connects s with the test peer p.
func mustConnectPeer(tb testing.TB, s Session, p *peer) *peer {
	tb.Helper()
	var mu sync.Mutex
	var serverCands []sb.ICECandidate
	s.OnICECandidate(func(c sb.ICECandidate) {
		mu.Lock()
		serverCands = append(serverCands, c)
		mu.Unlock()
	})
	connected := make(chan struct{})
	var once sync.Once
	s.OnConnectionStateChange(func(st string) {
		if st == "connected" {
			once.Do(func() { close(connected) })
		}
	})
	p.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			init := c.ToJSON()
			s.AddICECandidate(sb.ICECandidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex})
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offer, err := s.CreateOffer(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	answerOffer(tb, s, p, offer)
	deadline := time.After(10 * time.Second)
	for added := 0; ; {
		mu.Lock()
		pending := serverCands[added:]
		added = len(serverCands)
		mu.Unlock()
		for _, c := range pending {
			p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex})
		}
		select {
		case <-connected:
			// The peer's side too: until its DTLS is done it sends no
			// close_notify, nor audio.
			for p.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
				select {
				case <-deadline:
					tb.Fatal("the peer is not connected")
				case <-time.After(5 * time.Millisecond):
				}
			}
			return p
		case <-deadline:
			tb.Fatal("not connected")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func mustEngine(tb testing.TB) *Engine {
	tb.Helper()
	e, err := NewEngine(Config{LoopbackOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

// Both kinds of operator session carry audio both ways: ICE-lite on the
// shared port, and a pion PeerConnection with a port of its own.
func TestSessionCarriesAudioBothWays(t *testing.T) {
	t.Run("shared port", func(t *testing.T) { carriesAudioBothWays(t, mustEngine(t)) })
	t.Run("port per connection", func(t *testing.T) {
		e, err := NewEngine(Config{LoopbackOnly: true, UDPPort: -1})
		if err != nil {
			t.Fatal(err)
		}
		carriesAudioBothWays(t, e)
	})
}

func carriesAudioBothWays(t *testing.T, e *Engine) {
	s, err := e.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := mustConnect(t, s)

	if c := s.Media().Codec(); c.Name != "PCMU" || c.PayloadType != 0 || c.DTMFType != 101 {
		t.Errorf("codec %+v, want PCMU/0 with telephone-event 101", c)
	}

	// Browser → server.
	got := make(chan []byte, 64)
	s.Media().SetSink(func(pkt []byte) { got <- append([]byte(nil), pkt...) })
	frame := media.PatternFrame(make([]byte, 160), 1, time.Now())
	deadline := time.After(5 * time.Second)
	for received := false; !received; {
		p.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 160}, Payload: frame})
		select {
		case pkt := <-got:
			h, ok := media.ParseHeader(pkt)
			if !ok || !bytes.Equal(pkt[h.PayloadOffset:h.PayloadEnd], frame) {
				t.Fatalf("server received %x", pkt)
			}
			received = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no audio from the browser")
		}
	}

	// Server → browser, audio and an RFC 4733 event with its own type.
	for seq, pt := range []uint8{0, 101} {
		payload := frame
		if pt == 101 {
			payload = []byte{5, 0x8a, 0, 160}
		}
		pkt := append(media.AppendHeader(nil, false, pt, uint16(seq+10), 1000, 1234), payload...)
		if err := s.Media().WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		select {
		case in := <-p.got:
			if in.PayloadType != pt || !bytes.Equal(in.Payload, payload) {
				t.Errorf("browser received PT %d %x, want PT %d %x", in.PayloadType, in.Payload, pt, payload)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no packet of type %d reached the browser", pt)
		}
	}
}

func TestSetAnswerRejectsGarbage(t *testing.T) {
	s, err := mustEngine(t).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAnswer("not sdp"); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("SetAnswer(garbage) = %v, want EINVALID", err)
	}
}

func TestCloseReleasesGoroutines(t *testing.T) {
	e := mustEngine(t)
	before := runtime.NumGoroutine()
	s, err := e.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	p := mustConnect(t, s)
	s.Close()
	p.pc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, had %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkSessionWriteRTP is the operator leg's send path per packet:
// SRTP encryption and the socket write.
func BenchmarkSessionWriteRTP(b *testing.B) {
	s, err := mustEngine(b).NewSession()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := mustConnect(b, s)
	pkt := append(media.AppendHeader(nil, false, 0, 1, 160, 1), make([]byte, 160)...)
	// Fill the peer's queue: from then on it allocates nothing.
	deadline := time.Now().Add(10 * time.Second)
	var seq uint16
	for ; len(p.got) < cap(p.got); seq++ {
		if time.Now().After(deadline) {
			b.Fatal("the peer's queue did not fill")
		}
		media.SetSeq(pkt, seq)
		if err := s.Media().WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		seq++
		media.SetSeq(pkt, seq)
		if err := s.Media().WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// One shift-long PeerConnection carries each call in its caller's codec:
// the browser took PCMU, PCMA and Opus, and the port switches between
// them, sending each packet under the codec's payload type; a codec the
// browser did not take is refused and changes nothing.
func TestSessionSwitchesCodecPerCall(t *testing.T) {
	s, err := mustEngine(t).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := mustConnect(t, s)
	ch, ok := s.Media().(sb.CodecChooser)
	if !ok {
		t.Fatal("the operator's port cannot switch codecs")
	}
	if !ch.CanUse("opus") || !ch.CanUse("PCMA") || ch.CanUse("G722") {
		t.Errorf("can use opus %v, PCMA %v, G722 %v: want what both sides took", ch.CanUse("opus"), ch.CanUse("PCMA"), ch.CanUse("G722"))
	}
	if !ch.UseCodec("opus") {
		t.Fatal("opus refused")
	}
	if c := s.Media().Codec(); c != (sb.Codec{Name: "opus", PayloadType: 111, ClockRate: 48000}) {
		t.Errorf("after switching, codec %+v: want opus/111 at 48 kHz, no telephone-event at 48 kHz (the peer took none)", c)
	}
	opusFrame := []byte{0x48, 1, 2, 3, 4, 5}
	deadline := time.After(5 * time.Second)
	for sent := false; !sent; {
		if err := s.Media().WriteRTP(append(media.AppendHeader(nil, false, 111, 7, 960, 1), opusFrame...)); err != nil {
			t.Fatal(err)
		}
		select {
		case in := <-p.got:
			if in.PayloadType != 111 || !bytes.Equal(in.Payload, opusFrame) {
				t.Fatalf("browser received PT %d %x, want the Opus frame unchanged", in.PayloadType, in.Payload)
			}
			sent = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no Opus reached the browser")
		}
	}
	if !ch.UseCodec("PCMA") || ch.UseCodec("G722") {
		t.Fatal("PCMA refused or G722 accepted")
	}
	if c := s.Media().Codec(); c.Name != "PCMA" || c.PayloadType != 8 || c.DTMFType != 101 {
		t.Errorf("the next call's codec %+v, want PCMA/8 with telephone-event 101", c)
	}
}

// Behind 1:1 NAT the host candidates carry the public address in place of
// the local one (Config.PublicIP).
func TestPublicIPReplacesHostCandidates(t *testing.T) {
	e, err := NewEngine(Config{LoopbackOnly: true, PublicIP: netip.MustParseAddr("198.51.100.7")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	offer, err := s.CreateOffer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var cands []string
	for _, line := range strings.Split(offer, "\r\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			cands = append(cands, line)
		}
	}
	if len(cands) == 0 {
		t.Fatalf("no candidate in the offer:\n%s", offer)
	}
	for _, c := range cands {
		if !strings.Contains(c, " 198.51.100.7 ") || !strings.Contains(c, " typ host") {
			t.Errorf("candidate %q, want a host candidate on 198.51.100.7 only", c)
		}
	}
	if strings.Contains(offer, "127.0.0.1") || !strings.Contains(offer, "c=IN IP4 198.51.100.7\r\n") {
		t.Errorf("the offer names an address other than 198.51.100.7:\n%s", offer)
	}
}

// What the browser sends reaches the sink with the kernel's receive time
// of the datagram that carried it to the shared UDP port: after it was
// sent, before the sink saw it.
func TestReceivedAtIsWhenTheDatagramArrived(t *testing.T) {
	e := mustEngine(t)
	if e.UDPPort() == 0 {
		t.Fatal("no shared UDP port")
	}
	s, err := e.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := mustConnect(t, s)
	type seen struct{ at, sinkAt int64 }
	got := make(chan seen, 64)
	s.Media().SetSink(func([]byte) {
		select {
		case got <- seen{s.Media().(sb.ReceiveClock).ReceivedAt(), time.Now().UnixNano()}:
		default:
		}
	})
	deadline := time.After(10 * time.Second)
	sent := time.Now().UnixNano() // before the first packet went
	for seq := uint16(1); ; seq++ {
		if err := p.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160}, Payload: make([]byte, 160)}); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g.at < sent || g.at > g.sinkAt {
				t.Fatalf("received at %d: want between the first send %d and the sink %d", g.at, sent, g.sinkAt)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("nothing reached the sink")
		}
	}
}
