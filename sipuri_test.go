package switchboard_test

import (
	"net"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

func TestParseSIPURI(t *testing.T) {
	for _, c := range []struct {
		uri, target, transport, user string
	}{
		{"sip:2000@pbx.example", "pbx.example:5060", "udp", "2000"},
		{"sip:+4930123@10.0.0.5:5070;transport=tcp", "10.0.0.5:5070", "tcp", "+4930123"},
		{"sip:vm@[2001:db8::1]:5060", "[2001:db8::1]:5060", "udp", "vm"},
	} {
		r, user, err := sb.ParseSIPURI(c.uri)
		if err != nil || r.Target != c.target || r.Transport != c.transport || user != c.user {
			t.Errorf("%s: %+v %q %v", c.uri, r, user, err)
		}
	}
	for _, bad := range []string{"", "tel:+123", "sip:pbx.example", "sip:@pbx", "sip:a@pbx:99999", "sip:a@pbx;lr", "sips:a@pbx"} {
		if _, _, err := sb.ParseSIPURI(bad); sb.ErrorCode(err) != sb.EINVALID {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Whatever a queue's overflow or a transfer names, parsing it never
// panics, and what it accepts is a target it can dial.
func FuzzParseSIPURI(f *testing.F) {
	for _, s := range []string{"sip:2000@pbx.example", "sip:+4930123@10.0.0.5:5070;transport=tcp", "sip:vm@[2001:db8::1]:5060", "sip:a@b;lr", "tel:+1", "sip:@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, user, err := sb.ParseSIPURI(s)
		if err != nil {
			return
		}
		if user == "" || r.Target == "" || (r.Transport != "udp" && r.Transport != "tcp") {
			t.Fatalf("%q accepted as %+v user %q", s, r, user)
		}
		if _, _, err := net.SplitHostPort(r.Target); err != nil {
			t.Fatalf("%q gave target %q: %v", s, r.Target, err)
		}
	})
}

// NormalizeNumber accepts only what it returns in E.164 style.
func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"+1 (555) 000-1111", "0049 30 123456", "12", "abc", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := sb.NormalizeNumber(s)
		if err != nil {
			return
		}
		digits := strings.TrimPrefix(n, "+")
		if len(digits) < 3 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("%q normalised to %q", s, n)
		}
	})
}
