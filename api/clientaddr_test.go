package api

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name, peer string
		header     http.Header
		want       string
	}{
		{"no proxy", "192.0.2.1:5000", nil, "192.0.2.1"},
		{"untrusted peer's header ignored", "192.0.2.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "192.0.2.1"},
		{"untrusted peer's Forwarded ignored", "192.0.2.1:5000", http.Header{"Forwarded": {"for=198.51.100.1"}}, "192.0.2.1"},
		{"trusted proxy", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"rightmost untrusted", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.9, 198.51.100.1, 10.0.0.2"}}, "198.51.100.1"},
		{"header lines in order", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.9", "198.51.100.1"}}, "198.51.100.1"},
		{"all trusted: the first", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"10.0.0.3, 10.0.0.2"}}, "10.0.0.3"},
		{"no header: the proxy", "10.0.0.1:5000", nil, "10.0.0.1"},
		{"garbage: the proxy that sent it", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1, bogus"}}, "10.0.0.1"},
		{"empty hop", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"with a port", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"198.51.100.1:4711"}}, "198.51.100.1"},
		{"Forwarded", "10.0.0.1:5000", http.Header{"Forwarded": {`for=203.0.113.9, For="198.51.100.1:80";proto=https`}}, "198.51.100.1"},
		{"Forwarded IPv6", "[2001:db8:ffff::1]:5000", http.Header{"Forwarded": {`for="[2001:db8::7]:4711"`}}, "2001:db8::7"},
		{"Forwarded unknown", "10.0.0.1:5000", http.Header{"Forwarded": {"for=198.51.100.1, for=unknown"}}, "10.0.0.1"},
		{"Forwarded without for", "10.0.0.1:5000", http.Header{"Forwarded": {"proto=https"}}, "10.0.0.1"},
		{"X-Forwarded-For wins", "10.0.0.1:5000", http.Header{"Forwarded": {"for=203.0.113.9"}, "X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"mapped IPv4", "10.0.0.1:5000", http.Header{"X-Forwarded-For": {"::ffff:198.51.100.1"}}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.peer, Header: tt.header}
			if got := clientAddr(r, trusted); got != tt.want {
				t.Errorf("clientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:5000", "198.51.100.1, 10.0.0.2", `for="[2001:db8::7]:4711";proto=https`)
	f.Add("192.0.2.1:1", "", "for=unknown")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff, fwd string) {
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		h.Set("Forwarded", fwd)
		if got := clientAddr(&http.Request{RemoteAddr: peer, Header: h}, trusted); got == "" && peer != "" {
			if _, err := netip.ParseAddrPort(peer); err == nil {
				t.Errorf("no address for peer %q", peer)
			}
		}
	})
}
