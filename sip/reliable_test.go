package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// relCall is a call from a raw UA whose INVITE requires 100rel, to a
// server that retransmits its reliable provisional responses from a T1 of
// its own.
type relCall struct {
	ts                          *testServer
	conn                        net.Conn
	local, ruri, callID, branch string
	in                          *sb.InboundCall
	leg                         *leg
	cseq                        int // of the UA's last request in the dialog
}

// newRelCall sends an INVITE with Require: 100rel and the extra headers
// ("Name: value\r\n" each): with our sample offer, or none when late.
func newRelCall(t *testing.T, t1 time.Duration, late bool, extra string) *relCall {
	t.Helper()
	ts := mustServer(t, nil, Config{}, func(s *Server) { s.relT1 = t1 })
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &relCall{ts: ts, conn: conn, local: conn.LocalAddr().String(), ruri: "sip:2000@" + ts.udp,
		callID: fmt.Sprintf("rel-%d@test", time.Now().UnixNano()), branch: fmt.Sprintf("z9hG4bKrel%d", time.Now().UnixNano()), cseq: 1}
	body := "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sampleOffer)) + "\r\n\r\n" + sampleOffer
	if late {
		body = "Content-Length: 0\r\n\r\n"
	}
	c.write(t, "INVITE "+c.ruri+" SIP/2.0\r\nVia: SIP/2.0/UDP "+c.local+";branch="+c.branch+"\r\n"+
		"From: <sip:3000@"+c.local+">;tag=rel\r\nTo: <sip:2000@"+ts.udp+">\r\nCall-ID: "+c.callID+"\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:3000@"+c.local+">\r\nMax-Forwards: 70\r\nRequire: 100rel\r\n"+extra+body)
	c.in = nextCall(t, ts)
	c.leg = c.in.Leg.(*leg)
	return c
}

func (c *relCall) write(t *testing.T, msg string) {
	t.Helper()
	if _, err := c.conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message the UA receives: its start line, headers
// and whole text.
func (c *relCall) next(t *testing.T) (string, map[string]string, string) {
	t.Helper()
	buf := make([]byte, 8192)
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.conn.Read(buf)
	if err != nil {
		t.Fatalf("nothing came: %v", err)
	}
	msg := string(buf[:n])
	line, _, _ := strings.Cut(msg, "\r\n")
	_, h := parseResponse(msg)
	return line, h, msg
}

// until returns the next response whose start line begins with status
// ("SIP/2.0 180") and whose CSeq is cseq.
func (c *relCall) until(t *testing.T, status, cseq string) (map[string]string, string) {
	t.Helper()
	for {
		if line, h, msg := c.next(t); strings.HasPrefix(line, status) && h["cseq"] == cseq {
			return h, msg
		}
	}
}

// ring has the leg ring and returns the reliable 180's headers and text.
func (c *relCall) ring(t *testing.T) (map[string]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.in.Leg.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	return c.until(t, "SIP/2.0 180", "1 INVITE")
}

// outstanding is the reliable provisional response awaiting its PRACK.
func (c *relCall) outstanding(t *testing.T) *provisional {
	t.Helper()
	c.leg.rel.mu.Lock()
	defer c.leg.rel.mu.Unlock()
	if c.leg.rel.out == nil {
		t.Fatal("no reliable provisional response awaits its PRACK")
	}
	return c.leg.rel.out
}

// request sends method in the early dialog of the 180 whose To is to,
// with the next CSeq, the extra headers and a body of contentType.
func (c *relCall) request(t *testing.T, method, to, extra, contentType, body string) string {
	t.Helper()
	c.cseq++
	cseq := fmt.Sprintf("%d %s", c.cseq, method)
	if contentType != "" {
		extra += "Content-Type: " + contentType + "\r\n"
	}
	c.write(t, method+" sip:switchboard@"+c.ts.udp+" SIP/2.0\r\nVia: SIP/2.0/UDP "+c.local+fmt.Sprintf(";branch=z9hG4bK%s%d\r\n", strings.ToLower(method), time.Now().UnixNano())+
		"From: <sip:3000@"+c.local+">;tag=rel\r\nTo: "+to+"\r\nCall-ID: "+c.callID+"\r\nCSeq: "+cseq+"\r\n"+
		"Max-Forwards: 70\r\n"+extra+"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	return cseq
}

// prack sends a PRACK with rack and body (an SDP answer, or none), and
// returns its final response's status code and headers.
func (c *relCall) prack(t *testing.T, to, rack, body string) (int, map[string]string) {
	t.Helper()
	contentType := ""
	if body != "" {
		contentType = "application/sdp"
	}
	return c.prackWith(t, to, rack, contentType, body)
}

// prackWith is prack with a body of contentType.
func (c *relCall) prackWith(t *testing.T, to, rack, contentType, body string) (int, map[string]string) {
	t.Helper()
	cseq := c.request(t, "PRACK", to, "RAck: "+rack+"\r\n", contentType, body)
	for {
		line, h, _ := c.next(t)
		code := 0
		fmt.Sscanf(line, "SIP/2.0 %d", &code)
		if h["cseq"] == cseq && code >= 200 {
			return code, h
		}
	}
}

// ack acknowledges the INVITE's final response, whose To is to.
func (c *relCall) ack(t *testing.T, to string) {
	t.Helper()
	c.write(t, "ACK "+c.ruri+" SIP/2.0\r\nVia: SIP/2.0/UDP "+c.local+";branch="+c.branch+"ack\r\n"+
		"From: <sip:3000@"+c.local+">;tag=rel\r\nTo: "+to+"\r\nCall-ID: "+c.callID+"\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
}

// stopped fails unless p's retransmissions end.
func stopped(t *testing.T, p *provisional, why string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the reliable 180 is still sent again %s", why)
	}
}

// An INVITE that requires 100rel gets its 180 reliably (RFC 3262 §3): with
// Require: 100rel and an RSeq from 1 to 2**31-1, sent again until a PRACK
// names it. A PRACK whose RAck names anything else (another RSeq, CSeq or
// method) gets 481; the right one 200 and ends the retransmissions, after
// which the same RAck names nothing. The answer that follows is
// acknowledged at once: the ACK carries the INVITE's CSeq, below the
// PRACK's.
func TestReliableRinging(t *testing.T) {
	c := newRelCall(t, 200*time.Millisecond, false, "")
	h, _ := c.ring(t)
	rseq, err := strconv.ParseUint(h["rseq"], 10, 32)
	if h["require"] != "100rel" || err != nil || rseq < 1 || rseq > 1<<31-1 {
		t.Fatalf("the 180: Require %q, RSeq %q; want 100rel and 1 to 2**31-1", h["require"], h["rseq"])
	}
	if again, _ := c.until(t, "SIP/2.0 180", "1 INVITE"); again["rseq"] != h["rseq"] {
		t.Errorf("the 180 came again with RSeq %q, want %q", again["rseq"], h["rseq"])
	}
	p := c.outstanding(t)
	for _, rack := range []string{fmt.Sprintf("%d 1 INVITE", rseq+1), fmt.Sprintf("%d 2 INVITE", rseq), fmt.Sprintf("%d 1 UPDATE", rseq), "one 1 INVITE"} {
		if code, _ := c.prack(t, h["to"], rack, ""); code != 481 {
			t.Errorf("a PRACK with RAck %q: %d, want 481", rack, code)
		}
	}
	rack := fmt.Sprintf("%d 1 INVITE", rseq)
	if code, _ := c.prack(t, h["to"], rack, ""); code != 200 {
		t.Fatalf("the PRACK: %d, want 200", code)
	}
	stopped(t, p, "once PRACKed")
	if code, _ := c.prack(t, h["to"], rack, ""); code != 481 {
		t.Errorf("a second PRACK for the same 180: %d, want 481", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answered := make(chan error, 1)
	go func() { answered <- c.in.Leg.Answer(ctx) }()
	ok, msg := c.until(t, "SIP/2.0 200", "1 INVITE")
	if ok["rseq"] != "" || !strings.Contains(msg, "m=audio ") {
		t.Errorf("the 200:\n%s", msg)
	}
	c.ack(t, ok["to"])
	if err := <-answered; err != nil {
		t.Fatalf("answer: %v", err)
	}
}

// A late offer that requires 100rel: the reliable 180 is the first
// reliable non-failure response, so it carries our offer (RFC 3261
// §13.2.1) and its PRACK the answer (RFC 3262 §5). No 200 goes out before
// that PRACK (§3): an answer whose context ends first has sent none. The
// 200 repeats the 180's description unchanged, and the ACK has no answer
// to carry.
func TestReliableRingingCarriesTheLateOffer(t *testing.T) {
	c := newRelCall(t, 200*time.Millisecond, true, "")
	h, msg := c.ring(t)
	_, offer, _ := strings.Cut(msg, "\r\n\r\n")
	if h["require"] != "100rel" || h["content-type"] != "application/sdp" || !strings.Contains(offer, "RTP/AVP 0 8 101") {
		t.Fatalf("the reliable 180 does not carry our offer:\n%s", msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := c.in.Leg.Answer(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an answer before the PRACK: %v, want it held until its context ended", err)
	}
	for _, m := range c.in.Leg.SIPTrace() {
		if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 200") {
			t.Fatalf("a 200 went out before the PRACK:\n%s", m.Message)
		}
	}
	answered := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		answered <- c.in.Leg.Answer(ctx)
	}()
	answer := strings.Replace(sampleOffer, "RTP/AVP 18 8 0 101", "RTP/AVP 8 101", 1)
	if code, _ := c.prack(t, h["to"], h["rseq"]+" 1 INVITE", answer); code != 200 {
		t.Fatalf("the PRACK with the answer: %d, want 200", code)
	}
	ok, msg := c.until(t, "SIP/2.0 200", "1 INVITE")
	if _, body, _ := strings.Cut(msg, "\r\n\r\n"); body != offer {
		t.Errorf("the 200's description is not the 180's:\n%s\nwant\n%s", body, offer)
	}
	c.ack(t, ok["to"])
	if err := <-answered; err != nil {
		t.Fatalf("answer: %v", err)
	}
	if codec := c.in.Leg.Media().Codec(); codec.Name != "PCMA" {
		t.Errorf("codec %s, want the PRACK's answer's PCMA", codec.Name)
	}
}

// A reliable 180 never acknowledged: after 64·T1 the INVITE gets 500
// (RFC 3262 §3) saying why, and call control hears the call failed
// (LegFailed), as of any failure of its own; an answer waiting for the
// PRACK of our offer fails, and one asked for later too.
func TestReliableRingingNeverAcknowledged(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late offer %v", late), func(t *testing.T) {
			c := newRelCall(t, 20*time.Millisecond, late, "")
			h, _ := c.ring(t)
			answered := make(chan error, 1)
			if late {
				// Held until the 180's PRACK, which never comes.
				go func() { answered <- c.in.Leg.Answer(context.Background()) }()
			}
			n := 1
			var refused map[string]string
			for refused == nil {
				line, got, _ := c.next(t)
				switch {
				case strings.HasPrefix(line, "SIP/2.0 180") && got["rseq"] == h["rseq"]:
					n++
				case strings.HasPrefix(line, "SIP/2.0 500"):
					refused = got
				case !strings.HasPrefix(line, "SIP/2.0 100"):
					t.Fatalf("unexpected: %s", line)
				}
			}
			c.ack(t, refused["to"])
			if n < 2 || !strings.Contains(refused["reason"], "no PRACK") {
				t.Errorf("%d 180s, then 500 with Reason %q", n, refused["reason"])
			}
			ev := nextEvent(t, c.in.Leg, sb.LegFailed)
			if ev.Code != 500 || !strings.Contains(ev.Reason, "no PRACK") {
				t.Errorf("leg event %+v", ev)
			}
			if late {
				if err := <-answered; err == nil || !strings.Contains(err.Error(), "no PRACK") {
					t.Errorf("the answer waiting for the PRACK: %v", err)
				}
			}
			if err := c.in.Leg.Answer(context.Background()); err == nil || !strings.Contains(err.Error(), "no PRACK") {
				t.Errorf("an answer after the 500: %v", err)
			}
		})
	}
}

// The caller's CANCEL, or its BYE in the early dialog, ends the INVITE
// (487) and the reliable 180's retransmissions; a PRACK after that names
// nothing (481).
func TestReliableRingingEndedByTheCaller(t *testing.T) {
	for _, how := range []string{"CANCEL", "BYE"} {
		t.Run(how, func(t *testing.T) {
			c := newRelCall(t, 200*time.Millisecond, false, "")
			h, _ := c.ring(t)
			p := c.outstanding(t)
			if how == "CANCEL" {
				c.write(t, "CANCEL "+c.ruri+" SIP/2.0\r\nVia: SIP/2.0/UDP "+c.local+";branch="+c.branch+"\r\n"+
					"From: <sip:3000@"+c.local+">;tag=rel\r\nTo: <sip:2000@"+c.ts.udp+">\r\nCall-ID: "+c.callID+"\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
				nextEvent(t, c.in.Leg, sb.LegCanceled)
			} else {
				c.request(t, "BYE", h["to"], "", "", "")
				nextEvent(t, c.in.Leg, sb.LegHungUp)
			}
			final, _ := c.until(t, "SIP/2.0 487", "1 INVITE")
			c.ack(t, final["to"])
			stopped(t, p, "after the "+how)
			if code, _ := c.prack(t, h["to"], h["rseq"]+" 1 INVITE", ""); code != 481 {
				t.Errorf("a PRACK after the %s: %d, want 481", how, code)
			}
		})
	}
}

// One reliable provisional response awaits its PRACK at a time (RFC 3262
// §3): a second 180 waits for the first's PRACK, then goes with the next
// RSeq.
func TestReliableRingingOneAtATime(t *testing.T) {
	c := newRelCall(t, 200*time.Millisecond, false, "")
	first, _ := c.ring(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.in.Leg.Ring(ctx); err != nil {
		t.Fatal(err)
	}
	// What comes next is the first again, not the second.
	if again, _ := c.until(t, "SIP/2.0 180", "1 INVITE"); again["rseq"] != first["rseq"] {
		t.Fatalf("a 180 with RSeq %q before the first (%q) was acknowledged", again["rseq"], first["rseq"])
	}
	if code, _ := c.prack(t, first["to"], first["rseq"]+" 1 INVITE", ""); code != 200 {
		t.Fatalf("the first PRACK: %d", code)
	}
	n, _ := strconv.ParseUint(first["rseq"], 10, 32)
	want := strconv.FormatUint(n+1, 10)
	for {
		second, _ := c.until(t, "SIP/2.0 180", "1 INVITE")
		if second["rseq"] == want {
			break
		}
		if second["rseq"] != first["rseq"] {
			t.Fatalf("the second 180's RSeq %q, want %s", second["rseq"], want)
		}
	}
	if code, _ := c.prack(t, first["to"], want+" 1 INVITE", ""); code != 200 {
		t.Errorf("the second PRACK: %d", code)
	}
}

// A PRACK with a body: one that brings an offer while the INVITE's offer
// still awaits our answer gets 500 with a Retry-After, as an early
// UPDATE's offer does (RFC 3311 §5.2), though its RAck acknowledges the
// 180; on a late-offer call, a PRACK without the answer to the offer in
// our 180 is taken (200), and the INVITE is refused with 488: there is no
// session to set up.
func TestPrackBodies(t *testing.T) {
	t.Run("an offer", func(t *testing.T) {
		c := newRelCall(t, 200*time.Millisecond, false, "")
		h, _ := c.ring(t)
		p := c.outstanding(t)
		code, res := c.prack(t, h["to"], h["rseq"]+" 1 INVITE", sampleOffer)
		if retry, err := strconv.Atoi(res["retry-after"]); code != 500 || err != nil || retry < 0 || retry > 10 {
			t.Errorf("a PRACK with an offer: %d (Retry-After %q), want 500 with a Retry-After of 0 to 10", code, res["retry-after"])
		}
		stopped(t, p, "once PRACKed with an offer")
		noEvent(t, c.in.Leg, 50*time.Millisecond)
	})
	t.Run("no answer to our offer", func(t *testing.T) {
		c := newRelCall(t, 200*time.Millisecond, true, "")
		h, _ := c.ring(t)
		if code, _ := c.prack(t, h["to"], h["rseq"]+" 1 INVITE", ""); code != 200 {
			t.Errorf("a PRACK without the answer: %d, want 200", code)
		}
		final, _ := c.until(t, "SIP/2.0 488", "1 INVITE")
		c.ack(t, final["to"])
		if ev := nextEvent(t, c.in.Leg, sb.LegFailed); ev.Code != 488 {
			t.Errorf("leg event %+v", ev)
		}
	})
	// Its RAck is matched before its body is judged: a PRACK whose body
	// we refuse still acknowledges our 180. It was refused first and the
	// 180 sent on until the INVITE failed after 64·T1.
	t.Run("a body refused", func(t *testing.T) {
		c := newRelCall(t, 200*time.Millisecond, false, "")
		h, _ := c.ring(t)
		p := c.outstanding(t)
		if code, _ := c.prackWith(t, h["to"], h["rseq"]+" 1 INVITE", "application/isup", "\x01\x10"); code != 415 {
			t.Errorf("a PRACK with a part required and not understood: %d, want 415", code)
		}
		stopped(t, p, "once PRACKed with a body refused")
		noEvent(t, c.in.Leg, 50*time.Millisecond)
	})
	// The answer's faults name the PRACK that brought it, not the ACK:
	// they reach the caller in the 488 and the call's record.
	for _, a := range []struct{ name, contentType, body, reason string }{
		{"an answer in a body refused", "application/isup", "\x01\x10", "the PRACK's body"},
		{"an answer we cannot use", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "the PRACK's SDP answer"},
	} {
		t.Run(a.name, func(t *testing.T) {
			c := newRelCall(t, 200*time.Millisecond, true, "")
			h, _ := c.ring(t)
			p := c.outstanding(t)
			if code, _ := c.prackWith(t, h["to"], h["rseq"]+" 1 INVITE", a.contentType, a.body); code != 200 {
				t.Errorf("a PRACK that matched: %d, want 200", code)
			}
			stopped(t, p, "once PRACKed")
			final, _ := c.until(t, "SIP/2.0 488", "1 INVITE")
			c.ack(t, final["to"])
			if ev := nextEvent(t, c.in.Leg, sb.LegFailed); ev.Code != 488 || !strings.HasPrefix(ev.Reason, a.reason) {
				t.Errorf("leg event %+v, want 488 for %q", ev, a.reason)
			}
		})
	}
}

// An INVITE that only says Supported: 100rel rings as before, unreliably:
// reliability is ours to choose then (RFC 3262 §3), and costs the caller a
// PRACK and the call its failure when PRACKs are lost.
func TestSupported100relRingsUnreliably(t *testing.T) {
	ts := mustServer(t, nil, Config{})
	ua := mustRawUA(t, ts.udp)
	callID := fmt.Sprintf("supported-100rel-%d@test", time.Now().UnixNano())
	if code, _ := ua.invite("sip:2000@"+ts.udp, callID, "Supported: 100rel, timer"); code != 100 {
		t.Fatalf("INVITE answered %d", code)
	}
	in := nextCall(t, ts)
	if err := in.Leg.Ring(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := ua.until(t, callID, 180); h["require"] != "" || h["rseq"] != "" {
		t.Errorf("the 180: Require %q, RSeq %q; want neither", h["require"], h["rseq"])
	}
}
