package whatsapp

import (
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// Live calls are known by connection and call ID: a tenant whose Graph
// API URL returned another tenant's call ID (or who guessed one) neither
// blocks that tenant's call with it nor is found for its webhooks; and a
// leg refused because its ID was live drops nothing when it closes.
func TestLiveCallsKeyedByConnection(t *testing.T) {
	s := New(nil, nil, nil, nil)
	const id = "wacid.HBgLMTIxODU1NTI4MjgVAgARGCAy0001"
	a, b := sb.NewID(), sb.NewID()
	squatter := &call{leg: &userLeg{svc: s, conn: a, id: id}, outbound: true}
	real := &call{leg: &userLeg{svc: s, conn: b, id: id}}
	if !s.keep(squatter) {
		t.Fatal("the first call not kept")
	}
	if !s.keep(real) {
		t.Fatal("a call on another connection with the same ID was refused as a replay")
	}
	if s.find(a, id) != squatter || s.find(b, id) != real {
		t.Error("each connection does not find its own call")
	}
	again := &call{leg: &userLeg{svc: s, conn: b, id: id}}
	if s.keep(again) {
		t.Error("the same ID on the same connection kept twice")
	}
	s.forget(again.leg)
	if s.find(b, id) != real {
		t.Error("forgetting a leg never kept dropped the live call with its ID")
	}
	s.forget(real.leg)
	if s.find(b, id) != nil || s.find(a, id) != squatter {
		t.Error("forgetting a call dropped another's or kept its own")
	}
}
