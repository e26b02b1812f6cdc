package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client that sent r, for login
// lockouts, rate limits, audit entries and logs. It is the direct peer,
// unless the peer is one of the trusted proxies: then it is the rightmost
// address in the forwarding chain that is not itself a trusted proxy
// (X-Forwarded-For, or RFC 7239's Forwarded when there is none), since
// everything left of that was written by the client and may be forged.
// A hop the chain does not name usably ("unknown", an obfuscated
// identifier) ends the walk at the proxy that reported it.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	client := peer
	if !isTrusted(peer, trusted) {
		return client.String()
	}
	hops := forwardedChain(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedChain lists the addresses a request passed, the client's
// first, from X-Forwarded-For or else from Forwarded's for= parameters.
// Every header line counts, in order, as proxies append.
func forwardedChain(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			for _, hop := range strings.Split(line, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
		return hops
	}
	for _, line := range h.Values("Forwarded") {
		for _, element := range strings.Split(line, ",") {
			hop := "" // an element without for= names no address
			for _, pair := range strings.Split(element, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "for") {
					hop = strings.Trim(v, `"`)
				}
			}
			hops = append(hops, hop)
		}
	}
	return hops
}

// parseHop reads an address as proxies write it: 192.0.2.1,
// 192.0.2.1:4711, 2001:db8::1, [2001:db8::1] or [2001:db8::1]:4711.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// clientAddr is r's client, as the server's trusted proxies tell it.
func (s *Server) clientAddr(r *http.Request) string {
	return clientAddr(r, s.conf.TrustedProxies)
}
