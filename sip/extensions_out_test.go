package sip

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// A carrier that sends its 183 reliably (Require: 100rel, RSeq) gets a
// PRACK naming the RSeq and the INVITE's CSeq before it answers; our
// INVITE said we take 100rel and timers.
func TestDialPRACKsReliableEarlyMedia(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	invites := make(chan *sip.Request, 1)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		invites <- req
		early := sip.NewSDPResponseFromRequest(req, c.sdp())
		early.StatusCode, early.Reason = sip.StatusSessionInProgress, "Session Progress"
		early.AppendHeader(sip.NewHeader("Require", "100rel"))
		early.AppendHeader(sip.NewHeader("RSeq", "7"))
		early.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: addrPortOf(t, c.addr)}})
		tx.Respond(early)
		select {
		case <-c.prack:
		case <-time.After(3 * time.Second):
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "no PRACK", nil))
			return
		}
		tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdp()))
	})
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegEarlyMedia {
		t.Fatalf("first event %v, want early media", ev.Kind)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %+v, want answered (the carrier answers only once PRACKed)", ev)
	}
	inv := <-invites
	if h := inv.GetHeader("Supported"); h == nil || !strings.Contains(h.Value(), "100rel") || !strings.Contains(h.Value(), "timer") {
		t.Errorf("our INVITE's Supported: %v", h)
	}
	var prack string
	for _, m := range l.SIPTrace() {
		if strings.HasPrefix(m.Message, "PRACK ") {
			prack = m.Message
		}
	}
	if want := fmt.Sprintf("\r\nRAck: 7 %d INVITE\r\n", inv.CSeq().SeqNo); !strings.Contains(prack, want) {
		t.Errorf("the PRACK lacks %q:\n%s", strings.TrimSpace(want), prack)
	}
	if cseq := prackCSeq(prack); cseq <= inv.CSeq().SeqNo {
		t.Errorf("the PRACK's CSeq %d is not above the INVITE's %d", cseq, inv.CSeq().SeqNo)
	}
}

func prackCSeq(msg string) uint32 {
	var n uint32
	if i := strings.Index(msg, "\r\nCSeq: "); i >= 0 {
		fmt.Sscanf(msg[i+len("\r\nCSeq: "):], "%d", &n)
	}
	return n
}

func addrPortOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := sip.ParseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// timerAnswer answers our INVITE with a session timer naming refresher,
// and UPDATE in Allow when update.
func timerAnswer(refresher string, update bool) func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
	return func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		res := sip.NewSDPResponseFromRequest(req, c.sdp())
		res.To().Params.Add("tag", "carrier1")
		res.AppendHeader(sip.NewHeader("Session-Expires", "2;refresher="+refresher))
		res.AppendHeader(sip.NewHeader("Require", "timer"))
		_, port, _ := sip.ParseAddr(c.addr)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: port}})
		if update {
			res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE"))
		}
		tx.Respond(res)
	}
}

// On a call we place we ask for a session timer; when the answer makes us
// the refresher (uac), we refresh at half the interval, by UPDATE when
// the carrier allows it, else by re-INVITE, and the call stays up.
func TestDialSessionTimerWeRefresh(t *testing.T) {
	for _, update := range []bool{false, true} {
		t.Run(fmt.Sprint("update=", update), func(t *testing.T) {
			ts := mustServer(t, nil, Config{MinSE: time.Second, SessionExpires: 2 * time.Second})
			refreshes := make(chan *sip.Request, 8)
			c := mustCarrier(t, timerAnswer("uac", update))
			c.mu.Lock()
			c.refresh = func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
				res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
				if req.IsInvite() {
					res = sip.NewSDPResponseFromRequest(req, c.sdp())
				}
				res.AppendHeader(sip.NewHeader("Session-Expires", "2;refresher=uac"))
				tx.Respond(res)
				refreshes <- req
			}
			c.mu.Unlock()
			l := dialAnswered(t, ts, c)
			for i := range 3 {
				select {
				case req := <-refreshes:
					if want := map[bool]sip.RequestMethod{true: sip.UPDATE, false: sip.INVITE}[update]; req.Method != want {
						t.Errorf("refresh %d by %s, want %s", i, req.Method, want)
					}
					if h := req.GetHeader("Session-Expires"); h == nil || h.Value() != "2;refresher=uac" {
						t.Errorf("refresh %d Session-Expires %v", i, h)
					}
				case ev := <-l.Events():
					t.Fatalf("refresh %d: event %v (%s)", i, ev.Kind, ev.Reason)
				case <-time.After(2 * time.Second):
					t.Fatalf("no refresh %d within the interval", i)
				}
			}
		})
	}
}

// When the answer makes the carrier the refresher (uas) and its refresh
// never comes, the leg reports the session expiring before it does.
func TestDialSessionTimerTheyStopRefreshing(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second, SessionExpires: 2 * time.Second})
	c := mustCarrier(t, timerAnswer("uas", false))
	l := dialAnswered(t, ts, c)
	start := time.Now()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegSessionExpired {
		t.Fatalf("event %+v, want session expired", ev)
	}
	// A timer fires late on a busy machine, never early.
	if d := time.Since(start); d < 1200*time.Millisecond || d > 4*time.Second {
		t.Errorf("expiry reported after %s, want about 1.33 s", d)
	}
	if got := c.seen(); strings.Contains(got, "in dialog") {
		t.Errorf("we refreshed though the carrier was the refresher: %s", got)
	}
}

// carrierDialog is the carrier's side of a call we placed, for sending
// requests in it: our INVITE and its 2xx.
type carrierDialog struct {
	c    *carrier
	inv  *sip.Request
	cseq uint32
	tag  string // the carrier's tag in the dialog; "carrier1" when empty
}

// request sends method in the dialog with body (SDP; none when nil) and
// returns the final response; a 2xx to an INVITE is ACKed with ack.
func (d *carrierDialog) request(t *testing.T, method sip.RequestMethod, body, ack []byte, headers ...sip.Header) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.cseq++
	req := d.build(method, body, headers...)
	res, err := d.c.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("carrier's %s: %v", method, err)
	}
	if method == sip.INVITE && res.IsSuccess() {
		a := d.build(sip.ACK, ack)
		if err := d.c.client.WriteRequest(a); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// build is the carrier's request method in the dialog, with CSeq d.cseq,
// body (SDP; none when nil) and headers.
func (d *carrierDialog) build(method sip.RequestMethod, body []byte, headers ...sip.Header) *sip.Request {
	req := sip.NewRequest(method, d.inv.Contact().Address)
	to := d.inv.To()
	from := d.inv.From()
	fromTag, _ := from.Params.Get("tag")
	toParams := sip.NewParams()
	toParams.Add("tag", fromTag)
	fromParams := sip.NewParams()
	fromParams.Add("tag", cmp.Or(d.tag, "carrier1"))
	req.AppendHeader(&sip.FromHeader{Address: to.Address, Params: fromParams})
	req.AppendHeader(&sip.ToHeader{Address: from.Address, Params: toParams})
	req.AppendHeader(sip.HeaderClone(d.inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: method})
	_, port, _ := sip.ParseAddr(d.c.addr)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: port}})
	for _, h := range headers {
		req.AppendHeader(h)
	}
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	return req
}

// When the carrier refreshes a call we placed (the answer made it the
// refresher, uas), its UPDATE, re-INVITE with SDP and re-INVITE without
// SDP (our unchanged offer in the 200, its answer in the ACK) keep the
// call up and are answered with the timer; when they stop, the session is
// reported expiring.
func TestDialSessionTimerTheyRefresh(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second, SessionExpires: 2 * time.Second})
	invites := make(chan *sip.Request, 1)
	answer := timerAnswer("uas", false)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		invites <- req
		answer(req, tx, c)
	})
	l := dialAnswered(t, ts, c)
	d := &carrierDialog{c: c, inv: <-invites, cseq: 100}
	if p := d.inv.Contact().Address.Port; p != addrPortOf(t, ts.udp) {
		t.Fatalf("our INVITE's Contact %s does not name our SIP port", d.inv.Contact().Address.String())
	}
	se, supported := sip.NewHeader("Session-Expires", "2;refresher=uac"), sip.NewHeader("Supported", "timer")
	var offers [][]byte
	for i, step := range []func() *sip.Response{
		func() *sip.Response { return d.request(t, sip.UPDATE, nil, nil, se, supported) },
		func() *sip.Response { return d.request(t, sip.INVITE, c.sdp(), nil, se, supported) },
		func() *sip.Response { return d.request(t, sip.INVITE, nil, c.sdp(), se, supported) },
		func() *sip.Response { return d.request(t, sip.INVITE, nil, c.sdp(), se, supported) },
	} {
		select {
		case ev := <-l.Events():
			t.Fatalf("refresh %d: event %v (%s) while refreshed", i, ev.Kind, ev.Reason)
		case <-time.After(900 * time.Millisecond):
		}
		res := step()
		if res.StatusCode != 200 || headerOf(res, "Session-Expires") != "2;refresher=uac" {
			t.Fatalf("refresh %d answered %d, Session-Expires %q", i, res.StatusCode, headerOf(res, "Session-Expires"))
		}
		if i >= 2 {
			offers = append(offers, res.Body())
		}
	}
	if len(offers) != 2 || len(offers[0]) == 0 || string(offers[0]) != string(offers[1]) {
		t.Errorf("our offers in the 200s to re-INVITEs without SDP differ, though nothing changed:\n%s\n%s", offers[0], offers[1])
	}
	start := time.Now()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegSessionExpired {
		t.Fatalf("event %+v, want session expired", ev)
	}
	// A timer fires late on a busy machine, never early.
	if d := time.Since(start); d < 1200*time.Millisecond || d > 4*time.Second {
		t.Errorf("expiry reported %s after the last refresh, want about 1.33 s", d)
	}
}

// A carrier that finds our session interval too brief (422, Min-SE) gets
// the INVITE again, once, asking for its Min-SE, and the call goes on.
func TestDialSessionIntervalTooSmallIsRaised(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second, SessionExpires: 2 * time.Second})
	invites := make(chan *sip.Request, 4)
	answer := timerAnswer("uas", false)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		invites <- req
		if h := req.GetHeader("Session-Expires"); h == nil || h.Value() != "5" {
			res := sip.NewResponseFromRequest(req, 422, "Session Interval Too Small", nil)
			res.AppendHeader(sip.NewHeader("Min-SE", "5"))
			tx.Respond(res)
			return
		}
		answer(req, tx, c)
	})
	dialAnswered(t, ts, c)
	first, second := <-invites, <-invites
	if h := first.GetHeader("Session-Expires"); h == nil || h.Value() != "2" {
		t.Errorf("first INVITE's Session-Expires %v, want 2", h)
	}
	if second.CSeq().SeqNo <= first.CSeq().SeqNo || second.GetHeader("Min-SE").Value() != "5" {
		t.Errorf("second INVITE: CSeq %d after %d, Min-SE %v", second.CSeq().SeqNo, first.CSeq().SeqNo, second.GetHeader("Min-SE"))
	}
}

// dialAnswered places a call through carrier c and waits for its answer.
func dialAnswered(t *testing.T, ts *testServer, c *carrier) sb.OutboundLeg {
	t.Helper()
	return dialUntil(t, ts, c, sb.LegAnswered)
}

// dialUntil places a call through carrier c and waits for its first
// event, which is to be want.
func dialUntil(t *testing.T, ts *testServer, c *carrier, want sb.LegEventKind) sb.OutboundLeg {
	t.Helper()
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if ev := nextLegEvent(t, l); ev.Kind != want {
		t.Fatalf("event %+v, want %v", ev, want)
	}
	return l
}

// An INFO without a body on a call we placed (an SBC's keep-alive) is
// answered 200, as on a call that came in.
func TestDialInfoKeepAlive(t *testing.T) {
	d := answeredDialog(t, mustServer(t, nil, Config{}))
	if res := d.request(t, sip.INFO, nil, nil); res.StatusCode != 200 {
		t.Errorf("an INFO without a body on a call we placed: %d, want 200", res.StatusCode)
	}
}

// A re-offer from the far end of a call we placed that adds a stream is
// answered with its m= lines, the added one refused with port 0 (RFC 3264
// §6), and the call goes on.
func TestDialReofferAddingAStream(t *testing.T) {
	d := answeredDialog(t, mustServer(t, nil, Config{}))
	offer := append(d.c.sdp(), "m=video 40002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"...)
	res := d.request(t, sip.INVITE, offer, nil)
	var lines []string
	for line := range strings.Lines(string(res.Body())) {
		if strings.HasPrefix(line, "m=") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if res.StatusCode != 200 || len(lines) != 2 || !strings.HasPrefix(lines[0], "m=audio ") || lines[1] != "m=video 0 RTP/AVP 96" {
		t.Errorf("a re-offer adding video: %d with m= lines %q, want 200 with audio and the video refused", res.StatusCode, lines)
	}
}

// answeredDialog is a call ts placed to a carrier that answered it at
// once, from the carrier's side.
func answeredDialog(t *testing.T, ts *testServer) *carrierDialog {
	t.Helper()
	invites := make(chan *sip.Request, 1)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		invites <- req
		tx.Respond(taggedOK(req, c))
	})
	dialAnswered(t, ts, c)
	return &carrierDialog{c: c, inv: <-invites, cseq: 100}
}

// taggedOK is the carrier's 200 with its answer, in the dialog a
// carrierDialog's requests are in (tag carrier1).
func taggedOK(req *sip.Request, c *carrier) *sip.Response {
	ok := sip.NewSDPResponseFromRequest(req, c.sdp())
	ok.To().Params.Add("tag", "carrier1")
	return ok
}

// placedDialog is a call ts placed to a carrier that answered it at once,
// its re-INVITEs and UPDATEs answered by refresh: the leg, and the
// dialog from the carrier's side.
func placedDialog(t *testing.T, ts *testServer, refresh func(req *sip.Request, tx sip.ServerTransaction, c *carrier)) (sb.OutboundLeg, *carrierDialog) {
	t.Helper()
	invites := make(chan *sip.Request, 1)
	c := mustCarrier(t, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		invites <- req
		tx.Respond(taggedOK(req, c))
	})
	l := dialAnswered(t, ts, c)
	inv := <-invites
	// Only this call's requests reach refresh: a port the carrier took
	// may still hear an earlier test's dialog (its BYE, its re-INVITE).
	c.mu.Lock()
	c.refresh = func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		switch {
		case req.CallID().Value() != inv.CallID().Value():
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		case refresh == nil:
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotImplemented, "Not Implemented", nil))
		default:
			refresh(req, tx, c)
		}
	}
	c.mu.Unlock()
	return l, &carrierDialog{c: c, inv: inv, cseq: 100}
}

// On a call we placed too, the far end's offer or re-INVITE crossing our
// hold's re-INVITE gets 491 (RFC 3261 §14.2, RFC 3311 §5.2).
func TestDialGlareWithOurReinviteGets491(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	ours, release := make(chan struct{}, 1), make(chan struct{})
	l, d := placedDialog(t, ts, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		ours <- struct{}{}
		<-release
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusRequestPending, "Request Pending", nil))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	held := make(chan error, 1)
	go func() { held <- l.Hold(ctx, true) }()
	<-ours
	for _, c := range []struct {
		method sip.RequestMethod
		body   []byte
	}{{sip.INVITE, d.c.sdp()}, {sip.INVITE, nil}, {sip.UPDATE, d.c.sdp()}} {
		if res := d.request(t, c.method, c.body, d.c.sdp()); res.StatusCode != 491 {
			t.Errorf("the carrier's %s (SDP %t) crossing our re-INVITE: %d, want 491", c.method, c.body != nil, res.StatusCode)
		}
	}
	close(release)
	if err := <-held; err == nil {
		t.Error("a hold answered 491 succeeded")
	}
}

// A hold the far end of a call we placed refuses leaves our description
// as it was: its next re-INVITE without SDP gets our sendrecv offer at the
// version it has (RFC 3261 §14.1, RFC 3264 §8).
func TestDialRefusedHoldLeavesTheCall(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	var answered atomic.Bool // the first re-INVITE is refused
	l, d := placedDialog(t, ts, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		if !answered.Swap(true) {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
			return
		}
		tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdp()))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Hold(ctx, true); err == nil {
		t.Fatal("a hold the carrier refused succeeded")
	}
	res := d.request(t, sip.INVITE, nil, d.c.sdp())
	offered := res.Body()
	if res.StatusCode != 200 || !strings.Contains(string(offered), "a=sendrecv") || !strings.Contains(string(offered), "o=switchboard ") {
		t.Fatalf("after a refused hold the carrier's re-INVITE without SDP got %d with:\n%s", res.StatusCode, offered)
	}
	if _, v := sdpOrigin(t, offered); v != "1" {
		t.Errorf("our offer's o= version is %s, want 1 (unchanged)", v)
	}
}

// An out-of-order BYE from the far end of a call we placed (its CSeq
// below the last request it sent in the dialog) is refused with 500 and
// the call goes on (RFC 3261 §12.2.2), as on a call that came in; the
// next BYE in order ends it.
func TestDialOutOfOrderByeGets500(t *testing.T) {
	l, d := placedDialog(t, mustServer(t, nil, Config{}), nil)
	if res := d.request(t, sip.UPDATE, nil, nil); res.StatusCode != 200 {
		t.Fatalf("the carrier's UPDATE (CSeq %d): %d", d.cseq, res.StatusCode)
	}
	last := d.cseq
	d.cseq = 49
	if res := d.request(t, sip.BYE, nil, nil); res.StatusCode != 500 {
		t.Errorf("a BYE with CSeq 50 after %d: %d %s, want 500", last, res.StatusCode, res.Reason)
	}
	select {
	case ev := <-l.Events():
		t.Fatalf("event %v (%s) after an out-of-order BYE", ev.Kind, ev.Reason)
	case <-time.After(100 * time.Millisecond):
	}
	d.cseq = last
	if res := d.request(t, sip.BYE, nil, nil); res.StatusCode != 200 {
		t.Errorf("the BYE in order: %d, want 200", res.StatusCode)
	}
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegHungUp {
		t.Errorf("event %+v, want hung up", ev)
	}
}

// An UPDATE without SDP from the far end of a call we place, in the early
// dialog (after its 180, before its 200), is a keep-alive answered 200
// (RFC 3311 §5.2), not 491 as an offer is; its Session-Expires starts no session timer,
// since there is no session yet: the 2xx to our INVITE states the terms
// (RFC 4028 §9), and this one states none.
func TestDialEarlyUpdateWithoutSDPGets200(t *testing.T) {
	ts := mustServer(t, nil, Config{MinSE: time.Second})
	answer := make(chan struct{})
	c, invites := ringingCarrier(t, answer, "carrier1")
	l, err := ts.Dial(context.Background(), route(c), "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegRinging {
		t.Fatalf("event %+v, want ringing", ev)
	}
	d := &carrierDialog{c: c, inv: <-invites, cseq: 100}
	res := d.request(t, sip.UPDATE, nil, nil, sip.NewHeader("Session-Expires", "2"), sip.NewHeader("Supported", "timer"))
	if res.StatusCode != 200 {
		t.Errorf("an early UPDATE without SDP: %d %s, want 200", res.StatusCode, res.Reason)
	}
	if h := headerOf(res, "Session-Expires"); h != "" {
		t.Errorf("the early UPDATE's 200 states a session timer: %q", h)
	}
	// An offer while our INVITE's awaits its answer still crosses it.
	if res := d.request(t, sip.UPDATE, c.sdp(), nil); res.StatusCode != 491 {
		t.Errorf("an early UPDATE with SDP: %d, want 491", res.StatusCode)
	}
	close(answer)
	if ev := nextLegEvent(t, l); ev.Kind != sb.LegAnswered {
		t.Fatalf("event %+v, want answered", ev)
	}
	select {
	case ev := <-l.Events():
		t.Errorf("event %v (%s): the early UPDATE started a session timer", ev.Kind, ev.Reason)
	case <-time.After(2500 * time.Millisecond):
	}
}

// Where the far end of a call we placed holds us (its re-INVITE or
// UPDATE offered sendonly, answered recvonly), our hold offers inactive,
// not sendonly, as on a call that came in
// (TestHoldWhileTheCallerHoldsUsOffersInactive; RFC 3264 §8.4). Our
// resume offers sendrecv; once the far end took us back, our hold offers
// sendonly again.
func TestDialHoldWhileTheFarEndHoldsUsOffersInactive(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	offered := make(chan []byte, 1)
	l, d := placedDialog(t, ts, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		dir := "sendrecv"
		switch body := string(req.Body()); {
		case strings.Contains(body, "a=inactive"):
			dir = "inactive"
		case strings.Contains(body, "a=sendonly"):
			dir = "recvonly"
		}
		select {
		case offered <- req.Body():
		default:
		}
		tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdpDirected(dir)))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offer := carrierOffers(t, d)
	hold := func(held bool) string {
		t.Helper()
		if err := l.Hold(ctx, held); err != nil {
			t.Fatalf("hold %v: %v", held, err)
		}
		return describedDirection(t, "our re-INVITE's offer", <-offered)
	}
	holdWhileHeldUs(t, offer, hold)
}

// carrierOffers has d's carrier offer dir in a re-INVITE or UPDATE
// (method) and returns the direction we answered.
func carrierOffers(t *testing.T, d *carrierDialog) func(method sip.RequestMethod, dir string) string {
	return func(method sip.RequestMethod, dir string) string {
		t.Helper()
		res := d.request(t, method, d.c.sdpDirected(dir), nil)
		return answeredDirection(t, fmt.Sprintf("the carrier's %s offering %s", method, dir), res, nil)
	}
}

// While we hold the far end of a call we placed, its re-INVITE or UPDATE
// offering sendrecv is answered sendonly, as on a call that came in
// (TestOfferWhileWeHoldKeepsTheHold): it was answered sendrecv, taking the
// far end off hold on the wire while call control still held the call.
// Once we take it back, sendrecv is answered sendrecv again.
func TestDialOfferWhileWeHoldKeepsTheHold(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	l, d := placedDialog(t, ts, func(req *sip.Request, tx sip.ServerTransaction, c *carrier) {
		dir := "sendrecv" // our hold and resume: answered recvonly and sendrecv
		if strings.Contains(string(req.Body()), "a=sendonly") {
			dir = "recvonly"
		}
		tx.Respond(sip.NewSDPResponseFromRequest(req, c.sdpDirected(dir)))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offer := carrierOffers(t, d)
	if err := l.Hold(ctx, true); err != nil {
		t.Fatalf("hold: %v", err)
	}
	for _, c := range whileWeHold {
		for _, m := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
			if got := offer(m, c.theirs); got != c.ours {
				t.Errorf("while we hold, the carrier's %s offering %s was answered %s, want %s", m, c.theirs, got, c.ours)
			}
		}
	}
	if err := l.Hold(ctx, false); err != nil {
		t.Fatalf("resume: %v", err)
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.UPDATE} {
		if got := offer(m, "sendrecv"); got != "sendrecv" {
			t.Errorf("once resumed, the carrier's %s offering sendrecv was answered %s", m, got)
		}
	}
}
