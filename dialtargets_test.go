package switchboard_test

import (
	"net/netip"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

func TestDialTargets(t *testing.T) {
	d, err := sb.ParseDialTargets([]string{"pbx.example.com", "*.carrier.example", "198.51.100.7", "10.1.0.0/16", " "})
	if err != nil || len(d) != 4 {
		t.Fatalf("parse: %v %v", d, err)
	}
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	for _, c := range []struct {
		host  string
		addrs []netip.Addr
		ok    bool
	}{
		{"pbx.example.com", addrs("203.0.113.10"), true},
		{"PBX.example.com.", addrs("203.0.113.10"), true},
		{"sip.carrier.example", addrs("203.0.113.11"), true},
		{"sip.carrier.example", addrs("203.0.113.11", "fd00::1"), false}, // one address private (ULA)
		{"other.example.com", addrs("203.0.113.10"), false},
		{"carrier.example", addrs("203.0.113.11"), false}, // *.x names subdomains only
		{"pbx.example.com", addrs("127.0.0.1"), false},    // a listed name resolving to loopback
		{"pbx.example.com", addrs("10.1.2.3"), true},      // resolving into a listed block
		{"pbx.example.com", addrs("192.168.1.1"), false},
		{"pbx.example.com", addrs("169.254.169.254"), false},
		{"pbx.example.com", nil, false},
		{"198.51.100.7", addrs("198.51.100.7"), true},
		{"198.51.100.8", addrs("198.51.100.8"), false}, // an address must be listed itself
		{"10.1.9.9", addrs("10.1.9.9"), true},
		{"127.0.0.1", addrs("127.0.0.1"), false},
		{"[::1]", addrs("::1"), false},
	} {
		err := d.Allow(c.host, c.addrs)
		if (err == nil) != c.ok {
			t.Errorf("Allow(%s, %v) = %v, want allowed %v", c.host, c.addrs, err, c.ok)
		}
		if err != nil && sb.ErrorCode(err) != sb.EFORBIDDEN {
			t.Errorf("Allow(%s): %v, want EFORBIDDEN", c.host, err)
		}
	}
	var none sb.DialTargets
	if err := none.Allow("pbx.example.com", addrs("203.0.113.10")); err == nil {
		t.Error("no dial targets allowed a call")
	}
	for _, bad := range []string{"not a host", "-bad.example", "exa_mple.com", "localhost", "10.0.0.0/33"} {
		if _, err := sb.ParseDialTargets([]string{bad}); sb.ErrorCode(err) != sb.EINVALID {
			t.Errorf("ParseDialTargets(%q) = %v, want EINVALID", bad, err)
		}
	}
}

// An IPv6 address that carries an IPv4 one (NAT64, 6to4) is as public as
// the IPv4 address: a platform URL may not reach the metadata service or
// a private network through a translator.
func TestPublicAddressSeesThroughTranslators(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8":              true,
		"64:ff9b::808:808":     true,  // NAT64 of 8.8.8.8
		"64:ff9b::a9fe:a9fe":   false, // NAT64 of 169.254.169.254
		"64:ff9b::a00:1":       false, // NAT64 of 10.0.0.1
		"64:ff9b:1::808:808":   false, // local-use NAT64
		"2002:a9fe:a9fe::1":    false, // 6to4 of 169.254.169.254
		"2002:808:808::1":      true,  // 6to4 of 8.8.8.8
		"2001:4860:4860::8888": true,
		"::ffff:10.0.0.1":      false,
	} {
		if got := sb.PublicAddress(netip.MustParseAddr(addr)); got != want {
			t.Errorf("sb.PublicAddress(%s) = %v, want %v", addr, got, want)
		}
	}
}
