package sip

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
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

// nonceLifetime is how long a digest challenge may be answered.
const nonceLifetime = 5 * time.Minute

// nonces issues and checks stateless digest nonces: the issue time and an
// HMAC of it under a per-process key, so no state is kept per challenge and
// a nonce cannot be forged or used after it expires.
type nonces struct{ key [32]byte }

func newNonces() (*nonces, error) {
	n := &nonces{}
	if _, err := rand.Read(n.key[:]); err != nil {
		return nil, fmt.Errorf("sip: nonce key: %w", err)
	}
	return n, nil
}

func (n *nonces) issue(now time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.Unix()))
	mac := hmac.New(sha256.New, n.key[:])
	mac.Write(ts[:])
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(mac.Sum(nil)[:16])
}

// valid reports whether nonce was issued by us and has not expired.
func (n *nonces) valid(nonce string, now time.Time) bool {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 24 {
		return false
	}
	mac := hmac.New(sha256.New, n.key[:])
	mac.Write(raw[:8])
	if !hmac.Equal(raw[8:], mac.Sum(nil)[:16]) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	return !now.Before(issued.Add(-time.Minute)) && now.Sub(issued) < nonceLifetime
}

// errForbidden means the request comes from nobody we know; the answer
// is 403 and says nothing more.
var errForbidden = errors.New("sip: unknown trunk")

// errChallenge means the request should be retried with credentials.
var errChallenge = errors.New("sip: credentials required")

// identifyTrunk recognises the trunk a request comes from: by source
// address first, then by digest credentials.
func (s *Server) identifyTrunk(ctx context.Context, req *sip.Request, src netip.Addr, number string) (*sb.Trunk, error) {
	trunks, err := s.dir.TrunksForSource(ctx, src)
	if err != nil {
		return nil, err
	}
	for _, t := range trunks {
		if t.HasNumber(number) {
			return t, nil
		}
	}
	if len(trunks) > 0 {
		return trunks[0], nil // a known trunk calling a number it does not own: 404 later
	}
	hasDigest, err := s.dir.HasDigestTrunks(ctx)
	if err != nil {
		return nil, err
	}
	if !hasDigest {
		return nil, errForbidden
	}
	h := req.GetHeader("Proxy-Authorization")
	if h == nil {
		return nil, errChallenge
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		return nil, errForbidden
	}
	if !s.nonces.valid(cred.Nonce, time.Now()) {
		return nil, errChallenge // stale: challenge again
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
	return t, nil
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

// challenge answers 407 with a fresh digest challenge.
func (s *Server) challenge(req *sip.Request, tx sip.ServerTransaction) {
	chal := digest.Challenge{Realm: sb.DigestRealm, Nonce: s.nonces.issue(time.Now()), Algorithm: "MD5", QOP: []string{"auth"}}
	res := sip.NewResponseFromRequest(req, sip.StatusProxyAuthRequired, "Proxy Authentication Required", nil)
	res.AppendHeader(sip.NewHeader("Proxy-Authenticate", chal.String()))
	s.respond(tx, res)
}
