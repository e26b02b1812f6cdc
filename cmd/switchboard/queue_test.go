package main

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// A number leads to a queue made with the command line. A caller who finds
// its member away waits with ringback and is answered when the member comes
// back; a caller nobody answers within the queue's wait is forwarded to a
// SIP URI (a SIPp extension), hears it, and is hung up on by it.
func TestQueueWaitsThenForwards(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vm, vmDone := carrierSIPp(ctx, t, "uas_answer_bye.xml")
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"queue", "create", "-database-url", m.Config.DatabaseURL, "-tenant", f.Tenant.ID.String(),
		"-name", "sales", "-max-wait", "3s", "-overflow", "uri:sip:vm@" + vm, "-member", f.Operators[0].Email, "-number", "2000"},
		nil, &out, &errOut)
	if err != nil {
		t.Fatalf("queue create: %v\n%s", err, errOut.String())
	}
	queueID := strings.TrimSpace(out.String())
	setDialTargets(t, m, f.Tenant.ID, "127.0.0.1")
	phone := mustPhone(t, siptest.Options{Transport: "udp"})

	t.Run("forwarded after the wait", func(t *testing.T) {
		start := time.Now()
		call, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550001111", "2000")
		if err != nil {
			t.Fatal(err)
		}
		defer call.Close()
		select {
		case <-call.Ringing():
		case <-ctx.Done():
			t.Fatal("no ringback while waiting")
		}
		var queues struct {
			Queues []struct {
				ID      string `json:"id"`
				Waiting int    `json:"waiting"`
			} `json:"queues"`
		}
		if code := apiGet(t, m, f.APIKey, "/v1/queues", &queues); code != 200 || len(queues.Queues) != 1 ||
			queues.Queues[0].ID != queueID || queues.Queues[0].Waiting != 1 {
			t.Errorf("GET /v1/queues: %d %+v, want sales with one caller waiting", code, queues)
		}
		if err := call.Wait(ctx); err != nil {
			t.Fatalf("the forwarded call was not answered: %v", err)
		}
		if waited := time.Since(start); waited < 3*time.Second {
			t.Errorf("answered after %s, before the queue's 3 s wait", waited)
		}
		var heard atomic.Int64
		call.SetSink(func([]byte) { heard.Add(1) })
		sendPattern(t, 50, func(p []byte) error { return call.SendRTP(p, false) })
		select {
		case <-call.Ended():
		case <-ctx.Done():
			t.Fatal("the extension's BYE never reached the caller")
		}
		if n := heard.Load(); n < 40 {
			t.Errorf("caller heard %d packets of the extension's audio", n)
		}
		if err := <-vmDone; err != nil {
			t.Error(err)
		}
		var list struct {
			Calls []sb.Call `json:"calls"`
		}
		apiGet(t, m, f.APIKey, "/v1/calls", &list)
		if len(list.Calls) != 1 {
			t.Fatalf("%d calls listed", len(list.Calls))
		}
		rec := waitCallEnded(t, m, f.APIKey, list.Calls[0].ID)
		if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyForwarded || rec.OperatorID != nil || rec.FromCaller.Packets < 40 {
			t.Errorf("record %q by %q, operator %v, %d packets from the caller", rec.Status, rec.HangupBy, rec.OperatorID, rec.FromCaller.Packets)
		}
		var events struct {
			Events []sb.CallEvent `json:"events"`
		}
		apiGet(t, m, f.APIKey, "/v1/calls/"+rec.ID.String()+"/events", &events)
		var types []sb.EventType
		for _, e := range events.Events {
			types = append(types, e.Type)
		}
		for _, want := range []sb.EventType{sb.EventQueued, sb.EventQueueTimeout, sb.EventForwarded, sb.EventAnswered} {
			if !slices.Contains(types, want) {
				t.Errorf("timeline %v lacks %s", types, want)
			}
		}
	})

	t.Run("answered when the member comes back", func(t *testing.T) {
		call, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550002222", "2000")
		if err != nil {
			t.Fatal(err)
		}
		defer call.Close()
		<-call.Ringing()
		op := mustOperator(t, m, f.Operators[0]) // connects and goes available
		in := waitIncoming(t, op)
		if in.From != "+15550002222" {
			t.Errorf("offered a call from %q", in.From)
		}
		if err := op.Accept(ctx, in.CallID); err != nil {
			t.Fatal(err)
		}
		if err := call.Wait(ctx); err != nil {
			t.Fatalf("not answered: %v", err)
		}
		if err := call.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		if rec := waitCallEnded(t, m, f.APIKey, in.CallID); rec.Status != sb.CallCompleted || rec.OperatorID == nil {
			t.Errorf("record %q, operator %v", rec.Status, rec.OperatorID)
		}
	})
}

// Blind transfers of an answered call: an integration hands it to a
// queue through the API, the queue's member takes it, and then transfers
// it from their page's socket to a SIP URI (a SIPp extension), which the
// caller hears until it hangs up.
func TestTransferToQueueThenSIPURI(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vm, vmDone := carrierSIPp(ctx, t, "uas_answer_bye.xml")
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"queue", "create", "-database-url", m.Config.DatabaseURL, "-tenant", f.Tenant.ID.String(),
		"-name", "billing", "-max-wait", "10s", "-member", f.Operators[1].Email}, nil, &out, &errOut); err != nil {
		t.Fatalf("queue create: %v\n%s", err, errOut.String())
	}
	billing := strings.TrimSpace(out.String())
	first := mustOperator(t, m, f.Operators[0]) // idle longest: offered first
	member := mustOperator(t, m, f.Operators[1])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, first, "+15550003333", "2000")
	path := "/v1/calls/" + in.CallID.String()

	crm := &person{t: t, m: m, key: f.APIKey}
	if code, _ := crm.do("POST", path+"/transfer", `{"queue_id":"`+billing+`","uri":"sip:a@b"}`, nil); code != 400 {
		t.Errorf("a transfer to two places: %d, want 400", code)
	}
	if code, body := crm.do("POST", path+"/transfer", `{"queue_id":"`+billing+`"}`, nil); code != http.StatusAccepted {
		t.Fatalf("transfer to the queue: %d %s", code, body)
	}
	if got := waitIncoming(t, member); got.CallID != in.CallID {
		t.Fatalf("member offered %s", got.CallID)
	}
	if err := member.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := member.WaitConnected(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}

	// Nowhere is a dial target until the tenant lists it; then only what
	// it lists. The refused transfer leaves the call with the member.
	for _, targets := range []string{"", "127.0.0.2,vm.example.com"} {
		setDialTargets(t, m, f.Tenant.ID, targets)
		if err := member.TransferToURI(ctx, in.CallID, "sip:vm@"+vm); err == nil || !strings.Contains(err.Error(), "dial targets") {
			t.Errorf("transfer to %s with dial targets %q: %v, want refused", vm, targets, err)
		}
	}
	setDialTargets(t, m, f.Tenant.ID, "127.0.0.1")
	if err := member.TransferToURI(ctx, in.CallID, "sip:vm@"+vm); err != nil {
		t.Fatal(err)
	}
	// Each transfer out of the tenant's operators was audited before it was
	// tried; the two refused ones once more, as failed.
	entries, err := metadata.NewAuditLog(m.DB).Recent(ctx, &f.Tenant.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	tried, failed := 0, 0
	for _, e := range entries {
		if e.Action == "call.transfer" && e.ActorUserID != nil && *e.ActorUserID == f.Operators[1].ID {
			if e.Outcome == "failed" {
				failed++
			} else {
				tried++
			}
		}
	}
	if tried != 3 || failed != 2 {
		t.Errorf("the member's transfers to a SIP URI audited %d times, %d failed; want 3, 2 failed", tried, failed)
	}
	var heard atomic.Int64
	call.SetSink(func([]byte) { heard.Add(1) })
	sendPattern(t, 50, func(p []byte) error { return call.SendRTP(p, false) })
	select {
	case <-call.Ended():
	case <-ctx.Done():
		t.Fatal("the extension's BYE never reached the caller")
	}
	if err := <-vmDone; err != nil {
		t.Error(err)
	}
	if n := heard.Load(); n < 40 {
		t.Errorf("caller heard %d packets from the extension", n)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyForwarded || rec.OperatorID == nil || *rec.OperatorID != f.Operators[1].ID {
		t.Errorf("record %q by %q, last operator %v", rec.Status, rec.HangupBy, rec.OperatorID)
	}
	var events struct {
		Events []sb.CallEvent `json:"events"`
	}
	apiGet(t, m, f.APIKey, path+"/events", &events)
	transfers := 0
	for _, e := range events.Events {
		if e.Type == sb.EventTransferred {
			transfers++
		}
	}
	if transfers != 2 {
		t.Errorf("%d transfers on the timeline, want 2", transfers)
	}
	if got := auditActions(t, m, f.Tenant.ID); !containsInOrder(got, "call.transfer") {
		t.Errorf("audit %v lacks the API's transfer", got)
	}
}

// setDialTargets lists where the tenant's transfers and forwards to SIP
// URIs may go, as the service's operator does.
func setDialTargets(t *testing.T, m *Main, tenantID sb.ID, targets string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"tenant", "set", "-database-url", m.Config.DatabaseURL, "-tenant", tenantID.String(),
		"-dial-targets", targets}, nil, &out, &errOut); err != nil {
		t.Fatalf("tenant set -dial-targets %q: %v\n%s", targets, err, errOut.String())
	}
}
