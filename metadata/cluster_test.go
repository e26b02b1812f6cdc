package metadata

import (
	"context"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// One instance sees the operators free on the others, idle longest first,
// only of the tenant asked for and only while their instance is alive,
// and hears when one becomes free.
func TestClusterPresenceAcrossInstances(t *testing.T) {
	w := newGrantWorld(t, sb.SupportPolicy{MaxTTLSeconds: 3600})
	ctx := mustCtx(t)
	a := NewCluster(w.db, "a", "127.0.0.1:5070")
	b := NewCluster(w.db, "b", "127.0.0.1:5080")
	sup, oth := w.supervisor.UserID, w.other.UserID

	woke := make(chan struct{}, 4)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go a.Listen(lctx, func() { woke <- struct{}{} })
	time.Sleep(200 * time.Millisecond) // LISTEN is in place

	if err := a.Publish(ctx, []sb.Presence{{OperatorID: w.admin.UserID, TenantID: w.tenant.ID, State: "available", IdleSince: w.now}}); err != nil {
		t.Fatal(err)
	}
	err := b.Publish(ctx, []sb.Presence{
		{OperatorID: sup, TenantID: w.tenant.ID, State: "available", IdleSince: w.now.Add(-time.Minute)},
		{OperatorID: oth, TenantID: w.tenant.ID, State: "available", IdleSince: w.now.Add(-2 * time.Minute)},
		{OperatorID: w.support.UserID, TenantID: w.tenant.ID, State: "busy", IdleSince: w.now.Add(-time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("a was not woken when b published free operators")
	}

	got, err := a.Candidates(ctx, w.tenant.ID, nil, nil)
	if err != nil || len(got) != 2 || got[0].OperatorID != oth || got[1].OperatorID != sup || got[0].SIPAddr != "127.0.0.1:5080" || got[0].Instance != "b" {
		t.Fatalf("a's candidates: %+v, %v; want b's two free operators, idle longest first", got, err)
	}
	if got, _ := b.Candidates(ctx, w.tenant.ID, nil, nil); len(got) != 1 || got[0].OperatorID != w.admin.UserID {
		t.Errorf("b's candidates: %+v; want a's operator only", got)
	}
	if got, _ := a.Candidates(ctx, w.tenant.ID, []sb.ID{sup}, nil); len(got) != 1 || got[0].OperatorID != sup {
		t.Errorf("members only: %+v", got)
	}
	if got, _ := a.Candidates(ctx, w.tenant.ID, nil, []sb.ID{oth}); len(got) != 1 || got[0].OperatorID != sup {
		t.Errorf("skipping one tried: %+v", got)
	}
	other := mustTenant(t, w.db, "Other")
	if got, _ := a.Candidates(ctx, other.ID, nil, nil); len(got) != 0 {
		t.Errorf("another tenant sees %+v", got)
	}

	w.now = w.now.Add(11 * time.Second) // b's heartbeat is stale: b is gone
	if got, _ := a.Candidates(ctx, w.tenant.ID, nil, nil); len(got) != 0 {
		t.Errorf("a dead instance's operators offered: %+v", got)
	}
	if err := b.Publish(ctx, []sb.Presence{{OperatorID: sup, TenantID: w.tenant.ID, State: "ringing", IdleSince: w.now}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Candidates(ctx, w.tenant.ID, nil, nil); len(got) != 0 {
		t.Errorf("after b's new snapshot (nobody free): %+v", got)
	}
	if err := b.Publish(ctx, []sb.Presence{{OperatorID: sup, TenantID: w.tenant.ID, State: "available", IdleSince: w.now}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Candidates(ctx, w.tenant.ID, nil, nil); len(got) != 1 {
		t.Errorf("after b's operator is free again: %+v", got)
	}
	if err := b.Publish(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Candidates(ctx, w.tenant.ID, nil, nil); len(got) != 0 {
		t.Errorf("a withdrawn instance's operators offered: %+v", got)
	}
}
