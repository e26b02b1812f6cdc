package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// The signature is HMAC-SHA256 over "<unix seconds>.<body>", one v1 per
// secret, as a receiver without this package recomputes it.
func TestSign(t *testing.T) {
	body, at := []byte(`{"event":"call.ended"}`), time.Unix(1795550000, 0)
	hexMAC := func(secret string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("1795550000." + string(body)))
		return hex.EncodeToString(m.Sum(nil))
	}
	if got, want := Sign(body, at, "whsec_old"), "t=1795550000,v1="+hexMAC("whsec_old"); got != want {
		t.Errorf("one secret: %s, want %s", got, want)
	}
	if got, want := Sign(body, at, "whsec_old", "whsec_new"), "t=1795550000,v1="+hexMAC("whsec_old")+",v1="+hexMAC("whsec_new"); got != want {
		t.Errorf("two secrets: %s, want %s", got, want)
	}
}

// Verify accepts what Sign made with any of the receiver's secrets, and
// refuses everything else with the reason.
func TestVerify(t *testing.T) {
	now := time.Unix(1795550000, 0)
	body := []byte(`{"id":"0193","event":"call.ended"}`)
	both := Sign(body, now, "whsec_old", "whsec_new")
	one := Sign(body, now, "whsec_old")
	forged := one[:len(one)-1] + map[bool]string{true: "1", false: "0"}[one[len(one)-1] == '0'] // the last digit changed
	for _, c := range []struct {
		name    string
		header  string
		body    []byte
		secrets []string
		tol     time.Duration
		now     time.Time
		want    error
	}{
		{"the old secret", both, body, []string{"whsec_old"}, time.Minute, now, nil},
		{"the new secret", both, body, []string{"whsec_new"}, time.Minute, now, nil},
		{"the receiver knows both", Sign(body, now, "whsec_new"), body, []string{"whsec_old", "whsec_new"}, time.Minute, now, nil},
		{"within tolerance, late", both, body, []string{"whsec_new"}, time.Minute, now.Add(time.Minute), nil},
		{"within tolerance, early", both, body, []string{"whsec_new"}, time.Minute, now.Add(-time.Minute), nil},
		{"a retired secret", Sign(body, now, "whsec_new"), body, []string{"whsec_old"}, time.Minute, now, ErrMismatch},
		{"a forged signature", forged, body, []string{"whsec_old"}, time.Minute, now, ErrMismatch},
		{"another body", both, []byte(`{"id":"0193","event":"call.offered"}`), []string{"whsec_old"}, time.Minute, now, ErrMismatch},
		{"a timestamp moved", strings.Replace(both, "t=1795550000", "t=1795550001", 1), body, []string{"whsec_old"}, time.Minute, now.Add(time.Second), ErrMismatch},
		{"a replay outside tolerance", both, body, []string{"whsec_old"}, time.Minute, now.Add(time.Minute + time.Second), ErrStale},
		{"from the future", both, body, []string{"whsec_old"}, time.Minute, now.Add(-time.Minute - time.Second), ErrStale},
		{"no tolerance is the default", both, body, []string{"whsec_old"}, 0, now.Add(DefaultTolerance + time.Second), ErrStale},
		{"no header", "", body, []string{"whsec_old"}, time.Minute, now, ErrMissing},
		{"no v1", "t=1795550000", body, []string{"whsec_old"}, time.Minute, now, ErrMalformed},
		{"no timestamp", both[strings.Index(both, ",")+1:], body, []string{"whsec_old"}, time.Minute, now, ErrMalformed},
		{"two timestamps", "t=1,t=1795550000," + both[strings.Index(both, ",")+1:], body, []string{"whsec_old"}, time.Minute, now, ErrMalformed},
		{"a v1 not hex", "t=1795550000,v1=zz", body, []string{"whsec_old"}, time.Minute, now, ErrMalformed},
		{"a short v1", "t=1795550000,v1=abcd", body, []string{"whsec_old"}, time.Minute, now, ErrMalformed},
		{"no secrets", both, body, nil, time.Minute, now, ErrNoSecrets},
		{"only an empty secret", Sign(body, now, ""), body, []string{""}, time.Minute, now, ErrNoSecrets},
		{"only empty secrets", Sign(body, now, ""), body, []string{"", ""}, time.Minute, now, ErrNoSecrets},
		{"signed with the empty key beside a real one", Sign(body, now, ""), body, []string{"", "whsec_old"}, time.Minute, now, ErrMismatch},
	} {
		if err := VerifyAt(c.header, c.body, c.secrets, c.tol, c.now); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// An unknown scheme beside v1 is ignored, not refused.
	if err := VerifyAt(both+",v0=abc", body, []string{"whsec_old"}, time.Minute, now); err != nil {
		t.Errorf("with a v0: %v", err)
	}
}
