package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// invite builds an INVITE from a UDP socket at local to the service,
// with the named headers left out and the given body.
func invite(local, server, callID, body string, omit ...string) string {
	headers := []string{
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + callID,
		"From: <sip:3000@" + local + ">;tag=" + callID,
		"To: <sip:2000@" + server + ">",
		"Call-ID: " + callID,
		"CSeq: 1 INVITE",
		"Contact: <sip:3000@" + local + ">",
		"Max-Forwards: 70",
		"Content-Type: application/sdp",
		"Content-Length: " + strconv.Itoa(len(body)),
	}
	var b strings.Builder
	b.WriteString("INVITE sip:2000@" + server + " SIP/2.0\r\n")
	for _, h := range headers {
		name, _, _ := strings.Cut(h, ":")
		skip := false
		for _, o := range omit {
			skip = skip || strings.EqualFold(o, name)
		}
		if !skip {
			b.WriteString(h + "\r\n")
		}
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

const goodSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// firstFinal sends msg and returns the status code of the first final
// response to it (matched by Call-ID), 0 if none arrives in time.
func firstFinal(t *testing.T, conn net.Conn, callID, msg string) int {
	t.Helper()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(3 * time.Second)
	for {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			return 0
		}
		res := string(buf[:n])
		if !strings.Contains(res, "\r\nCall-ID: "+callID+"\r\n") {
			continue // a late answer to an earlier case
		}
		line, _, _ := strings.Cut(res, "\r\n")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "SIP/2.0" {
			continue
		}
		code, _ := strconv.Atoi(f[1])
		if code >= 200 {
			return code
		}
	}
}

func TestMalformedSIPGetsErrorsAndServiceKeepsServing(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])

	conn, err := net.Dial("udp", m.SIPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local, server := conn.LocalAddr().String(), m.SIPAddr()

	// Garbage gets no answer (there is nothing to answer to), and must not
	// stop the service.
	for _, junk := range []string{"\x00\x01\x02garbage", "HELLO WORLD\r\n\r\n", strings.Repeat("A", 60000)} {
		if _, err := conn.Write([]byte(junk)); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name, callID, msg string
		want              func(code int) bool
	}{
		{"bad SDP", "bad-sdp", invite(local, server, "bad-sdp", "this is not sdp"), is(400)},
		{"no audio codec we take", "g729", invite(local, server, "g729", strings.Replace(goodSDP, "RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", "RTP/AVP 18\r\na=rtpmap:18 G729/8000", 1)), is(488)},

		{"Content-Length larger than the body", "cl", strings.Replace(invite(local, server, "cl", goodSDP), "Content-Length: "+strconv.Itoa(len(goodSDP)), "Content-Length: 9999", 1), orSilence(400)},
		{"missing CSeq", "no-cseq", invite(local, server, "no-cseq", goodSDP, "CSeq"), orSilence(400)},
		{"missing From", "no-from", invite(local, server, "no-from", goodSDP, "From"), is(400)},
		{"missing Contact", "no-contact", invite(local, server, "no-contact", goodSDP, "Contact"), is(400)},
		{"unknown method", "foo", strings.Replace(strings.Replace(invite(local, server, "foo", ""), "INVITE sip:", "FOO sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 FOO", 1), is(501)},
		{"huge body", "huge", invite(local, server, "huge", goodSDP+"a="+strings.Repeat("x", 30000)+"\r\n"), is(488)},

		// RFC 4475's kinds. Odd but well-formed INVITEs go to a number the
		// trunk does not have: parsed right, each is refused with 404
		// (and recorded), ringing nobody.
		{"folded header", "fold", strings.Replace(elsewhere(invite(local, server, "fold", goodSDP)), "Max-Forwards: 70\r\n",
			"Subject: a header\r\n \t folded over two lines\r\nMax-Forwards: 70\r\n", 1), is(404)},
		{"compact header names", "compact", compact(elsewhere(invite(local, server, "compact", goodSDP))), is(404)},
		{"escaped user part", "escaped", strings.Replace(elsewhere(invite(local, server, "escaped", goodSDP)), "INVITE sip:2999@", "INVITE sip:%32%39%39%39@", 1), is(404)},
		{"header names in capitals", "capitals", strings.Replace(strings.Replace(elsewhere(invite(local, server, "capitals", goodSDP)),
			"Max-Forwards:", "MAX-FORWARDS:", 1), "Contact:", "CONTACT:", 1), is(404)},
		{"a 20 KB header", "long-header", strings.Replace(elsewhere(invite(local, server, "long-header", goodSDP)), "Max-Forwards: 70\r\n",
			"X-Long: "+strings.Repeat("y", 20000)+"\r\nMax-Forwards: 70\r\n", 1), orSilence(400, 404, 413, 513)},
		// Malformed ones get a 4xx, or nothing when nothing can be answered.
		{"CSeq not a number", "cseq-abc", strings.Replace(invite(local, server, "cseq-abc", goodSDP), "CSeq: 1 INVITE", "CSeq: abc INVITE", 1), orSilence(400)},
		{"two Content-Lengths that differ", "two-cl", strings.Replace(invite(local, server, "two-cl", goodSDP), "Max-Forwards: 70\r\n",
			"Max-Forwards: 70\r\nContent-Length: 5\r\n", 1), is(400)},
		// A multipart body is read for its SDP (RFC 5621); a part that must
		// be understood and is not refuses the INVITE.
		{"multipart body with a part required and not understood", "multipart", strings.Replace(invite(local, server, "multipart",
			"--b\r\nContent-Type: application/sdp\r\n\r\n"+goodSDP+"\r\n--b\r\nContent-Type: application/x-unknown\r\nContent-Disposition: signal;handling=required\r\n\r\nxyz\r\n--b--\r\n"),
			"Content-Type: application/sdp", "Content-Type: multipart/mixed;boundary=b", 1), is(415)},
		{"tel: request URI", "tel-uri", strings.Replace(invite(local, server, "tel-uri", goodSDP), "INVITE sip:2000@"+server, "INVITE tel:+2000", 1), orSilence(400, 404, 416)},
	}
	for _, c := range cases {
		code := firstFinal(t, conn, c.callID, c.msg)
		t.Logf("%s: %d", c.name, code)
		if !c.want(code) {
			t.Errorf("%s: final response %d", c.name, code)
		}
	}

	// Refusals once the trunk is known are the tenant's calls: recorded,
	// with the stage that failed and the messages that crossed the wire.
	// Each is recorded just after its response is sent.
	var g729 *sb.Call
	for deadline := time.Now().Add(10 * time.Second); g729 == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var failed struct {
			Calls []*sb.Call `json:"calls"`
		}
		if code := apiGet(t, m, f.APIKey, "/v1/calls?failed=true&limit=100", &failed); code != 200 {
			t.Fatalf("failed calls: %d", code)
		}
		for _, c := range failed.Calls {
			if c.SIPCallID == "g729" {
				g729 = c
			}
		}
	}
	if g729 == nil || g729.Status != sb.CallRejected || g729.SIPCode != 488 || g729.FailureLeg != sb.FailedOnTrunk ||
		g729.FailureStage != sb.StageOffer || g729.Q850Cause != 127 {
		t.Errorf("the G.729 offer's record: %+v", g729)
	} else {
		var tr traceBody
		if code := apiGet(t, m, f.APIKey, "/v1/calls/"+g729.ID.String()+"/trace", &tr); code != 200 || len(tr.SIP) != 2 ||
			!strings.HasPrefix(tr.SIP[1].Message, "SIP/2.0 488") || !strings.Contains(tr.SIP[1].Message, "Warning: 399") {
			t.Errorf("the G.729 offer's trace: %d %+v", code, tr.SIP)
		}
	}

	// The next good call goes through, over TCP as well as UDP.
	for _, transport := range []string{"udp", "tcp"} {
		phone := mustPhone(t, siptest.Options{Transport: transport})
		call, in := answeredCall(t, m, phone, op, "3000", "2000")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := call.Hangup(ctx); err != nil {
			t.Errorf("%s: hangup: %v", transport, err)
		}
		// The operator takes the next call once this one has ended.
		if _, err := op.WaitEnded(ctx, in.CallID); err != nil {
			t.Errorf("%s: %v", transport, err)
		}
		cancel()
	}

	// A TCP peer that sends a broken stream is cut off without harm.
	tc, err := net.Dial("tcp", m.SIPAddr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tc, "INVITE sip:2000@%s SIP/2.0\r\nContent-Length: -5\r\n\r\n", server)
	r := bufio.NewReader(tc)
	tc.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, _ := r.ReadString('\n')
	tc.Close()
	if line != "" && !strings.HasPrefix(line, "SIP/2.0 4") {
		t.Errorf("broken TCP stream answered %q, want a 4xx or nothing", line)
	}
}

func is(codes ...int) func(int) bool {
	return func(code int) bool {
		for _, c := range codes {
			if code == c {
				return true
			}
		}
		return false
	}
}

// orSilence accepts the codes, or no response: a message without the
// headers a response needs cannot always be answered.
func orSilence(codes ...int) func(int) bool {
	return func(code int) bool { return code == 0 || is(codes...)(code) }
}

// elsewhere sends an INVITE to 2999, a number the trunk does not have.
func elsewhere(msg string) string {
	return strings.NewReplacer("INVITE sip:2000@", "INVITE sip:2999@", "To: <sip:2000@", "To: <sip:2999@").Replace(msg)
}

// compact writes the headers in their compact forms (RFC 3261 7.3.3).
func compact(msg string) string {
	return strings.NewReplacer("\r\nVia:", "\r\nv:", "\r\nFrom:", "\r\nf:", "\r\nTo:", "\r\nt:", "\r\nCall-ID:", "\r\ni:",
		"\r\nContact:", "\r\nm:", "\r\nContent-Type:", "\r\nc:", "\r\nContent-Length:", "\r\nl:").Replace(msg)
}
