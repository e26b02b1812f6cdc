package main

import (
	"net/http"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// An integration attaches its reference and labels to a call, finds the
// call by its reference, and ends it; an operator may do neither.
func TestIntegrationReferencesAndHangup(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	path := "/v1/calls/" + in.CallID.String()
	crm := &person{t: t, m: m, key: f.APIKey}
	var c sb.Call
	if code, body := crm.do("PATCH", path, `{"external_ref":"CRM-4711","labels":["vip","callback"]}`, &c); code != 200 ||
		c.ExternalRef != "CRM-4711" || len(c.Labels) != 2 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	if code, _ := crm.do("PATCH", path, `{"labels":["`+string(make([]byte, 60))+`"]}`, nil); code != 400 {
		t.Errorf("a label too long: %d, want 400", code)
	}
	if code, _ := crm.do("PATCH", path, `{"colour":"red"}`, nil); code != 400 {
		t.Errorf("an unknown field: %d, want 400", code)
	}
	operator := mustLogin(t, m, f.Operators[0])
	if code, _ := operator.do("PATCH", path, `{"external_ref":"mine"}`, nil); code != 403 {
		t.Errorf("an operator setting a reference: %d, want 403", code)
	}
	var list struct{ Calls []*sb.Call }
	if code, _ := crm.do("GET", "/v1/calls?external_ref=CRM-4711", "", &list); code != 200 || len(list.Calls) != 1 || list.Calls[0].ID != in.CallID {
		t.Errorf("calls by reference: %d %v", code, list.Calls)
	}

	if code, _ := operator.do("POST", path+"/hangup", "", nil); code != 403 {
		t.Errorf("an operator ending a call through the API: %d, want 403", code)
	}
	if code, body := crm.do("POST", path+"/hangup", "", nil); code != http.StatusAccepted {
		t.Fatalf("hangup: %d %s", code, body)
	}
	select {
	case <-call.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the caller got no BYE")
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	if rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartySystem || rec.Reason != "ended through the API" || rec.ExternalRef != "CRM-4711" {
		t.Errorf("record %+v", rec)
	}
	if code, _ := crm.do("POST", path+"/hangup", "", nil); code != http.StatusConflict {
		t.Errorf("ending an ended call: %d, want 409", code)
	}
	if got := auditActions(t, m, f.Tenant.ID); !containsInOrder(got, "call.hangup") {
		t.Errorf("audit %v lacks the hangup", got)
	}
}
