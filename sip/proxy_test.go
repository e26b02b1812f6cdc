package sip

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in, transport, addr string
	}{
		{"udp:203.0.113.5:5060", "udp", "203.0.113.5:5060"},
		{" TCP:198.51.100.1:5070 ", "tcp", "198.51.100.1:5070"},
		{"udp:2001:db8::1:5060", "udp", "[2001:db8::1]:5060"},
		{"tls:[2001:db8::1]:5061", "tls", "[2001:db8::1]:5061"},
		{"udp:::ffff:192.0.2.1:5060", "udp", "192.0.2.1:5060"},
		{"udp:203.0.113.5", "", ""},
		{"udp:203.0.113.5:", "", ""},
		{"udp:203.0.113.5:65536", "", ""},
		{"udp:203.0.113.5:50x0", "", ""},
		{"http:203.0.113.5:80", "", ""},
		{"203.0.113.5:5060", "", ""},
		{"udp:example.com:5060", "", ""},
		{"udp:fe80::1%eth0:5060", "", ""},
		{"", "", ""},
	} {
		transport, addr, ok := parseSource([]byte(tc.in))
		if ok != (tc.transport != "") || transport != tc.transport || (ok && addr.String() != tc.addr) {
			t.Errorf("parseSource(%q) = %q, %v, %v; want %q, %q", tc.in, transport, addr, ok, tc.transport, tc.addr)
		}
	}
}

func TestShieldSource(t *testing.T) {
	proxies := trustedProxies{netip.MustParsePrefix("10.0.0.0/24")}
	proxy, stranger := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("192.0.2.9")
	msg := func(headers string) []byte {
		return []byte("INVITE sip:2000@10.0.0.9 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n" + headers +
			"Call-ID: 1\r\nContent-Length: 34\r\n\r\nX-Switchboard-Source: udp:1.2.3.4:5\r\n")
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		peer netip.Addr
		want string // "" when the message is not counted: the proxy's own
	}{
		{"from a trusted proxy", msg("X-Switchboard-Source: udp:203.0.113.5:5060\r\n"), proxy, "203.0.113.5"},
		{"any case, spaces", msg("x-switchboard-source  :  tcp:203.0.113.6:5060\r\n"), proxy, "203.0.113.6"},
		{"the last one counts", msg("X-Switchboard-Source: udp:198.51.100.1:5060\r\nX-Switchboard-Source: udp:203.0.113.7:5060\r\n"), proxy, "203.0.113.7"},
		{"from anyone else", msg("X-Switchboard-Source: udp:203.0.113.5:5060\r\n"), stranger, "192.0.2.9"},
		{"no header: the proxy's own, not counted", msg(""), proxy, ""},
		{"not in the body", msg(""), proxy, ""},
		{"unreadable: the proxy's own", msg("X-Switchboard-Source: somewhere\r\n"), proxy, ""},
		{"a longer name", msg("X-Switchboard-Sources: udp:203.0.113.5:5060\r\n"), proxy, ""},
	} {
		got, counted := proxies.shieldSource(tc.raw, tc.peer)
		if !counted && tc.want != "" || counted && got.String() != tc.want {
			t.Errorf("%s: %v (counted %v), want %q", tc.name, got, counted, tc.want)
		}
	}
	if got, _ := trustedProxies(nil).shieldSource(msg("X-Switchboard-Source: udp:203.0.113.5:5060\r\n"), proxy); got != proxy {
		t.Errorf("no trusted proxies: %v", got)
	}
	raw := msg("X-Switchboard-Source: udp:203.0.113.5:5060\r\n")
	if n := testing.AllocsPerRun(100, func() { proxies.shieldSource(raw, proxy) }); n > 1 {
		t.Errorf("%v allocations a message from a trusted proxy, want at most 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { proxies.shieldSource(raw, stranger) }); n != 0 {
		t.Errorf("%v allocations a message from anyone else, want 0", n)
	}
}

// However many messages a trusted proxy sends of its own (pings, the ACKs
// its transactions build), the shield never counts them: the front-end is
// never rate-limited or banned, and every call with it.
func TestProxyOwnMessagesNeverBanIt(t *testing.T) {
	proxies := trustedProxies{netip.MustParsePrefix("10.0.0.5/32")}
	proxy := netip.MustParseAddr("10.0.0.5")
	sh := newShield(ShieldConfig{Rate: 50, Failures: 10, BanFor: time.Minute}, time.Now, func(netip.Addr, string) {})
	raw := []byte("ACK sip:2000@10.0.0.1 SIP/2.0\r\nCall-ID: x\r\n\r\n")
	for i := range 5000 {
		if !proxies.admits(sh, raw, proxy) {
			t.Fatalf("the proxy's own message %d was refused", i)
		}
	}
	// A named source behind it is counted, and limited, by itself.
	named := []byte("INVITE sip:2000@10.0.0.1 SIP/2.0\r\nX-Switchboard-Source: udp:203.0.113.5:5060\r\n\r\n")
	refused := 0
	for range 500 {
		if !proxies.admits(sh, named, proxy) {
			refused++
		}
	}
	if refused == 0 {
		t.Error("a flooding source behind the proxy was never limited")
	}
	if !proxies.admits(sh, raw, proxy) {
		t.Error("the proxy's own message refused after a source behind it was limited")
	}
}
