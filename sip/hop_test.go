package sip

import (
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// A hand-over token is good for one INVITE, the one whose Call-ID it is
// bound to: sent again, or on another INVITE, it gets 403 and reaches no
// call.
func TestHandOverTokenIsSingleUse(t *testing.T) {
	secret := []byte("the cluster's secret, 16+ characters")
	ts := mustServer(t, nil, Config{HopSecret: secret})
	hop := sb.Hop{CallID: sb.NewID(), TenantID: sb.NewID(), OperatorID: sb.NewID(), From: "3000", To: "2000", Instance: "a", Expires: time.Now().Add(sb.HopLifetime)}
	token := sb.SealHop(secret, hop)
	header := sb.HopHeader + ": " + token
	ruri := "sip:2000@" + ts.udp

	instance := mustRawUA(t, ts.udp)
	if code, _ := instance.invite(ruri, sb.HopSIPCallID(token), header); code != 100 {
		t.Fatalf("the hand-over was answered %d", code)
	}
	if in := nextCall(t, ts); in.Hop == nil || in.Hop.CallID != hop.CallID {
		t.Fatalf("dispatched %+v, want the hand-over of call %s", in, hop.CallID)
	}

	attacker := mustRawUA(t, ts.udp)
	for name, callID := range map[string]string{"replayed": sb.HopSIPCallID(token), "on another INVITE": ""} {
		if code, _ := attacker.invite(ruri, callID, header); code != 403 {
			t.Errorf("a hand-over token %s was answered %d, want 403", name, code)
		}
	}
	// A token sealed without a Call-ID binding is no better.
	if code, _ := attacker.invite(ruri, "", sb.HopHeader+": "+sb.SealHop(secret, hop)); code != 403 {
		t.Errorf("a fresh token on an INVITE with another Call-ID was answered %d, want 403", code)
	}
	select {
	case c := <-ts.calls:
		c.Leg.Close()
		t.Errorf("a replayed hand-over reached call control: %+v", c)
	case <-time.After(50 * time.Millisecond):
	}
}
