package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

const testClusterSecret = "a cluster secret for the tests"

// mustStartInstances runs two instances sharing one database and the
// cluster secret.
func mustStartInstances(t *testing.T) (a, b *Main) {
	t.Helper()
	a = mustStartService(t, map[string]string{"instance": "a", "cluster-secret": testClusterSecret})
	b = mustStartService(t, map[string]string{"instance": "b", "cluster-secret": testClusterSecret,
		"database-url": a.Config.DatabaseURL})
	return a, b
}

// waitRemoteFree waits until m's instance sees n operators of the tenant
// free on the other instances.
func waitRemoteFree(t *testing.T, m *Main, tenantID sb.ID, n int) {
	t.Helper()
	c := metadata.NewCluster(m.DB, m.Config.Instance, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := c.Candidates(context.Background(), tenantID, nil, nil)
		if err == nil && len(got) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s sees %d operators free elsewhere (%v), want %d", m.Config.Instance, len(got), err, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// talkBothWays sends the pattern both ways over an answered call and
// checks it arrives whole.
// talkFrames is how many pattern frames talkBothWays sends each way.
const talkFrames = 50

func talkBothWays(t *testing.T, call *siptest.Call, op *opclient.Client) {
	t.Helper()
	talkBothWaysIn(t, call, op, 0, 0)
}

// talkBothWaysIn is talkBothWays for a call whose codec has payload type
// callerPT on the caller's leg and operatorPT on the operator's: each
// side must get the other's frames, unchanged, in its own.
func talkBothWaysIn(t *testing.T, call *siptest.Call, op *opclient.Client, callerPT, operatorPT uint8) {
	t.Helper()
	toOperator, toCaller := newPatternReceiver(), newPatternReceiver()
	op.SetAudioSink(func(p *rtp.Packet) {
		if p.PayloadType == operatorPT {
			toOperator.add(p.Payload)
		}
	})
	call.SetSink(func(pkt []byte) {
		if h, ok := media.ParseHeader(pkt); ok && h.PayloadType == callerPT {
			toCaller.add(pkt[h.PayloadOffset:h.PayloadEnd])
		}
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendPattern(t, talkFrames, func(p []byte) error { return call.SendRTP(p, false) })
	}()
	sendPattern(t, talkFrames, op.SendAudio)
	wg.Wait()
	toOperator.waitFrames(t, talkFrames*9/10, "caller → operator")
	toCaller.waitFrames(t, talkFrames*9/10, "operator → caller")
	for name, r := range map[string]*patternReceiver{"caller → operator": toOperator, "operator → caller": toCaller} {
		if _, corrupt := r.counts(); corrupt > 0 {
			t.Errorf("%s: %d frames arrived altered or out of order", name, corrupt)
		}
	}
}

// takeOffered has op accept the call offered to them next, which must be
// id, and waits until it is bridged to them.
func takeOffered(ctx context.Context, t *testing.T, op *opclient.Client, id sb.ID) {
	t.Helper()
	if got := waitIncoming(t, op); got.CallID != id {
		t.Fatalf("offered call %s, want %s", got.CallID, id)
	}
	if err := op.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// callerHangsUp hangs the caller up and returns the call's record once
// it is written.
func callerHangsUp(ctx context.Context, t *testing.T, m *Main, key string, call *siptest.Call, id sb.ID) *sb.Call {
	t.Helper()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	return waitCallEnded(t, m, key, id)
}

// countCalls counts the tenant's call records.
func countCalls(t *testing.T, m *Main, tenantID sb.ID) int {
	t.Helper()
	var n int
	if err := dbConn(t, m).QueryRow(context.Background(), `SELECT count(*) FROM calls WHERE tenant_id = $1`, tenantID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Two instances share one PostgreSQL: a call arriving at either reaches an
// operator connected to the other, audio flows both ways, and one record
// is written; an instance stopping takes its operators out of the others'
// view, while the other keeps taking calls.
func TestCallsCrossInstances(t *testing.T) {
	a, b := mustStartInstances(t)
	f := mustProvision(t, a, "Acme", "2000", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The operator is on b; the call comes to a.
	onB := mustOperator(t, b, f.Operators[0])
	waitRemoteFree(t, a, f.Tenant.ID, 1)
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU})
	call, in := answeredCall(t, a, phone, onB, "+15550002222", "2000")
	talkBothWays(t, call, onB)
	if err := onB.Hangup(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("the caller was not hung up on when the operator on the other instance hung up")
	}
	rec := waitCallEnded(t, a, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyOperator || rec.OperatorID == nil || *rec.OperatorID != f.Operators[0].ID {
		t.Errorf("record %q hung up by %q, operator %v; want completed by the operator %s", rec.Status, rec.HangupBy, rec.OperatorID, f.Operators[0].ID)
	}
	if rec.FromCaller.Packets < 45 || rec.ToCaller.Packets < 45 {
		t.Errorf("record packets from caller %d to caller %d, want ≥ 45 each", rec.FromCaller.Packets, rec.ToCaller.Packets)
	}
	events := callEvents(t, a, f.APIKey, in.CallID)
	if !hasInOrder(events, sb.EventReceived, sb.EventHandedOver, sb.EventOffered, sb.EventAnswered, sb.EventEnded) {
		t.Errorf("timeline %v: want the hand-over and the other instance's offer in it", events)
	}
	if n := countCalls(t, a, f.Tenant.ID); n != 1 {
		t.Errorf("%d call records for one call, want 1", n)
	}

	// The other way: the operator on b goes away, one comes on a, and the
	// call comes to b.
	if err := onB.SetAway(ctx); err != nil {
		t.Fatal(err)
	}
	onA := mustOperator(t, a, f.Operators[1])
	waitRemoteFree(t, b, f.Tenant.ID, 1)
	call, in = answeredCall(t, b, phone, onA, "+15550003333", "2000")
	talkBothWays(t, call, onA)
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := onA.WaitEnded(ctx, in.CallID); err != nil {
		t.Fatalf("the operator on a was not told the caller on b hung up: %v", err)
	}
	rec = waitCallEnded(t, b, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("record at b %q hung up by %q, operator %v", rec.Status, rec.HangupBy, rec.OperatorID)
	}
	if n := countCalls(t, a, f.Tenant.ID); n != 2 {
		t.Errorf("%d call records for two calls, want 2", n)
	}

	// b stops: its operator is no longer offered to a's callers, and a
	// goes on taking calls.
	if err := onB.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	waitRemoteFree(t, a, f.Tenant.ID, 1)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	if err := b.Shutdown(sctx); err != nil {
		t.Errorf("b's drain: %v", err)
	}
	scancel()
	waitRemoteFree(t, a, f.Tenant.ID, 0)
	call, in = answeredCall(t, a, phone, onA, "+15550004444", "2000")
	if rec := callerHangsUp(ctx, t, a, f.APIKey, call, in.CallID); rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("after b stopped, a's call went to %v", rec.OperatorID)
	}
}

// A hand-over without the cluster's secret is refused like an unknown
// trunk.
func TestForgedHandOverIsRefused(t *testing.T) {
	a, _ := mustStartInstances(t)
	f := mustProvision(t, a, "Acme", "2000", 1, "192.0.2.0/24") // the phone is no trunk
	op := mustOperator(t, a, f.Operators[0])
	forged := sb.SealHop([]byte("not the cluster's secret at all"), sb.Hop{CallID: sb.NewID(), TenantID: f.Tenant.ID,
		OperatorID: f.Operators[0].ID, From: "+15550009999", To: "2000", Instance: "x", Expires: time.Now().Add(time.Minute)})
	phone := mustPhone(t, siptest.Options{Transport: "udp", Headers: map[string]string{sb.HopHeader: forged}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := phone.Invite(ctx, a.SIPAddr(), "+15550009999", "2000")
	if se := (*siptest.StatusError)(nil); !errors.As(err, &se) || se.Code != 403 {
		t.Errorf("forged hand-over: %v, want 403", err)
	}
	select {
	case in := <-op.Incoming():
		t.Errorf("the operator was offered a forged hand-over: %+v", in)
	case <-time.After(300 * time.Millisecond):
	}
}

// A draining instance sends its operators to the others: one who is free
// is told to move at once (and the socket closes), a new socket is
// refused the same way, and one on a call keeps it, audio and all, and is
// moved when it ends. The moved operator, connected to the other
// instance, takes that instance's calls.
func TestDrainingInstanceMovesItsOperators(t *testing.T) {
	a, b := mustStartInstances(t)
	f := mustProvision(t, a, "Acme", "2000", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	busy := mustOperator(t, b, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU})
	call, _ := answeredCall(t, b, phone, busy, "+15550002222", "2000")
	free := mustOperator(t, b, f.Operators[1])

	drained := make(chan error, 1)
	go func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		drained <- b.Shutdown(sctx)
	}()
	if reason, err := free.WaitMoving(ctx); err != nil || reason == "" {
		t.Fatalf("the free operator on the draining instance: %q, %v; want moved with a reason", reason, err)
	}
	late, err := opclient.Login(ctx, b.HTTPURL(), f.Operators[2].Email, testPassword, opclient.WithLoopbackOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if err := late.Connect(ctx); !errors.Is(err, opclient.ErrMoving) {
		t.Errorf("a new operator socket on the draining instance: %v, want %v", err, opclient.ErrMoving)
	}

	talkBothWays(t, call, busy) // the call in progress goes on
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if _, err := busy.WaitMoving(wctx); err == nil {
		t.Error("the operator on a call was moved during it")
	}
	wcancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := busy.WaitMoving(ctx); err != nil {
		t.Errorf("the operator whose call ended on the draining instance was not moved: %v", err)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("drain: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the drain did not end once the call was over")
	}

	moved := mustOperator(t, a, f.Operators[1])
	call, in := answeredCall(t, a, phone, moved, "+15550003333", "2000")
	talkBothWays(t, call, moved)
	if rec := callerHangsUp(ctx, t, a, f.APIKey, call, in.CallID); rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("the moved operator's call on a went to %v", rec.OperatorID)
	}
}

// An operator transfers a call to an operator connected to the other
// instance: the call is handed over there, audio flows to the new
// operator, and the one record (kept where the call arrived) names them
// and tells the transfer and the hand-over.
func TestTransferToOperatorOnAnotherInstance(t *testing.T) {
	a, b := mustStartInstances(t)
	f := mustProvision(t, a, "Acme", "2000", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	first := mustOperator(t, a, f.Operators[0])
	second := mustOperator(t, b, f.Operators[1])
	waitRemoteFree(t, a, f.Tenant.ID, 1)
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU})
	call, in := answeredCall(t, a, phone, first, "+15550002222", "2000")
	talkBothWays(t, call, first)

	if err := first.Transfer(ctx, in.CallID, f.Operators[1].ID); err != nil {
		t.Fatal(err)
	}
	if reason, err := first.WaitEnded(ctx, in.CallID); err != nil || reason != "transferred" {
		t.Errorf("the first operator's end of the call: %q, %v", reason, err)
	}
	takeOffered(ctx, t, second, in.CallID)
	talkBothWays(t, call, second)
	rec := callerHangsUp(ctx, t, a, f.APIKey, call, in.CallID)
	if _, err := second.WaitEnded(ctx, in.CallID); err != nil {
		t.Errorf("the operator on b was not told the caller hung up: %v", err)
	}
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("record %q by %q, operator %v; want completed by the caller, with the operator on b", rec.Status, rec.HangupBy, rec.OperatorID)
	}
	if events := callEvents(t, a, f.APIKey, in.CallID); !hasInOrder(events, sb.EventAnswered, sb.EventTransferred, sb.EventHandedOver, sb.EventAnswered, sb.EventEnded) {
		t.Errorf("timeline %v: want the transfer and the hand-over in it", events)
	}
	if n := countCalls(t, a, f.Tenant.ID); n != 1 {
		t.Errorf("%d call records for one call, want 1", n)
	}
}

// A transfer into a queue whose only free member is connected to the
// other instance reaches them there; a caller who hangs up while that
// member is being rung ends the call as the caller's hangup, with the
// member's offer withdrawn.
func TestTransferToQueueAcrossInstances(t *testing.T) {
	a, b := mustStartInstances(t)
	f := mustProvision(t, a, "Acme", "2000", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"queue", "create", "-database-url", a.Config.DatabaseURL, "-tenant", f.Tenant.ID.String(),
		"-name", "billing", "-max-wait", "10s", "-member", f.Operators[1].Email}, nil, &out, &errOut); err != nil {
		t.Fatalf("queue create: %v\n%s", err, errOut.String())
	}
	billing, err := sb.ParseID(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	first := mustOperator(t, a, f.Operators[0])
	member := mustOperator(t, b, f.Operators[1])
	waitRemoteFree(t, a, f.Tenant.ID, 1)
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU})

	// Taken by the member on b.
	call, in := answeredCall(t, a, phone, first, "+15550002222", "2000")
	if err := first.TransferToQueue(ctx, in.CallID, billing); err != nil {
		t.Fatal(err)
	}
	takeOffered(ctx, t, member, in.CallID)
	talkBothWays(t, call, member)
	rec := callerHangsUp(ctx, t, a, f.APIKey, call, in.CallID)
	if rec.Status != sb.CallCompleted || rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("record %q, operator %v; want completed with the member on b", rec.Status, rec.OperatorID)
	}

	// The caller hangs up while the member on b rings.
	waitRemoteFree(t, a, f.Tenant.ID, 1)
	call, in = answeredCall(t, a, phone, first, "+15550003333", "2000")
	if err := first.TransferToQueue(ctx, in.CallID, billing); err != nil {
		t.Fatal(err)
	}
	if got := waitIncoming(t, member); got.CallID != in.CallID {
		t.Fatalf("the member on b was offered %s, want %s", got.CallID, in.CallID)
	}
	rec = callerHangsUp(ctx, t, a, f.APIKey, call, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyCaller || rec.AnsweredAt == nil {
		t.Errorf("record %q by %q (answered %v); want the answered call completed by the caller", rec.Status, rec.HangupBy, rec.AnsweredAt)
	}
	if n := countCalls(t, a, f.Tenant.ID); n != 2 {
		t.Errorf("%d call records for two calls, want 2", n)
	}
}

// A call handed over to another instance is recorded where it arrived:
// consent stated through the API there starts the recording, which holds
// both sides of the call; the operator on the other instance cannot state
// consent for it (refused, saying why) rather than seeming to.
func TestHandedOverCallIsRecordedWhereItArrived(t *testing.T) {
	a := mustStartService(t, map[string]string{"instance": "a", "cluster-secret": testClusterSecret,
		"recordings": t.TempDir(), "keyring": testKeyring})
	b := mustStartService(t, map[string]string{"instance": "b", "cluster-secret": testClusterSecret,
		"database-url": a.Config.DatabaseURL})
	f := mustProvision(t, a, "Acme", "2000", 1)
	if err := metadata.NewTenantService(a.DB).SetRecordingPolicy(context.Background(), f.Tenant.ID, sb.RecordWithConsent); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	onB := mustOperator(t, b, f.Operators[0])
	waitRemoteFree(t, a, f.Tenant.ID, 1)
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMU})
	call, in := answeredCall(t, a, phone, onB, "+15550002222", "2000")

	if err := onB.Consent(ctx, in.CallID, true); err != nil {
		t.Fatal(err)
	}
	if pe, err := onB.WaitRefused(ctx, "consent"); err != nil || pe.Code != sb.ECONFLICT || !strings.Contains(pe.Message, "handed over") {
		t.Errorf("consent from the operator on b: %+v, %v; want refused as handed over", pe, err)
	}
	crm := &person{t: t, m: a, key: f.APIKey}
	if code, body := crm.do("POST", "/v1/calls/"+in.CallID.String()+"/consent", `{"given":true}`, nil); code/100 != 2 {
		t.Fatalf("consent through a's API: %d %s", code, body)
	}
	talkBothWays(t, call, onB)
	callerHangsUp(ctx, t, a, f.APIKey, call, in.CallID)
	rec, code := callRecording(t, a, f.APIKey, in.CallID)
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d", code)
	}
	if rec.Status != sb.RecordingComplete || rec.Consent.Mechanism != sb.ConsentAPI || rec.DurationMS < 500 {
		t.Errorf("recording %q by %q, %d ms; want complete, consented through the API, holding the talk", rec.Status, rec.Consent.Mechanism, rec.DurationMS)
	}
	if events := callEvents(t, a, f.APIKey, in.CallID); !hasInOrder(events, sb.EventHandedOver, sb.EventAnswered, sb.EventConsent, sb.EventRecordingStarted, sb.EventRecordingStored, sb.EventEnded) {
		t.Errorf("timeline %v: want the consent and the recording after the hand-over", events)
	}
}
