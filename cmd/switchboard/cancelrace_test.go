package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// rawUAC is a caller written out by hand, so that the test decides to the
// millisecond when its CANCEL leaves, and sees every response as it came.
type rawUAC struct {
	t      *testing.T
	conn   *net.UDPConn
	server string
	callID string
	branch string
	tag    string
}

// sipMsg is one response or request read off the wire.
type sipMsg struct {
	first string // the start line
	hdr   textproto.MIMEHeader
	at    time.Time
}

func (m sipMsg) code() int {
	var code int
	fmt.Sscanf(m.first, "SIP/2.0 %d", &code)
	return code
}

func (m sipMsg) cseqMethod() string {
	f := strings.Fields(m.hdr.Get("Cseq"))
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

func (m sipMsg) toTag() string {
	_, tag, _ := strings.Cut(m.hdr.Get("To"), "tag=")
	tag, _, _ = strings.Cut(tag, ";")
	return tag
}

func newRawUAC(t *testing.T, server string) *rawUAC {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	id := sb.NewID().String()
	return &rawUAC{t: t, conn: conn, server: server, callID: id + "@race.test", branch: "z9hG4bK" + id, tag: id[:8]}
}

// send writes a request of the call; toTag is empty before there is one.
func (u *rawUAC) send(method, branch string, cseq int, toTag, body string) {
	u.t.Helper()
	local := u.conn.LocalAddr().String()
	to := "<sip:2000@" + u.server + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	cseqMethod := method
	if method == "ACK" && branch == u.branch {
		cseqMethod = "ACK" // the ACK of a non-2xx final response is part of the INVITE's transaction
	}
	msg := fmt.Sprintf("%s sip:2000@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nFrom: <sip:15550009999@%s>;tag=%s\r\nTo: %s\r\n"+
		"Call-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:15550009999@%s>\r\nMax-Forwards: 70\r\n",
		method, u.server, local, branch, local, u.tag, to, u.callID, cseq, cseqMethod, local)
	if body != "" {
		msg += "Content-Type: application/sdp\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	addr, err := net.ResolveUDPAddr("udp", u.server)
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.conn.WriteToUDP([]byte(msg), addr); err != nil {
		u.t.Fatal(err)
	}
}

func (u *rawUAC) invite() { u.inviteSeq(1) }

// inviteSeq sends the INVITE with the CSeq number given.
func (u *rawUAC) inviteSeq(cseq int) {
	port := u.conn.LocalAddr().(*net.UDPAddr).Port + 2
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", port)
	u.send("INVITE", u.branch, cseq, "", sdp)
}

// await reads until a response to method arrives.
func (u *rawUAC) await(method string, final bool) sipMsg {
	u.t.Helper()
	for {
		msg, ok := u.read(5 * time.Second)
		if !ok {
			u.t.Fatalf("no response to %s", method)
		}
		if msg.cseqMethod() == method && (!final || msg.code() >= 200) {
			return msg
		}
	}
}

// read returns the next message, or false after the timeout.
func (u *rawUAC) read(timeout time.Duration) (sipMsg, bool) {
	buf := make([]byte, 8192)
	u.conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := u.conn.Read(buf)
	if err != nil {
		return sipMsg{}, false
	}
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(string(buf[:n]))))
	first, _ := r.ReadLine()
	hdr, _ := r.ReadMIMEHeader()
	return sipMsg{first: first, hdr: hdr, at: time.Now()}, true
}

// TestCancelRacingTheAnswer sends the caller's CANCEL at offsets around
// the moment the operator accepts. Whichever gets there first, the call
// is one thing to both sides: a 200 OK that the CANCEL cannot undo (the
// caller's BYE ends the call, completed by the caller), or a 487 after
// which nothing is sent, no BYE for a dialog that never was, and a record
// that says canceled. The CANCEL's 200 carries the dialog's To tag.
func TestCancelRacingTheAnswer(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Race", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	outcomes := map[int]int{}
	for _, offset := range []time.Duration{-20, -5, -2, -1, 0, 1, 2, 5, 20} {
		offset *= time.Millisecond
		t.Run(fmt.Sprint(offset), func(t *testing.T) {
			u := newRawUAC(t, m.SIPAddr())
			u.invite()
			in := waitIncoming(t, op)
			accepted := make(chan error, 1)
			if offset < 0 {
				u.send("CANCEL", u.branch, 1, "", "")
				time.Sleep(-offset)
			}
			go func() { accepted <- op.Accept(ctx, in.CallID) }()
			if offset >= 0 {
				time.Sleep(offset)
				u.send("CANCEL", u.branch, 1, "", "")
			}
			var final, cancelOK *sipMsg
			var after []sipMsg // what came after the INVITE's final response
			for final == nil || cancelOK == nil {
				msg, ok := u.read(5 * time.Second)
				if !ok {
					t.Fatalf("final response %v, CANCEL answered %v: want both", final != nil, cancelOK != nil)
				}
				switch {
				case msg.cseqMethod() == "CANCEL":
					if msg.code() != 200 {
						t.Fatalf("the CANCEL was answered %q", msg.first)
					}
					cancelOK = &msg
				case msg.cseqMethod() == "INVITE" && msg.code() >= 200:
					if final == nil {
						final = &msg
					} else if msg.code() != final.code() {
						after = append(after, msg)
					}
				case msg.cseqMethod() == "INVITE" && final != nil:
					after = append(after, msg)
				}
			}
			if final.toTag() != cancelOK.toTag() {
				t.Errorf("the CANCEL's 200 has To tag %q, the INVITE's %d has %q: RFC 3261 §9.2 wants one", cancelOK.toTag(), final.code(), final.toTag())
			}
			outcomes[final.code()]++
			switch final.code() {
			case 200:
				u.send("ACK", u.branch+"a", 1, final.toTag(), "")
				if err := <-accepted; err != nil {
					t.Errorf("the operator's accept of an answered call: %v", err)
				}
				u.send("BYE", u.branch+"b", 2, final.toTag(), "")
				for {
					msg, ok := u.read(5 * time.Second)
					if !ok {
						t.Fatal("no answer to the BYE")
					}
					if msg.cseqMethod() == "BYE" {
						if msg.code() != 200 {
							t.Errorf("the BYE was answered %q, want 200", msg.first)
						}
						break
					}
				}
				c := waitCallEnded(t, m, f.APIKey, in.CallID)
				if c.Status != sb.CallCompleted || c.HangupBy != sb.PartyCaller {
					t.Errorf("answered: record %s by %s, want completed by the caller", c.Status, c.HangupBy)
				}
			case 487:
				u.send("ACK", u.branch, 1, final.toTag(), "")
				<-accepted // refused, or taken as the call ended: either way the call is over
				for {
					msg, ok := u.read(1500 * time.Millisecond)
					if !ok {
						break
					}
					if msg.code() != 487 { // a retransmission that crossed the ACK is fine
						after = append(after, msg)
					}
				}
				c := waitCallEnded(t, m, f.APIKey, in.CallID)
				if c.Status != sb.CallCanceled || c.SIPCode != 487 || c.AnsweredAt != nil {
					t.Errorf("canceled: record %s with %d, answered %v; want canceled with 487, never answered", c.Status, c.SIPCode, c.AnsweredAt)
				}
			default:
				t.Fatalf("the INVITE was answered %q", final.first)
			}
			for _, msg := range after {
				t.Errorf("after the final %d: %q", final.code(), msg.first)
			}
		})
	}
	t.Logf("final responses by code over the offsets: %v", outcomes)
}

// TestByeOutOfOrderIsRefused: a BYE whose CSeq is below the INVITE's is
// out of order (RFC 3261 §12.2.2): refused with 500 before the ACK as
// after it, and the call goes on until the caller's real BYE.
func TestByeOutOfOrderIsRefused(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Order", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := newRawUAC(t, m.SIPAddr())
	u.inviteSeq(10)
	in := waitIncoming(t, op)
	accepted := make(chan error, 1)
	go func() { accepted <- op.Accept(ctx, in.CallID) }()
	ok := u.await("INVITE", true)
	if ok.code() != 200 {
		t.Fatalf("the INVITE was answered %q", ok.first)
	}
	u.send("BYE", u.branch+"x", 9, ok.toTag(), "")
	if res := u.await("BYE", true); res.code() != 500 {
		t.Errorf("a BYE out of order before the ACK was answered %q, want 500", res.first)
	}
	u.send("ACK", u.branch+"a", 10, ok.toTag(), "")
	if err := <-accepted; err != nil {
		t.Fatalf("the call was not answered: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if c := waitCallState(t, m, f.APIKey, in.CallID); c.Status != sb.CallAnswered {
		t.Fatalf("after the refused BYE the call is %s, want answered", c.Status)
	}
	u.send("BYE", u.branch+"b", 11, ok.toTag(), "")
	if res := u.await("BYE", true); res.code() != 200 {
		t.Errorf("the caller's BYE was answered %q, want 200", res.first)
	}
	if c := waitCallEnded(t, m, f.APIKey, in.CallID); c.Status != sb.CallCompleted || c.HangupBy != sb.PartyCaller {
		t.Errorf("record %s by %s, want completed by the caller", c.Status, c.HangupBy)
	}
}

// waitCallState reads the call's record as it is now.
func waitCallState(t *testing.T, m *Main, key string, id sb.ID) *sb.Call {
	t.Helper()
	var c sb.Call
	if code := apiGet(t, m, key, "/v1/calls/"+id.String(), &c); code != 200 {
		t.Fatalf("GET the call: %d", code)
	}
	return &c
}
