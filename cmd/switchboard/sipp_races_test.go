package main

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/opclient"
)

// sippRig is the binary provisioned for SIPp trunk calls to 2000 from
// 127.0.0.1, with one operator who is available.
type sippRig struct {
	s   *binaryService
	key string // a supervisor's API key
	op  *opclient.Client
}

func mustSIPpRig(t *testing.T, ctx context.Context, env ...string) *sippRig {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	s := mustStartBinary(t, env...)
	tenant := s.run(t, "", "tenant", "create", "--name", "SIPp races")
	s.run(t, testPassword, "user", "create", "--tenant", tenant, "--email", "op@races.test", "--role", "operator")
	s.run(t, "", "trunk", "create", "--tenant", tenant, "--name", "sipp", "--allow", "127.0.0.1/32", "--number", "2000")
	r := &sippRig{s: s, key: s.run(t, "", "apikey", "create", "--tenant", tenant, "--role", "supervisor")}
	var err error
	if r.op, err = opclient.Login(ctx, s.httpURL, "op@races.test", testPassword, opclient.WithLoopbackOnly()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.op.Close() })
	if err := r.op.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.op.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// answer has the operator accept the next call offered, from the given
// number, after the delay; the call's ID comes once accepted (or the
// channel closes).
func (r *sippRig) answer(ctx context.Context, from string, delay time.Duration) <-chan sb.ID {
	answered := make(chan sb.ID, 1)
	go func() {
		defer close(answered)
		select {
		case in := <-r.op.Incoming():
			time.Sleep(delay)
			if in.From == from && r.op.Accept(ctx, in.CallID) == nil {
				answered <- in.CallID
			}
		case <-ctx.Done():
		}
	}()
	return answered
}

// trace is the call's SIP trace and timeline.
func (r *sippRig) trace(t *testing.T, id sb.ID) binaryTrace {
	t.Helper()
	var tr binaryTrace
	r.s.getJSON(t, r.key, "/v1/calls/"+id.String()+"/trace", &tr)
	return tr
}

// TestSIPpCancelLosingTheRaceWithThe200 sends the CANCEL just after the 200
// OK reaches the caller, before and after its ACK: RFC 3261 §9.2, the
// CANCEL has no effect on an INVITE that has its final response. The
// caller's BYE is answered 200 and ends the call at once, completed by the
// caller, and switchboard sends no BYE of its own.
func TestSIPpCancelLosingTheRaceWithThe200(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx)
	for _, c := range []struct{ scenario, from string }{
		{"uac_cancel_after_200.xml", "15550008881"},
		{"uac_cancel_after_ack.xml", "15550008882"},
	} {
		t.Run(c.scenario, func(t *testing.T) {
			answered := r.answer(ctx, c.from, 0)
			start := time.Now()
			if out, err := sipp(ctx, t, c.scenario, "2000", r.s.sipAddr); err != nil {
				t.Errorf("%v\n%s", err, lastLines(string(out), 5))
			}
			id, ok := <-answered
			if !ok {
				t.Fatal("the operator was not offered the call")
			}
			rec := waitBinaryCall(t, r.s, r.key, id)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the call ended %s after it began", took.Round(time.Millisecond))
			}
			if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.FailureStage != "" {
				t.Errorf("record %q by %q, failed at %q; want completed by the caller", rec.Status, rec.HangupBy, rec.FailureStage)
			}
			tr := r.trace(t, id)
			if t.Failed() {
				for _, m := range tr.SIP {
					t.Logf("inbound %v %s\n%s", m.Inbound, m.At, m.Message)
				}
				t.Logf("events %+v", tr.Events)
			}
			if bye, ok := tr.sent("BYE "); ok {
				t.Errorf("switchboard sent a BYE of its own:\n%s", bye)
			}
			if slices.ContainsFunc(tr.Events, func(e sb.CallEvent) bool { return e.Type == sb.EventCanceled }) {
				t.Errorf("the timeline says canceled")
			}
			for _, m := range tr.SIP {
				if !m.Inbound && strings.HasPrefix(m.Message, "SIP/2.0 487") {
					t.Errorf("switchboard answered 487 after its 200:\n%s", m.Message)
				}
			}
		})
	}
}

// TestSIPpNothingAfterThe487 cancels at once, before switchboard rings
// anyone, and leaves the 487 unacknowledged for two seconds: the 487 is
// retransmitted, and no 180 (or anything else) follows it; the call is
// recorded as canceled.
func TestSIPpNothingAfterThe487(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := mustSIPpRig(t, ctx)
	go func() { // the operator may be offered the call before the CANCEL is taken
		for {
			select {
			case <-r.op.Incoming():
			case <-ctx.Done():
				return
			}
		}
	}()
	out, messages, err := sippMessages(ctx, t, "uac_cancel_before_180.xml", "2000", r.s.sipAddr)
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(string(out), 40))
	}
	// SIPp's log of what it received: the 487, again and again until the
	// ACK, and nothing else after it.
	if n := strings.Count(messages, "SIP/2.0 487"); n < 2 {
		t.Errorf("SIPp received the 487 %d times in the two seconds it went unacknowledged, want it retransmitted", n)
	}
	if i := strings.Index(messages, "SIP/2.0 487"); i >= 0 && strings.Contains(messages[i:], "SIP/2.0 180") {
		t.Errorf("SIPp received a 180 after the 487")
	}
	rec := r.callFrom(t, "15550008883")
	if rec.Status != sb.CallCanceled || rec.SIPCode != 487 {
		t.Errorf("record %q with %d, want canceled with 487", rec.Status, rec.SIPCode)
	}
	if strings.Contains(messages, "BYE sip:") {
		t.Errorf("a BYE for a dialog that never was")
	}
}

// callFrom waits for the ended record of the call from the number.
func (r *sippRig) callFrom(t *testing.T, from string) *sb.Call {
	t.Helper()
	var list struct {
		Calls []sb.Call `json:"calls"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r.s.getJSON(t, r.key, "/v1/calls", &list)
		if i := slices.IndexFunc(list.Calls, func(c sb.Call) bool { return c.From == from && c.Status.Ended() }); i >= 0 {
			return &list.Calls[i]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended call from %s among %d", from, len(list.Calls))
		}
	}
}
