package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// carrier is a SIP UAS standing in for a trunk's far end: it challenges
// for digest credentials, then answers each INVITE as answer says.
type carrier struct {
	addr   string
	rtp    *net.UDPConn
	answer func(req *sip.Request, tx sip.ServerTransaction, c *carrier)

	mu      sync.Mutex
	methods []string
	bye     chan *sip.Request
	prack   chan *sip.Request // PRACKs, answered 200
	// refresh, when set, answers the re-INVITEs and UPDATEs of the
	// dialog; without, they are refused with 501.
	refresh func(req *sip.Request, tx sip.ServerTransaction, c *carrier)
	client  *sipgo.Client // for its own requests in a dialog
}

func (c *carrier) saw(m string) {
	c.mu.Lock()
	c.methods = append(c.methods, m)
	c.mu.Unlock()
}

func (c *carrier) seen() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.methods, " ")
}

// sdp is the carrier's answer: PCMA and telephone-event at its RTP socket.
func (c *carrier) sdp() []byte {
	ap := c.rtp.LocalAddr().(*net.UDPAddr).AddrPort()
	return []byte(fmt.Sprintf("v=0\r\no=carrier 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\n"+
		"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", ap.Addr(), ap.Addr(), ap.Port()))
}

// sdpDirected is the carrier's description in direction dir.
func (c *carrier) sdpDirected(dir string) []byte {
	return bytes.Replace(c.sdp(), []byte("a=sendrecv"), []byte("a="+dir), 1)
}

// sendRTP plays n A-law frames to the address of the INVITE's offer.
func (c *carrier) sendRTP(t *testing.T, req *sip.Request, n int) {
	o, err := parseOffer(req.Body())
	if err != nil {
		t.Errorf("carrier: our offer: %v", err)
		return
	}
	for i := 0; i < n; i++ {
		pkt := media.AppendHeader(nil, false, 8, uint16(i), uint32(i*160), 0xca11)
		pkt = append(pkt, make([]byte, 160)...)
		c.rtp.WriteToUDPAddrPort(pkt, o.Addr)
	}
}

func mustCarrier(t testing.TB, answer func(req *sip.Request, tx sip.ServerTransaction, c *carrier)) *carrier {
	t.Helper()
	c := &carrier{answer: answer, bye: make(chan *sip.Request, 1), prack: make(chan *sip.Request, 4)}
	var err error
	if c.rtp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	if c.client, err = sipgo.NewClient(ua); err != nil {
		t.Fatal(err)
	}
	const ha1 = "acme:" + sb.DigestRealm + ":s3cret"
	inDialog := func(req *sip.Request, tx sip.ServerTransaction) {
		c.saw(string(req.Method) + " in dialog")
		c.mu.Lock()
		refresh := c.refresh
		c.mu.Unlock()
		if refresh == nil {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotImplemented, "Not Implemented", nil))
			return
		}
		refresh(req, tx, c)
	}
	srv.OnUpdate(inDialog)
	srv.OnPrack(func(req *sip.Request, tx sip.ServerTransaction) {
		c.saw("PRACK")
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		c.prack <- req
	})
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.To().Params.Has("tag") {
			inDialog(req, tx)
			return
		}
		c.saw("INVITE")
		h := req.GetHeader("Proxy-Authorization")
		if h == nil {
			chal := digest.Challenge{Realm: sb.DigestRealm, Nonce: "n0nce", Algorithm: "MD5"}
			res := sip.NewResponseFromRequest(req, sip.StatusProxyAuthRequired, "Proxy Authentication Required", nil)
			res.AppendHeader(sip.NewHeader("Proxy-Authenticate", chal.String()))
			tx.Respond(res)
			return
		}
		cred, err := digest.ParseCredentials(h.Value())
		if err != nil || cred.Username != "acme" || !checkDigest(cred, md5hex(ha1), "INVITE") {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden", nil))
			return
		}
		c.answer(req, tx, c)
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { c.saw("ACK") })
	srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) { c.saw("CANCEL") })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		c.saw("BYE")
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
		c.bye <- req
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = conn.LocalAddr().String()
	go srv.ServeUDP(conn)
	t.Cleanup(func() {
		srv.Close()
		ua.Close()
		conn.Close()
		c.rtp.Close()
	})
	return c
}

func route(c *carrier) sb.OutboundRoute {
	return sb.OutboundRoute{TrunkID: sb.NewID(), Target: c.addr, Transport: "udp", Username: "acme", Password: "s3cret", CallerID: "+4930123456"}
}

// nextLegEvent waits for the outbound leg's next event.
func nextLegEvent(t *testing.T, l sb.OutboundLeg) sb.LegEvent {
	t.Helper()
	select {
	case ev := <-l.Events():
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event from the outbound leg")
		return sb.LegEvent{}
	}
}

// An outbound call answers the carrier's digest challenge, hears its early
// media, is answered with A-law and hangs up with a BYE.
func TestDialEarlyMediaAnswerAndHangup(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	listening := make(chan struct{}) // the leg's sink is set: ringback is heard, not dropped unread
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		<-listening
		ringing := sip.NewSDPResponseFromRequest(req, c.sdp())
		ringing.StatusCode, ringing.Reason = sip.StatusSessionInProgress, "Session Progress"
		tx.Respond(ringing)
		c.sendRTP(t, req, 10) // ringback
		time.Sleep(100 * time.Millisecond)
		tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdp()))
	})
	var early atomic.Int64
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Media().SetSink(func([]byte) { early.Add(1) })
	close(listening)
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegEarlyMedia {
		t.Fatalf("first event %v, want early media", ev.Kind)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %v, want answered", ev.Kind)
	}
	// The carrier's RTP may beat its 183 to us: until its SDP is read, its
	// packets come from its signalling address and are on probation.
	if n, want := early.Load(), int64(10-(probation-1)-1); n < want {
		t.Errorf("%d packets of early media reached the leg, want ≥ %d", n, want)
	}
	if codec := l.Media().Codec(); codec.Name != "PCMA" || codec.DTMFType != 101 {
		t.Errorf("codec %+v, want PCMA with telephone-event", codec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Hangup(ctx, "operator hung up"); err != nil {
		t.Fatal(err)
	}
	select {
	case bye := <-c.bye:
		if h := bye.GetHeader("Reason"); h == nil || !strings.Contains(h.Value(), "operator hung up") {
			t.Errorf("BYE without the reason: %v", bye)
		}
	case <-ctx.Done():
		t.Fatal("the carrier got no BYE")
	}
	// The carrier's handlers run side by side: ACK and BYE in either order,
	// and the ACK's may still be running when the BYE's is done.
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(c.seen(), "ACK") && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := c.seen(); !strings.HasPrefix(got, "INVITE INVITE ") || !strings.Contains(got, "ACK") || !strings.Contains(got, "BYE") {
		t.Errorf("the carrier saw %q, want the challenged INVITE, the authenticated one, the ACK and the BYE", got)
	}
	l.Close()
	trace := l.SIPTrace()
	if len(trace) < 7 || !strings.HasPrefix(trace[0].Message, "INVITE ") || trace[0].Inbound {
		t.Errorf("the outbound call's trace starts %v", trace)
	}
}

// BenchmarkDial is one whole call placed to a trunk over loopback UDP:
// INVITE, the digest challenge and the INVITE again, 200 with SDP, ACK,
// BYE, 200.
func BenchmarkDial(b *testing.B) {
	ts := mustServer(b, nil, Config{})
	c := mustCarrier(b, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdp()))
	})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := ts.Dial(ctx, route(c), "+15550001111")
		if err != nil {
			b.Fatal(err)
		}
		if ev := <-l.Events(); ev.Kind != sb.LegAnswered {
			b.Fatalf("event %v, want answered", ev.Kind)
		}
		if err := l.Hangup(ctx, "done"); err != nil {
			b.Fatal(err)
		}
		<-c.bye
		l.Close()
	}
}

// A busy number fails with its code; a call nobody answers is canceled.
func TestDialBusyAndCancel(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	busy := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil))
	})
	l, err := ts.Dial(context.Background(), route(busy), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegFailed || ev.Code != 486 {
		t.Errorf("busy: %+v", ev)
	}
	l.Close()

	ringing := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		tx.OnCancel(func(*sip.Request) { c.saw("CANCEL") }) // sipgo answers it and ends the INVITE with 487
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusRinging, "Ringing", nil))
		<-tx.Done()
	})
	l, err = ts.Dial(context.Background(), route(ringing), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegRinging {
		t.Fatalf("event %v, want ringing", ev.Kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Hangup(ctx, "operator gave up"); err != nil {
		t.Fatal(err)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegFailed || ev.Code != 487 {
		t.Errorf("after the cancel: %+v", ev)
	}
	if got := ringing.seen(); !strings.Contains(got, "CANCEL") {
		t.Errorf("the carrier saw %q, want a CANCEL", got)
	}
}

// A call placed for a forward carries the Max-Forwards it was given (the
// caller's INVITE's less one), so that a loop through us ends; an INVITE
// that comes in says how many hops it leaves (sb.HopsAfter).
func TestDialCarriesMaxForwards(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	got := make(chan string, 1)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		if h := req.MaxForwards(); h != nil {
			got <- h.Value()
		} else {
			got <- "none"
		}
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil))
	})
	r := route(c)
	r.MaxForwards = 7
	l, err := ts.Dial(context.Background(), r, "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	select {
	case v := <-got:
		if v != "7" {
			t.Errorf("the INVITE carried Max-Forwards %s, want 7", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the carrier got no INVITE")
	}

	ua := mustRawUA(t, ts.udp)
	if code, _ := ua.invite("sip:2000@"+ts.udp, ""); code != 100 {
		t.Fatalf("INVITE answered %d", code)
	}
	if in := nextCall(t, ts); in.Hops != 69 {
		t.Errorf("an INVITE with Max-Forwards 70 leaves %d hops, want 69", in.Hops)
	}
	for mf, want := range map[int]int{70: 69, 2: 1, 1: sb.NoHops, 0: sb.NoHops} {
		if got := sb.HopsAfter(mf); got != want {
			t.Errorf("HopsAfter(%d) = %d, want %d", mf, got, want)
		}
	}
}
