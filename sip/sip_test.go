package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

func TestMain(m *testing.M) {
	// sipgo's own default logger reports connection bookkeeping on stderr,
	// in the middle of benchmark lines.
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// directory is an in-memory TrunkDirectory.
type directory struct{ trunks []*sb.Trunk }

func (d *directory) TrunksForSource(_ context.Context, addr netip.Addr) ([]*sb.Trunk, error) {
	var out []*sb.Trunk
	for _, t := range d.trunks {
		if t.AllowsSource(addr) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (d *directory) TrunkByUsername(_ context.Context, u string) (*sb.Trunk, error) {
	for _, t := range d.trunks {
		if t.Username != "" && t.Username == u {
			return t, nil
		}
	}
	return nil, sb.Errorf(sb.ENOTFOUND, "trunk not found")
}

func (d *directory) HasDigestTrunks(context.Context) (bool, error) {
	for _, t := range d.trunks {
		if t.Username != "" {
			return true, nil
		}
	}
	return false, nil
}

// dispatcher hands the test every call, and every refusal.
type dispatcher struct {
	calls   chan *sb.InboundCall
	refused chan *sb.RefusedCall
}

func (d dispatcher) DispatchInbound(c *sb.InboundCall) { d.calls <- c }
func (d dispatcher) RecordRefused(c *sb.RefusedCall)   { d.refused <- c }

type testServer struct {
	*Server
	udp, tcp string
	udpConn  net.PacketConn
	calls    chan *sb.InboundCall
	refused  chan *sb.RefusedCall
}

var ipTrunk = &sb.Trunk{ID: sb.NewID(), Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: []string{"2000"}}

func mustServer(tb testing.TB, dir *directory, c Config, setup ...func(*Server)) *testServer {
	tb.Helper()
	if dir == nil {
		dir = &directory{trunks: []*sb.Trunk{ipTrunk}}
	}
	d := dispatcher{calls: make(chan *sb.InboundCall, 16), refused: make(chan *sb.RefusedCall, 16)}
	s, err := NewServer(dir, d, c)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range setup {
		f(s) // before it serves
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.ServeUDP(ctx, udp); done <- struct{}{} }()
	go func() { s.ServeTCP(ctx, tcp); done <- struct{}{} }()
	// Calls we place leave from the UDP listener once it serves.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		up := s.udpAddr.IsValid()
		s.mu.Unlock()
		if up {
			break
		}
	}
	tb.Cleanup(func() {
		cancel()
		s.Close()
		<-done
		<-done
	})
	return &testServer{Server: s, udp: udp.LocalAddr().String(), tcp: tcp.Addr().String(), udpConn: udp, calls: d.calls, refused: d.refused}
}

func (ts *testServer) addr(transport string) string {
	if transport == "tcp" {
		return ts.tcp
	}
	return ts.udp
}

func mustPhone(tb testing.TB, o siptest.Options) *siptest.Phone {
	tb.Helper()
	p, err := siptest.NewPhone(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func nextCall(tb testing.TB, ts *testServer) *sb.InboundCall {
	tb.Helper()
	select {
	case c := <-ts.calls:
		tb.Cleanup(func() { c.Leg.Close() })
		return c
	case <-time.After(5 * time.Second):
		tb.Fatal("no call dispatched")
	}
	return nil
}

func nextEvent(tb testing.TB, leg sb.TrunkLeg, want sb.LegEventKind) sb.LegEvent {
	tb.Helper()
	select {
	case ev := <-leg.Events():
		if ev.Kind != want {
			tb.Fatalf("leg event %v, want %v", ev.Kind, want)
		}
		return ev
	case <-time.After(5 * time.Second):
		tb.Fatalf("no %v event", want)
	}
	return sb.LegEvent{}
}

// answer rings and answers the next call from phone.
func answer(tb testing.TB, ts *testServer, phone *siptest.Phone, transport string) (*sb.InboundCall, *siptest.Call) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, ts.addr(transport), "3000", "2000")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { call.Close() })
	in := nextCall(tb, ts)
	if err := in.Leg.Ring(ctx); err != nil {
		tb.Fatal(err)
	}
	<-call.Ringing()
	answered := make(chan error, 1)
	go func() { answered <- in.Leg.Answer(ctx) }()
	if err := call.Wait(ctx); err != nil {
		tb.Fatalf("phone: %v", err)
	}
	if err := <-answered; err != nil {
		tb.Fatalf("answer: %v", err)
	}
	return in, call
}

func TestAnsweredCallCarriesAudioBothWays(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ts := mustServer(t, nil, Config{})
			phone := mustPhone(t, siptest.Options{Transport: transport, Codec: sb.PCMA})
			in, call := answer(t, ts, phone, transport)
			if in.From != "3000" || in.To != "2000" || in.Trunk != ipTrunk || !strings.HasPrefix(in.Source, transport+":127.0.0.1:") {
				t.Errorf("dispatched %+v", in)
			}
			if c := in.Leg.Media().Codec(); c.Name != "PCMA" || c.PayloadType != 8 || c.DTMFType != 101 {
				t.Errorf("codec %+v, want PCMA/8 with telephone-event 101", c)
			}

			got := legSink(in.Leg)
			frame := media.PatternFrame(make([]byte, 160), 7, time.Now())
			if err := call.SendRTP(frame, true); err != nil {
				t.Fatal(err)
			}
			got.expect(t, "the frame sent", frame)
			sendToPhone(t, in.Leg, call, 8, frame)

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			nextEvent(t, in.Leg, sb.LegHungUp)
		})
	}
}

func TestServerHangsUpWithReason(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.Leg.Hangup(ctx, "operator hung up"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("no BYE")
	}
	if r := call.EndReason(); !strings.Contains(r, "operator hung up") {
		t.Errorf("BYE Reason %q", r)
	}
}

func TestCancelWhileRinging(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, ts.udp, "3000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	in := nextCall(t, ts)
	in.Leg.Ring(ctx)
	<-call.Ringing()
	if err := call.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, in.Leg, sb.LegCanceled)
	var se *siptest.StatusError
	if err := call.Wait(ctx); !errors.As(err, &se) || se.Code != 487 {
		t.Errorf("INVITE ended with %v, want 487", err)
	}
}

func TestRejectCarriesReason(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, ts.udp, "3000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	in := nextCall(t, ts)
	if err := in.Leg.Reject(ctx, 480, "no operator available"); err != nil {
		t.Fatal(err)
	}
	var se *siptest.StatusError
	if err := call.Wait(ctx); !errors.As(err, &se) || se.Code != 480 || !strings.Contains(se.ReasonHeader, `cause=480;text="no operator available"`) {
		t.Errorf("INVITE ended with %v (Reason %q), want 480 with the reason", err, se.ReasonHeader)
	}
	if err := in.Leg.Reject(ctx, 500, "again"); err == nil {
		t.Error("a second final response was allowed")
	}
}

// The 200 OK to an INVITE says what the caller may send in the dialog and
// which extensions we take (RFC 3261 §13.3.1.4): Allow and Supported.
func TestAnswerCarriesAllowAndSupported(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, _ := answer(t, ts, phone, "udp")
	for _, m := range in.Leg.SIPTrace() {
		if m.Inbound || !strings.HasPrefix(m.Message, "SIP/2.0 200") || !strings.Contains(m.Message, "CSeq: ") ||
			!strings.Contains(m.Message, " INVITE\r\n") {
			continue
		}
		if !strings.Contains(m.Message, "\r\nAllow: INVITE, ACK, CANCEL, BYE") || !strings.Contains(m.Message, "\r\nSupported:") {
			t.Errorf("the 200 OK lacks Allow or Supported:\n%s", m.Message)
		}
		return
	}
	t.Fatal("no 200 OK to the INVITE in the trace")
}

func TestHoldAndResume(t *testing.T) {
	ts := mustServer(t, nil, Config{MediaTimeout: time.Second})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, in.Leg, sb.LegHeld)
	// On hold nothing is sent, and the media timeout must not fire.
	select {
	case ev := <-in.Leg.Events():
		t.Fatalf("event %v while on hold", ev.Kind)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := call.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, in.Leg, sb.LegResumed)
}

// A trunk that holds the call (sendonly, answered recvonly) or makes it
// inactive receives nothing from us until it takes the call back: the
// direction is honoured in the media, not only in the SDP. A marker
// packet written after the trunk resumed arrives first after the answer:
// nothing written while it held came before it.
func TestDirectionHonouredInMedia(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan byte, 256)
	call.SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok && h.PayloadEnd > h.PayloadOffset {
			got <- pkt[h.PayloadOffset]
		}
	})
	seq := uint16(0)
	write := func(mark byte, n int) {
		for range n {
			seq++
			pkt := append(media.AppendHeader(nil, false, 0, seq, uint32(seq)*160, 0x77), bytes.Repeat([]byte{mark}, 160)...)
			if err := in.Leg.Media().WriteRTP(pkt); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := func() byte {
		t.Helper()
		select {
		case b := <-got:
			return b
		case <-time.After(5 * time.Second):
			t.Fatal("no RTP reached the trunk")
			return 0
		}
	}
	write('a', 1)
	if b := next(); b != 'a' {
		t.Fatalf("first packet %q", b)
	}
	for _, c := range []struct {
		name  string
		leave func(context.Context) error
		event sb.LegEventKind
	}{{"held", call.Hold, sb.LegHeld}, {"inactive", call.Inactive, sb.LegHeld}} {
		if err := c.leave(ctx); err != nil {
			t.Fatal(err)
		}
		nextEvent(t, in.Leg, c.event)
		write('h', 10) // while the trunk receives nothing
		if err := call.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		nextEvent(t, in.Leg, sb.LegResumed)
		write('r', 1)
		if b := next(); b != 'r' {
			t.Errorf("%s: the trunk got %q before the packet sent after it resumed", c.name, b)
		}
		for len(got) > 0 {
			<-got
		}
	}
}

func TestMediaTimeout(t *testing.T) {
	ts := mustServer(t, nil, Config{MediaTimeout: time.Second})
	phone := mustPhone(t, siptest.Options{})
	in, _ := answer(t, ts, phone, "udp")
	start := time.Now()
	ev := nextEvent(t, in.Leg, sb.LegMediaTimeout)
	if d := time.Since(start); d < time.Second || d > 3*time.Second {
		t.Errorf("media timeout after %s, want about 1 s", d)
	}
	if !strings.Contains(ev.Reason, "no RTP") {
		t.Errorf("reason %q", ev.Reason)
	}
}

func TestTrunkRecognition(t *testing.T) {
	digest := &sb.Trunk{ID: sb.NewID(), Name: "carrier", Username: "acme", DigestHA1: md5hex("acme:" + sb.DigestRealm + ":s3cret"), Numbers: []string{"2100"}}
	cases := []struct {
		name   string
		dir    []*sb.Trunk
		opts   siptest.Options
		to     string
		status int // 0: dispatched
	}{
		{"known source", []*sb.Trunk{ipTrunk}, siptest.Options{}, "2000", 0},
		{"unknown source", []*sb.Trunk{ipTrunk}, siptest.Options{LocalIP: "127.0.0.5"}, "2000", 403},
		{"number not on trunk", []*sb.Trunk{ipTrunk}, siptest.Options{}, "2999", 404},
		{"digest without credentials", []*sb.Trunk{ipTrunk, digest}, siptest.Options{LocalIP: "127.0.0.6"}, "2100", 407},
		{"digest, wrong password", []*sb.Trunk{ipTrunk, digest}, siptest.Options{LocalIP: "127.0.0.6", Username: "acme", Password: "guess"}, "2100", 403},
		{"digest, unknown user", []*sb.Trunk{ipTrunk, digest}, siptest.Options{LocalIP: "127.0.0.6", Username: "nobody", Password: "s3cret"}, "2100", 403},
		{"digest, right password", []*sb.Trunk{ipTrunk, digest}, siptest.Options{LocalIP: "127.0.0.6", Username: "acme", Password: "s3cret"}, "2100", 0},
		// A digest trunk's PBX behind an IP trunk's address is challenged,
		// not refused as the IP trunk's call to a number it does not own.
		{"digest at an IP trunk's address", []*sb.Trunk{ipTrunk, digest}, siptest.Options{Username: "acme", Password: "s3cret"}, "2100", 0},
		{"digest at an IP trunk's address, no credentials", []*sb.Trunk{ipTrunk, digest}, siptest.Options{}, "2100", 407},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := mustServer(t, &directory{trunks: c.dir}, Config{})
			phone := mustPhone(t, c.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			call, err := phone.InviteAsync(ctx, ts.udp, "3000", c.to)
			if err != nil {
				t.Fatal(err)
			}
			defer call.Close()
			if c.status == 0 {
				in := nextCall(t, ts)
				if !in.Trunk.HasNumber(c.to) {
					t.Errorf("dispatched with trunk %s", in.Trunk.Name)
				}
				return
			}
			var se *siptest.StatusError
			if err := call.Wait(ctx); !errors.As(err, &se) || se.Code != c.status {
				t.Fatalf("INVITE ended with %v, want %d", err, c.status)
			}
			select {
			case <-ts.calls:
				t.Error("a refused call was dispatched")
			default:
			}
			// A refusal once the trunk is known is the trunk tenant's
			// call, recorded with its trace: a wrong number (routing), or
			// a known username with a wrong password (auth); before, the
			// refusal is nobody's.
			want := map[string]string{"number not on trunk": sb.StageRouting, "digest, wrong password": sb.StageAuth}[c.name]
			select {
			case r := <-ts.refused:
				if want == "" || r.Code != c.status || r.Stage != want || r.Leg != sb.FailedOnTrunk || r.To != c.to ||
					!refusalTraced(r.Trace, c.status) {
					t.Errorf("refusal recorded as %+v", r)
				}
			case <-time.After(refusalWait(want)):
				if want != "" {
					t.Error("the refusal of a known trunk's INVITE was not recorded")
				}
			}
		})
	}
}

func TestOptionsAndUnknownMethods(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	for i, c := range []struct{ method, want string }{{"OPTIONS", "SIP/2.0 200"}, {"SUBSCRIBE", "SIP/2.0 405"}, {"OPTIONS", "SIP/2.0 503"}} {
		if i == 2 {
			ts.Drain() // a front-end proxy's health check now fails
		}
		msg := c.method + " sip:" + ts.udp + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + c.method + fmt.Sprint(i) + "\r\n" +
			"From: <sip:probe@" + local + ">;tag=1\r\nTo: <sip:" + ts.udp + ">\r\nCall-ID: " + c.method + fmt.Sprint(i) + "\r\nCSeq: 1 " + c.method + "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		conn.Write([]byte(msg))
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%s: %v", c.method, err)
		}
		res := string(buf[:n])
		if !strings.HasPrefix(res, c.want) || (i < 2 && !strings.Contains(res, "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO")) || (i == 2 && !strings.Contains(res, "Retry-After: 60")) {
			t.Errorf("%s answered:\n%s", c.method, res)
		}
		// What a request may carry (RFC 3261 §11.2).
		if i == 0 && (!strings.Contains(res, "\r\nSupported: 100rel, timer\r\n") || !strings.Contains(res, "\r\nAccept-Encoding: identity\r\n") ||
			!strings.Contains(res, "PRACK") || !strings.Contains(res, "\r\nAccept: application/sdp, multipart/mixed")) {
			t.Errorf("OPTIONS answered without Supported: 100rel, timer, PRACK allowed, multipart accepted and Accept-Encoding: identity:\n%s", res)
		}
	}
}

const sampleOffer = "v=0\r\no=pbx 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"

// packets collects what reaches a leg from the phone.
type packets chan []byte

func legSink(leg sb.TrunkLeg) packets {
	got := make(packets, 64)
	leg.Media().SetSink(func(pkt []byte) { got <- append([]byte(nil), pkt...) })
	return got
}

// expect waits for the next packet and checks it carries want.
func (got packets) expect(t *testing.T, what string, want []byte) {
	t.Helper()
	select {
	case pkt := <-got:
		if h, ok := media.ParseHeader(pkt); !ok || !bytes.Equal(pkt[h.PayloadOffset:h.PayloadEnd], want) {
			t.Errorf("%s: the leg received %x", what, pkt)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: no RTP reached the leg", what)
	}
}

// sendToPhone sends frame from the leg in payload type pt and checks the
// phone gets the very packet (decrypted, on an SRTP call).
func sendToPhone(t *testing.T, leg sb.TrunkLeg, call *siptest.Call, pt uint8, frame []byte) {
	t.Helper()
	back := make(chan []byte, 64)
	call.SetSink(func(pkt []byte) { back <- append([]byte(nil), pkt...) })
	out := append(media.AppendHeader(nil, false, pt, 1, 160, 99), frame...)
	if err := leg.Media().WriteRTP(out); err != nil {
		t.Fatal(err)
	}
	select {
	case pkt := <-back:
		if !bytes.Equal(pkt, out) {
			t.Errorf("the phone received %x, want %x", pkt, out)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no RTP reached the phone (%d undecryptable)", call.Undecryptable())
	}
}

func TestParseOffer(t *testing.T) {
	cases := []struct {
		name    string
		sdp     string
		codec   string
		dtmf    uint8
		dir     string
		held    bool
		noCodec bool
		bad     bool
	}{
		{"first G.711 wins", sampleOffer, "PCMA", 101, "sendrecv", false, false, false},
		{"hold by direction", strings.Replace(sampleOffer, "a=sendrecv", "a=sendonly", 1), "PCMA", 101, "sendonly", true, false, false},
		{"hold by 0.0.0.0", strings.ReplaceAll(sampleOffer, "192.0.2.10", "0.0.0.0"), "PCMA", 101, "sendrecv", true, false, false},
		{"static PCMU without rtpmap", "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n", "PCMU", 0, "sendrecv", false, false, false},
		{"no G.711", strings.Replace(sampleOffer, "18 8 0 101", "18 101", 1), "", 0, "", false, true, false},
		{"not SDP", "hello", "", 0, "", false, false, true},
		{"no connection", strings.Replace(sampleOffer, "c=IN IP4 192.0.2.10\r\n", "", 1), "", 0, "", false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseOffer([]byte(c.sdp))
			var nc errNoCodec
			switch {
			case c.noCodec:
				if !errors.As(err, &nc) {
					t.Fatalf("err %v, want no common codec", err)
				}
				return
			case c.bad:
				if err == nil || errors.As(err, &nc) {
					t.Fatalf("err %v, want malformed", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if o.Codec.Name != c.codec || o.Codec.DTMFType != c.dtmf || o.Direction != c.dir || o.held() != c.held {
				t.Errorf("offer %+v held=%v", o, o.held())
			}
		})
	}
	ans := string(buildAnswer(1, 2, netip.MustParseAddr("198.51.100.1"), 10000, sb.Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000, DTMFType: 101}, "recvonly", nil, mlines{}))
	for _, want := range []string{"c=IN IP4 198.51.100.1", "m=audio 10000 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=recvonly"} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
}

// A connection address given as a name (RFC 4566 §5.7 allows
// c=IN IP4 host.example.com) is not resolved: the offer is one we cannot
// take, refused with 488 and Warning 301, incompatible network address
// formats (RFC 3261 §20.43), not 400 as if it were malformed. A
// re-INVITE's is refused alike, and the call goes on.
func TestConnectionAddressNameRefused(t *testing.T) {
	named := strings.ReplaceAll(sampleOffer, "IN IP4 192.0.2.10", "IN IP4 pbx.example.com")
	ts := mustServer(t, nil, Config{})
	ua := mustRawUA(t, ts.udp)
	callID := fmt.Sprintf("named-%d@test", time.Now().UnixNano())
	code, h := ua.inviteWith("sip:2000@"+ts.udp, callID, "application/sdp", named)
	for code == 100 {
		code, h = ua.next(t, callID)
	}
	if code != 488 || !strings.HasPrefix(h["warning"], "301 ") {
		t.Errorf("an INVITE whose c= names a host: %d, Warning %q; want 488 with Warning 301", code, h["warning"])
	}
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := call.Reinvite(ctx, []byte(strings.ReplaceAll(string(call.SDP("sendrecv")), "IN IP4 127.0.0.1", "IN IP4 pbx.example.com")), nil)
	if err != nil || res.StatusCode != 488 || !strings.HasPrefix(headerOf(res, "Warning"), "301 ") {
		t.Errorf("a re-INVITE whose c= names a host: %v %v, want 488 with Warning 301", res, err)
	}
	if res, err := call.Reinvite(ctx, call.SDP("sendrecv"), nil); err != nil || res.StatusCode != 200 {
		t.Errorf("the call after the refusal: %v %v", res, err)
	}
	noEvent(t, in.Leg, 50*time.Millisecond)
}

// The answer has the offer's m= lines in their order, each stream we do
// not take refused with port 0 and its rtpmap and mid (RFC 3264 §6): a
// video stream before the audio, T.38 after it.
func TestAnswerMirrorsTheOffersStreams(t *testing.T) {
	offer := "v=0\r\no=pbx 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
		"m=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=mid:v\r\n" +
		"m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=mid:a\r\n" +
		"m=image 40004 udptl t38\r\n"
	o, err := parseOffer([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	ans := string(buildAnswer(1, 1, netip.MustParseAddr("198.51.100.1"), 10000, o.Codec, "sendrecv", nil, o.MLines))
	var got []string
	for line := range strings.Lines(ans) {
		if strings.HasPrefix(line, "m=") {
			got = append(got, strings.TrimSpace(line))
		}
	}
	want := []string{"m=video 0 RTP/AVP 96", "m=audio 10000 RTP/AVP 8 101", "m=image 0 udptl t38"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("answer's m= lines %q, want %q:\n%s", got, want, ans)
	}
	for _, line := range []string{"a=rtpmap:96 H264/90000\r\na=mid:v\r\nm=audio", "a=mid:a\r\n"} {
		if !strings.Contains(ans, line) {
			t.Errorf("the refused video stream lacks %q:\n%s", line, ans)
		}
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(parsable(ans)); err != nil || len(d.MediaDescriptions) != 3 {
		t.Errorf("the answer does not parse as three streams: %v\n%s", err, ans)
	}
	// T.38 alone is an offer we cannot take (488), not a malformed one.
	if _, err := parseOffer([]byte(strings.Replace(offer, offer[strings.Index(offer, "m=video"):strings.Index(offer, "m=image")], "", 1))); !notAcceptable(err) {
		t.Errorf("an offer of T.38 alone: %v, want not acceptable", err)
	}
}

func TestNonces(t *testing.T) {
	n, err := newNonces()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	nonce := n.issue(now)
	if ours, fresh := n.check(nonce, now.Add(time.Minute)); !ours || !fresh {
		t.Error("fresh nonce refused")
	}
	if ours, fresh := n.check(nonce, now.Add(nonceLifetime+time.Second)); !ours || fresh {
		t.Errorf("expired nonce: ours %v, fresh %v; want ours, not fresh", ours, fresh)
	}
	if n.issue(now) == nonce {
		t.Error("two challenges in the same second got the same nonce")
	}
	forged := []byte(nonce)
	forged[len(forged)-1] ^= 1
	if ours, _ := n.check(string(forged), now); ours {
		t.Error("forged nonce accepted")
	}
	other, _ := newNonces()
	if ours, _ := other.check(nonce, now); ours {
		t.Error("another process's nonce accepted")
	}
	if ok, full := n.answer(nonce, 1, now); !ok || full {
		t.Errorf("the first answer: ok %v, full %v", ok, full)
	}
	if ok, full := n.answer(nonce, 1, now); ok || full {
		t.Errorf("the same count again: ok %v, full %v; want a replay (stale)", ok, full)
	}
	// A full table is no replay: the UAC is asked again, not told stale.
	for i := len(n.answered); i < maxAnswered; i++ {
		n.answered[strconv.Itoa(i)] = answeredNonce{expires: now.Add(time.Hour)}
	}
	if ok, full := n.answer(n.issue(now), 1, now); ok || !full {
		t.Errorf("a new nonce with the table full: ok %v, full %v; want full", ok, full)
	}
}

func FuzzParseOffer(f *testing.F) {
	f.Add([]byte(sampleOffer))
	f.Add([]byte("v=0\r\nm=audio 0 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 8 0\r\na=inactive\r\n"))
	f.Add([]byte(savpOffer("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30+"|2^20", "2 AEAD_AES_256_GCM inline:"+key30)))
	f.Add([]byte(webrtcOffer()))
	f.Add([]byte(strings.Replace(webrtcOffer(), "a=group:BUNDLE 0", "a=group", 1)))
	f.Add([]byte(sipOffer))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		clear := err == nil && o.Crypto == nil && o.ICE == nil
		if err == nil && (o.Codec.Name != "PCMU" && o.Codec.Name != "PCMA" && (clear || o.Codec.Name != "opus") || o.Addr.Port() == 0) {
			t.Fatalf("accepted offer with %+v", o)
		}
		if err == nil && o.ICE != nil && (len(o.ICE.Ufrag) < 4 || len(o.ICE.Pwd) < 22 || len(o.ICE.Fingerprints) == 0 ||
			(o.ICE.Setup != setupActpass && o.ICE.Setup != setupActive && o.ICE.Setup != setupPassive)) {
			t.Fatalf("accepted DTLS-SRTP without what the association needs: %+v", o.ICE)
		}
		if err == nil && o.Crypto != nil && len(o.Crypto.KeySalt) != keySaltLen(o.Crypto.Profile) {
			t.Fatalf("accepted crypto with a %d-byte key for %s", len(o.Crypto.KeySalt), o.Crypto.Suite)
		}
	})
}

func BenchmarkParseOffer(b *testing.B) {
	body := []byte(sampleOffer)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := parseOffer(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvite is one whole inbound call over loopback UDP: INVITE,
// 100, 180, 200 with SDP, ACK, BYE, 200.
func BenchmarkInvite(b *testing.B) {
	ts := mustServer(b, nil, Config{})
	phone := mustPhone(b, siptest.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		call, err := phone.InviteAsync(ctx, ts.udp, "3000", "2000")
		if err != nil {
			b.Fatal(err)
		}
		in := <-ts.calls
		in.Leg.Ring(ctx)
		go in.Leg.Answer(ctx)
		if err := call.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		if err := call.Hangup(ctx); err != nil {
			b.Fatal(err)
		}
		<-in.Leg.Events()
		in.Leg.Close()
		call.Close()
	}
}

// lateOffer sends an INVITE without SDP from a raw UDP socket, lets call
// control answer it, and ACKs the 200 with ack (the SDP answer, or none).
// It returns the leg's Answer error and what the socket got after the ACK.
func lateOffer(t *testing.T, ack string) (string, *sb.InboundCall, error) {
	t.Helper()
	return lateOfferWith(t, "application/sdp", ack)
}

// lateOfferWith is lateOffer with an ACK body of contentType.
func lateOfferWith(t *testing.T, contentType, ack string) (string, *sb.InboundCall, error) {
	t.Helper()
	ts := mustServer(t, nil, Config{})
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	head := "sip:2000@" + ts.udp + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bK%s\r\n" +
		"From: <sip:3000@" + local + ">;tag=late1\r\nTo: <sip:2000@" + ts.udp + ">%s\r\nCall-ID: late-offer\r\nCSeq: 1 %s\r\n" +
		"Contact: <sip:3000@" + local + ">\r\nMax-Forwards: 70\r\n"
	fmt.Fprintf(conn, "INVITE "+head+"Content-Length: 0\r\n\r\n", "inv", "", "INVITE")
	in := nextCall(t, ts)
	answered := make(chan error, 1)
	go func() { answered <- in.Leg.Answer(context.Background()) }()
	buf := make([]byte, 8192)
	var ok string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			ok = string(buf[:n])
			break
		}
	}
	if !strings.Contains(ok, "m=audio ") || !strings.Contains(ok, "RTP/AVP 0 8 101") {
		t.Fatalf("the 200 OK does not carry our offer:\n%s", ok)
	}
	to := ok[strings.Index(ok, "\r\nTo:")+2:]
	to = to[:strings.Index(to, "\r\n")]
	toTag := to[strings.Index(to, ";tag="):]
	body := ""
	if ack != "" {
		body = "Content-Type: " + contentType + "\r\n"
	}
	fmt.Fprintf(conn, "ACK "+head+body+"Content-Length: %d\r\n\r\n%s", "ack", toTag, "ACK", len(ack), ack)
	err = <-answered
	conn.SetReadDeadline(time.Now().Add(time.Second))
	n, _ := conn.Read(buf)
	return string(buf[:n]), in, err
}

// A late offer: our offer goes in the 200, the caller's answer in the ACK
// sets the codec and where audio goes.
func TestLateOffer(t *testing.T) {
	answer := strings.Replace(sampleOffer, "RTP/AVP 18 8 0 101", "RTP/AVP 8 101", 1)
	after, in, err := lateOffer(t, answer)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if c := in.Leg.Media().Codec(); c.Name != "PCMA" || c.PayloadType != 8 || c.DTMFType != 101 {
		t.Errorf("codec after the late answer: %+v", c)
	}
	if strings.HasPrefix(after, "BYE ") {
		t.Errorf("a good late answer was hung up:\n%s", after)
	}
}

// An ACK without an answer leaves a call with no media: the leg says so
// and ends the dialog with a BYE.
func TestLateOfferWithoutAnswer(t *testing.T) {
	after, _, err := lateOffer(t, "")
	if err == nil || !strings.Contains(err.Error(), "no SDP answer") {
		t.Fatalf("answer: %v", err)
	}
	if !strings.HasPrefix(after, "BYE ") || !strings.Contains(after, "Reason: SIP;cause=488") {
		t.Errorf("after the ACK without an answer, the caller got:\n%s", after)
	}
}

// DTMF sent in SIP INFO reaches call control as the caller's key; an INFO
// of another kind is refused with what is accepted; one without a body
// (a keep-alive) is answered 200.
func TestInfoDTMF(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []struct{ ct, body, digit string }{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"},
		{"application/dtmf", "#", "#"},
	} {
		code, err := call.SendInfo(ctx, c.ct, c.body)
		if err != nil || code != 200 {
			t.Fatalf("INFO %s: %d, %v", c.ct, code, err)
		}
		if ev := nextEvent(t, in.Leg, sb.LegDTMF); ev.Reason != c.digit {
			t.Errorf("INFO %s: digit %q, want %q", c.ct, ev.Reason, c.digit)
		}
	}
	if code, err := call.SendInfo(ctx, "application/media_control+xml", "<media_control/>"); err != nil || code != 415 {
		t.Errorf("an INFO of another kind: %d, %v; want 415", code, err)
	}
	if code, err := call.SendInfo(ctx, "application/dtmf-relay", "Signal=55"); err != nil || code != 415 {
		t.Errorf("a bad digit: %d, %v; want 415", code, err)
	}
	// An INFO without a body is an SBC's keep-alive: 200, and no key.
	if code, err := call.SendInfo(ctx, "", ""); err != nil || code != 200 {
		t.Errorf("an INFO without a body: %d, %v; want 200", code, err)
	}
	noEvent(t, in.Leg, 50*time.Millisecond)
}

// A 200 OK that is never acknowledged ends the call: the leg reports the
// failure once sipgo stops retransmitting (64·T1, 32 s), and sends a BYE.
func TestNoAckEndsTheCall(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	fmt.Fprintf(conn, "INVITE sip:2000@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKnoack\r\nFrom: <sip:3000@%s>;tag=noack\r\n"+
		"To: <sip:2000@%s>\r\nCall-ID: no-ack\r\nCSeq: 1 INVITE\r\nContact: <sip:3000@%s>\r\nMax-Forwards: 70\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", ts.udp, local, local, ts.udp, local, len(sampleOffer), sampleOffer)
	in := nextCall(t, ts)
	answered := make(chan error, 1)
	go func() { answered <- in.Leg.Answer(context.Background()) }()
	var err2 error
	select {
	case err2 = <-answered:
	case <-time.After(45 * time.Second):
		t.Fatal("the leg never gave up on the ACK")
	}
	if err2 == nil || !strings.Contains(err2.Error(), "no ACK") {
		t.Fatalf("answer without an ACK: %v", err2)
	}
	buf := make([]byte, 8192)
	for deadline := time.Now().Add(5 * time.Second); ; {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal("no BYE after the unacknowledged answer")
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, "BYE ") {
			if !strings.Contains(msg, "cause=408") {
				t.Errorf("BYE without the reason:\n%s", msg)
			}
			break
		}
	}
}

// refusalTraced reports whether a refusal's trace is the INVITE and then
// the final response, followed by nothing but the caller's ACK, which may
// arrive before the record is taken.
func refusalTraced(trace []sb.SIPMessage, code int) bool {
	if len(trace) < 2 || !strings.HasPrefix(trace[0].Message, "INVITE ") {
		return false
	}
	last := len(trace) - 1
	if strings.HasPrefix(trace[last].Message, "ACK ") {
		last--
	}
	return last >= 1 && strings.HasPrefix(trace[last].Message, fmt.Sprintf("SIP/2.0 %d", code))
}

// refusalWait is how long a test waits for a refusal's record, which is
// written just after the response is sent: a while when one is due, a
// moment when none is.
func refusalWait(want string) time.Duration {
	if want != "" {
		return 2 * time.Second
	}
	return 50 * time.Millisecond
}
