package sip

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Behind a SIP front-end (deploy/kamailio/dispatcher.cfg) every request
// arrives from the proxy's address. The proxy names the address it got
// the request from in SourceHeader, after removing any copy the sender
// put there; switchboard believes the header only when the message's
// transport peer is one of the configured trusted proxies, and then
// recognises trunks, records the call's source and rate-limits and bans
// by that address. From anyone else the header is ignored.

// SourceHeader is the header in which a trusted proxy names the original
// source of a request: transport:address:port, e.g.
// "udp:203.0.113.5:5060" (an IPv6 address may be bracketed or not).
const SourceHeader = "X-Switchboard-Source"

// trustedProxies are the networks whose SourceHeader is believed.
type trustedProxies []netip.Prefix

func (p trustedProxies) trusts(peer netip.Addr) bool {
	peer = peer.Unmap()
	for _, n := range p {
		if n.Contains(peer) {
			return true
		}
	}
	return false
}

// origin is where a request really came from.
type origin struct {
	transport string // lower case: udp, tcp, tls
	addr      netip.AddrPort
}

func (o origin) String() string { return o.transport + ":" + o.addr.String() }

// originOf returns the request's original source: what a trusted proxy
// names in the last SourceHeader, else the transport peer. A trusted
// proxy's request without a readable header comes from the proxy.
func (s *Server) originOf(req *sip.Request) (origin, error) {
	peer, err := netip.ParseAddrPort(req.MessageData.Source())
	if err != nil {
		return origin{}, err
	}
	o := origin{transport: strings.ToLower(req.Transport()), addr: netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())}
	if !s.proxies.trusts(o.addr.Addr()) {
		return o, nil
	}
	hs := req.GetHeaders(SourceHeader)
	if len(hs) == 0 {
		return o, nil
	}
	if transport, addr, ok := parseSource([]byte(hs[len(hs)-1].Value())); ok {
		return origin{transport: transport, addr: addr}, nil
	}
	return o, nil
}

// shieldSource is the address the shield counts a raw message against:
// the source a trusted proxy names in it, else the peer. It looks for the
// header only in messages from trusted proxies, without parsing the rest.
// A trusted proxy's own messages (its OPTIONS pings, the ACKs and CANCELs
// its transactions build) are not counted at all: counting them against
// the proxy could ban the front-end, and every call with it.
func (p trustedProxies) shieldSource(raw []byte, peer netip.Addr) (addr netip.Addr, counted bool) {
	if len(p) == 0 || !p.trusts(peer) {
		return peer, true
	}
	if v := lastHeader(raw, SourceHeader); v != nil {
		if _, addr, ok := parseSource(v); ok {
			return addr.Addr(), true
		}
	}
	return peer, false
}

// admits reports whether the shield lets a raw message from peer in.
func (p trustedProxies) admits(sh *shield, raw []byte, peer netip.Addr) bool {
	src, counted := p.shieldSource(raw, peer)
	return !counted || sh.admit(src)
}

// lastHeader returns the value of the last header called name in a raw
// message's header section (full name only), or nil, without allocating.
func lastHeader(raw []byte, name string) []byte {
	var found []byte
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // the end of the headers
		}
		colon := bytes.IndexByte(line, ':')
		if colon < len(name) {
			continue
		}
		if h := bytes.TrimSpace(line[:colon]); len(h) == len(name) && bytes.EqualFold(h, []byte(name)) {
			found = bytes.TrimSpace(line[colon+1:])
		}
	}
	return found
}

// sourceTransports are the transports a proxy may name, in lower case.
var sourceTransports = [...]string{"udp", "tcp", "tls", "sctp", "ws", "wss"}

// parseSource reads "transport:address:port".
func parseSource(v []byte) (transport string, addr netip.AddrPort, ok bool) {
	v = bytes.TrimSpace(v)
	i := bytes.IndexByte(v, ':')
	j := bytes.LastIndexByte(v, ':')
	if i <= 0 || j <= i {
		return "", netip.AddrPort{}, false
	}
	for _, t := range sourceTransports {
		if bytes.EqualFold(v[:i], []byte(t)) {
			transport = t
		}
	}
	if transport == "" {
		return "", netip.AddrPort{}, false
	}
	host := v[i+1 : j]
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(string(host))
	if err != nil || ip.Zone() != "" {
		return "", netip.AddrPort{}, false
	}
	port := 0
	for _, c := range v[j+1:] {
		if c < '0' || c > '9' || port > 6553 {
			return "", netip.AddrPort{}, false
		}
		port = port*10 + int(c-'0')
	}
	if len(v) == j+1 || port > 65535 {
		return "", netip.AddrPort{}, false
	}
	return transport, netip.AddrPortFrom(ip.Unmap(), uint16(port)), true
}
