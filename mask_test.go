package switchboard_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode"

	sb "github.com/switchboard-voice/switchboard"
)

func TestMaskSIPURI(t *testing.T) {
	for _, c := range []struct{ uri, want string }{
		{"sip:+4930123456@pbx.example", "sip:+******3456@pbx.example"},
		{"sip:4930123456@10.0.0.5:5070;transport=tcp", "sip:******3456@10.0.0.5:5070;transport=tcp"},
		{"sip:2000@pbx.example", "sip:2000@pbx.example"}, // an extension, as MaskNumber leaves it
		{"sip:vm@[2001:db8::1]:5060", "sip:…@[2001:db8::1]:5060"},
		{"sip:alice.smith@example.com", "sip:…@example.com"},
		{"sip:+49-30-123456@pbx.example", "sip:…@pbx.example"}, // written with separators: all of it
		{"sip:alice:secret@pbx.example", "sip:…@pbx.example"},  // a password with the user
		{"sip:a@b@pbx.example", "sip:…@pbx.example"},           // up to the last @
		{"sip:2000@pbx.example;x=4930123456", "sip:2000@pbx.example;x=******3456"},
		{"tel:+4930123456", "tel:+******3456"},
		{"+4930123456", "+******3456"},
		{"alice", "…"},
		{"4930123456:x", "…"}, // no scheme: not a URI
		{"", ""},
	} {
		if got := sb.MaskSIPURI(c.uri); got != c.want {
			t.Errorf("MaskSIPURI(%q) = %q, want %q", c.uri, got, c.want)
		}
	}
}

func TestMaskReason(t *testing.T) {
	for _, c := range []struct{ reason, want string }{
		// Nothing that could name a party: whole.
		{"", ""},
		{"caller hung up", "caller hung up"},
		{"Busy Here", "Busy Here"},
		{"sip: re-INVITE answered 488 Not Acceptable Here", "sip: re-INVITE answered 488 Not Acceptable Here"},
		{"no operator free in queue Sales 2 within 1m30s", "no operator free in queue Sales 2 within 1m30s"},
		{"no session refresh within 30m0s (RFC 4028)", "no session refresh within 30m0s (RFC 4028)"},
		// A number, however written: cut at its word.
		{"No route to +4930123456", "No route to …"},
		{"No route to +49 30 123456, try later", "No route to …"},
		{"404 Not Found (030) 123-45", "404 Not Found …"},
		{"user 12345 unknown", "user …"},
		{"callee 0151,2345,678 busy", "callee …"},
		{"Busy: 49_301_234_56", "Busy: …"},
		{"No route to ４９３０１２３４５６", "No route to …"},
		{"+49 30, 1234 567", "…"},
		// A URI's user, an email.
		{"Not Found: sip:alice@pbx.example", "Not Found: …"},
		{"forwarded to bob@example.com", "forwarded to …"},
		// An address, with or without its port, however it is quoted.
		{"media failed: no path to 10.0.0.1", "media failed: no path to …"},
		{"sip: dial 203.0.113.5:5060: connection refused", "sip: dial …"},
		{"read udp 127.0.0.1:5060->192.0.2.1:40000: i/o timeout", "read udp …"},
		{"write to udp:[2001:db8::1]:5060 failed", "write to …"},
		{"unreachable (1.2.3.4)", "unreachable …"},
		{"fe80::1 unreachable", "…"},
		// What comes first decides the cut; what follows goes with it.
		{"sip: REFER refused: 404 sip:+4930123456@pbx says 12", "sip: REFER refused: 404 …"},
	} {
		if got := sb.MaskReason(c.reason); got != c.want {
			t.Errorf("MaskReason(%q) = %q, want %q", c.reason, got, c.want)
		}
	}
}

func TestMaskCandidatePair(t *testing.T) {
	for _, c := range []struct{ pair, want string }{
		{"host udp 192.0.2.10:40000 ↔ srflx udp 198.51.100.20:50000", "host udp … ↔ srflx udp …"},
		{"host udp [2001:db8::1]:40000 ↔ prflx udp [2001:db8::2]:50000", "host udp … ↔ prflx udp …"},
		{"? ↔ relay udp 198.51.100.20:50000", "… ↔ relay udp …"},
		{"198.51.100.20:50000", "…"},
		{"", ""},
	} {
		if got := sb.MaskCandidatePair(c.pair); got != c.want {
			t.Errorf("MaskCandidatePair(%q) = %q, want %q", c.pair, got, c.want)
		}
	}
}

// holdsNumber reports whether s holds five digits (of any script) with no
// letter between them: what a masked text may not hold. Written apart
// from MaskReason's own scan: whatever is neither a letter nor a digit is
// dropped, and five digits must then stand together.
func holdsNumber(s string) bool {
	kept := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, s)
	return regexp.MustCompile(`\p{Nd}{5}`).MatchString(kept)
}

// Whatever a far end or an error puts in a reason, the masked reason is
// the text as it was, or a leading part of it and "…", and holds no
// number and no @.
func FuzzMaskReason(f *testing.F) {
	for _, s := range []string{"No route to +49 30 123456", "sip: dial 203.0.113.5:5060: refused", "Busy Here",
		"Not Found: sip:alice@pbx", "1 2 3 4 5", "a::b", "…", "\t@", "0151,2345,678", "４９３０１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := sb.MaskReason(s)
		if got != s && !(strings.HasSuffix(got, "…") && strings.HasPrefix(s, strings.TrimSuffix(got, "…"))) {
			t.Fatalf("MaskReason(%q) = %q: neither the text nor a leading part of it", s, got)
		}
		if strings.Contains(got, "@") || holdsNumber(got) {
			t.Fatalf("MaskReason(%q) = %q holds a number or an @", s, got)
		}
	})
}

// Whatever URI a transfer or a forward names, the masked URI holds no run
// of five digits.
func FuzzMaskSIPURI(f *testing.F) {
	for _, s := range []string{"sip:+4930123456@pbx.example", "sip:vm@[2001:db8::1]:5060", "tel:+4930123456", "sip:a@b@c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := sb.MaskSIPURI(s); regexp.MustCompile(`[0-9]{5}`).MatchString(got) {
			t.Fatalf("MaskSIPURI(%q) = %q holds a number", s, got)
		}
	})
}
