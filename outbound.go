package switchboard

import (
	"context"
	"strings"
)

// RouteDirectory says how a tenant's calls go out: its outbound trunks,
// first choice first.
type RouteDirectory interface {
	OutboundRoutes(ctx context.Context, tenantID ID) ([]OutboundRoute, error)
}

// NormalizeNumber reads a dialled number the way people write it (spaces,
// dashes, dots, brackets; 00 for +) into digits with an optional leading
// +, E.164-style. Anything else is EINVALID.
func NormalizeNumber(s string) (string, error) {
	n := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()/", r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if strings.HasPrefix(n, "00") {
		n = "+" + n[2:]
	}
	digits := strings.TrimPrefix(n, "+")
	if len(digits) < 3 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
		return "", Errorf(EINVALID, "%q is not a phone number: digits with an optional leading +, 3 to 15 of them", s)
	}
	return n, nil
}
