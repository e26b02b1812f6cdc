package metadata

import (
	"net/netip"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// Calls are read with their operator's and trunk's names, of the call's
// own tenant, and a trunk deleted since keeps the name written on its
// calls; the label and in-progress filters select what they say; Names
// names people, keys, trunks and queues of the actor's tenant only.
func TestCallsReadWithNamesAndFilters(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	acme, other := mustTenant(t, db, "Acme"), mustTenant(t, db, "Other")
	users := NewUserService(db)
	ann := &sb.User{TenantID: acme.ID, Email: "ann@acme.test", Name: "Ann Lee", Role: sb.RoleOperator}
	bob := &sb.User{TenantID: acme.ID, Email: "bob@acme.test", Role: sb.RoleOperator} // no name: the email stands in
	stranger := &sb.User{TenantID: other.ID, Email: "eve@other.test", Name: "Eve", Role: sb.RoleOperator}
	for _, u := range []*sb.User{ann, bob, stranger} {
		if err := users.CreateUser(ctx, u, "long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	trunk := &sb.Trunk{TenantID: acme.ID, Name: "Berlin PBX", Numbers: []string{"100"}, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}
	if err := NewTrunkService(db).CreateTrunk(ctx, trunk, ""); err != nil {
		t.Fatal(err)
	}
	store := NewCallStore(db)
	gone := sb.NewID()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mk := func(i int, op *sb.User, trunkID *sb.ID, status sb.CallStatus, ref string, labels ...string) *sb.Call {
		t.Helper()
		c := &sb.Call{TenantID: acme.ID, Direction: sb.Inbound, From: "+4930", To: "100", TrunkID: trunkID, Status: status,
			CreatedAt: base.Add(time.Duration(i) * time.Second), ExternalRef: ref, Labels: labels}
		if op != nil {
			c.OperatorID = &op.ID
		}
		if err := store.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	byAnn := mk(0, ann, &trunk.ID, sb.CallCompleted, "CRM-1", "vip", "sales")
	byBob := mk(1, bob, &gone, sb.CallAnswered, "CRM-2", "sales")
	// A call naming another tenant's person (never written so, but the
	// read must not reach across tenants even then).
	byStranger := mk(2, stranger, nil, sb.CallRinging, "")
	if _, err := db.pool.Exec(ctx, "UPDATE calls SET trunk_name = 'Old PBX' WHERE id = $1", byBob.ID); err != nil {
		t.Fatal(err)
	}
	asSup := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: acme.ID, Role: sb.RoleSupervisor})
	find := func(f sb.CallFilter) map[sb.ID]*sb.Call {
		t.Helper()
		calls, err := store.FindCalls(asSup, f)
		if err != nil {
			t.Fatal(err)
		}
		out := map[sb.ID]*sb.Call{}
		for _, c := range calls {
			out[c.ID] = c
		}
		return out
	}
	all := find(sb.CallFilter{})
	for _, tc := range []struct {
		call          *sb.Call
		operator, pbx string
	}{{byAnn, "Ann Lee", "Berlin PBX"}, {byBob, "bob@acme.test", "Old PBX"}, {byStranger, "", ""}} {
		got := all[tc.call.ID]
		if got == nil || got.OperatorName != tc.operator || got.TrunkName != tc.pbx {
			t.Errorf("call by %s read as %+v, want operator %q trunk %q", tc.operator, got, tc.operator, tc.pbx)
		}
	}
	if one, err := store.FindCallByID(asSup, byAnn.ID); err != nil || one.OperatorName != "Ann Lee" || one.TrunkName != "Berlin PBX" {
		t.Errorf("one call: %+v, %v", one, err)
	}
	for _, tc := range []struct {
		name string
		f    sb.CallFilter
		want []sb.ID
	}{
		{"label sales", sb.CallFilter{Label: "sales"}, []sb.ID{byAnn.ID, byBob.ID}},
		{"label vip", sb.CallFilter{Label: "vip"}, []sb.ID{byAnn.ID}},
		{"label nobody has", sb.CallFilter{Label: "vi"}, nil},
		{"reference", sb.CallFilter{ExternalRef: "CRM-2"}, []sb.ID{byBob.ID}},
		{"reference and label", sb.CallFilter{ExternalRef: "CRM-2", Label: "vip"}, nil},
		{"in progress", sb.CallFilter{InProgress: true}, []sb.ID{byBob.ID, byStranger.ID}},
	} {
		got := find(tc.f)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d calls, want %d", tc.name, len(got), len(tc.want))
		}
		for _, id := range tc.want {
			if got[id] == nil {
				t.Errorf("%s: call %s missing", tc.name, id)
			}
		}
	}

	key, _, err := NewAPIKeyService(db).CreateAPIKey(ctx, acme.ID, sb.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	names, err := NewNames(db).Names(asSup, []sb.ID{ann.ID, bob.ID, stranger.ID, trunk.ID, key.ID, gone})
	if err != nil {
		t.Fatal(err)
	}
	want := map[sb.ID]string{ann.ID: "Ann Lee", bob.ID: "bob@acme.test", trunk.ID: "Berlin PBX", key.ID: "API key " + key.Prefix + "…"}
	if len(names) != len(want) {
		t.Errorf("names %v, want %v", names, want)
	}
	for id, n := range want {
		if names[id] != n {
			t.Errorf("name of %s: %q, want %q", id, names[id], n)
		}
	}
	if _, err := NewNames(db).Names(ctx, []sb.ID{ann.ID}); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("names without an actor: %v", err)
	}
}
