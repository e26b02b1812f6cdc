package main

import (
	"context"
	"slices"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// TestOperatorSeesRecordingState: the page is told where the recording
// stands when the call is bridged and after every change, whoever made
// it: the PBX's consent header, the operator's pause, an integration's
// resume through the API, the operator's withdrawal of consent.
func TestOperatorSeesRecordingState(t *testing.T) {
	x := mustRecordingFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := func(id sb.ID, state, consent string, paused bool) {
		t.Helper()
		ev, err := x.op.WaitRecording(ctx, id, state, paused)
		if err != nil {
			t.Fatalf("recording %q (paused %v) never shown: %v", state, paused, err)
		}
		if ev.Consent != consent {
			t.Errorf("recording %q shown with consent %q, want %q", state, ev.Consent, consent)
		}
	}
	id := x.call(t, "yes",
		func(id sb.ID) {
			want(id, sb.RecordingOn, "given", false) // the PBX's header
			if err := x.op.PauseRecording(ctx, id, true); err != nil {
				t.Fatal(err)
			}
			want(id, sb.RecordingPaused, "given", true)
		},
		func(id sb.ID) {
			x.recordingControl(t, id, "resume") // an integration, through the API
			want(id, sb.RecordingOn, "given", false)
			if err := x.op.Consent(ctx, id, false); err != nil {
				t.Fatal(err)
			}
			want(id, sb.RecordingOff, "refused", false)
		})
	if events := callEvents(t, x.m, x.f.APIKey, id); !hasInOrder(events, sb.EventRecordingStarted, sb.EventRecordingPaused,
		sb.EventRecordingResumed, sb.EventConsent, sb.EventRecordingDestroyed) {
		t.Errorf("events %v lack the operator's pause, the API's resume and the withdrawal", events)
	}
	// The operator's pause and the integration's resume are audited, as
	// consent is: what is kept of the caller's voice changed.
	operator := x.f.Operators[0].ID
	audited := func(id sb.ID, action string, byOperator bool) {
		t.Helper()
		var got []*sb.AuditEntry
		for _, e := range auditOf(t, x.m, x.f.Tenant.ID, action) {
			if e.ResourceType == "call" && e.ResourceID == id.String() {
				got = append(got, e)
			}
		}
		if len(got) != 1 || got[0].Outcome != "ok" ||
			byOperator && (got[0].ActorUserID == nil || *got[0].ActorUserID != operator || got[0].ActorRole != sb.RoleOperator) ||
			!byOperator && (got[0].ActorKeyID == nil || got[0].ActorUserID != nil) {
			t.Errorf("%s of call %s: audit %+v", action, id, got)
		}
	}
	audited(id, "recording.pause", true)
	audited(id, "recording.resume", false)

	// A call nobody consented to is shown as not recorded from the start,
	// and a pause the operator asks for stands for a recording to come.
	id = x.call(t, "", func(id sb.ID) {
		want(id, sb.RecordingOff, "", false)
		if err := x.op.PauseRecording(ctx, id, true); err != nil {
			t.Fatal(err)
		}
		want(id, sb.RecordingOff, "", true)
	})
	if events := callEvents(t, x.m, x.f.APIKey, id); slices.Contains(events, sb.EventRecordingStarted) {
		t.Errorf("events %v: a call without consent was recorded", events)
	}
	audited(id, "recording.pause", true)
}

// TestOperatorDesk: what the operator page reads over the socket. Who
// calls (trunk, number dialled, earlier calls), the calls that reached the
// operator (a declined one included), the colleagues free to take a
// transfer, and no dial form without an outbound route; a call never
// offered to the operator is not described to them.
func TestOperatorDesk(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 2)
	first := mustOperator(t, m, f.Operators[0]) // idle longest: offered first
	second := mustOperator(t, m, f.Operators[1])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if first.CanDial() {
		t.Error("hello offers a dial form to a tenant without an outbound route")
	}

	// Another tenant's people and queues are no colleagues.
	other := mustProvision(t, m, "Other", "2001", 1)
	mustOperator(t, m, other.Operators[0])
	for _, q := range []*sb.Queue{{TenantID: f.Tenant.ID, Name: "Billing"}, {TenantID: other.Tenant.ID, Name: "Elsewhere"}} {
		q.MaxWait, q.Overflow = time.Minute, sb.Overflow{Kind: sb.OverflowReject}
		if err := metadata.NewQueueStore(m.DB).CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	ops, queues, err := first.Directory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].ID != f.Operators[1].ID || ops[0].State != "available" || ops[0].Name == "" ||
		len(queues) != 1 || queues[0].Name != "Billing" || queues[0].Waiting != 0 {
		t.Errorf("directory: %+v %+v, want the other operator, available, by name, and the tenant's queue", ops, queues)
	}

	// The first declines a call; the second takes it.
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	done := make(chan error, 1)
	var call *siptest.Call
	go func() {
		var err error
		call, err = phone.Invite(ctx, m.SIPAddr(), "3000", "2000")
		done <- err
	}()
	in := waitIncoming(t, first)
	if err := first.Decline(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := second.Accept(ctx, waitIncoming(t, second).CallID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, err := second.Caller(ctx, in.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if info.From != "3000" || info.To != "2000" || info.Channel != "phone" || info.Via != f.Trunk.Name || len(info.Earlier) != 0 {
		t.Errorf("caller %+v, want 3000 dialling 2000 through trunk %q, no earlier calls", info, f.Trunk.Name)
	}
	ops, _, err = first.Directory(ctx)
	if err != nil || len(ops) != 1 || ops[0].State != "busy" {
		t.Errorf("directory during the call: %+v %v, want the other operator busy", ops, err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	call.Close()
	waitCallEnded(t, m, f.APIKey, in.CallID)

	for _, want := range []struct {
		op      *opclient.Client
		outcome string
	}{{first, "declined"}, {second, "answered"}} {
		if c := recentCall(t, want.op, in.CallID); c.Outcome != want.outcome || c.Number != "3000" || c.Channel != "phone" {
			t.Errorf("recent call %+v, want %s, from 3000 by phone", c, want.outcome)
		}
	}

	// The same caller again: their earlier call is shown.
	call2, in2 := answeredCall(t, m, phone, first, "3000", "2000")
	defer call2.Close()
	info, err = first.Caller(ctx, in2.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Earlier) != 1 || info.Earlier[0].CallID != in.CallID || info.Earlier[0].Status != sb.CallCompleted {
		t.Errorf("earlier calls %+v, want the completed first call", info.Earlier)
	}
	// A call not offered to this socket is not described, though the
	// tenant's: the second was never offered the second call.
	if _, err := second.Caller(ctx, in2.CallID); err == nil {
		t.Error("a call never offered to the operator was described")
	}
	if _, err := first.Caller(ctx, sb.NewID()); err == nil {
		t.Error("an unknown call was described")
	}

	// A caller who gives up while it rings: the page is told, and its
	// recent calls, read at once, say so.
	ringing, err := phone.InviteAsync(ctx, m.SIPAddr(), "3001", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer ringing.Close()
	in3 := waitIncoming(t, second)
	select {
	case <-ringing.Ringing():
	case <-ctx.Done():
		t.Fatal("the call never rang")
	}
	if err := ringing.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.WaitRevoked(ctx, in3.CallID); err != nil {
		t.Fatal(err)
	}
	if c := recentCall(t, second, in3.CallID); c.Outcome != "canceled" || c.Number != "3001" {
		t.Errorf("the call the caller gave up is %+v in recent calls, want canceled, from 3001", c)
	}

	// A tenant that shows its operators only the last digits: the desk
	// masks as the offer does.
	if err := metadata.NewTenantService(m.DB).SetPrivacyPolicy(ctx, f.Tenant.ID,
		sb.PrivacyPolicy{CallRetentionDays: 30, QualityRetentionDays: 30, MaskOperatorNumbers: true}); err != nil {
		t.Fatal(err)
	}
	masked := mustOperator(t, m, f.Operators[1]) // a new socket reads the policy
	long, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550009999", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	in4 := waitIncoming(t, masked)
	if in4.From != "+*******9999" {
		t.Errorf("offered from %q, want it masked", in4.From)
	}
	info, err = masked.Caller(ctx, in4.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if info.From != in4.From || info.To != "2000" {
		t.Errorf("caller from %q to %q, want masked as the offer: %q", info.From, info.To, in4.From)
	}
	if err := masked.Decline(ctx, in4.CallID); err != nil {
		t.Fatal(err)
	}
	// The page reads its recent calls when the offer is withdrawn, which
	// follows the decline's record.
	if err := masked.WaitRevoked(ctx, in4.CallID); err != nil {
		t.Fatal(err)
	}
	if c := recentCall(t, masked, in4.CallID); c.Number != in4.From || c.Outcome != "declined" {
		t.Errorf("recent call %+v, want declined from %q", c, in4.From)
	}
}

// recentCall finds a call among the operator's recent calls.
func recentCall(t *testing.T, op *opclient.Client, id sb.ID) sb.RecentCall {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls, err := op.Recent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.CallID == id {
			return c
		}
	}
	return sb.RecentCall{Outcome: "absent"}
}
