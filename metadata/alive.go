package metadata

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// probeTimeout bounds the question "is the database there?" asked when a
// write ran out of time; probeFresh is how long its answer holds, so a
// burst of slow writes asks once.
const (
	probeTimeout = 2 * time.Second
	probeFresh   = time.Second
)

// Dead reports whether err means the database cannot be reached, as
// Unreachable does, except that a write that ran out of time is first
// taken for a slow database, not a dead one: under load commits queue, and
// a deadline says nothing about the database being gone. For those Dead
// asks the database itself, on a connection of its own (the pool's may all
// be busy with the slow commits), and only a database that does not
// answer within probeTimeout is dead. Dead's verdict is what makes a
// journal take every record until a drain; a write that ran out of time
// against a live database is still kept by the journal, alone.
func (db *DB) Dead(err error) bool {
	if !Unreachable(err) {
		return false
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return true // the connection failed: refused, reset, closed
	}
	return !db.alive()
}

// alive asks the database for SELECT 1 on a new connection, once per
// probeFresh however many ask.
func (db *DB) alive() bool {
	db.probe.Lock()
	defer db.probe.Unlock()
	if time.Since(db.probedAt) < probeFresh {
		return db.probeOK
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	db.probeOK = false
	if conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy()); err == nil {
		_, err = conn.Exec(ctx, "SELECT 1")
		db.probeOK = err == nil
		conn.Close(ctx)
	}
	db.probedAt = time.Now()
	return db.probeOK
}
