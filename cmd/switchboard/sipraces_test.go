package main

import (
	"context"
	"errors"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// A caller who gives up as the 200 OK reaches them sends BYE instead of
// the ACK: the BYE is answered, and the call is recorded at once as
// answered and ended by the caller, not as a failure ("no ACK for the 200
// OK") half a minute later, and the operator is free again.
func TestByeBeforeAckIsTheCallerHangingUp(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp", HangUpBeforeAck: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550001111", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	in := waitIncoming(t, op)
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := call.Wait(ctx); !errors.Is(err, siptest.ErrHungUpBeforeAck) {
		t.Fatalf("the caller's call: %v, want hung up before the ACK (its BYE answered)", err)
	}
	start := time.Now()
	c := waitCallEnded(t, m, f.APIKey, in.CallID)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the record ended %s after the BYE", took)
	}
	if c.Status != sb.CallCompleted || c.HangupBy != sb.PartyCaller || c.AnsweredAt == nil || c.FailureStage != "" || c.SIPCode != 200 {
		t.Errorf("record: %s by %s, answered %v, failed at %q, SIP %d; want completed by the caller, answered, no failure",
			c.Status, c.HangupBy, c.AnsweredAt, c.FailureStage, c.SIPCode)
	}
	if ev := waitEvent(t, op, "ended"); ev.CallID != in.CallID {
		t.Errorf("operator told %s ended, want %s", ev.CallID, in.CallID)
	}
}
