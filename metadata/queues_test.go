package metadata

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// A queue keeps its members, wait and overflow; the numbers given lead to
// it; nothing crosses tenants.
func TestQueuesByNumberAndTenant(t *testing.T) {
	w := newGrantWorld(t, sb.SupportPolicy{MaxTTLSeconds: 3600})
	ctx := mustCtx(t)
	trunk := &sb.Trunk{TenantID: w.tenant.ID, Name: "pbx", Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Numbers: []string{"2000", "2001"}}
	if err := NewTrunkService(w.db).CreateTrunk(ctx, trunk, ""); err != nil {
		t.Fatal(err)
	}
	other := mustTenant(t, w.db, "Other")
	qs := NewQueueStore(w.db)

	backup := &sb.Queue{TenantID: w.tenant.ID, Name: "backup", Overflow: sb.Overflow{Kind: sb.OverflowURI, URI: "sip:vm@192.0.2.9"}}
	if err := qs.CreateQueue(ctx, backup); err != nil {
		t.Fatal(err)
	}
	sales := &sb.Queue{TenantID: w.tenant.ID, Name: "sales", MaxWait: 45 * time.Second, Members: []sb.ID{w.supervisor.UserID},
		Overflow: sb.Overflow{Kind: sb.OverflowQueue, QueueID: &backup.ID}, Numbers: []string{"2001"}}
	if err := qs.CreateQueue(ctx, sales); err != nil {
		t.Fatal(err)
	}
	got, err := qs.QueueForNumber(ctx, w.tenant.ID, "2001")
	if err != nil || got == nil || got.ID != sales.ID || got.MaxWait != 45*time.Second || !slices.Equal(got.Members, []sb.ID{w.supervisor.UserID}) ||
		got.Overflow.Kind != sb.OverflowQueue || *got.Overflow.QueueID != backup.ID || !slices.Equal(got.Numbers, []string{"2001"}) {
		t.Fatalf("queue for 2001: %+v, %v", got, err)
	}
	if q, err := qs.QueueForNumber(ctx, w.tenant.ID, "2000"); q != nil || err != nil {
		t.Errorf("2000 leads to no queue, got %+v, %v", q, err)
	}
	if q, err := qs.QueueForNumber(ctx, other.ID, "2001"); q != nil || err != nil {
		t.Errorf("another tenant's view of 2001: %+v, %v", q, err)
	}
	if _, err := qs.QueueByID(ctx, other.ID, sales.ID); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another tenant's queue by ID: %v", err)
	}
	if q, err := qs.QueueByID(ctx, w.tenant.ID, backup.ID); err != nil || q.Overflow.URI != "sip:vm@192.0.2.9" {
		t.Errorf("backup: %+v, %v", q, err)
	}

	stranger := &sb.Queue{TenantID: other.ID, Name: "x", Members: []sb.ID{w.supervisor.UserID}, Overflow: sb.Overflow{Kind: sb.OverflowReject}}
	if err := qs.CreateQueue(ctx, stranger); err == nil {
		t.Error("another tenant's person joined a queue")
	}
	theirs := &sb.Queue{TenantID: other.ID, Name: "y", Numbers: []string{"2000"}, Overflow: sb.Overflow{Kind: sb.OverflowReject}}
	if err := qs.CreateQueue(ctx, theirs); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("another tenant's number taken: %v", err)
	}
	if err := qs.CreateQueue(ctx, &sb.Queue{TenantID: w.tenant.ID, Name: "bad", Overflow: sb.Overflow{Kind: sb.OverflowURI, URI: "tel:123"}}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("a bad overflow URI: %v", err)
	}

	if _, err := qs.FindQueues(w.as(t, w.support)); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("support engineer listed queues: %v", err)
	}
	list, err := qs.FindQueues(w.as(t, w.admin))
	if err != nil || len(list) != 2 || list[0].Name != "backup" || list[1].Name != "sales" {
		t.Errorf("admin's list: %v, %v", list, err)
	}
}
