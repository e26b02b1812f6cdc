package sip

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// request sends method in the raw UA's call, in the dialog whose To (our
// tag) is to, with CSeq cseq, the extra headers ("Name: value\r\n" each)
// and body (SDP; none when empty), and returns its final response's code
// and headers.
func (c rawCall) request(t *testing.T, to, method string, cseq int, extra, body string) (int, map[string]string) {
	t.Helper()
	local := c.ua.conn.LocalAddr().String()
	msg := method + " sip:switchboard@" + c.ts.udp + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + fmt.Sprintf(";branch=z9hG4bK%s%d\r\n", method, time.Now().UnixNano()) +
		"From: <sip:3000@" + local + ">;tag=raw" + fmt.Sprint(c.ua.n) + "\r\nTo: " + to + "\r\nCall-ID: " + c.callID + "\r\n" +
		fmt.Sprintf("CSeq: %d %s\r\n", cseq, method) + "Contact: <sip:3000@" + local + ">\r\nMax-Forwards: 70\r\n" + extra
	if body != "" {
		msg += "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	} else {
		msg += "Content-Length: 0\r\n\r\n"
	}
	if _, err := c.ua.conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d %s", cseq, method)
	for {
		if code, h := c.ua.next(t, c.callID); code >= 200 && h["cseq"] == want {
			return code, h
		}
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
// (an UPDATE) moves the remote CSeq past the INVITE's; the ACK, which
// carries the INVITE's CSeq, still confirms the dialog, and the answer
// ends with it. sipgo wanted the ACK's CSeq to be the remote CSeq, so the
// ACK was ignored and the answer waited for the 200's retransmissions to
// give up (64·T1, 32 s).
func TestRequestBeforeTheAckConfirmsTheDialog(t *testing.T) {
	rc := newRawCall(t, "before-ack")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answered := make(chan error, 1)
	go func() { answered <- rc.in.Leg.Answer(ctx) }()
	ok := rc.ua.until(t, rc.callID, 200)
	if code, _ := rc.request(t, ok["to"], "UPDATE", 2, "", ""); code != 200 {
		t.Fatalf("an UPDATE before the ACK: %d, want 200", code)
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
}
