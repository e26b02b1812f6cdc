package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// The signature is HMAC-SHA256 over "<unix seconds>.<body>", as a
// receiver recomputes it from the header and the body it got.
func TestSign(t *testing.T) {
	secret, body, at := []byte("whsec_test"), []byte(`{"event":"call.ended"}`), time.Unix(1795550000, 0)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("1795550000." + string(body)))
	want := "t=1795550000,v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := Sign(secret, body, at); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if Sign([]byte("other"), body, at) == want || Sign(secret, []byte(`{"event":"call.offered"}`), at) == want ||
		Sign(secret, body, at.Add(time.Second)) == want {
		t.Error("the signature does not cover the secret, the body and the time")
	}
}
