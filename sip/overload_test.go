package sip

import (
	"sync/atomic"
	"testing"
	"time"
)

// Past its capacity the service refuses a new call at once with 503 and a
// Retry-After, hands call control nothing and records nothing; below it,
// the same INVITE is taken.
func TestOverloadRefusesNewCallsWith503(t *testing.T) {
	var overloaded atomic.Bool
	overloaded.Store(true)
	ts := mustServer(t, nil, Config{Overloaded: overloaded.Load})
	ua := mustRawUA(t, ts.udp)
	code, headers := ua.invite("sip:2000@"+ts.udp, "")
	if code != 503 || headers["retry-after"] != overloadRetryAfter {
		t.Fatalf("INVITE while overloaded: %d, Retry-After %q; want 503 with Retry-After %s", code, headers["retry-after"], overloadRetryAfter)
	}
	select {
	case c := <-ts.calls:
		t.Fatalf("call control was handed a call while overloaded: %+v", c)
	case r := <-ts.refused:
		t.Fatalf("a refusal for overload was recorded: %+v", r)
	default:
	}
	overloaded.Store(false)
	if code, _ := ua.invite("sip:2000@"+ts.udp, ""); code != 100 {
		t.Fatalf("INVITE with room again: %d, want 100 Trying", code)
	}
	select {
	case <-ts.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("the call was not handed to call control")
	}
}
