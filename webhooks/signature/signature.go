// Package signature signs switchboard's webhook deliveries and lets a
// receiver verify them. It needs nothing but the standard library, so an
// integrator's service can import it alone.
//
// Every delivery carries the header
//
//	Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>]
//
// where each v1 is HMAC-SHA256, keyed with one of the webhook's secrets
// (the whole "whsec_..." string), over t, ".", and the raw request body.
// While a secret is being rotated both the old and the new one sign, so
// the header has two v1 values and a receiver that knows either accepts
// it. The timestamp is signed too: a receiver refuses one too far from its
// own clock, which stops an old delivery from being replayed.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header is the HTTP header that carries a delivery's signature.
const Header = "Switchboard-Signature"

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Why Verify refuses a delivery: it returns one of these (errors.Is).
var (
	ErrMissing   = errors.New("signature: the delivery is not signed")
	ErrMalformed = errors.New("signature: malformed signature header")
	ErrMismatch  = errors.New("signature: no signature matches the body and a secret")
	ErrStale     = errors.New("signature: timestamp outside the tolerance (an old or replayed delivery)")
	ErrNoSecrets = errors.New("signature: no secrets to verify with")
)

// Sign returns the header's value for body sent at t, with one v1
// signature per secret, in the order given.
func Sign(body []byte, t time.Time, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		b.WriteString(",v1=" + hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks that header signs body with one of secrets and that its
// timestamp is within tolerance of now (a tolerance of zero or less means
// DefaultTolerance: the check cannot be turned off). body must be the raw
// request body, before any JSON decoding. It returns nil for an authentic,
// fresh delivery, and otherwise ErrMissing, ErrMalformed, ErrMismatch,
// ErrStale or ErrNoSecrets. An empty secret is never used: with none but
// empty ones Verify returns ErrNoSecrets.
func Verify(header string, body []byte, secrets []string, tolerance time.Duration) error {
	return VerifyAt(header, body, secrets, tolerance, time.Now())
}

// VerifyAt is Verify with the receiver's clock reading given: for tests.
func VerifyAt(header string, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	if !anySecret(secrets) {
		return ErrNoSecrets
	}
	if strings.TrimSpace(header) == "" {
		return ErrMissing
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrMalformed // two timestamps: which one was signed?
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return ErrMalformed
			}
			sigs = append(sigs, sig)
		default:
			// Other schemes (a future v2) are not ours to check.
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformed
	}
	matched := false
	for _, s := range secrets {
		if s == "" {
			continue // an empty key signs nothing: anyone could make that MAC
		}
		want := mac(s, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrMismatch
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}

// anySecret reports whether secrets holds one that is not empty: a
// receiver configured with only empty keys has nothing to verify with.
func anySecret(secrets []string) bool {
	for _, s := range secrets {
		if s != "" {
			return true
		}
	}
	return false
}
