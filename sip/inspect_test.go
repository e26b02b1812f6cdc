package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// mustRequest parses a request whose request line and headers are given,
// CRLF added.
func mustRequest(tb testing.TB, lines ...string) *sip.Request {
	tb.Helper()
	msg, err := sip.NewParser().ParseSIP([]byte(strings.Join(lines, "\r\n") + "\r\n\r\n"))
	if err != nil {
		tb.Fatal(err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		tb.Fatalf("not a request: %v", msg)
	}
	return req
}

func TestInspect(t *testing.T) {
	head := []string{"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKi1", "From: <sip:a@example.com>;tag=1", "To: <sip:b@example.com>", "Call-ID: c1", "Max-Forwards: 70", "Content-Length: 0"}
	with := func(line string, extra ...string) []string { return append(append([]string{line}, head...), extra...) }
	cases := []struct {
		name string
		req  []string
		want int // 0: the handler takes it
	}{
		{"plain OPTIONS", with("OPTIONS sip:b@example.com SIP/2.0", "CSeq: 1 OPTIONS"), 0},
		{"version in lower case", with("OPTIONS sip:b@example.com sip/2.0", "CSeq: 1 OPTIONS"), 0},
		{"sips Request-URI", with("OPTIONS sips:b@example.com SIP/2.0", "CSeq: 1 OPTIONS"), 0},
		{"another version", with("OPTIONS sip:b@example.com SIP/3.0", "CSeq: 1 OPTIONS"), 505},
		{"two Call-IDs, one compact", with("OPTIONS sip:b@example.com SIP/2.0", "CSeq: 1 OPTIONS", "i: c2"), 400},
		{"two CSeqs", with("OPTIONS sip:b@example.com SIP/2.0", "CSeq: 1 OPTIONS", "CSeq: 2 OPTIONS"), 400},
		{"CSeq of another method", with("OPTIONS sip:b@example.com SIP/2.0", "CSeq: 1 INVITE"), 400},
		{"unknown method, CSeq of another: left for 501", with("FOO sip:b@example.com SIP/2.0", "CSeq: 1 INVITE"), 0},
		{"tel Request-URI", with("OPTIONS tel:+15551234 SIP/2.0", "CSeq: 1 OPTIONS"), 416},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := inspect(mustRequest(t, c.req...))
			switch {
			case c.want == 0 && res != nil:
				t.Fatalf("refused with %d", res.StatusCode)
			case c.want == 0:
			case res == nil:
				t.Fatalf("taken, want %d", c.want)
			case res.StatusCode != c.want || res.SipVersion != "SIP/2.0":
				t.Fatalf("%s %d, want SIP/2.0 %d", res.SipVersion, res.StatusCode, c.want)
			}
		})
	}
}

func TestNotAllowed(t *testing.T) {
	for method, want := range map[string]int{"SUBSCRIBE": 405, "REGISTER": 405, "FOO": 501} {
		res := notAllowed(mustRequest(t, method+" sip:b@example.com SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKn1",
			"From: <sip:a@example.com>;tag=1", "To: <sip:b@example.com>", "Call-ID: n1", "CSeq: 1 "+method, "Content-Length: 0"))
		if res.StatusCode != want || res.GetHeader("Allow") == nil {
			t.Errorf("%s: %d, Allow %v; want %d with Allow", method, res.StatusCode, res.GetHeader("Allow"), want)
		}
	}
}

func TestAcceptsSDP(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                  true, // no Accept header: SDP is the default
		"application/sdp":                   true,
		"text/plain, application/sdp;q=0.5": true,
		"application/*":                     true,
		"*/*":                               true,
		"text/nobodyKnowsThis":              false,
	} {
		lines := []string{"INVITE sip:b@example.com SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa1", "From: <sip:a@example.com>;tag=1",
			"To: <sip:b@example.com>", "Call-ID: a1", "CSeq: 1 INVITE", "Content-Length: 0"}
		if accept != "" {
			lines = append(lines, "Accept: "+accept)
		}
		if got := acceptsSDP(mustRequest(t, lines...)); got != want {
			t.Errorf("Accept: %q: %v, want %v", accept, got, want)
		}
	}
}
