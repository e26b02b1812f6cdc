package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/pglocal"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// PostgreSQL stops while two calls are up: the calls go on (audio keeps
// flowing), one ends while the database is down and its record waits in
// the journal; a new call from the same trunk is still recognised and
// answered, one from a source never seen is refused with 503; and when
// the database is back every record is written, once.
func TestDatabaseDownDuringCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "switchboard-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pglocal.Start(ctx, dir)
	if errors.Is(err, pglocal.ErrNotInstalled) {
		requireDependency(t, "PostgreSQL server binaries")
	} else if err != nil {
		t.Fatal(err)
	}
	port := pg.Port()
	t.Cleanup(func() { pg.Stop(); os.RemoveAll(dir) }) // runs after the service's cleanup
	url, err := pg.CreateDatabase(ctx, "switchboard")
	if err != nil {
		t.Fatal(err)
	}
	m := mustStartService(t, map[string]string{"database-url": url})
	f := mustProvision(t, m, "Acme", "2000", 2)
	opA, opB := mustOperator(t, m, f.Operators[0]), mustOperator(t, m, f.Operators[1])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	callA, inA := answeredCall(t, m, phone, opA, "+15550001111", "2000")
	callB, inB := answeredCall(t, m, phone, opB, "+15550002222", "2000")

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	// Call B's audio still crosses the service.
	var heard atomic.Int64
	opB.SetAudioSink(func(p *rtp.Packet) {
		if bytes.Count(p.Payload, []byte{0x5a}) == len(p.Payload) {
			heard.Add(1)
		}
	})
	for range 25 {
		callB.SendRTP(bytes.Repeat([]byte{0x5a}, 160), false)
		time.Sleep(20 * time.Millisecond)
	}
	if n := heard.Load(); n < 20 {
		t.Errorf("with the database down the operator heard %d of 25 packets", n)
	}
	// Call A ends: its record goes to the journal.
	if err := callA.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); m.Journal.Pending() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the ended call's record never reached the journal")
		}
	}
	// The operator is free once the record is written (here: journaled)
	// and they are told the call ended.
	if ev := waitEvent(t, opA, "ended"); ev.CallID != inA.CallID {
		t.Fatalf("operator A told %s ended, want %s", ev.CallID, inA.CallID)
	}
	// A new call from the trunk that called before is recognised from
	// what was last read about it, and answered; its record waits in the
	// journal too.
	callC, inC := answeredCall(t, m, phone, opA, "+15550003333", "2000")
	// A source never seen before cannot be looked up: 503, try later.
	stranger := mustPhone(t, siptest.Options{Transport: "udp", LocalIP: "127.0.0.2"})
	cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
	callD, err := stranger.InviteAsync(cctx, m.SIPAddr(), "+15550004444", "2000")
	if err != nil {
		t.Fatal(err)
	}
	var se *siptest.StatusError
	if err := callD.Wait(cctx); !errors.As(err, &se) || se.Code != 503 {
		t.Errorf("a call from an unknown source while the database is down: %v, want 503", err)
	}
	callD.Close()
	ccancel()

	pg2, err := pglocal.Start(ctx, dir, pglocal.WithPort(port))
	if err != nil {
		t.Fatal(err)
	}
	pg = pg2
	for _, c := range []*siptest.Call{callB, callC} {
		if err := c.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []sb.ID{inA.CallID, inB.CallID, inC.CallID} {
		rec := waitCallEnded(t, m, f.APIKey, in)
		if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.AnsweredAt == nil {
			t.Errorf("record of %s after the outage: %q by %q", in, rec.Status, rec.HangupBy)
		}
		events := callEvents(t, m, f.APIKey, in)
		counts := map[sb.EventType]int{}
		for _, e := range events {
			counts[e]++
		}
		if counts[sb.EventAnswered] != 1 || counts[sb.EventEnded] != 1 || counts[sb.EventReceived] != 1 {
			t.Errorf("timeline of %s: %v, want each step once", in, events)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); m.Journal.Pending() != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records still in the journal", m.Journal.Pending())
		}
	}
	var list struct{ Calls []sb.Call }
	apiGet(t, m, f.APIKey, "/v1/calls", &list)
	if len(list.Calls) != 3 {
		t.Errorf("%d call records, want the 3 calls exactly", len(list.Calls))
	}
}

// mustCallWithGrace is a service that waits 10 s for an operator whose
// page dropped, and a call its operator answered.
func mustCallWithGrace(t *testing.T) (*Main, *tenantFixture, *opclient.Client, *siptest.Call, opclient.Incoming) {
	t.Helper()
	m := mustStartService(t, map[string]string{"reconnect-grace": "10s"})
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	call, in := answeredCall(t, m, mustPhone(t, siptest.Options{Transport: "udp"}), op, "+15550004321", "2000")
	return m, f, op, call, in
}

// The operator's page loses its connection mid-call: the caller stays on
// the line, the operator logs back in on a new connection within the
// grace period, is handed the call back and hears the caller again.
func TestOperatorReconnectsToTheCall(t *testing.T) {
	m, f, op, call, in := mustCallWithGrace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	op.Close() // the network goes
	talking := make(chan struct{})
	go func() {
		defer close(talking)
		for range 100 { // two seconds of the caller talking meanwhile
			call.SendRTP(bytes.Repeat([]byte{0x5a}, 160), false)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	back := mustOperatorClient(t, m, f.Operators[0])
	var heard atomic.Int64
	back.SetAudioSink(func(p *rtp.Packet) {
		if bytes.Count(p.Payload, []byte{0x5a}) == len(p.Payload) {
			heard.Add(1)
		}
	})
	if err := back.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatalf("the operator was not given the call back: %v", err)
	}
	<-talking
	if n := heard.Load(); n < 10 {
		t.Errorf("back on the call, the operator heard %d packets of the caller", n)
	}
	select {
	case <-call.Ended():
		t.Fatal("the caller was hung up on while the operator reconnected")
	default:
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.FailureLeg != "" {
		t.Errorf("record %q by %q, failed on %q", rec.Status, rec.HangupBy, rec.FailureLeg)
	}
	events := callEvents(t, m, f.APIKey, in.CallID)
	if !hasInOrder(events, sb.EventAnswered, sb.EventOperatorLost, sb.EventOperatorBack, sb.EventHungUp) {
		t.Errorf("timeline %v", events)
	}
}

// mustOperatorClient logs the operator in and connects their audio,
// without going available.
func mustOperatorClient(tb testing.TB, m *Main, u *sb.User) *opclient.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := opclient.Login(ctx, m.HTTPURL(), u.Email, testPassword, opclient.WithLoopbackOnly())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

// The operator holds the caller, then their page loses its connection: on
// the new connection the call comes back still on hold (the page is told),
// the caller is not heard and the trunk is not taken off hold, until the
// operator resumes.
func TestHoldSurvivesTheOperatorsReconnect(t *testing.T) {
	m, f, op, call, in := mustCallWithGrace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := op.Hold(ctx, in.CallID, true); err != nil {
		t.Fatal(err)
	}
	waitCallerHeld(ctx, t, call, true)

	op.Close()
	back := mustOperatorClient(t, m, f.Operators[0])
	if err := back.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatalf("the operator was not given the call back: %v", err)
	}
	if err := back.WaitHeld(ctx, in.CallID, true); err != nil {
		t.Fatalf("the page was not told the call is on hold: %v", err)
	}
	heard := newPatternReceiver()
	back.SetAudioSink(func(p *rtp.Packet) { heard.add(p.Payload) })
	sendPattern(t, 15, func(p []byte) error { return call.SendRTP(p, false) })
	time.Sleep(200 * time.Millisecond)
	if n, _ := heard.counts(); n != 0 {
		t.Errorf("after the reconnect the operator heard %d frames of a caller on hold", n)
	}
	if !call.Held() {
		t.Error("the trunk was taken off hold by the reconnect")
	}

	if err := back.Hold(ctx, in.CallID, false); err != nil {
		t.Fatal(err)
	}
	waitCallerHeld(ctx, t, call, false)
	resumed := newPatternReceiver()
	back.SetAudioSink(func(p *rtp.Packet) { resumed.add(p.Payload) })
	sendPattern(t, 10, func(p []byte) error { return call.SendRTP(p, false) })
	resumed.waitFrames(t, 8, "caller → operator after resuming")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if events := callEvents(t, m, f.APIKey, waitCallEnded(t, m, f.APIKey, in.CallID).ID); !hasInOrder(events,
		sb.EventHeld, sb.EventOperatorLost, sb.EventOperatorBack, sb.EventResumed, sb.EventHungUp) {
		t.Errorf("timeline %v", events)
	}
}
