package metadata

import (
	"context"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

func TestAuditLogIsAppendOnlyAndChained(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	db.Now = func() time.Time { return at }
	log := NewAuditLog(db)
	tenant, user := sb.NewID(), sb.NewID()
	for i, action := range []string{"login", "recording.grant_requested", "recording.played"} {
		e := &sb.AuditEntry{TenantID: &tenant, ActorUserID: &user, ActorRole: sb.RoleSupport, Action: action,
			ResourceType: "recording", ResourceID: sb.NewID().String(), Reason: "call dropped", Ticket: "T-1", IP: "192.0.2.1"}
		if err := log.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) || len(e.Hash) != 32 || !e.At.Equal(at) {
			t.Fatalf("entry %d: seq %d, hash %x, at %v", i, e.Seq, e.Hash, e.At)
		}
	}
	if broken, err := log.Verify(ctx); err != nil || broken != 0 {
		t.Fatalf("Verify = %d, %v; want a whole chain", broken, err)
	}

	// The database refuses changes, whoever asks.
	for _, stmt := range []string{"UPDATE audit_log SET reason = 'nothing' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 3", "TRUNCATE audit_log"} {
		if _, err := db.pool.Exec(ctx, stmt); err == nil {
			t.Errorf("%q was allowed", stmt)
		}
	}

	// A superuser who turns the triggers off to edit a row breaks the chain
	// at that row.
	if _, err := db.pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER;
		UPDATE audit_log SET reason = 'routine' WHERE seq = 2;
		ALTER TABLE audit_log ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	if broken, err := log.Verify(ctx); err != nil || broken != 2 {
		t.Errorf("after tampering Verify = %d, %v; want 2", broken, err)
	}
}

func BenchmarkAuditAppend(b *testing.B) {
	db := mustOpen(b)
	log := NewAuditLog(db)
	ctx := context.Background()
	tenant := sb.NewID()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := log.Append(ctx, &sb.AuditEntry{TenantID: &tenant, Action: "recording.range_read", ResourceType: "recording", ResourceID: "r"}); err != nil {
			b.Fatal(err)
		}
	}
}
