package sip

import (
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
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

// Overload sheds new calls only: a hand-over from another instance (a call
// already answered, its record written there) is taken under the same
// backlog, while a hand-over with a bad token is still refused as one.
func TestOverloadTakesHandOvers(t *testing.T) {
	secret := []byte("the cluster's secret, 16+ characters")
	ts := mustServer(t, nil, Config{HopSecret: secret, Overloaded: func() bool { return true }})
	hop := sb.Hop{CallID: sb.NewID(), TenantID: sb.NewID(), OperatorID: sb.NewID(), From: "3000", To: "2000", Instance: "a", Expires: time.Now().Add(sb.HopLifetime)}
	token := sb.SealHop(secret, hop)
	ruri := "sip:2000@" + ts.udp
	ua := mustRawUA(t, ts.udp)
	if code, _ := ua.invite(ruri, "", sb.HopHeader+": "+sb.SealHop([]byte("another cluster's secret, 16+ chars"), hop)); code != 403 {
		t.Errorf("a hand-over with a forged token while overloaded: %d, want 403", code)
	}
	if code, headers := ua.invite(ruri, ""); code != 503 || headers["retry-after"] != overloadRetryAfter {
		t.Fatalf("a new call while overloaded: %d, want 503", code)
	}
	if code, _ := ua.invite(ruri, sb.HopSIPCallID(token), sb.HopHeader+": "+token); code != 100 {
		t.Fatalf("a hand-over while overloaded was answered %d, want 100 Trying", code)
	}
	if in := nextCall(t, ts); in.Hop == nil || in.Hop.CallID != hop.CallID {
		t.Fatalf("dispatched %+v, want the hand-over of call %s", in, hop.CallID)
	}
}
