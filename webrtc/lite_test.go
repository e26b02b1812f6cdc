package webrtc

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/rxstamp"
	"github.com/switchboard-voice/switchboard/media"
)

// mustLite returns a new operator session on the shared port and its
// ICE-lite insides.
func mustLite(t *testing.T, e *Engine) (Session, *liteSession) {
	t.Helper()
	s, err := e.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ls, ok := s.(*liteSession)
	if !ok {
		t.Fatalf("the shared port's session is a %T, want ICE-lite", s)
	}
	return s, ls
}

// states records a session's reported connection states.
type states struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func watchStates(s Session) *states {
	w := &states{ch: make(chan string, 16)}
	s.OnConnectionStateChange(func(st string) {
		w.mu.Lock()
		w.got = append(w.got, st)
		w.mu.Unlock()
		w.ch <- st
	})
	return w
}

// await waits for the state want, failing on any state in not.
func (w *states) await(t *testing.T, want string, within time.Duration, not ...string) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case st := <-w.ch:
			if st == want {
				return
			}
			for _, n := range not {
				if st == n {
					t.Fatalf("state %q before %q", st, want)
				}
			}
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("no %q within %v; states %v", want, within, w.got)
		}
	}
}

// stranger is a UDP socket on loopback that talks to the shared port.
func stranger(t *testing.T, e *Engine) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(e.UDPPort()))
}

// useCandidate is ICE's USE-CANDIDATE attribute (RFC 8445 §16.1).
type useCandidate struct{}

func (useCandidate) AddTo(m *stun.Message) error {
	m.Add(stun.AttrUseCandidate, nil)
	return nil
}

func readSTUN(t *testing.T, c *net.UDPConn) *stun.Message {
	t.Helper()
	m := maybeSTUN(t, c, 2*time.Second)
	if m == nil {
		t.Fatal("no answer to the check")
	}
	return m
}

// maybeSTUN is the next STUN message c reads within d, or nil.
func maybeSTUN(t *testing.T, c *net.UDPConn, d time.Duration) *stun.Message {
	t.Helper()
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
	if err := m.Decode(); err != nil {
		t.Fatalf("the answer is not STUN: %v", err)
	}
	return m
}

// The trust table of the shared port, for an operator's session:
//
//	from                                   | what it may do
//	a check with our ufrag, wrong password | gets 401; proves nothing
//	an address no check proved             | nothing it sends reaches the session
//	a check with the right password        | gets its address back, signed; the address is the session's
//
// The password reaches only the operator's browser, in the offer over its
// signed-in WebSocket.
func TestLiteCheckNeedsThePassword(t *testing.T) {
	e := mustEngine(t)
	s, ls := mustLite(t, e)
	if _, err := s.CreateOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 4)
	s.Media().SetSink(func(p []byte) { got <- append([]byte(nil), p...) })
	c, port := stranger(t, e)
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()

	check := func(pwd string) *stun.Message {
		req := liteCheckFor(t, ls, pwd, useCandidate{})
		if _, err := c.WriteToUDPAddrPort(req.Raw, port); err != nil {
			t.Fatal(err)
		}
		resp := readSTUN(t, c)
		if resp.TransactionID != req.TransactionID {
			t.Fatal("the answer is to another transaction")
		}
		return resp
	}

	resp := check("not the password")
	var code stun.ErrorCodeAttribute
	if resp.Type != stun.BindingError || code.GetFrom(resp) != nil || code.Code != stun.CodeUnauthorized {
		t.Fatalf("a check with a wrong password got %v %v, want 401", resp.Type, code)
	}
	if ls.e.lite.byAddress(from) != nil || ls.route.Load() != nil {
		t.Fatal("a check with a wrong password proved its address")
	}
	// What an unproven address sends is not the session's: a DTLS
	// ClientHello's first byte, an SRTP packet.
	c.WriteToUDPAddrPort([]byte{22, 254, 253, 0, 0}, port)
	c.WriteToUDPAddrPort(append(media.AppendHeader(nil, false, 0, 1, 160, 1), make([]byte, 170)...), port)
	select {
	case p := <-got:
		t.Fatalf("the sink got %x from a stranger", p)
	case <-time.After(200 * time.Millisecond):
	}

	resp = check(ls.pwd)
	var mapped stun.XORMappedAddress
	if resp.Type != stun.BindingSuccess || mapped.GetFrom(resp) != nil {
		t.Fatalf("a check with the password got %v, want a success with the mapped address", resp.Type)
	}
	if got := netip.AddrPortFrom(netip.MustParseAddr(mapped.IP.String()), uint16(mapped.Port)); got != from {
		t.Errorf("mapped address %v, want %v", got, from)
	}
	if stun.NewShortTermIntegrity(ls.pwd).Check(resp) != nil || stun.Fingerprint.Check(resp) != nil {
		t.Error("the success is not signed with our password, or has no fingerprint")
	}
	if ls.e.lite.byAddress(from) != ls {
		t.Error("a check with the password did not prove its address")
	}
	if r := ls.route.Load(); r == nil || r.to != from {
		t.Error("the nominated address is not the route")
	}
}

// dtlsRoles are the two ways an answer can set up DTLS: browsers answer
// active (they connect, as Chrome does); passive makes us connect.
var dtlsRoles = []struct {
	name   string
	answer webrtc.DTLSRole
	client bool // we connect
}{
	{"the browser connects", webrtc.DTLSRoleClient, false},
	{"we connect", webrtc.DTLSRoleServer, true},
}

func peerAnswering(t *testing.T, role webrtc.DTLSRole) *peer {
	return newPeerWith(t, func(se *webrtc.SettingEngine) {
		if err := se.SetAnsweringDTLSRole(role); err != nil {
			t.Fatal(err)
		}
	})
}

// Either side may start DTLS, as the answer says; audio flows both ways
// either way.
func TestLiteDTLSRoles(t *testing.T) {
	for _, r := range dtlsRoles {
		t.Run(r.name, func(t *testing.T) {
			s, ls := mustLite(t, mustEngine(t))
			p := mustConnectPeer(t, s, peerAnswering(t, r.answer))
			defer p.pc.Close()
			if !strings.Contains(p.pc.LocalDescription().SDP, map[bool]string{true: "a=setup:passive", false: "a=setup:active"}[r.client]) {
				t.Fatalf("the peer's answer does not set up DTLS as the case needs:\n%s", p.pc.LocalDescription().SDP)
			}
			got := make(chan []byte, 64)
			s.Media().SetSink(func(pkt []byte) { got <- append([]byte(nil), pkt...) })
			deadline := time.After(5 * time.Second)
			for seq := uint16(1); ; seq++ {
				p.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160}, Payload: []byte{1, 2, 3}})
				if err := s.Media().WriteRTP(append(media.AppendHeader(nil, false, 0, seq, uint32(seq)*160, 1), 4, 5, 6)); err != nil {
					t.Fatal(err)
				}
				select {
				case pkt := <-got:
					if !bytes.HasSuffix(pkt, []byte{1, 2, 3}) {
						t.Fatalf("the sink got %x", pkt)
					}
					select {
					case in := <-p.got:
						if !bytes.Equal(in.Payload, []byte{4, 5, 6}) || in.SSRC != ls.ssrc {
							t.Fatalf("the browser got %x under SSRC %d, want 040506 under %d", in.Payload, in.SSRC, ls.ssrc)
						}
						return
					case <-time.After(2 * time.Second):
						t.Fatal("nothing reached the browser")
					}
				case <-time.After(50 * time.Millisecond):
				case <-deadline:
					t.Fatal("nothing reached the sink")
				}
			}
		})
	}
}

// A browser whose certificate is not the one its answer names is not
// connected, whichever side starts DTLS: the link fails and no audio key
// is made.
func TestLiteRefusesAnotherCertificate(t *testing.T) {
	for _, r := range dtlsRoles {
		t.Run(r.name, func(t *testing.T) {
			e := mustEngine(t)
			s, ls := mustLite(t, e)
			w := watchStates(s)
			p := peerAnswering(t, r.answer)
			defer p.pc.Close()
			offer, err := s.CreateOffer(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
				t.Fatal(err)
			}
			answer, err := p.pc.CreateAnswer(nil)
			if err != nil {
				t.Fatal(err)
			}
			gathered := webrtc.GatheringCompletePromise(p.pc)
			if err := p.pc.SetLocalDescription(answer); err != nil {
				t.Fatal(err)
			}
			<-gathered
			forged := regexp.MustCompile(`a=fingerprint:sha-256 [0-9A-F:]+`).ReplaceAllString(p.pc.LocalDescription().SDP,
				"a=fingerprint:sha-256 "+strings.Repeat("AB:", 31)+"AB")
			if err := s.SetAnswer(forged); err != nil {
				t.Fatal(err)
			}
			for i, a := range e.candidateAddrs() {
				mid, line := "0", uint16(0)
				p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: hostCandidate(i, a), SDPMid: &mid, SDPMLineIndex: &line})
			}
			w.await(t, "failed", 15*time.Second, "connected")
			if ls.keys.Load() != nil {
				t.Error("SRTP was keyed with a browser whose certificate does not match")
			}
		})
	}
}

// Consent (RFC 7675) in each phase: a connected link whose browser stops
// checking is disconnected after 10 s and failed after 30 s; a check in
// between brings it back.
func TestLiteConsent(t *testing.T) {
	e := mustEngine(t)
	s, ls := mustLite(t, e)
	p := mustConnect(t, s)
	w := watchStates(s)
	now := time.Now()
	ls.tick(now.Add(consentLapse / 2))
	ls.tick(now.Add(consentLapse + time.Second))
	w.await(t, "disconnected", 2*time.Second, "failed")
	// The peer's next keepalive check (every 2 s) reconnects it.
	w.await(t, "connected", 5*time.Second, "failed")
	ls.tick(time.Now().Add(consentExpiry + time.Second))
	w.await(t, "failed", 2*time.Second)
	// Failed is the end: checks no longer bring it back.
	select {
	case st := <-w.ch:
		t.Errorf("state %q after failed", st)
	case <-time.After(2500 * time.Millisecond):
	}
	p.pc.Close()
}

// A browser that closes its PeerConnection sends a DTLS close_notify: the
// link fails at once, without waiting for consent to expire.
func TestLiteBrowserCloseEndsLink(t *testing.T) {
	s, ls := mustLite(t, mustEngine(t))
	p := mustConnect(t, s)
	w := watchStates(s)
	p.pc.Close()
	w.await(t, "failed", 3*time.Second)
	if ls.route.Load() != nil {
		t.Error("a failed link still has somewhere to send")
	}
}

// Sending audio, the session sends RTCP sender reports (RFC 3550 §6.4.1)
// with what it sent under its SSRC; the browser can decrypt them.
func TestLiteSenderReport(t *testing.T) {
	s, ls := mustLite(t, mustEngine(t))
	p := mustConnect(t, s)
	const sent = 5
	for seq := range sent {
		pkt := append(media.AppendHeader(nil, false, 0, uint16(seq), uint32(seq)*160, 1), make([]byte, 160)...)
		if err := s.Media().WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
	}
	ls.port.senderReport(time.Now())
	recv := p.pc.GetReceivers()
	if len(recv) == 0 {
		t.Fatal("the peer has no receiver")
	}
	// The compound packet's SDES may reach pion's reader apart from the
	// report: both must come.
	done := make(chan *rtcp.SenderReport, 1)
	cname := make(chan string, 1)
	go func() {
		var sr *rtcp.SenderReport
		name := ""
		for sr == nil || name == "" {
			pkts, _, err := recv[0].ReadRTCP()
			if err != nil {
				return
			}
			for _, pk := range pkts {
				switch pk := pk.(type) {
				case *rtcp.SenderReport:
					sr = pk
				case *rtcp.SourceDescription:
					for _, c := range pk.Chunks {
						for _, it := range c.Items {
							if c.Source == ls.ssrc && it.Type == rtcp.SDESCNAME {
								name = it.Text
							}
						}
					}
				}
			}
		}
		cname <- name
		done <- sr
	}()
	select {
	case sr := <-done:
		if name := <-cname; name != liteCNAME {
			t.Errorf("the report names CNAME %q, want %q", name, liteCNAME)
		}
		if sr.SSRC != ls.ssrc || sr.PacketCount != sent || sr.OctetCount != sent*160 {
			t.Errorf("sender report %v: want SSRC %d, %d packets, %d octets", sr, ls.ssrc, sent, sent*160)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no sender report reached the browser")
	}
	p.pc.Close()
}

// The offer of an ICE-lite session is complete (RFC 8840): every host
// candidate, a=end-of-candidates, the first candidate as m= and c=, and
// nothing trickled after it; a client that neither trickles nor takes
// trickled candidates connects with the offer alone.
func TestLiteOfferIsComplete(t *testing.T) {
	e := mustEngine(t)
	s, _ := mustLite(t, e)
	var trickled atomic.Int32
	s.OnICECandidate(func(sb.ICECandidate) { trickled.Add(1) })
	w := watchStates(s)
	offer, err := s.CreateOffer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		t.Fatal(err)
	}
	m := d.MediaDescriptions[0]
	var cands []string
	for _, a := range m.Attributes {
		if a.Key == "candidate" {
			cands = append(cands, "candidate:"+a.Value)
		}
	}
	addrs := e.candidateAddrs()
	if len(addrs) == 0 || len(cands) != len(addrs) {
		t.Fatalf("offer lists %d candidates, the engine has %d addresses:\n%s", len(cands), len(addrs), offer)
	}
	for i, a := range addrs {
		if cands[i] != hostCandidate(i, a) {
			t.Errorf("candidate %d = %q, want %q", i, cands[i], hostCandidate(i, a))
		}
	}
	if _, ok := m.Attribute("end-of-candidates"); !ok {
		t.Error("the offer does not say a=end-of-candidates")
	}
	if m.MediaName.Port.Value != int(addrs[0].Port()) || m.ConnectionInformation == nil ||
		m.ConnectionInformation.Address.Address != addrs[0].Addr().String() {
		t.Errorf("m= port %d, c= %+v: want the first candidate %s", m.MediaName.Port.Value, m.ConnectionInformation, addrs[0])
	}

	answerOffer(t, s, newPeer(t), offer)
	w.await(t, "connected", 10*time.Second, "failed")
	if n := trickled.Load(); n != 0 {
		t.Errorf("%d candidates trickled after a complete offer", n)
	}
}

// An answer the session cannot work with is refused with a reason; the
// session stays as it was.
func TestLiteAnswerRefusals(t *testing.T) {
	base := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	media := "m=audio 9 UDP/TLS/RTP/SAVPF 0 101\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:101 telephone-event/8000\r\n"
	creds := "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
	fp := "a=fingerprint:sha-256 " + strings.Repeat("AB:", 31) + "AB\r\n"
	for _, c := range []struct {
		name, sdp, want string
	}{
		{"no audio", base, "no audio"},
		{"audio refused", base + strings.Replace(media, "audio 9", "audio 0", 1) + creds + fp, "no audio"},
		{"no credentials", base + media + fp, "no ICE credentials"},
		{"no fingerprint", base + media + creds, "fingerprint"},
		{"sha-1 fingerprint", base + media + creds + "a=fingerprint:sha-1 " + strings.Repeat("AB:", 19) + "AB\r\n", "fingerprint"},
		{"actpass", base + media + creds + fp + "a=setup:actpass\r\n", "setup"},
		{"no common codec", base + strings.Replace(media, " 0 101", " 9 101", 1) + creds + fp, "none of PCMU"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, ls := mustLite(t, mustEngine(t))
			if _, err := s.CreateOffer(context.Background()); err != nil {
				t.Fatal(err)
			}
			err := s.SetAnswer(c.sdp)
			if sb.ErrorCode(err) != sb.EINVALID || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("SetAnswer = %v, want EINVALID saying %q", err, c.want)
			}
			if !ls.answered.IsZero() {
				t.Error("a refused answer was taken")
			}
		})
	}
}

// What goes on to pion's mux (a browser caller's media) has its receive
// time noted in the table its port looks packets up in.
func TestLiteConnNotesWhatItPassesOn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_TIMESTAMPNS is Linux's")
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	var tb rxstamp.Table
	c := newLiteConn(rx, &tb, newLiteMux())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	before := time.Now().UnixNano()
	if _, err := tx.Write(append(media.AppendHeader(nil, false, 0, 9, 160, 42), make([]byte, 20)...)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	if _, _, err := c.ReadFromAddrPort(buf); err != nil {
		t.Fatal(err)
	}
	if at := tb.Get(42, 9); at < before || at > time.Now().UnixNano() {
		t.Errorf("table holds %d for the packet, want its receive time", at)
	}
}

// liteCheckFor builds a connectivity check for ls signed with pwd, with extra
// attributes before the integrity.
func liteCheckFor(t *testing.T, ls *liteSession, pwd string, extra ...stun.Setter) *stun.Message {
	t.Helper()
	setters := append([]stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(ls.ufrag + ":them")}, extra...)
	setters = append(setters, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Someone who saw one of the browser's checks (on its Wi-Fi, say) cannot
// move the session's route to another address by sending it again from
// there: a check's transaction seen from elsewhere gets nothing and
// changes nothing. The browser's own retransmission is answered.
func TestLiteReplayedCheckMovesNothing(t *testing.T) {
	e := mustEngine(t)
	s, ls := mustLite(t, e)
	if _, err := s.CreateOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	browser, port := stranger(t, e)
	eve, _ := stranger(t, e)
	req := liteCheckFor(t, ls, ls.pwd, useCandidate{})
	browser.WriteToUDPAddrPort(req.Raw, port)
	if resp := readSTUN(t, browser); resp.Type != stun.BindingSuccess {
		t.Fatalf("the browser's check got %v", resp.Type)
	}
	eve.WriteToUDPAddrPort(req.Raw, port)
	if resp := maybeSTUN(t, eve, 300*time.Millisecond); resp != nil {
		t.Errorf("a replayed check got %v, want nothing", resp.Type)
	}
	from := browser.LocalAddr().(*net.UDPAddr).AddrPort()
	if r := ls.route.Load(); r == nil || r.to != from {
		t.Error("a replayed check moved the route")
	}
	if e.lite.byAddress(eve.LocalAddr().(*net.UDPAddr).AddrPort()) != nil {
		t.Error("a replayed check proved its address")
	}
	browser.WriteToUDPAddrPort(req.Raw, port)
	if resp := readSTUN(t, browser); resp.Type != stun.BindingSuccess {
		t.Errorf("the browser's retransmission got %v", resp.Type)
	}
}

// Where we send (the route): the first check sets it, the browser's
// nomination moves it there, again at once while it settles, then fixes it. A check replayed from elsewhere
// after the replay ring has forgotten it passes integrity, yet moves the
// nominated route nowhere while the browser keeps checking its pair; once
// that pair has lost consent (a NAT rebinding), the browser's nomination
// from its new address moves it.
func TestLiteNominatedRouteStays(t *testing.T) {
	e := mustEngine(t)
	s, ls := mustLite(t, e)
	if _, err := s.CreateOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := func(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }
	routeTo := func() netip.AddrPort {
		if r := ls.route.Load(); r != nil {
			return r.to
		}
		return netip.AddrPort{}
	}
	check := func(c *net.UDPConn, port netip.AddrPort, m *stun.Message) {
		t.Helper()
		c.WriteToUDPAddrPort(m.Raw, port)
		if resp := readSTUN(t, c); resp.Type != stun.BindingSuccess {
			t.Fatalf("check from %v got %v", addr(c), resp.Type)
		}
	}
	first, port := stranger(t, e)
	browser, _ := stranger(t, e)
	eve, _ := stranger(t, e)
	moved, _ := stranger(t, e)

	check(first, port, liteCheckFor(t, ls, ls.pwd))
	if routeTo() != addr(first) {
		t.Fatalf("route %v after the first check, want %v", routeTo(), addr(first))
	}
	seen := liteCheckFor(t, ls, ls.pwd, useCandidate{})
	check(browser, port, seen)
	if routeTo() != addr(browser) {
		t.Fatalf("route %v after the browser nominated, want %v", routeTo(), addr(browser))
	}
	for range len(ls.recent) {
		check(browser, port, liteCheckFor(t, ls, ls.pwd, useCandidate{}))
	}
	// While the nomination settles, the browser may move the route at
	// once (it switches pairs as its checks finish); then it is fixed.
	// The route is made fresh here: the checks above take their time on
	// a busy machine, and the window is not what this step measures.
	setSince(ls, time.Now())
	check(first, port, liteCheckFor(t, ls, ls.pwd, useCandidate{}))
	if routeTo() != addr(first) {
		t.Errorf("route %v after the browser nominated another pair at once, want %v", routeTo(), addr(first))
	}
	check(browser, port, liteCheckFor(t, ls, ls.pwd, useCandidate{}))
	setSince(ls, time.Now().Add(-nominationSettles-time.Second))
	eve.WriteToUDPAddrPort(seen.Raw, port)
	maybeSTUN(t, eve, 300*time.Millisecond)
	if routeTo() != addr(browser) {
		t.Errorf("a replay from %v moved the route from the browser's %v to %v", addr(eve), addr(browser), routeTo())
	}
	check(first, port, liteCheckFor(t, ls, ls.pwd, useCandidate{}))
	if routeTo() != addr(browser) {
		t.Error("a nomination from another address moved a route whose consent is fresh")
	}

	ls.mu.Lock()
	ls.consent = time.Now().Add(-consentLapse - time.Second) // the browser's pair went quiet
	ls.mu.Unlock()
	check(moved, port, liteCheckFor(t, ls, ls.pwd, useCandidate{}))
	if routeTo() != addr(moved) {
		t.Errorf("route %v after the lapsed browser nominated %v", routeTo(), addr(moved))
	}
}

// setSince dates ls's route's first nomination at at.
func setSince(ls *liteSession, at time.Time) {
	ls.mu.Lock()
	r := *ls.route.Load()
	r.since = at
	ls.route.Store(&r)
	ls.mu.Unlock()
}

// A check refused for coming from another session's address costs the
// session none of the addresses it has proved, even when it holds as many
// as it keeps.
func TestLiteRefusedAddressEvictsNothing(t *testing.T) {
	e := mustEngine(t)
	_, a := mustLite(t, e)
	_, b := mustLite(t, e)
	taken, port := stranger(t, e)
	taken.WriteToUDPAddrPort(liteCheckFor(t, a, a.pwd).Raw, port)
	readSTUN(t, taken)
	var mine []netip.AddrPort
	for range maxProven {
		c, _ := stranger(t, e)
		c.WriteToUDPAddrPort(liteCheckFor(t, b, b.pwd).Raw, port)
		readSTUN(t, c)
		mine = append(mine, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	taken.WriteToUDPAddrPort(liteCheckFor(t, b, b.pwd).Raw, port)
	maybeSTUN(t, taken, 300*time.Millisecond)
	for _, m := range mine {
		if e.lite.byAddress(m) != b {
			t.Errorf("%v is no longer b's after a check from a's address was refused", m)
		}
	}
}

// An address one session was checked from stays its own: another
// operator's valid checks from it get nothing and take none of its
// packets.
func TestLiteAddressStaysItsSessions(t *testing.T) {
	e := mustEngine(t)
	_, a := mustLite(t, e)
	_, b := mustLite(t, e)
	c, port := stranger(t, e)
	c.WriteToUDPAddrPort(liteCheckFor(t, a, a.pwd, useCandidate{}).Raw, port)
	if resp := readSTUN(t, c); resp.Type != stun.BindingSuccess {
		t.Fatalf("a's check got %v", resp.Type)
	}
	c.WriteToUDPAddrPort(liteCheckFor(t, b, b.pwd, useCandidate{}).Raw, port)
	if resp := maybeSTUN(t, c, 300*time.Millisecond); resp != nil {
		t.Errorf("b's check from a's address got %v, want nothing", resp.Type)
	}
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if e.lite.byAddress(from) != a || b.route.Load() != nil {
		t.Error("b took a's address")
	}
	// a's checks go on being answered from it.
	c.WriteToUDPAddrPort(liteCheckFor(t, a, a.pwd, useCandidate{}).Raw, port)
	if resp := readSTUN(t, c); resp.Type != stun.BindingSuccess {
		t.Errorf("a's next check got %v", resp.Type)
	}
}

// Checks that are not right get the STUN error RFC 8489 and RFC 8445 give
// them, and change nothing: no integrity 400, a role conflict 487, a
// username not the browser's 401; a bad fingerprint is not STUN and gets
// nothing.
func TestLiteCheckErrors(t *testing.T) {
	e := mustEngine(t)
	s, ls := mustLite(t, e)
	if _, err := s.CreateOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	ls.mu.Lock()
	ls.theirs = "them" // as an answer would set it
	ls.mu.Unlock()
	c, port := stranger(t, e)
	errorCode := func(m *stun.Message) stun.ErrorCode {
		var code stun.ErrorCodeAttribute
		if m == nil || m.Type != stun.BindingError || code.GetFrom(m) != nil {
			return 0
		}
		return code.Code
	}

	noMI, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(ls.ufrag+":them"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteToUDPAddrPort(noMI.Raw, port)
	if got := errorCode(readSTUN(t, c)); got != stun.CodeBadRequest {
		t.Errorf("a check without integrity got %d, want 400", got)
	}

	controlled := liteCheckFor(t, ls, ls.pwd, stun.RawAttribute{Type: stun.AttrICEControlled, Value: make([]byte, 8)})
	c.WriteToUDPAddrPort(controlled.Raw, port)
	conflict := readSTUN(t, c)
	if got := errorCode(conflict); got != stun.CodeRoleConflict {
		t.Errorf("a check from a controlled agent got %d, want 487", got)
	}
	// It passed integrity, so the answer is signed (RFC 8489 §9.1.3).
	if err := stun.NewShortTermIntegrity(ls.pwd).Check(conflict); err != nil {
		t.Errorf("the 487 is not signed with the session's password: %v", err)
	}

	other, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(ls.ufrag+":someone"),
		stun.NewShortTermIntegrity(ls.pwd), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteToUDPAddrPort(other.Raw, port)
	if got := errorCode(readSTUN(t, c)); got != stun.CodeUnauthorized {
		t.Errorf("a check naming another browser got %d, want 401", got)
	}

	bad := liteCheckFor(t, ls, ls.pwd)
	bad.Raw[len(bad.Raw)-1] ^= 0xff // the fingerprint's last byte
	c.WriteToUDPAddrPort(bad.Raw, port)
	if m := maybeSTUN(t, c, 300*time.Millisecond); m != nil {
		t.Errorf("a check with a bad fingerprint got %v, want nothing", m.Type)
	}
	if e.lite.byAddress(c.LocalAddr().(*net.UDPAddr).AddrPort()) != nil || ls.route.Load() != nil {
		t.Error("a refused check proved its address")
	}
}

// An address not checked for as long as consent lasts is no longer the
// session's (a NAT may hand it to someone else), the route's included: its
// session has failed by then and sends nothing more (RFC 7675 §5.1).
func TestLiteAddressesExpire(t *testing.T) {
	e := mustEngine(t)
	s, ls := mustLite(t, e)
	if _, err := s.CreateOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	routed, port := stranger(t, e)
	other, _ := stranger(t, e)
	for _, c := range []*net.UDPConn{routed, other} {
		c.WriteToUDPAddrPort(liteCheckFor(t, ls, ls.pwd).Raw, port)
		readSTUN(t, c)
	}
	otherAddr := other.LocalAddr().(*net.UDPAddr).AddrPort()
	if e.lite.byAddress(otherAddr) != ls {
		t.Fatal("the second address was not proved")
	}
	ls.mu.Lock()
	ls.answered = time.Now() // ticks run once answered
	ls.mu.Unlock()
	ls.tick(time.Now().Add(consentExpiry / 2))
	if e.lite.byAddress(otherAddr) != ls {
		t.Fatal("an address checked lately was dropped")
	}
	routedAddr := routed.LocalAddr().(*net.UDPAddr).AddrPort()
	if e.lite.byAddress(routedAddr) != ls {
		t.Fatal("the route's address was dropped while its consent lasted")
	}
	ls.tick(time.Now().Add(consentExpiry + time.Second))
	for name, a := range map[string]netip.AddrPort{"an address": otherAddr, "the route's address": routedAddr} {
		if e.lite.byAddress(a) != nil {
			t.Errorf("%s not checked for 30 s is still the session's", name)
		}
	}
	if ls.route.Load() != nil || ls.state != "failed" {
		t.Errorf("route %v, state %q after consent expired: want none, failed", ls.route.Load(), ls.state)
	}
}

// A session whose answer makes us connect, closed before any check came,
// leaves no goroutine waiting for a route.
func TestLiteCloseBeforeRoute(t *testing.T) {
	e := mustEngine(t)
	before := runtime.NumGoroutine()
	s, _ := mustLite(t, e)
	if _, err := s.CreateOffer(context.Background()); err != nil {
		t.Fatal(err)
	}
	answer := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:passive\r\na=fingerprint:sha-256 " + strings.Repeat("AB:", 31) + "AB\r\n"
	if err := s.SetAnswer(answer); err != nil {
		t.Fatal(err)
	}
	s.Close()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, had %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A sender report counts payload octets without the padding (RFC 3550
// §6.4.1).
func TestPayloadSizeLeavesOutPadding(t *testing.T) {
	pkt := append(media.AppendHeader(nil, false, 0, 1, 160, 1), make([]byte, 20)...)
	if got := payloadSize(pkt, 12); got != 20 {
		t.Errorf("payload %d, want 20", got)
	}
	pkt[0] |= 0x20
	pkt[len(pkt)-1] = 4
	if got := payloadSize(pkt, 12); got != 16 {
		t.Errorf("padded payload %d, want 16", got)
	}
	pkt[len(pkt)-1] = 200
	if got := payloadSize(pkt, 12); got != 0 {
		t.Errorf("padding past the payload counted %d, want 0", got)
	}
}
