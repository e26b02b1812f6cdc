package switchboard_test

import (
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
