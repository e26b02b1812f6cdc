package switchboard

import (
	"context"
	"net/netip"
	"strings"
)

// DialTargets are where a tenant's calls to SIP URIs may go (a blind
// transfer to a URI, a queue's overflow): domain names ("pbx.example.com",
// or "*.example.com" for its subdomains), addresses and CIDR blocks. None
// means none: a tenant that forwards or transfers to SIP URIs lists where
// to. An address in a loopback, private, link-local or otherwise
// non-public range is reached only when an address or block entry names
// it, never through a domain name that resolves there.
type DialTargets []string

// ParseDialTargets checks each entry; it returns EINVALID naming the
// first that is not a domain name, an address or a CIDR block.
func ParseDialTargets(entries []string) (DialTargets, error) {
	out := DialTargets{}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			continue
		}
		if _, err := netip.ParsePrefix(e); err == nil {
			out = append(out, e)
			continue
		}
		if _, err := netip.ParseAddr(e); err == nil {
			out = append(out, e)
			continue
		}
		name := strings.TrimPrefix(e, "*.")
		if !validDomain(name) {
			return nil, Errorf(EINVALID, "dial target %q is not a domain name, an address or a CIDR block", e)
		}
		out = append(out, e)
	}
	return out, nil
}

func validDomain(name string) bool {
	if name == "" || len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
			label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// Allow reports whether a call may go to host, which resolved to addrs
// (host itself when it is an address). It returns EFORBIDDEN saying why
// not.
func (d DialTargets) Allow(host string, addrs []netip.Addr) error {
	host = normalHost(host)
	_, isAddr := parseAddr(host)
	if !isAddr && !d.Lists(host) {
		return Errorf(EFORBIDDEN, "%s is not among the tenant's dial targets", host)
	}
	if len(addrs) == 0 {
		return Errorf(EFORBIDDEN, "%s has no address to call", host)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if d.namesAddr(a) {
			continue
		}
		if isAddr {
			return Errorf(EFORBIDDEN, "%s is not among the tenant's dial targets", a)
		}
		if !public(a) {
			return Errorf(EFORBIDDEN, "%s resolves to %s, which is not a public address: list the address itself to call it", host, a)
		}
	}
	return nil
}

func parseAddr(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

func normalHost(host string) string {
	return strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
}

// Lists reports whether the domain name host is among the targets, by
// name or as a subdomain of a "*." entry.
func (d DialTargets) Lists(host string) bool {
	host = normalHost(host)
	for _, e := range d {
		if e == host || strings.HasPrefix(e, "*.") && strings.HasSuffix(host, e[1:]) {
			return true
		}
	}
	return false
}

func (d DialTargets) namesAddr(a netip.Addr) bool {
	for _, e := range d {
		if p, err := netip.ParsePrefix(e); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(e); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

// Blocks that are global unicast to netip but nobody's public address.
var (
	sharedSpace  = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT (RFC 6598)
	benchmarking = netip.MustParsePrefix("198.18.0.0/15") // RFC 2544
)

// PublicAddress reports whether a is an address on the public Internet:
// what a tenant's integration settings (a platform's API URL) may reach
// unless the service allows private targets.
func PublicAddress(a netip.Addr) bool { return public(a.Unmap()) }

// IPv6 blocks that carry an IPv4 address: such an address is as public as
// the IPv4 address it carries (NAT64 can reach 169.254.169.254 through
// 64:ff9b::a9fe:a9fe).
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052, the last 32 bits
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215: local use, never public
	sixToFour  = netip.MustParsePrefix("2002::/16")      // RFC 3056, bits 16–47
)

// public reports whether a is an address on the public Internet.
func public(a netip.Addr) bool {
	switch b := a.As16(); {
	case nat64Local.Contains(a):
		return false
	case nat64.Contains(a):
		return public(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return public(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!sharedSpace.Contains(a) && !benchmarking.Contains(a)
}

// DialPolicy gives a tenant's dial targets; the metadata store implements
// it.
type DialPolicy interface {
	DialTargets(ctx context.Context, tenantID ID) (DialTargets, error)
}
