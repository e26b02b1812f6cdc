package sip

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	sb "github.com/switchboard-voice/switchboard"
)

// errForbidden means the request comes from nobody we know; the answer
// is 403 and says nothing more.
var errForbidden = errors.New("sip: unknown trunk")

// errChallenge means the request should be retried with credentials.
var errChallenge = errors.New("sip: credentials required")

// errStale means the credentials were right but their nonce is spent or
// expired: the request should be retried with a fresh one, and the
// challenge says stale=true so the UAC does not take it for a wrong
// password (RFC 2617 §3.2.1).
var errStale = fmt.Errorf("%w: nonce stale", errChallenge)

// identifyTrunk recognises the trunk a request comes from: by source
// address first, then by digest credentials. A source that is an IP
// trunk's but calls a number none of its trunks has is challenged when
// digest trunks exist: a digest trunk's PBX may share the address (a
// hosted PBX, a NAT) and must not be refused as the IP trunk's caller.
//
// From then on the call's SIP messages leave the service (HEP, logs) as the
// trunk's tenant's trace policy says.
func (s *Server) identifyTrunk(ctx context.Context, req *sip.Request, src netip.Addr, number string) (*sb.Trunk, error) {
	t, err := s.findTrunk(ctx, req, src, number)
	if err == nil {
		s.capture.setPolicy(req.CallID().Value(), t.Trace)
	}
	return t, err
}

func (s *Server) findTrunk(ctx context.Context, req *sip.Request, src netip.Addr, number string) (*sb.Trunk, error) {
	trunks, err := s.dir.TrunksForSource(ctx, src)
	if err != nil {
		return nil, err
	}
	for _, t := range trunks {
		if t.HasNumber(number) {
			return t, nil
		}
	}
	hasDigest, err := s.dir.HasDigestTrunks(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case !hasDigest && len(trunks) > 0:
		return trunks[0], nil // a known trunk calling a number it does not own: 404 later
	case !hasDigest:
		return nil, errForbidden
	}
	return s.digestTrunk(ctx, req)
}

// digestTrunk recognises a trunk by the request's digest credentials,
// answered once: a count (nc) not above the last one seen with the nonce
// is a replay and is challenged again; credentials for another URI than
// the Request-URI are refused.
func (s *Server) digestTrunk(ctx context.Context, req *sip.Request) (*sb.Trunk, error) {
	h := req.GetHeader("Proxy-Authorization")
	if h == nil {
		return nil, errChallenge
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		return nil, errForbidden
	}
	now := time.Now()
	ours, fresh := s.nonces.check(cred.Nonce, now)
	if !ours {
		return nil, errChallenge
	}
	if !sameURI(cred.URI, req.Recipient) {
		s.log.Info("digest credentials for another URI than the Request-URI", "source", req.Source())
		return nil, errForbidden
	}
	t, err := s.dir.TrunkByUsername(ctx, cred.Username)
	if sb.ErrorCode(err) == sb.ENOTFOUND {
		return nil, errForbidden
	} else if err != nil {
		return nil, err
	}
	if !checkDigest(cred, t.DigestHA1, string(req.Method)) {
		return t, errForbidden // the trunk is known: its tenant hears of the failure
	}
	if !fresh {
		return nil, errStale
	}
	nc := cred.Nc
	if cred.QOP == "" {
		// Without qop the count is not in the hash: anyone could raise
		// it. Such an answer is good once.
		nc = 0
	}
	if ok, full := s.nonces.answer(cred.Nonce, nc, now); full {
		return nil, errChallenge // no room to keep the count: asked again, later
	} else if !ok {
		s.log.Info("digest credentials replayed", "trunk", t.ID, "source", req.Source())
		return nil, errStale
	}
	return t, nil
}

// sameURI reports whether a digest's uri names the Request-URI: scheme,
// user, host and port (the default one when absent); parameters aside. A
// uri without a user names the host as a whole, as some UAs (SIPp) send.
func sameURI(digestURI string, ruri sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	port := func(u sip.Uri) int {
		switch {
		case u.Port != 0:
			return u.Port
		case strings.EqualFold(u.Scheme, "sips"):
			return 5061
		}
		return 5060
	}
	return strings.EqualFold(u.Scheme, ruri.Scheme) && (u.User == ruri.User || u.User == "") && strings.EqualFold(u.Host, ruri.Host) && port(u) == port(ruri)
}

// checkDigest verifies an RFC 2617 / RFC 3261 digest response (MD5, with
// or without qop=auth) against the stored HA1.
func checkDigest(c *digest.Credentials, ha1, method string) bool {
	if c.Realm != sb.DigestRealm || (c.Algorithm != "" && !strings.EqualFold(c.Algorithm, "MD5")) {
		return false
	}
	ha2 := md5hex(method + ":" + c.URI)
	var want string
	switch c.QOP {
	case "":
		want = md5hex(ha1 + ":" + c.Nonce + ":" + ha2)
	case "auth":
		want = md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, c.Nonce, c.Nc, c.Cnonce, c.QOP, ha2))
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.Response))) == 1
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// challenge answers 407 with a fresh digest challenge; stale says the
// last credentials were right and only their nonce was not.
func (s *Server) challenge(req *sip.Request, tx sip.ServerTransaction, stale bool) {
	chal := digest.Challenge{Realm: sb.DigestRealm, Nonce: s.nonces.issue(time.Now()), Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	res := sip.NewResponseFromRequest(req, sip.StatusProxyAuthRequired, "Proxy Authentication Required", nil)
	res.AppendHeader(sip.NewHeader("Proxy-Authenticate", chal.String()))
	s.respond(tx, res)
}
