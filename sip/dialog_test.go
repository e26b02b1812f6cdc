package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// request sends method in the raw UA's call, in the dialog whose To (our
// tag) is to, with CSeq cseq, the extra headers ("Name: value\r\n" each)
// and body (none when empty; SDP unless extra gives its Content-Type),
// and returns its final response's code and headers.
func (c rawCall) request(t *testing.T, to, method string, cseq int, extra, body string) (int, map[string]string) {
	t.Helper()
	c.send(t, to, method, cseq, extra, body)
	want := fmt.Sprintf("%d %s", cseq, method)
	for {
		if code, h := c.ua.next(t, c.callID); code >= 200 && h["cseq"] == want {
			return code, h
		}
	}
}

// send sends what request sends, and reads nothing.
func (c rawCall) send(t *testing.T, to, method string, cseq int, extra, body string) {
	t.Helper()
	local := c.ua.conn.LocalAddr().String()
	msg := method + " sip:switchboard@" + c.ts.udp + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + fmt.Sprintf(";branch=z9hG4bK%s%d\r\n", method, time.Now().UnixNano()) +
		"From: <sip:3000@" + local + ">;tag=raw" + fmt.Sprint(c.ua.n) + "\r\nTo: " + to + "\r\nCall-ID: " + c.callID + "\r\n" +
		fmt.Sprintf("CSeq: %d %s\r\n", cseq, method) + "Contact: <sip:3000@" + local + ">\r\nMax-Forwards: 70\r\n" + extra
	if body != "" && !strings.Contains(extra, "Content-Type:") {
		msg += "Content-Type: application/sdp\r\n"
	}
	if body != "" {
		msg += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	} else {
		msg += "Content-Length: 0\r\n\r\n"
	}
	if _, err := c.ua.conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// ack sends the ACK of the INVITE's 200 (ok: its headers as read).
func (c rawCall) ack(t *testing.T, ok map[string]string) {
	t.Helper()
	local := c.ua.conn.LocalAddr().String()
	ack := "ACK " + c.ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + fmt.Sprintf(";branch=z9hG4bKack%d\r\n", time.Now().UnixNano()) +
		"From: " + ok["from"] + "\r\nTo: " + ok["to"] + "\r\nCall-ID: " + c.callID + "\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.ua.conn.Write([]byte(ack)); err != nil {
		t.Fatal(err)
	}
}

// A request the caller sends in the dialog between our 200 and its ACK
// (an UPDATE, an INFO) moves the remote CSeq past the INVITE's; the ACK,
// which carries the INVITE's CSeq, still confirms the dialog, and the
// answer ends with it. sipgo wanted the ACK's CSeq to be the remote CSeq,
// so the ACK was ignored and the answer waited for the 200's
// retransmissions to give up (64·T1, 32 s).
func TestRequestBeforeTheAckConfirmsTheDialog(t *testing.T) {
	for _, method := range []string{"UPDATE", "INFO"} {
		t.Run(method, func(t *testing.T) {
			rc := newRawCall(t, "before-ack")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			answered := make(chan error, 1)
			go func() { answered <- rc.in.Leg.Answer(ctx) }()
			ok := rc.ua.until(t, rc.callID, 200)
			if code, _ := rc.request(t, ok["to"], method, 2, "", ""); code != 200 {
				t.Fatalf("an %s before the ACK: %d, want 200", method, code)
			}
			rc.ack(t, ok)
			select {
			case err := <-answered:
				if err != nil {
					t.Errorf("answer: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the answer did not end with the ACK: the dialog was not confirmed")
			}
		})
	}
}

// An INFO is a request in the dialog like any other: its CSeq becomes the
// far end's last one, so a BYE below it is out of order (500, and the
// call goes on), and so is an INFO below the last request, whose key is
// not taken (RFC 3261 §12.2.2).
func TestInfoMovesTheRemoteCSeq(t *testing.T) {
	rc := newRawCall(t, "info-cseq")
	to := rc.answered(t)
	dtmf := "Content-Type: application/dtmf-relay\r\n"
	if code, _ := rc.request(t, to, "INFO", 10, dtmf, "Signal=5\r\n"); code != 200 {
		t.Fatalf("an INFO with CSeq 10: %d, want 200", code)
	}
	if ev := nextEvent(t, rc.in.Leg, sb.LegDTMF); ev.Reason != "5" {
		t.Fatalf("the INFO's key %q, want 5", ev.Reason)
	}
	if code, _ := rc.request(t, to, "BYE", 9, "", ""); code != 500 {
		t.Errorf("a BYE with CSeq 9 after an INFO with 10: %d, want 500", code)
	}
	if code, _ := rc.request(t, to, "INFO", 8, dtmf, "Signal=7\r\n"); code != 500 {
		t.Errorf("an INFO with CSeq 8 after one with 10: %d, want 500", code)
	}
	if code, _ := rc.request(t, to, "BYE", 11, "", ""); code != 200 {
		t.Errorf("the BYE in order: %d, want 200", code)
	}
	// Whatever the leg reported in between comes before the hang-up.
	nextEvent(t, rc.in.Leg, sb.LegHungUp)
}

// On a call we place too, an INFO moves the far end's last CSeq: a BYE
// or an INFO below it gets 500, and the call goes on.
func TestDialInfoMovesTheRemoteCSeq(t *testing.T) {
	l, d := placedDialog(t, mustServer(t, nil, Config{}), nil)
	if res := d.request(t, sip.INFO, nil, nil); res.StatusCode != 200 {
		t.Fatalf("the carrier's INFO (CSeq %d): %d, want 200", d.cseq, res.StatusCode)
	}
	last := d.cseq
	d.cseq = last - 2
	if res := d.request(t, sip.BYE, nil, nil); res.StatusCode != 500 {
		t.Errorf("a BYE with CSeq %d after an INFO with %d: %d, want 500", d.cseq, last, res.StatusCode)
	}
	d.cseq = last - 3
	if res := d.request(t, sip.INFO, nil, nil); res.StatusCode != 500 {
		t.Errorf("an INFO with CSeq %d after one with %d: %d, want 500", d.cseq, last, res.StatusCode)
	}
	d.cseq = last
	if res := d.request(t, sip.BYE, nil, nil); res.StatusCode != 200 {
		t.Errorf("the BYE in order: %d, want 200", res.StatusCode)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegHungUp {
		t.Errorf("event %+v, want hung up", ev)
	}
}

// ringingCarrier rings a call we place from the early dialogs of tags
// (180s, a fork each) and, once answer is closed, answers it from the
// first. Our INVITE comes out of invites once they all rang.
func ringingCarrier(t *testing.T, answer <-chan struct{}, tags ...string) (*carrier, <-chan *sip.Request) {
	invites := make(chan *sip.Request, 1)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: addrPortOf(t, c.addr)}}
		for _, tag := range tags {
			ringing := sip.NewResponseFromRequest(req, sip.StatusRinging, "Ringing", nil)
			ringing.To().Params.Add("tag", tag)
			ringing.AppendHeader(contact)
			tx.Respond(ringing)
		}
		invites <- req
		select {
		case <-answer:
		case <-time.After(5 * time.Second):
			return
		}
		ok := sip.NewSDPResponseFromRequest(req, c.sdp())
		ok.To().Params.Add("tag", tags[0])
		ok.AppendHeader(contact)
		tx.Respond(ok)
	})
	return c, invites
}

// Each early dialog of a call we place (each fork's tag) has its own
// remote CSeq: a fork's request in order in its own dialog is taken
// whatever the other fork sent, and one out of order in it gets 500
// (RFC 3261 §12.1.2, §13.2.2.4). They shared one, keyed by the Call-ID,
// so the second fork's UPDATE below the first fork's CSeq got 500. Once
// the 2xx confirms one dialog, a request in another gets 481.
func TestDialForkedEarlyDialogsKeepTheirOwnCSeq(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	answer := make(chan struct{})
	c, invites := ringingCarrier(t, answer, "fork1", "fork2")
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	inv := <-invites
	fork1 := &carrierDialog{c: c, inv: inv, cseq: 100, tag: "fork1"}
	fork2 := &carrierDialog{c: c, inv: inv, cseq: 4, tag: "fork2"}
	if res := fork1.request(t, sip.UPDATE, nil, nil); res.StatusCode != 200 {
		t.Fatalf("fork1's UPDATE (CSeq %d): %d, want 200", fork1.cseq, res.StatusCode)
	}
	if res := fork2.request(t, sip.UPDATE, nil, nil); res.StatusCode != 200 {
		t.Errorf("fork2's UPDATE (CSeq %d, its first) after fork1's (CSeq %d): %d, want 200", fork2.cseq, fork1.cseq, res.StatusCode)
	}
	fork2.cseq -= 2
	if res := fork2.request(t, sip.UPDATE, nil, nil); res.StatusCode != 500 {
		t.Errorf("fork2's UPDATE with CSeq %d after its %d: %d, want 500", fork2.cseq, fork2.cseq+1, res.StatusCode)
	}
	close(answer)
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegRinging {
		t.Fatalf("event %+v, want ringing", ev)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %+v, want answered", ev)
	}
	fork2.cseq += 2
	if res := fork2.request(t, sip.UPDATE, nil, nil); res.StatusCode != 481 {
		t.Errorf("fork2's UPDATE once fork1 answered: %d, want 481", res.StatusCode)
	}
	if res := fork1.request(t, sip.BYE, nil, nil); res.StatusCode != 200 {
		t.Errorf("fork1's BYE: %d, want 200", res.StatusCode)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegHungUp {
		t.Errorf("event %+v, want hung up", ev)
	}
}

// Each early dialog of a call we place has its own RSeq order (RFC 3262
// §4): a fork's reliable 183 is PRACKed, in its dialog, whatever RSeq
// another fork's had. The last RSeq was kept once per call, so the second
// fork's 183 with an RSeq below the first's was taken for a
// retransmission and never PRACKed.
func TestDialForkedReliable18xKeepTheirOwnRSeq(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	pracks := make(chan *sip.Request, 2)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		for _, fork := range []struct {
			tag  string
			rseq uint32
		}{{"fork1", 5}, {"fork2", 2}} {
			tx.Respond(reliableEarlyIn(t, req, c, fork.tag, fork.rseq))
			select {
			case p := <-c.prack:
				pracks <- p
			case <-time.After(3 * time.Second):
				tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "no PRACK in "+fork.tag, nil))
				return
			}
		}
		ok := sip.NewSDPResponseFromRequest(req, c.sdp())
		ok.To().Params.Add("tag", "fork1")
		tx.Respond(ok)
	})
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for {
		ev := nextLegEvent(t, l)
		if ev.Kind == sb.LegAnswered {
			break
		}
		if ev.Kind != sb.LegEarlyMedia && ev.Kind != sb.LegRinging {
			t.Fatalf("event %+v, want answered once both forks' 183s were PRACKed", ev)
		}
	}
	for _, want := range []struct {
		tag  string
		rseq uint32
	}{{"fork1", 5}, {"fork2", 2}} {
		p := <-pracks
		if tag := tagOf(p.To().Params); tag != want.tag {
			t.Errorf("PRACK in dialog %q, want %q", tag, want.tag)
		}
		if h := p.GetHeader("RAck"); h == nil || !strings.HasPrefix(h.Value(), fmt.Sprintf("%d ", want.rseq)) {
			t.Errorf("PRACK in %s: RAck %v, want RSeq %d", want.tag, h, want.rseq)
		}
	}
}

// reliableEarly is the carrier's reliable 183 (Require: 100rel, RSeq 1)
// in its dialog carrier1, with its answer.
func reliableEarly(t *testing.T, req *sip.Request, c *carrier) *sip.Response {
	return reliableEarlyIn(t, req, c, "carrier1", 1)
}

// reliableEarlyIn is the carrier's reliable 183 with RSeq rseq in its
// early dialog tag, with its answer.
func reliableEarlyIn(t *testing.T, req *sip.Request, c *carrier, tag string, rseq uint32) *sip.Response {
	early := sip.NewSDPResponseFromRequest(req, c.sdp())
	early.StatusCode, early.Reason = sip.StatusSessionInProgress, "Session Progress"
	early.To().Params.Add("tag", tag)
	early.AppendHeader(sip.NewHeader("Require", "100rel"))
	early.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(rseq), 10)))
	early.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: addrPortOf(t, c.addr)}})
	return early
}

// reliableCarrier answers our INVITE with its reliable 183
// (reliableEarly) and, once that is PRACKed and answer closed, with ok's
// 200. Our INVITE comes out of pracked once the PRACK came.
func reliableCarrier(t *testing.T, answer <-chan struct{}, ok func(req *sip.Request, c *carrier) *sip.Response) (*carrier, <-chan *sip.Request) {
	pracked := make(chan *sip.Request, 1)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		tx.Respond(reliableEarly(t, req, c))
		select {
		case <-c.prack:
		case <-time.After(5 * time.Second):
			return
		}
		pracked <- req
		select {
		case <-answer:
		case <-time.After(5 * time.Second):
			return
		}
		res := ok(req, c)
		res.To().Params.Add("tag", "carrier1")
		tx.Respond(res)
	})
	return c, pracked
}

// Where the carrier's reliable 183 answered our offer, its 200 may carry
// no SDP (RFC 3261 §13.2.1, RFC 3262 §5): the call is answered with the
// 183's session. It failed with 488, the 200's empty body read as a
// broken answer.
func TestDialAnswerInAReliable183(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	now := make(chan struct{})
	close(now)
	c, _ := reliableCarrier(t, now, func(req *sip.Request, c *carrier) *sip.Response {
		return sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	})
	l := dialUntil(t, ts, c, sb.LegEarlyMedia)
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %+v, want answered: the 183 gave the answer", ev)
	}
	if got, want := *l.(*outLeg).port.remote.Load(), c.rtp.LocalAddr().(*net.UDPAddr).AddrPort(); got != want {
		t.Errorf("media goes to %s, want the 183's %s", got, want)
	}
}

// carrierSDPAt is the carrier's description (PCMA and telephone-event)
// at ap, o= version 2: its media moved.
func carrierSDPAt(ap netip.AddrPort) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=carrier 1 2 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\n"+
		"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", ap.Addr(), ap.Addr(), ap.Port()))
}

// Once the carrier's reliable 183 answered our offer (and we PRACKed
// it), the early offer/answer is complete: an UPDATE with a new offer is
// answered 200 with ours, the media follows it, and it is the call's
// session once the 200 comes, whatever SDP the 200 repeats (RFC 3311
// §5.1, §5.2; RFC 3261 §13.2.1). It got 491, as if our INVITE's offer
// still awaited its answer. A second offer while the first awaits our
// answer gets 500 with Retry-After (RFC 3311 §5.2).
func TestDialEarlyUpdateOfferAfterAReliable183(t *testing.T) {
	h := newHeldExchange(t, false, true)
	ts := mustServer(t, nil, Config{}, h.setup)
	answer := make(chan struct{})
	c, pracked := reliableCarrier(t, answer, func(req *sip.Request, c *carrier) *sip.Response {
		return sip.NewSDPResponseFromRequest(req, c.sdp()) // the 183's answer again
	})
	l := dialUntil(t, ts, c, sb.LegEarlyMedia)
	var inv *sip.Request
	select {
	case inv = <-pracked:
	case <-time.After(5 * time.Second):
		t.Fatal("the reliable 183 was not PRACKed")
	}
	moved, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	to := moved.LocalAddr().(*net.UDPAddr).AddrPort()
	d := &carrierDialog{c: c, inv: inv, cseq: 100}
	d.cseq++
	first := d.build(sip.UPDATE, carrierSDPAt(to))
	type result struct {
		res *sip.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := c.client.Do(ctx, first)
		done <- result{res, err}
	}()
	select {
	case <-h.theirs:
	case r := <-done:
		t.Fatalf("the early UPDATE with an offer after the reliable 183: %v %v, want 200", r.res.StatusCode, r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("the early UPDATE's offer was not taken")
	}
	res := d.request(t, sip.UPDATE, carrierSDPAt(to), nil)
	if retry, err := strconv.Atoi(headerOf(res, "Retry-After")); res.StatusCode != 500 || err != nil || retry < 0 || retry > 10 {
		t.Errorf("an offer crossing the far end's first: %d (Retry-After %q), want 500 with a Retry-After of 0 to 10", res.StatusCode, headerOf(res, "Retry-After"))
	}
	h.free()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.StatusCode != 200 || !strings.Contains(string(r.res.Body()), "m=audio ") {
		t.Fatalf("the early UPDATE with an offer: %d with %q, want 200 with our answer", r.res.StatusCode, r.res.Body())
	}
	if _, v := sdpOrigin(t, r.res.Body()); v != "2" {
		t.Errorf("our answer's o= version %s, want 2 (our offer's was 1)", v)
	}
	if h := headerOf(r.res, "Session-Expires"); h != "" {
		t.Errorf("the early UPDATE's 200 states a session timer: %q", h)
	}
	if got := *l.(*outLeg).port.remote.Load(); got != to {
		t.Errorf("media goes to %s after the early UPDATE, want %s", got, to)
	}
	close(answer)
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %+v, want answered", ev)
	}
	if got := *l.(*outLeg).port.remote.Load(); got != to {
		t.Errorf("media goes to %s once answered, want the early UPDATE's %s", got, to)
	}
}

// heldExchange stops the server's exchanges of offer and answer under way
// where a test crosses them (Server.exchanging): ours, a re-INVITE about
// to be described and sent, or theirs, an offer taken and not yet
// answered. Each kind reports on its channel the first time it comes
// and, if hold says so, waits there until released.
type heldExchange struct {
	ours, theirs         chan struct{}
	holdOurs, holdTheirs bool
	release              chan struct{}
	once                 sync.Once
	oursSeen, theirsSeen atomic.Bool
}

func newHeldExchange(t *testing.T, holdOurs, holdTheirs bool) *heldExchange {
	h := &heldExchange{ours: make(chan struct{}), theirs: make(chan struct{}), holdOurs: holdOurs, holdTheirs: holdTheirs, release: make(chan struct{})}
	t.Cleanup(h.free) // before the server closes
	return h
}

func (h *heldExchange) free() { h.once.Do(func() { close(h.release) }) }

func (h *heldExchange) setup(s *Server) {
	s.exchanging = func(theirs bool) {
		seen, ch, hold := &h.oursSeen, h.ours, h.holdOurs
		if theirs {
			seen, ch, hold = &h.theirsSeen, h.theirs, h.holdTheirs
		}
		if !seen.CompareAndSwap(false, true) {
			return
		}
		close(ch)
		if hold {
			<-h.release
		}
	}
}

// reached waits for ch to report.
func reached(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s never came", what)
	}
}

// crossedHold reads what the raw UA gets after an UPDATE with CSeq 2
// crossed our hold: the UPDATE's final response and our re-INVITE, in
// either order. It returns the o= versions of our answer and our offer.
func crossedHold(t *testing.T, rc rawCall) (answered, offered string) {
	t.Helper()
	buf := make([]byte, 8192)
	for answered == "" || offered == "" {
		rc.ua.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := rc.ua.conn.Read(buf)
		if err != nil {
			t.Fatalf("the UPDATE's answer (version %q) or our re-INVITE (version %q) did not come: %v", answered, offered, err)
		}
		msg := string(buf[:n])
		_, body, _ := strings.Cut(msg, "\r\n\r\n")
		switch code, h := parseResponse(msg); {
		case strings.HasPrefix(msg, "INVITE "):
			_, offered = sdpOrigin(t, []byte(body))
		case code >= 200 && h["cseq"] == "2 UPDATE":
			if code != 200 {
				t.Fatalf("the UPDATE crossing our hold was answered %d, want 200 (it came before our offer)", code)
			}
			_, answered = sdpOrigin(t, []byte(body))
		}
	}
	return answered, offered
}

// An offer of the caller's and a hold of ours that cross are one
// exchange after the other, our o= version moving by one for each
// description that changed (RFC 3264 §8): the UPDATE, which changes
// nothing, is answered at version 1, and the hold offered at 2. The hold
// built its body before it counted itself as under way, so an offer taken
// in between was answered at the version of the hold's offer, or above
// it, ahead of the offer itself; and one taken but not yet answered when
// the hold built its body was answered above the hold's version.
func TestHoldCrossingTheCallersOffer(t *testing.T) {
	for _, c := range []struct {
		name  string
		first string // whose exchange gets under way first
	}{{"hold first", "ours"}, {"offer first", "theirs"}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHeldExchange(t, c.first == "ours", c.first == "theirs")
			rc := newRawCallWith(t, "hold-crossing", Config{}, h.setup)
			to := rc.answered(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			held := make(chan error, 1)
			if c.first == "ours" {
				go func() { held <- rc.in.Leg.Hold(ctx, true) }()
				reached(t, h.ours, "our hold's re-INVITE")
				rc.send(t, to, "UPDATE", 2, "", sampleOffer)
				reached(t, h.theirs, "the caller's offer")
			} else {
				rc.send(t, to, "UPDATE", 2, "", sampleOffer)
				reached(t, h.theirs, "the caller's offer")
				go func() { held <- rc.in.Leg.Hold(ctx, true) }()
				reached(t, h.ours, "our hold's re-INVITE")
			}
			h.free()
			answered, offered := crossedHold(t, rc)
			if answered != "1" || offered != "2" {
				t.Errorf("the caller's offer was answered at o= version %s and our hold offered at %s, want 1 (nothing changed) and 2", answered, offered)
			}
			cancel()
			<-held
		})
	}
}

// An offer of the caller's while another of theirs awaits our answer
// gets 500 with a Retry-After of 0 to 10 s (RFC 3311 §5.2, RFC 3261
// §14.2), on a call that came in as on one we place; both were taken.
func TestCrossingOffersOfTheCallerGet500(t *testing.T) {
	h := newHeldExchange(t, false, true)
	rc := newRawCallWith(t, "offers-crossing", Config{}, h.setup)
	to := rc.answered(t)
	rc.send(t, to, "UPDATE", 2, "", sampleOffer)
	reached(t, h.theirs, "the caller's first offer")
	for i, method := range []string{"UPDATE", "INVITE"} {
		body := sampleOffer
		if method == "INVITE" {
			body = "" // asking for our offer, which cannot be made now
		}
		code, hs := rc.request(t, to, method, 3+i, "", body)
		if retry, err := strconv.Atoi(hs["retry-after"]); code != 500 || err != nil || retry < 0 || retry > 10 {
			t.Errorf("%s crossing the caller's first offer: %d (Retry-After %q), want 500 with a Retry-After of 0 to 10", method, code, hs["retry-after"])
		}
	}
	h.free()
	for {
		if code, hs := rc.ua.next(t, rc.callID); code >= 200 && hs["cseq"] == "2 UPDATE" {
			if code != 200 {
				t.Errorf("the caller's first offer: %d, want 200", code)
			}
			return
		}
	}
}

// cutAnswerAcked has the raw UA's call answered by a 200 whose Answer is
// cut short (its context ends), then acknowledged: the leg lingers with
// the ACK in, as RFC 3261 §15 has it, to end the dialog with a BYE.
func cutAnswerAcked(t *testing.T, rc rawCall) *leg {
	t.Helper()
	l := rc.in.Leg.(*leg)
	ctx, cancel := context.WithCancel(context.Background())
	answered := make(chan error, 1)
	go func() { answered <- l.Answer(ctx) }()
	ok := rc.ua.until(t, rc.callID, 200)
	cancel()
	if err := <-answered; !errors.Is(err, context.Canceled) {
		t.Fatalf("the answer cut short returned %v, want the context's error", err)
	}
	states := l.dlg.StateRead()
	rc.ack(t, ok)
	for {
		select {
		case s := <-states:
			if s == sip.DialogStateConfirmed {
				return l
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the ACK did not confirm the dialog")
		}
	}
}

// answerBye answers the BYE the raw UA got (bye, as read) with 200.
func (c rawCall) answerBye(t *testing.T, bye string) {
	t.Helper()
	res := "SIP/2.0 200 OK\r\n"
	for _, line := range strings.Split(bye, "\r\n") {
		if name, _, _ := strings.Cut(line, ":"); slices.Contains([]string{"via", "from", "to", "call-id", "cseq"}, strings.ToLower(name)) {
			res += line + "\r\n"
		}
	}
	if _, err := c.ua.conn.Write([]byte(res + "Content-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
}

// An answer cut short whose ACK comes before call control hangs up: the
// BYE waits for Hangup and gives its reason (it said "call ended", sent
// at the ACK before call control had said why); Hangup waits for it, as
// for any BYE, so the call's trace, taken at Close, holds the ACK, the BYE
// and its 200. Closed without a word, the leg's BYE says "call ended",
// and a Hangup after that BYE went is no error (it tried a 487 there is
// no INVITE transaction for, and call control logged a warning).
func TestAnswerCutShortAckedBeforeTheHangup(t *testing.T) {
	t.Run("hang-up", func(t *testing.T) {
		rc := newRawCall(t, "cut-acked")
		l := cutAnswerAcked(t, rc)
		buf := make([]byte, 8192)
		rc.ua.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := rc.ua.conn.Read(buf); err == nil && strings.HasPrefix(string(buf[:n]), "BYE ") {
			t.Fatalf("a BYE before call control said why:\n%s", buf[:n])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hungUp := make(chan error, 1)
		go func() { hungUp <- l.Hangup(ctx, "service shutting down") }()
		bye := rc.ua.readRequest(t, "BYE")
		if !strings.Contains(bye, `text="service shutting down"`) {
			t.Errorf("the BYE does not give Hangup's reason:\n%s", bye)
		}
		rc.answerBye(t, bye)
		if err := <-hungUp; err != nil {
			t.Errorf("hang-up: %v", err)
		}
		l.Close()
		var seen []string
		for _, m := range l.SIPTrace() {
			seen = append(seen, strings.SplitN(m.Message, "\r\n", 2)[0])
		}
		trace := strings.Join(seen, "\n")
		if !strings.Contains(trace, "ACK ") || !strings.Contains(trace, "BYE ") || !strings.HasSuffix(trace, "SIP/2.0 200 OK") {
			t.Errorf("the trace lacks the ACK, the BYE or its 200:\n%s", trace)
		}
	})
	t.Run("closed first", func(t *testing.T) {
		rc := newRawCall(t, "cut-closed")
		l := cutAnswerAcked(t, rc)
		l.Close()
		bye := rc.ua.readRequest(t, "BYE")
		if !strings.Contains(bye, `text="call ended"`) {
			t.Errorf("the BYE of a leg closed without a word:\n%s", bye)
		}
		rc.answerBye(t, bye)
		reached(t, l.cutDone, "the end of the BYE")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Hangup(ctx, "service shutting down"); err != nil {
			t.Errorf("hang-up after the BYE went: %v", err)
		}
	})
}
