package metadata

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
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

	// Rewrite entry 2 and recompute the chains from there, as a careful
	// superuser would.
	rewriteAudit(t, db, 2, func(e *sb.AuditEntry) { e.Action = "recording.nothing_to_see" })
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
		"tenant_id":        "tenant_id = gen_random_uuid()",
		"at":               "at = at + interval '1 second'",
		"actor_user_id":    "actor_user_id = gen_random_uuid()",
		"actor_key_id":     "actor_key_id = gen_random_uuid()",
		"actor_role":       "actor_role = 'admin'",
		"action":           "action = 'login'",
		"resource_type":    "resource_type = 'call'",
		"resource_id":      "resource_id = 'other'",
		"reason":           "reason = 'routine'",
		"ticket":           "ticket = 'T-2'",
		"detail":           "detail = 'bytes=0-'",
		"ip":               "ip = '198.51.100.1'",
		"user_agent":       "user_agent = 'curl'",
		"outcome":          "outcome = 'ok'",
		"id":               "id = gen_random_uuid()",
		"prev_hash":        "prev_hash = sha256(prev_hash)",
		"hash":             "hash = sha256(hash)",
		"tenant_seq":       "tenant_seq = tenant_seq + 10",
		"tenant_prev_hash": "tenant_prev_hash = sha256(tenant_prev_hash)",
		"tenant_hash":      "tenant_hash = sha256(tenant_hash)",
	}
	// Every column is edited above: one added must be covered too.
	rows, err := mustOpen(t).pool.Query(mustCtx(t), "SELECT column_name FROM information_schema.columns WHERE table_name = 'audit_log'")
	if err != nil {
		t.Fatal(err)
	}
	columns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range columns {
		if _, ok := edits[c]; !ok && c != "seq" { // seq: "deleted row" below
			t.Errorf("no test changes column %s", c)
		}
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
	if string(logHash(nil, e, 1)) != string(logHash(nil, &named, 1)) || string(tenantHash(nil, e)) != string(tenantHash(nil, &named)) {
		t.Error("naming an entry changed its hash")
	}
}

// rewriteAudit changes the entry at place seq of the log with edit (its
// action or reason) and recomputes every hash from there, in the log's
// chain and in the tenants', with the triggers off: what a careful
// database superuser would do.
func rewriteAudit(t *testing.T, db *DB, seq int64, edit func(*sb.AuditEntry)) {
	t.Helper()
	ctx := mustCtx(t)
	rows, err := db.pool.Query(ctx, "SELECT "+auditColumns+" FROM audit_log ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*auditRow, error) { return scanAuditRow(r) })
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "ALTER TABLE audit_log DISABLE TRIGGER USER"); err != nil {
		t.Fatal(err)
	}
	prev, heads := make([]byte, 32), map[sb.ID]chainHead{}
	for _, r := range all {
		e, k := r.entry, chainKey(r.entry.TenantID)
		head, ok := heads[k]
		if !ok {
			head.hash = make([]byte, 32)
		}
		if r.seq == seq {
			edit(e)
		}
		if r.seq >= seq {
			r.prev, r.hash = prev, logHash(prev, e, r.seq)
			var chained []byte
			if e.Hash = r.hash; r.chained {
				e.PrevHash = head.hash
				e.Hash = tenantHash(e.PrevHash, e)
				chained = e.Hash
			}
			if _, err := tx.Exec(ctx, `UPDATE audit_log SET action = $2, reason = $3, prev_hash = $4, hash = $5,
				tenant_prev_hash = $6, tenant_hash = $7 WHERE seq = $1`, r.seq, e.Action, e.Reason, r.prev, r.hash, e.PrevHash, chained); err != nil {
				t.Fatal(err)
			}
		}
		prev, heads[k] = r.hash, chainHead{seq: e.Seq, hash: e.Hash}
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE audit_log ENABLE TRIGGER USER"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// An entry appended before tenants had chains of their own keeps the hash
// it was made with: the content the log's chain covers is frozen
// (hashes computed by the code of that time).
func TestAuditEntriesFromBeforeKeepTheirHash(t *testing.T) {
	id := func(n byte) sb.ID { return sb.ID{0x01, 0x8f, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, n} }
	tenant, user, key := id(1), id(2), id(3)
	full := &sb.AuditEntry{Seq: 99, ID: id(4), TenantID: &tenant, At: time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC),
		ActorUserID: &user, ActorKeyID: &key, ActorRole: sb.RoleSupport, Action: "recording.play", ResourceType: "recording",
		ResourceID: "r-1", Reason: "call dropped", Ticket: "T-1", Detail: "bytes=44-", IP: "192.0.2.1", UserAgent: "Chromium",
		Outcome: "denied", PrevHash: []byte("shown"), Hash: []byte("shown"), ActorName: "Ada", ResourceName: "r"}
	bare := &sb.AuditEntry{ID: id(4), At: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), Action: "login", Outcome: "ok"}
	prev := make([]byte, 32)
	for _, c := range []struct {
		e    *sb.AuditEntry
		seq  int64
		prev byte
		want string
	}{
		{full, 7, 0xab, "1660142c355665e6eff914c254e7f97bab845cba6bbcf186988a47dff88da0ab"},
		{bare, 1, 0, "13e92416166c5894acb63e16b664d059976eae998cc44494ef21829d02824830"},
	} {
		prev[0] = c.prev
		if got := hex.EncodeToString(logHash(prev, c.e, c.seq)); got != c.want {
			t.Errorf("%s at %d hashes to %s, made as %s", c.e.Action, c.seq, got, c.want)
		}
	}
}

// appendBefore0030 appends entries as the versions before migration 0030
// did, and as one still running during an upgrade does: one chain, no
// tenant numbers or hashes.
func appendBefore0030(t *testing.T, db *DB, entries ...*sb.AuditEntry) {
	t.Helper()
	ctx := mustCtx(t)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLock); err != nil {
			return err
		}
		var seq int64
		prev := make([]byte, 32)
		if err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&seq, &prev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		for _, e := range entries {
			seq++
			e.ID, e.At, e.Outcome = sb.NewID(), db.now(), "ok"
			hash := logHash(prev, e, seq)
			if _, err := tx.Exec(ctx, `INSERT INTO audit_log (seq, id, tenant_id, at, actor_user_id, actor_role, action, outcome, prev_hash, hash)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, seq, e.ID, e.TenantID, e.At, e.ActorUserID, string(e.ActorRole), e.Action, e.Outcome, prev, hash); err != nil {
				return err
			}
			prev = hash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Migration 0030 numbers the entries already there in each tenant's log
// and keeps them verifiable as they were made, checkpoints too; the
// tenants' chains go on from them, and an instance of the version before,
// appending during the upgrade, breaks neither chain.
func TestAuditEntriesFromBeforeStayVerifiable(t *testing.T) {
	ctx := mustCtx(t)
	db, err := Open(ctx, testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name < "migrations/0030" {
			if err := db.migrate(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := sb.NewID(), sb.NewID()
	entry := func(tenant *sb.ID, action string) *sb.AuditEntry {
		return &sb.AuditEntry{TenantID: tenant, ActorRole: sb.RoleAdmin, Action: action}
	}
	// Before: a, b, a, the system, b, a.
	appendBefore0030(t, db, entry(&a, "login"), entry(&b, "login"), entry(&a, "user.invite"), entry(nil, "login"))
	appendBefore0030(t, db, entry(&b, "logout"), entry(&a, "logout"))
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	log := NewAuditLog(db)
	if seq, err := log.Checkpoint(ctx, key); err != nil || seq != 6 {
		t.Fatalf("Checkpoint before = %d, %v", seq, err)
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if broken, err := log.Verify(ctx); err != nil || broken != 0 {
		t.Fatalf("after the migration Verify = %d, %v", broken, err)
	}
	asA := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: a, Role: sb.RoleAdmin})
	before, err := log.FindAuditEntries(asA, sb.AuditFilter{})
	if err != nil || len(before) != 3 || before[0].Seq != 3 || before[1].Seq != 2 || before[2].Seq != 1 ||
		before[0].Action != "logout" || before[0].PrevHash != nil || len(before[0].Hash) != 32 {
		t.Fatalf("a's entries from before: %v %+v", err, before)
	}

	// This version appends a's fourth and fifth entries; an instance of the
	// version before appends b's third; this version b's fourth.
	a4, a5 := entry(&a, "trunk.create"), entry(&a, "trunk.delete")
	if err := log.Append(ctx, a4, entry(&b, "login"), a5); err != nil {
		t.Fatal(err)
	}
	appendBefore0030(t, db, entry(&b, "logout"))
	b5 := entry(&b, "login")
	if err := log.Append(ctx, b5); err != nil {
		t.Fatal(err)
	}
	if a4.Seq != 4 || a5.Seq != 5 || b5.Seq != 5 || !bytes.Equal(a4.PrevHash, before[0].Hash) || !bytes.Equal(a5.PrevHash, a4.Hash) {
		t.Errorf("a's new entries %d, %d chained to %x, %x (a's third: %x); b's last %d", a4.Seq, a5.Seq, a4.PrevHash, a5.PrevHash, before[0].Hash, b5.Seq)
	}
	asB := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: b, Role: sb.RoleAdmin})
	bs, err := log.FindAuditEntries(asB, sb.AuditFilter{})
	if err != nil || len(bs) != 5 || bs[1].Seq != 4 || bs[1].PrevHash != nil || !bytes.Equal(bs[0].PrevHash, bs[1].Hash) {
		t.Errorf("b's entries: %v %+v", err, bs)
	}
	for i, e := range bs {
		if e.Seq != int64(5-i) {
			t.Errorf("b's entry %d is numbered %d", 5-i, e.Seq)
		}
	}
	if broken, err := log.Verify(ctx); err != nil || broken != 0 {
		t.Errorf("Verify = %d, %v", broken, err)
	}
	if whole, broken, err := log.VerifyAudit(asA); err != nil || !whole || broken != 0 {
		t.Errorf("a's VerifyAudit = %v, %d, %v", whole, broken, err)
	}
	if _, err := log.Checkpoint(ctx, key); err != nil {
		t.Fatal(err)
	}
	if broken, checked, err := log.VerifyCheckpoints(ctx, pub); err != nil || broken != 0 || checked != 2 {
		t.Errorf("VerifyCheckpoints = %d, %d, %v", broken, checked, err)
	}
}

// Each tenant's admins read their own log numbered 1, 2, 3..., whatever
// other tenants did between their entries, and can check its chain from
// what they read alone. When the log does not hold, a tenant is told which
// of its entries, in its own numbering, or none.
func TestEachTenantHasItsOwnAuditLog(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	log := NewAuditLog(db)
	a, b := sb.NewID(), sb.NewID()
	for _, tenant := range []*sb.ID{&a, &b, &b, nil, &a, &b, &a} {
		if err := log.Append(ctx, &sb.AuditEntry{TenantID: tenant, ActorRole: sb.RoleAdmin, Action: "login"}); err != nil {
			t.Fatal(err)
		}
	}
	asA := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: a, Role: sb.RoleAdmin})
	asB := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: b, Role: sb.RoleAdmin})
	entries, err := log.FindAuditEntries(asA, sb.AuditFilter{})
	if err != nil || len(entries) != 3 {
		t.Fatalf("a's entries: %v %d", err, len(entries))
	}
	prev := make([]byte, 32)
	for i := len(entries) - 1; i >= 0; i-- { // oldest first
		e := entries[i]
		if want := int64(len(entries) - i); e.Seq != want {
			t.Errorf("a's entry %d is numbered %d", want, e.Seq)
		}
		if !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(e.Hash, tenantHash(prev, e)) {
			t.Errorf("a's entry %d does not chain from what a reads: prev %x, hash %x", e.Seq, e.PrevHash, e.Hash)
		}
		prev = e.Hash
	}
	if page, err := log.FindAuditEntries(asA, sb.AuditFilter{Before: 3, Limit: 1}); err != nil || len(page) != 1 || page[0].Seq != 2 {
		t.Errorf("a's entries before 3: %v %+v", err, page)
	}

	// b's second entry (the log's third) changed: b is told which, a only
	// that the log does not hold.
	if _, err := db.pool.Exec(ctx, "ALTER TABLE audit_log DISABLE TRIGGER USER; UPDATE audit_log SET action = 'logout' WHERE seq = 3; ALTER TABLE audit_log ENABLE TRIGGER USER"); err != nil {
		t.Fatal(err)
	}
	if whole, broken, err := log.VerifyAudit(asB); err != nil || whole || broken != 2 {
		t.Errorf("b's VerifyAudit = %v, %d, %v; want b's entry 2", whole, broken, err)
	}
	if whole, broken, err := log.VerifyAudit(asA); err != nil || whole || broken != 0 {
		t.Errorf("a's VerifyAudit = %v, %d, %v; want broken, at none of a's", whole, broken, err)
	}
	if broken, err := log.Verify(ctx); err != nil || broken != 3 {
		t.Errorf("Verify = %d, %v; want the log's third", broken, err)
	}
}
