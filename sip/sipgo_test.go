package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// Looking a header up by name (sipgo's GetHeader, which the dialogs and
// this package do for every message) finds it in any case and copies
// nothing: it lowered every header name it passed that it did not know,
// a copy each (third_party/sipgo/PATCHES.md).
func TestHeaderLookupCopiesNothing(t *testing.T) {
	msg, err := sip.ParseMessage([]byte("INVITE sip:2000@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1\r\n" +
		"From: <sip:3000@192.0.2.2>;tag=1\r\nTo: <sip:2000@192.0.2.1>\r\nCall-ID: lookup\r\nCSeq: 1 INVITE\r\n" +
		"User-Agent: x\r\nAllow: INVITE, ACK, BYE\r\nSupported: timer\r\nX-Über: 1\r\nSESSION-EXPIRES: 1800;refresher=uac\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	for _, name := range []string{"Session-Expires", "session-expires", "SESSION-EXPIRES"} {
		if h := req.GetHeader(name); h == nil || h.Value() != "1800;refresher=uac" {
			t.Errorf("GetHeader(%q) = %v", name, h)
		}
		if n := testing.AllocsPerRun(100, func() { req.GetHeader(name) }); n != 0 {
			t.Errorf("GetHeader(%q): %v allocations, want 0", name, n)
		}
	}
	if h := req.GetHeader("x-Über"); h == nil || h.Value() != "1" {
		t.Errorf("a header whose name is not ASCII: %v", h)
	}
	if h := req.GetHeader("Min-SE"); h != nil {
		t.Errorf("GetHeader found a header the message lacks: %v", h)
	}
	for in, want := range map[string]string{"call-id": "call-id", "Proxy-Authorization": "proxy-authorization", "SIP": "sip", "x-Über": "x-Über", "": ""} {
		if got := sip.ASCIIToLower(in); got != want {
			t.Errorf("ASCIIToLower(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { sip.ASCIIToLower("proxy-authorization") }); n != 0 {
		t.Errorf("lowering a lower-case name: %v allocations, want 0", n)
	}
}

// A response's top Via gets received= when the request's sent-by is not
// the address the packet came from (RFC 3261 §18.2.1), with rport or
// without; a sent-by that is the source gets nothing added
// (third_party/sipgo/PATCHES.md).
func TestResponseViaReceived(t *testing.T) {
	for _, c := range []struct{ via, source, want string }{
		{"SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK1", "127.0.0.1:5060", "received=127.0.0.1"},
		{"SIP/2.0/UDP pbx.example.test;branch=z9hG4bK1", "192.0.2.7:5060", "received=192.0.2.7"},
		{"SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK1;rport", "127.0.0.1:40000", "rport=40000;received=127.0.0.1"},
		{"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1", "127.0.0.1:5060", ""},
	} {
		msg, err := sip.ParseMessage([]byte("OPTIONS sip:2000@192.0.2.1 SIP/2.0\r\nVia: " + c.via + "\r\n" +
			"From: <sip:3000@192.0.2.2>;tag=1\r\nTo: <sip:2000@192.0.2.1>\r\nCall-ID: via\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetSource(c.source)
		via := sip.NewResponseFromRequest(req, 200, "OK", nil).Via().Value()
		if c.want == "" && strings.Contains(via, "received") || c.want != "" && !strings.HasSuffix(via, c.want) {
			t.Errorf("Via %q from %s: got %q, want it to end %q", c.via, c.source, via, c.want)
		}
	}
}
