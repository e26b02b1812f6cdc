package metadata

import (
	"context"
	"crypto/ed25519"
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

// Someone who rewrites an entry and recomputes every hash after it leaves
// a whole chain, but not the signed checkpoint of the old head.
func TestAuditCheckpointsCatchARewrittenChain(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	log := NewAuditLog(db)
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"login", "recording.played", "logout"} {
		if err := log.Append(ctx, &sb.AuditEntry{Action: action}); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := log.Checkpoint(ctx, key); err != nil || seq != 3 {
		t.Fatalf("Checkpoint = %d, %v", seq, err)
	}
	if broken, checked, err := log.VerifyCheckpoints(ctx, pub); err != nil || broken != 0 || checked != 1 {
		t.Fatalf("VerifyCheckpoints = %d, %d, %v", broken, checked, err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	if broken, _, _ := log.VerifyCheckpoints(ctx, otherPub); broken != 3 {
		t.Errorf("checkpoint verified with another key (%d)", broken)
	}
	// The checkpoints are append-only too, TRUNCATE included.
	for _, stmt := range []string{"UPDATE audit_checkpoints SET seq = 2", "DELETE FROM audit_checkpoints", "TRUNCATE audit_checkpoints"} {
		if _, err := db.pool.Exec(ctx, stmt); err == nil {
			t.Errorf("%q was allowed", stmt)
		}
	}

	// Rewrite entry 2 and recompute the chain from there, as a careful
	// superuser would.
	entries, err := log.Recent(ctx, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	prev := entries[2].Hash // entry 1
	for i := 1; i >= 0; i-- {
		e := entries[i]
		if e.Seq == 2 {
			e.Action = "recording.nothing_to_see"
		}
		e.PrevHash, e.Hash = prev, chainHash(prev, e)
		prev = e.Hash
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"ALTER TABLE audit_log DISABLE TRIGGER USER", nil},
			{"UPDATE audit_log SET action = $2, prev_hash = $3, hash = $4 WHERE seq = $1", []any{e.Seq, e.Action, e.PrevHash, e.Hash}},
			{"ALTER TABLE audit_log ENABLE TRIGGER USER", nil},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if broken, err := log.Verify(ctx); err != nil || broken != 0 {
		t.Fatalf("the recomputed chain should look whole: %d, %v", broken, err)
	}
	if broken, _, err := log.VerifyCheckpoints(ctx, pub); err != nil || broken != 3 {
		t.Errorf("VerifyCheckpoints after the rewrite = %d, %v; want the checkpoint at 3", broken, err)
	}
}

// Whatever a database superuser changes in a row, with the triggers off,
// Verify names that row: every column is covered by the chain.
func TestAuditTamperingWithAnyColumnIsFound(t *testing.T) {
	edits := map[string]string{
		"tenant_id":     "tenant_id = gen_random_uuid()",
		"at":            "at = at + interval '1 second'",
		"actor_user_id": "actor_user_id = gen_random_uuid()",
		"actor_key_id":  "actor_key_id = gen_random_uuid()",
		"actor_role":    "actor_role = 'admin'",
		"action":        "action = 'login'",
		"resource_type": "resource_type = 'call'",
		"resource_id":   "resource_id = 'other'",
		"reason":        "reason = 'routine'",
		"ticket":        "ticket = 'T-2'",
		"detail":        "detail = 'bytes=0-'",
		"ip":            "ip = '198.51.100.1'",
		"user_agent":    "user_agent = 'curl'",
		"outcome":       "outcome = 'ok'",
		"id":            "id = gen_random_uuid()",
		"prev_hash":     "prev_hash = sha256(prev_hash)",
		"hash":          "hash = sha256(hash)",
	}
	tamper := func(t *testing.T, stmt string) int64 {
		t.Helper()
		db := mustOpen(t)
		ctx := mustCtx(t)
		log := NewAuditLog(db)
		tenant, user, key := sb.NewID(), sb.NewID(), sb.NewID()
		for i := 0; i < 3; i++ {
			e := &sb.AuditEntry{TenantID: &tenant, ActorUserID: &user, ActorKeyID: &key, ActorRole: sb.RoleSupport,
				Action: "recording.play", ResourceType: "recording", ResourceID: sb.NewID().String(), Reason: "call dropped",
				Ticket: "T-1", Detail: "bytes=44-", IP: "192.0.2.1", UserAgent: "Chromium", Outcome: "denied"}
			if err := log.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.pool.Exec(ctx, "ALTER TABLE audit_log DISABLE TRIGGER USER; "+stmt+"; ALTER TABLE audit_log ENABLE TRIGGER USER"); err != nil {
			t.Fatal(err)
		}
		broken, err := log.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return broken
	}
	for column, set := range edits {
		t.Run(column, func(t *testing.T) {
			if broken := tamper(t, "UPDATE audit_log SET "+set+" WHERE seq = 2"); broken != 2 {
				t.Errorf("after changing %s of entry 2, Verify = %d", column, broken)
			}
		})
	}
	t.Run("deleted row", func(t *testing.T) {
		if broken := tamper(t, "DELETE FROM audit_log WHERE seq = 2"); broken != 2 {
			t.Errorf("after deleting entry 2, Verify = %d", broken)
		}
	})
	t.Run("cut head", func(t *testing.T) {
		// Cutting the newest entries leaves a whole chain: that is what the
		// signed checkpoints are for (TestAuditCheckpointsCatchARewrittenChain).
		if broken := tamper(t, "DELETE FROM audit_log WHERE seq = 3"); broken != 0 {
			t.Errorf("after cutting the head, Verify = %d", broken)
		}
	})
}

// The names the API reads with an entry are not of the entry: a named
// entry hashes as it was appended.
func TestAuditHashLeavesOutNames(t *testing.T) {
	user := sb.NewID()
	e := &sb.AuditEntry{Seq: 1, ID: sb.NewID(), At: time.Now(), ActorUserID: &user, Action: "user.update",
		ResourceType: "user", ResourceID: user.String(), Outcome: "ok"}
	named := *e
	named.ActorName, named.ResourceName = "Ada Admin", "Ada Admin"
	if string(chainHash(nil, e)) != string(chainHash(nil, &named)) {
		t.Error("naming an entry changed its hash")
	}
}
