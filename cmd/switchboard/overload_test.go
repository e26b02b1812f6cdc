package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// A database that falls behind with the calls' records (here: the calls
// table locked, as a queue of commits under load holds it) makes the
// service refuse new calls at once with 503 instead of letting each wait
// for it; the call in progress is not a new call, and its BYE is answered
// while the database is behind. Once the database has caught up, new
// calls are taken again.
func TestSlowDatabaseShedsNewCalls(t *testing.T) {
	m := mustStartServiceWith(t, map[string]string{"overload-db-delay": "300ms"}, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, err := pgx.Connect(ctx, m.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The answer's record is written once the operator is connected: the
	// lock comes after it, or the call in progress would wait behind it
	// too, its operator still busy for the call that waited.
	for status := ""; status != "answered"; time.Sleep(10 * time.Millisecond) {
		if err := conn.QueryRow(ctx, "SELECT status FROM calls WHERE id = $1", in.CallID).Scan(&status); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(ctx, "LOCK TABLE calls IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// A new call's record waits behind the lock.
	waiting, err := mustPhone(t, siptest.Options{Transport: "udp"}).InviteAsync(ctx, m.SIPAddr(), "+15550002222", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	for deadline := time.Now().Add(10 * time.Second); m.writer.Behind() < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer is %v behind 10 s into a lock on the calls table", m.writer.Behind())
		}
	}
	late := mustPhone(t, siptest.Options{Transport: "udp"})
	refused, err := late.Invite(ctx, m.SIPAddr(), "+15550003333", "2000")
	var se *siptest.StatusError
	if !errors.As(err, &se) || se.Code != 503 {
		if refused != nil {
			refused.Close()
		}
		t.Fatalf("a new call while the database is behind: %v, want 503", err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("BYE of the call in progress while the database is behind: %v", err)
	}
	// Its operator is free again while the database is still behind: only
	// its record waits. (The 200 to the BYE comes first; the call ends
	// after it, which under load may be after the lock would go.)
	if err := op.WaitFreed(ctx, in.CallID); err != nil {
		t.Fatalf("the operator of the call that ended while the database is behind: %v", err)
	}

	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The call that waited goes on: it is offered to the operator, and
	// its caller gives up.
	if in := waitIncoming(t, op); in.From != "+15550002222" {
		t.Fatalf("offered a call from %s, want the one that waited for the database", in.From)
	}
	if err := waiting.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); m.writer.Behind() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer is %v behind 10 s after the lock went", m.writer.Behind())
		}
	}
	answeredCall(t, m, late, op, "+15550004444", "2000")
}
