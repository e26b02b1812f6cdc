package metadata

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/journal"
)

// A database whose commits are slow (here: the calls table locked by
// another transaction, as a queue of commits under load holds it) makes
// the writer's batch run out of time, but it is not a dead one: the
// journal does not take the record, and does not start taking every
// record; the record the slow batch held is written once the lock goes.
func TestSlowDatabaseIsNotDead(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	w := NewCallWriter(NewCallStore(db), 1, WithBatchTimeout(300*time.Millisecond))
	defer w.Close()
	rec, err := journal.Open(filepath.Join(t.TempDir(), "journal"), w, db.Dead, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2000", Status: sb.CallRinging}
	if err := rec.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}

	lock, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, "LOCK TABLE calls IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	c.Status = sb.CallCompleted
	err = rec.UpdateCall(ctx, c)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an update while the table is locked: %v, want the batch's deadline", err)
	}
	if db.Dead(err) {
		t.Error("a slow database was taken for a dead one")
	}
	if n := rec.Pending(); n != 0 {
		t.Errorf("%d records went to the journal for a slow database", n)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The database is as fast as ever: the next write goes straight to it.
	if err := rec.UpdateCall(ctx, c); err != nil || rec.Pending() != 0 {
		t.Fatalf("after the lock: %v, %d in the journal", err, rec.Pending())
	}
}

// A database that does not answer is dead, whether the connection fails
// at once or a write runs out of time and the database then does not
// answer either.
func TestDeadDatabaseIsDead(t *testing.T) {
	ctx := mustCtx(t)
	const gone = "postgres://switchboard@127.0.0.1:1/switchboard?connect_timeout=1"
	pool, err := pgxpool.New(ctx, gone) // connects lazily: nothing tried yet
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := &DB{pool: pool, Now: time.Now}
	_, connErr := pgx.Connect(ctx, gone)
	if connErr == nil {
		t.Fatal("something answers on port 1")
	}
	for _, err := range []error{connErr, context.DeadlineExceeded} {
		if !db.Dead(err) {
			t.Errorf("Dead(%v) = false for a database that is not there", err)
		}
	}
	if db.Dead(sb.Errorf(sb.ENOTFOUND, "call not found")) || db.Dead(nil) {
		t.Error("an answer from the database taken for its death")
	}
}
