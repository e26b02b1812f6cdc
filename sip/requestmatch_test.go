package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// rawCall is a call from a raw UA to a new server, dispatched to the
// test: the UA, the INVITE's Request-URI and Call-ID, and the call.
type rawCall struct {
	ts           *testServer
	ua           *rawUA
	ruri, callID string
	in           *sb.InboundCall
}

func newRawCall(t *testing.T, name string) rawCall {
	t.Helper()
	return newRawCallWith(t, name, Config{})
}

// newRawCallWith is newRawCall to a server configured with conf (and
// setup, as mustServer).
func newRawCallWith(t *testing.T, name string, conf Config, setup ...func(*Server)) rawCall {
	t.Helper()
	c := rawCall{ts: mustServer(t, nil, conf, setup...), callID: fmt.Sprintf("%s-%d@test", name, time.Now().UnixNano())}
	c.ua, c.ruri = mustRawUA(t, c.ts.udp), "sip:2000@"+c.ts.udp
	if code, _ := c.ua.invite(c.ruri, c.callID); code != 100 {
		t.Fatalf("INVITE answered %d", code)
	}
	c.in = nextCall(t, c.ts)
	return c
}

// ring sends our 180 and returns its headers as the UA read them.
func (c rawCall) ring(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.in.Leg.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	return c.ua.until(t, c.callID, 180)
}

// early sends method, CSeq 2, in the early dialog the 180 ringing made,
// with extra headers ("Name: value\r\n" each) and no body.
func (c rawCall) early(t *testing.T, method, ruri string, ringing map[string]string, extra string) {
	t.Helper()
	local := c.ua.conn.LocalAddr().String()
	req := method + " " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + fmt.Sprintf(";branch=z9hG4bK%s%d\r\n", strings.ToLower(method), time.Now().UnixNano()) +
		"From: <sip:3000@" + local + ">;tag=raw" + fmt.Sprint(c.ua.n) + "\r\nTo: " + ringing["to"] + "\r\n" +
		"Call-ID: " + c.callID + "\r\nCSeq: 2 " + method + "\r\n" + extra + "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.ua.conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
}

// A BYE in an early dialog, with the tag of our 180, ends the call: the
// BYE gets 200 and the INVITE its final answer, 487 (RFC 3261 §15.1.2),
// which a caller otherwise waits for until its transaction times out.
func TestEarlyByeAnswersTheInvite(t *testing.T) {
	c := newRawCall(t, "early-bye")
	ua, callID := c.ua, c.callID
	ringing := c.ring(t)
	c.early(t, "BYE", c.ruri, ringing, "")
	// Both answers come before the 487 is acknowledged: the BYE's 200
	// does not wait for that ACK.
	got, final := map[string]int{}, map[string]string{}
	for len(got) < 2 {
		code, h := ua.next(t, callID)
		if code < 200 {
			continue
		}
		method := strings.Fields(h["cseq"])[1]
		got[method] = code
		if method == "INVITE" {
			final = h
		}
	}
	if got["BYE"] != 200 || got["INVITE"] != 487 {
		t.Errorf("BYE answered %d, INVITE %d: want 200 and 487", got["BYE"], got["INVITE"])
	}
	if final["to"] != ringing["to"] {
		t.Errorf("the 487's To %q is not the 180's %q", final["to"], ringing["to"])
	}
	ack := "ACK " + c.ruri + " SIP/2.0\r\nVia: " + final["via"] + "\r\nFrom: " + final["from"] + "\r\nTo: " + final["to"] + "\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := ua.conn.Write([]byte(ack)); err != nil {
		t.Fatal(err)
	}
}

// An INVITE that comes again by another path while the first is being
// answered (same Call-ID, From tag and CSeq, another branch: a fork that
// merged, a loop) is refused with 482, not taken as a second call (RFC
// 3261 §8.2.2.2).
func TestMergedInviteRefused(t *testing.T) {
	c := newRawCall(t, "merged")
	ts, ua, ruri, callID, in := c.ts, c.ua, c.ruri, c.callID, c.in
	ua.n-- // the same From tag again; the branch is new
	code, _ := ua.invite(ruri, callID)
	for code == 100 { // sipgo's own 100 Trying, on a slow machine
		code, _ = ua.next(t, callID)
	}
	if code != 482 {
		t.Errorf("the merged copy was answered %d, want 482", code)
	}
	select {
	case c := <-ts.calls:
		c.Leg.Close()
		t.Error("the merged copy became a second call")
	case <-time.After(100 * time.Millisecond):
	}
	if in.SIPCallID != callID {
		t.Errorf("the call dispatched is %q", in.SIPCallID)
	}
}

// A re-INVITE without SDP while the call still rings (the early dialog,
// with the tag of our 180) is a second INVITE before the first has its
// final response: RFC 3261 §14.2 wants 500 with a Retry-After of 0 to 10
// seconds, not a 200 carrying an offer, which would answer the call
// before call control did. The call rings on.
func TestEarlyReinviteWithoutSDPGets500(t *testing.T) {
	c := newRawCall(t, "early-reinvite")
	ua, callID, in := c.ua, c.callID, c.in
	ringing := c.ring(t)
	c.early(t, "INVITE", c.ruri, ringing, "Contact: <sip:3000@"+ua.conn.LocalAddr().String()+">\r\n")
	var code int
	var h map[string]string
	for code < 200 {
		code, h = ua.next(t, callID)
	}
	retry, err := strconv.Atoi(h["retry-after"])
	if code != 500 || err != nil || retry < 0 || retry > 10 {
		t.Errorf("an early re-INVITE without SDP was answered %d (Retry-After %q), want 500 with a Retry-After of 0 to 10", code, h["retry-after"])
	}
	noEvent(t, in.Leg, 100*time.Millisecond)
}

// answered has the raw UA's call answered and acknowledged, and returns
// the dialog's To (with our tag) and our Contact.
func (c rawCall) answered(t *testing.T) (to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.in.Leg.Answer(ctx) }()
	ok := c.ua.until(t, c.callID, 200)
	c.ack(t, ok)
	if err := <-done; err != nil {
		t.Fatalf("answer: %v", err)
	}
	return ok["to"]
}

// readRequest returns the next request the raw UA receives with method.
func (u *rawUA) readRequest(t *testing.T, method string) string {
	t.Helper()
	buf := make([]byte, 8192)
	for {
		u.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := u.conn.Read(buf)
		if err != nil {
			t.Fatalf("no %s: %v", method, err)
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, method+" ") {
			return msg
		}
	}
}

// An offer from the caller that crosses the re-INVITE we sent to hold
// them (glare) is refused with 491, whatever it is: a re-INVITE with or
// without SDP, or an UPDATE with SDP (RFC 3261 §14.2, RFC 3311 §5.2), so
// that each side tries again later instead of both taking an offer.
func TestGlareWithOurReinviteGets491(t *testing.T) {
	for _, c := range []struct {
		name, method string
		sdp          bool
	}{{"re-INVITE with SDP", "INVITE", true}, {"re-INVITE without SDP", "INVITE", false}, {"UPDATE with SDP", "UPDATE", true}} {
		t.Run(c.name, func(t *testing.T) {
			rc := newRawCall(t, "glare")
			to := rc.answered(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			held := make(chan error, 1)
			go func() { held <- rc.in.Leg.Hold(ctx, true) }()
			rc.ua.readRequest(t, "INVITE") // ours, left unanswered for now
			local := rc.ua.conn.LocalAddr().String()
			body := ""
			if c.sdp {
				body = "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sampleOffer)) + "\r\n\r\n" + sampleOffer
			} else {
				body = "Content-Length: 0\r\n\r\n"
			}
			theirs := c.method + " sip:switchboard@" + rc.ts.udp + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + fmt.Sprintf(";branch=z9hG4bKglare%d\r\n", time.Now().UnixNano()) +
				"From: <sip:3000@" + local + ">;tag=raw" + fmt.Sprint(rc.ua.n) + "\r\nTo: " + to + "\r\nCall-ID: " + rc.callID + "\r\n" +
				"CSeq: 2 " + c.method + "\r\nContact: <sip:3000@" + local + ">\r\nMax-Forwards: 70\r\n" + body
			if _, err := rc.ua.conn.Write([]byte(theirs)); err != nil {
				t.Fatal(err)
			}
			code := 0
			for code < 200 {
				var h map[string]string
				if code, h = rc.ua.next(t, rc.callID); h["cseq"] != "2 "+c.method {
					code = 0
				}
			}
			if code != 491 {
				t.Errorf("the caller's %s crossing our re-INVITE was answered %d, want 491", c.name, code)
			}
			cancel()
			<-held
		})
	}
}

// An UPDATE without SDP while the call waits (ringing, queued) answers
// 200 but starts no session timer: there is no session yet to refresh,
// and the 200 to the INVITE states the terms (RFC 4028 §9). A timer
// started then, with the caller not refreshing, ended the waiting call
// as "session expired" within the interval.
func TestEarlyUpdateStartsNoSessionTimer(t *testing.T) {
	rc := newRawCallWith(t, "early-refresh", Config{MinSE: time.Second})
	ringing := rc.ring(t)
	rc.early(t, "UPDATE", "sip:switchboard@"+rc.ts.udp, ringing, "Contact: <sip:3000@"+rc.ua.conn.LocalAddr().String()+">\r\nSession-Expires: 2\r\n")
	if h := rc.ua.until(t, rc.callID, 200); h["cseq"] != "2 UPDATE" {
		t.Fatalf("200 to %q", h["cseq"])
	}
	noEvent(t, rc.in.Leg, 2500*time.Millisecond)
}

// An answer cut short between our 200 and the caller's ACK (call
// control's context ended: a shutdown) still ends the dialog the 200
// made: once the ACK comes, the caller gets a BYE with the reason call
// control hung up with (RFC 3261 §13.3.1.4, §15), not a 487 that can no
// longer be sent and then nothing.
func TestAnswerCutShortBeforeTheAckEndsWithBye(t *testing.T) {
	rc := newRawCall(t, "cut-answer")
	ctx, cancel := context.WithCancel(context.Background())
	answered := make(chan error, 1)
	go func() { answered <- rc.in.Leg.Answer(ctx) }()
	ok := rc.ua.until(t, rc.callID, 200)
	cancel()
	select {
	case err := <-answered:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the answer cut short returned %v, want the context's error", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Answer waited for the ACK though its context ended")
	}
	// What call control does with a call whose answer failed.
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	if err := rc.in.Leg.Hangup(hctx, "service shutting down"); err != nil {
		t.Errorf("hang-up after the answer was cut short: %v", err)
	}
	rc.in.Leg.Close()
	rc.ack(t, ok)
	bye := rc.ua.readRequest(t, "BYE")
	if !strings.Contains(bye, `text="service shutting down"`) {
		t.Errorf("the BYE does not say why:\n%s", bye)
	}
	rc.answerBye(t, bye) // so that the server's BYE transaction ends now
}
