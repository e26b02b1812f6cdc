package metadata

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
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
// journal keeps the writes that ran out of time, and only those, without
// declaring the database unavailable; a call the lock does not touch goes
// on straight to the database; and once the lock goes, a drain writes
// what waited — nobody sends anything again by hand.
func TestSlowDatabaseIsNotDead(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	store := NewCallStore(db)
	w := NewCallWriter(store, 1, WithBatchTimeout(300*time.Millisecond))
	defer w.Close()
	var logged bytes.Buffer
	rec, err := journal.Open(filepath.Join(t.TempDir(), "journal"), w, db.Dead, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2000", Status: sb.CallRinging}
	if err := rec.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}

	lock := lockCalls(t, db)
	// Probe: the batch does run out of time, and the database is alive.
	if err := w.UpdateCall(ctx, c); !errors.Is(err, context.DeadlineExceeded) || db.Dead(err) {
		t.Fatalf("an update while the table is locked: %v (dead %v), want the batch's deadline from a live database", err, db.Dead(err))
	}

	c.Status = sb.CallCompleted
	late := &sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, To: "2001", Status: sb.CallRinging}
	ended := &sb.CallEvent{ID: sb.NewID(), CallID: c.ID, TenantID: tenant.ID, At: db.now(), Type: sb.EventEnded}
	trace := &sb.CallTrace{TenantID: tenant.ID, CallID: c.ID, SIP: []sb.SIPMessage{{At: db.now(), Inbound: true, Transport: "udp",
		Src: netip.MustParseAddrPort("203.0.113.5:5060"), Dst: netip.MustParseAddrPort("192.0.2.1:5060"), Message: "BYE sip:2000@example.com SIP/2.0"}}}
	for _, err := range []error{rec.UpdateCall(ctx, c), rec.CreateCall(ctx, late), rec.AddCallEvents(ctx, ended), rec.AddCallTrace(ctx, trace)} {
		if err != nil {
			t.Fatalf("a write while the table is locked: %v; want it kept in the journal", err)
		}
	}
	if n := rec.Pending(); n != 4 {
		t.Fatalf("%d records in the journal, want the 4 written while the table was locked", n)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The database is as fast as ever: another call's write goes straight
	// to it, not behind the journal.
	other := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2002", Status: sb.CallRinging}
	if err := rec.CreateCall(ctx, other); err != nil || rec.Pending() != 4 {
		t.Fatalf("after the lock: %v, %d in the journal", err, rec.Pending())
	}
	if n, err := rec.Drain(ctx); n != 4 || err != nil || rec.Pending() != 0 {
		t.Fatalf("drain after the lock: %d went, %v, %d pending", n, err, rec.Pending())
	}

	asAdmin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, Role: sb.RoleAdmin})
	for _, want := range []*sb.Call{c, late, other} {
		got, err := store.FindCallByID(asAdmin, want.ID)
		if err != nil || got.Status != want.Status {
			t.Errorf("call to %s after the drain: %v, %v; want %s", want.To, got, err, want.Status)
		}
	}
	if events, err := store.FindCallEvents(asAdmin, c.ID); err != nil || len(events) != 1 || events[0].ID != ended.ID {
		t.Errorf("events after the drain: %v, %v; want the ended event", events, err)
	}
	if got, err := store.FindCallTrace(asAdmin, c.ID); err != nil || len(got.SIP) != 1 {
		t.Errorf("trace after the drain: %v, %v; want its one message", got, err)
	}
	if strings.Contains(logged.String(), "database unavailable") {
		t.Errorf("a slow database was declared unavailable:\n%s", logged.String())
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

// lockCalls locks the calls table in a transaction of its own, as a queue
// of commits under load holds it, until the returned transaction ends
// (at the latest when the test does).
func lockCalls(t *testing.T, db *DB) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	lock, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Rollback(ctx) })
	if _, err := lock.Exec(ctx, "LOCK TABLE calls IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return lock
}
