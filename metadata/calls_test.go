package metadata

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// utc returns a copy of c with its times in UTC, as the test wrote them:
// pgx reads timestamptz in the local zone, which DeepEqual tells apart.
func utc(c *sb.Call) *sb.Call {
	out := *c
	out.CreatedAt = out.CreatedAt.UTC()
	for _, p := range []**time.Time{&out.AnsweredAt, &out.EndedAt} {
		if *p != nil {
			t := (**p).UTC()
			*p = &t
		}
	}
	return &out
}

func TestCallExactRoundTrip(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	now := time.Date(2026, 6, 7, 8, 9, 10, 123456000, time.UTC)
	db.Now = func() time.Time { return now }
	store := NewCallStore(db)
	trunk, op := sb.NewID(), sb.NewID()

	c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, TrunkID: &trunk, From: "+4930123", To: "100",
		Source: "udp:203.0.113.5:5060", SIPCallID: "abc@203.0.113.5", Status: sb.CallRinging}
	if err := store.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c.ID == (sb.ID{}) || !c.CreatedAt.Equal(now) {
		t.Fatalf("CreateCall set id %s, created_at %s; want a new id and the clock's time", c.ID, c.CreatedAt)
	}
	asAdmin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, Role: sb.RoleAdmin})
	got, err := store.FindCallByID(asAdmin, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(utc(got), c) {
		t.Errorf("after create:\n got %+v\nwant %+v", utc(got), c)
	}

	answered, ended := now.Add(2*time.Second), now.Add(95*time.Second+500*time.Microsecond)
	c.OperatorID, c.Status, c.HangupBy, c.SIPCode, c.Reason, c.Codec = &op, sb.CallCompleted, sb.PartyOperator, 200, "operator hung up", "opus"
	c.AnsweredAt, c.EndedAt, c.DurationMS = &answered, &ended, ended.Sub(answered).Milliseconds()
	c.FromCaller = sb.MediaStats{Packets: 1 << 40, Bytes: 1<<62 + 7, Lost: 12, JitterMS: 3.125}
	c.ToCaller = sb.MediaStats{Packets: 4650, Bytes: 744000, Lost: -3, JitterMS: 0.0625}
	if err := store.UpdateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err = store.FindCallByID(asAdmin, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(utc(got), c) {
		t.Errorf("after update:\n got %+v\nwant %+v", utc(got), c)
	}

	// Events: a zero ID and time are filled in, given ones are kept, and
	// the timeline reads back in time order with its details.
	given := sb.NewID()
	events := []*sb.CallEvent{
		{CallID: c.ID, TenantID: tenant.ID, Type: sb.EventEnded, At: ended, Detail: map[string]any{"by": "operator", "sip_code": 200.0}},
		{CallID: c.ID, TenantID: tenant.ID, Type: sb.EventReceived},
		{ID: given, CallID: c.ID, TenantID: tenant.ID, Type: sb.EventAnswered, At: answered, Detail: map[string]any{"operator_id": op.String()}},
	}
	if err := store.AddCallEvents(ctx, events...); err != nil {
		t.Fatal(err)
	}
	if events[1].ID == (sb.ID{}) || !events[1].At.Equal(now) || events[2].ID != given {
		t.Errorf("AddCallEvents set id %s at %s, kept %s; want a new id at the clock's time and %s kept", events[1].ID, events[1].At, events[2].ID, given)
	}
	timeline, err := store.FindCallEvents(asAdmin, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []*sb.CallEvent{events[1], events[2], events[0]}
	if len(timeline) != len(want) {
		t.Fatalf("timeline has %d events, want %d", len(timeline), len(want))
	}
	for i, e := range timeline {
		e.At = e.At.UTC()
		if !reflect.DeepEqual(e, want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, e, want[i])
		}
	}
	if err := store.AddCallEvents(ctx); err != nil {
		t.Errorf("no events: %v", err)
	}

	// What call control can get wrong is mapped, without schema detail.
	other := mustTenant(t, db, "Other")
	err = store.AddCallEvents(ctx, &sb.CallEvent{CallID: c.ID, TenantID: other.ID, Type: sb.EventEnded})
	if sb.ErrorCode(err) != sb.ENOTFOUND || sb.ErrorMessage(err) != "call not found" {
		t.Errorf("event on another tenant's call: %v, want not found: call not found", err)
	}
	if err := store.AddCallEvents(ctx, &sb.CallEvent{ID: given, CallID: c.ID, TenantID: tenant.ID, Type: sb.EventDTMF}); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("event id reused: %v, want conflict", err)
	}
	if err := store.UpdateCall(ctx, &sb.Call{ID: c.ID, TenantID: other.ID, Status: sb.CallFailed}); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("update through another tenant: %v, want not found", err)
	}
	err = store.CreateCall(ctx, &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, Status: "lost"})
	if sb.ErrorCode(err) != sb.EINVALID || strings.Contains(sb.ErrorMessage(err), "calls_") {
		t.Errorf("unknown status: %v (message %q), want invalid without the constraint's name", err, sb.ErrorMessage(err))
	}
	if err := store.CreateCall(ctx, &sb.Call{ID: c.ID, TenantID: tenant.ID, Direction: sb.Inbound, Status: sb.CallRinging}); sb.ErrorCode(err) != sb.ECONFLICT {
		t.Errorf("call id reused: %v, want conflict", err)
	}
}

func TestFindCallsFiltersAndLimits(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	store := NewCallStore(db)
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// 60 calls, one a second; every tenth is busy; all share created_at in
	// pairs, so pagination must break ties on id.
	var ids []sb.ID
	for i := range 60 {
		c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, From: fmt.Sprintf("+49%03d", i), To: "100",
			Status: sb.CallCompleted, CreatedAt: base.Add(time.Duration(i/2) * time.Second)}
		if i%10 == 0 {
			c.Status = sb.CallBusy
		}
		if err := store.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	asSup := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, Role: sb.RoleSupervisor})
	find := func(f sb.CallFilter) []*sb.Call {
		t.Helper()
		calls, err := store.FindCalls(asSup, f)
		if err != nil {
			t.Fatal(err)
		}
		return calls
	}

	if n := len(find(sb.CallFilter{})); n != 50 {
		t.Errorf("no limit: %d calls, want the default 50", n)
	}
	if n := len(find(sb.CallFilter{Limit: 100000})); n != 60 {
		t.Errorf("huge limit: %d calls, want all 60 (capped at 500)", n)
	}
	busy := find(sb.CallFilter{Status: sb.CallBusy})
	if len(busy) != 6 {
		t.Errorf("status busy: %d calls, want 6", len(busy))
	}
	for _, c := range busy {
		if c.Status != sb.CallBusy {
			t.Errorf("status filter let through %s", c.Status)
		}
	}
	if calls := find(sb.CallFilter{Number: "+49007"}); len(calls) != 1 || calls[0].ID != ids[7] {
		t.Errorf("number as from: %v", calls)
	}
	if n := len(find(sb.CallFilter{Number: "100", Limit: 500})); n != 60 {
		t.Errorf("number as to: %d calls, want 60", n)
	}
	since, until := base.Add(5*time.Second), base.Add(8*time.Second)
	window := find(sb.CallFilter{Since: &since, Until: &until})
	if len(window) != 6 {
		t.Errorf("since/until: %d calls, want the 6 created in [5s, 8s)", len(window))
	}
	for _, c := range window {
		if c.CreatedAt.Before(since) || !c.CreatedAt.Before(until) {
			t.Errorf("call at %s outside [%s, %s)", c.CreatedAt, since, until)
		}
	}

	// Pages of 7 walk all 60, newest first, ties broken by id, each once.
	var order []sb.ID
	seen := map[sb.ID]bool{}
	var after *sb.ID
	for range 20 {
		page := find(sb.CallFilter{Limit: 7, After: after})
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			if seen[c.ID] {
				t.Fatalf("call %s on two pages", c.ID)
			}
			seen[c.ID] = true
			order = append(order, c.ID)
		}
		after = &page[len(page)-1].ID
	}
	all := find(sb.CallFilter{Limit: 500})
	if len(order) != 60 || len(all) != 60 {
		t.Fatalf("pages gave %d calls, one query %d; want 60", len(order), len(all))
	}
	for i := range all {
		if order[i] != all[i].ID {
			t.Fatalf("page order differs from one query at %d", i)
		}
		if i > 0 {
			p, c := all[i-1], all[i]
			if c.CreatedAt.After(p.CreatedAt) || (c.CreatedAt.Equal(p.CreatedAt) && c.ID.String() > p.ID.String()) {
				t.Fatalf("calls %d and %d are not newest first", i-1, i)
			}
		}
	}
	// Filters combine with pagination.
	firstBusy := find(sb.CallFilter{Status: sb.CallBusy, Limit: 2})
	restBusy := find(sb.CallFilter{Status: sb.CallBusy, After: &firstBusy[1].ID})
	if len(firstBusy) != 2 || len(restBusy) != 4 || restBusy[0].ID == firstBusy[1].ID {
		t.Errorf("busy in pages: %d then %d, want 2 then 4", len(firstBusy), len(restBusy))
	}
}

// The statements built once take exactly the arguments built per call:
// every placeholder from $1 to the last argument's, each once, and a value
// for each column they write, with the keys and reference around them.
func TestCallStatementsTakeTheirArgs(t *testing.T) {
	c := &sb.Call{ID: sb.NewID(), TenantID: sb.NewID(), Tags: []string{"vip"}}
	create, createArgs := (&CallStore{}).createCallStmt(c)
	update, updateArgs := updateCallStmt(c)
	columns := func(s string) int { return strings.Count(s, ",") + 1 }
	for _, s := range []struct {
		sql  string
		args []any
		want int
	}{{create, createArgs, columns(callColumns) + 1}, {update, updateArgs, 2 + columns(mutableColumns) + 1}} {
		if len(s.args) != s.want {
			t.Errorf("%d arguments, want %d, for %s", len(s.args), s.want, s.sql)
		}
		for i := 1; i <= len(s.args)+1; i++ {
			want := 1
			if i > len(s.args) {
				want = 0
			}
			if n := len(regexp.MustCompile(`\$`+strconv.Itoa(i)+`\b`).FindAllString(s.sql, -1)); n != want {
				t.Errorf("$%d appears %d times, want %d, in %s", i, n, want, s.sql)
			}
		}
	}
}
