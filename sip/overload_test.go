package sip

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
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

// SIP that stands in the UDP socket's queue past Config.QueueDelay sheds
// new calls with 503 and Retry-After, and only them: a call in progress
// is held (re-INVITE) and hung up (BYE) as ever, and new calls are taken
// again once the queue has caught up. The wait is made by running the
// server's clock ahead of the kernel's receive stamps, so that it is the
// same on any machine.
func TestQueueDelayShedsNewCallsOnly(t *testing.T) {
	var ahead atomic.Int64
	ts := mustServer(t, nil, Config{QueueDelay: 100 * time.Millisecond}, func(s *Server) {
		s.clock = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	phone := mustPhone(t, siptest.Options{})
	in, call := answer(t, ts, phone, "udp")
	keepBusy(t, ts.udp)
	time.Sleep(3 * delayWindow)
	if ts.Behind() {
		t.Fatal("behind with every datagram read at once")
	}

	ahead.Store(int64(time.Second))
	waitBehind(t, ts, true)
	ua := mustRawUA(t, ts.udp)
	if code, headers := ua.invite("sip:2000@"+ts.udp, ""); code != 503 || headers["retry-after"] != overloadRetryAfter {
		t.Fatalf("a new call while SIP stands in the queue: %d, Retry-After %q; want 503 with Retry-After %s", code, headers["retry-after"], overloadRetryAfter)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := call.Reinvite(ctx, call.SDP("sendonly"), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE (hold) of the call in progress while behind: %v, %v; want 200", res, err)
	}
	nextEvent(t, in.Leg, sb.LegHeld)
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("BYE of the call in progress while behind: %v", err)
	}
	nextEvent(t, in.Leg, sb.LegHungUp)

	ahead.Store(0)
	waitBehind(t, ts, false)
	if code, _ := ua.invite("sip:2000@"+ts.udp, ""); code != 100 {
		t.Fatalf("a new call once caught up: %d, want 100 Trying", code)
	}
	if c := nextCall(t, ts); c.To != "2000" {
		t.Fatalf("dispatched %+v, want the call to 2000", c)
	}
}

// keepBusy sends two OPTIONS to server every 5 ms until the test ends,
// so that each window of the queue's watch has its reads even when the
// machine is slow to run the sender.
func keepBusy(t *testing.T, server string) {
	conn, err := net.Dial("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done; conn.Close() })
	local := conn.LocalAddr().String()
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i := range 2 {
				id := 2*n + i
				fmt.Fprintf(conn, "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKbusy%d\r\nFrom: <sip:busy@%s>;tag=busy\r\n"+
					"To: <sip:%s>\r\nCall-ID: busy-%d@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", server, local, id, local, server, id)
			}
		}
	}()
}

func waitBehind(t *testing.T, ts *testServer, want bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ts.Behind() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("behind is not %v after 5 s of OPTIONS every 5 ms", want)
		}
	}
}
