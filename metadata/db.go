// Package metadata stores switchboard's records in PostgreSQL: tenants,
// people, API keys, sessions, trunks, and calls with their timelines.
//
// Every tenant-owned table carries tenant_id and every query on behalf of
// an actor filters by it. The few lookups that run before a tenant is known
// — a trunk by source address or digest username, a login by email, an API
// key or session by the hash of its secret — search all tenants by design
// and return the row's tenant.
package metadata

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-voice/switchboard"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_xact_lock key that serialises Migrate
// across processes.
const migrationLock int64 = 0x5357_4244_4d49_4752 // "SWBDMIGR"

// defaultMaxConns is the pool's size unless the database URL sets
// pool_max_conns.
const defaultMaxConns = 16

// DB is a pool of connections to the metadata database.
type DB struct {
	pool *pgxpool.Pool

	// Now returns the current time. Every timestamp the store sets comes
	// from it, so tests can inject a clock.
	Now func() time.Time

	probe    sync.Mutex // guards what follows: Dead's last look
	probedAt time.Time
	probeOK  bool
}

// Open connects to the database at url (a postgres:// URL or a
// key=value connection string) and checks that it answers.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("metadata: parse database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default is one connection per CPU (at least 4). A call
		// writes its record in several short transactions, each waiting
		// for its commit to reach the disk: with few connections the
		// calls queue for them while the CPUs idle, and PostgreSQL's
		// group commit has little to group.
		cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
	}
	cfg.AfterConnect = registerIDs
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("metadata: connect: %w", err)
	}
	return &DB{pool: pool, Now: time.Now}, nil
}

// Option tunes the connection pool.
type Option func(*pgxpool.Config)

// WithQueryTracer hands every query's start and end to t (latency metrics).
func WithQueryTracer(t pgx.QueryTracer) Option {
	return func(c *pgxpool.Config) { c.ConnConfig.Tracer = t }
}

// Stat reports the connection pool's state, for metrics.
func (db *DB) Stat() *pgxpool.Stat { return db.pool.Stat() }

// Close closes the pool's connections.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers, for health checks.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("metadata: ping: %w", err)
	}
	return nil
}

// now returns db.Now() at the precision PostgreSQL stores, so what a method
// sets on a struct equals what a later read returns.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// Migrate applies the embedded migrations not applied yet, each in its own
// transaction, and records them in schema_migrations. Several processes may
// run it at once: an advisory lock serialises them.
func (db *DB) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("metadata: migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.migrate(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) migrate(ctx context.Context, name string) error {
	version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
	sql, err := migrations.ReadFile(name)
	if err != nil {
		return fmt.Errorf("metadata: migration %s: %w", version, err)
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
			return fmt.Errorf("metadata: migration lock: %w", err)
		}
		// Under the lock, so concurrent first runs do not race to create it.
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    text PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return fmt.Errorf("metadata: schema_migrations: %w", err)
		}
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&done); err != nil {
			return fmt.Errorf("metadata: migration %s: %w", version, err)
		}
		if done {
			return nil
		}
		// No arguments: the simple protocol runs the whole file.
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("metadata: migration %s: %w", version, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", version, db.now()); err != nil {
			return fmt.Errorf("metadata: record migration %s: %w", version, err)
		}
		return nil
	})
}

// querier is what a call record's write runs on: the pool, or the
// transaction that writes several calls' records at once (CallWriter).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

type txKey struct{}

// withTx makes the writes given ctx run in tx.
func withTx(ctx context.Context, tx pgx.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// txFrom is the transaction ctx carries, if any.
func txFrom(ctx context.Context) (pgx.Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	return tx, ok
}

// q is where a write given ctx runs: the transaction ctx carries, if
// any, else the pool.
func (db *DB) q(ctx context.Context) querier {
	if tx, ok := txFrom(ctx); ok {
		return tx
	}
	return db.pool
}

// inTx runs fn in a transaction, committing if it returns nil. Inside the
// transaction ctx carries (CallWriter's batch), fn runs in that one: an
// error fails the whole batch, which is then written step by step.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if tx, ok := txFrom(ctx); ok {
		return fn(tx)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("metadata: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			return errors.Join(err, fmt.Errorf("metadata: rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return mapError(fmt.Errorf("metadata: commit: %w", err), "")
	}
	return nil
}

// Messages for the constraints a caller can run into, keyed by name.
var constraintMessages = map[string]string{
	"users_email_key":           "a user with that email already exists",
	"api_keys_hash_key":         "an API key with that secret already exists",
	"trunks_username_key":       "a trunk with that username already exists",
	"trunks_tenant_id_name_key": "a trunk with that name already exists",
	"trunk_numbers_pkey":        "a number is already assigned to a trunk",
	"calls_pkey":                "a call with that id already exists",
	"call_events_pkey":          "an event with that id already exists",
	"tenants_pkey":              "a tenant with that id already exists",
	"users_tenant_id_fkey":      "tenant not found",
	"api_keys_tenant_id_fkey":   "tenant not found",
	"trunks_tenant_id_fkey":     "tenant not found",
	"calls_tenant_id_fkey":      "tenant not found",
	// Two-column foreign keys are named after both columns.
	"sessions_tenant_id_user_id_fkey":             "user not found",
	"call_events_tenant_id_call_id_fkey":          "call not found",
	"call_sip_messages_tenant_id_call_id_fkey":    "call not found",
	"call_quality_samples_tenant_id_call_id_fkey": "call not found",
	"trunk_numbers_tenant_id_trunk_id_fkey":       "trunk not found",
	"recordings_tenant_id_call_id_fkey":           "call not found",
}

// mapError turns database errors a caller can act on into *switchboard.Error:
// no rows → ENOTFOUND (what names the missing thing), unique violation →
// ECONFLICT, foreign key violation → ENOTFOUND, check violation → EINVALID.
// Anything else is returned as is, to become EINTERNAL at the edge.
func mapError(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		if what == "" {
			what = "record"
		}
		return switchboard.Errorf(switchboard.ENOTFOUND, "%s not found", what)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	msg := constraintMessages[pgErr.ConstraintName]
	switch pgErr.Code {
	case "23505": // unique_violation
		if msg == "" {
			msg = "already exists"
		}
		return switchboard.Errorf(switchboard.ECONFLICT, "%s", msg)
	case "23503": // foreign_key_violation
		if msg == "" {
			msg = "a referenced record does not exist"
		}
		return switchboard.Errorf(switchboard.ENOTFOUND, "%s", msg)
	case "23514": // check_violation
		// The constraint's name is schema detail: wrapped for the log, not
		// in the message a caller sees.
		return fmt.Errorf("metadata: check %s: %w", pgErr.ConstraintName, switchboard.Errorf(switchboard.EINVALID, "invalid value"))
	}
	return err
}

// actor returns the actor in ctx or EUNAUTHORIZED.
func actor(ctx context.Context) (*switchboard.Actor, error) {
	a := switchboard.ActorFromContext(ctx)
	if a == nil {
		return nil, switchboard.Errorf(switchboard.EUNAUTHORIZED, "authentication required")
	}
	return a, nil
}

// Unreachable reports whether err is the database not answering (no
// connection, a timeout, the pool closed) rather than refusing what was
// asked: what a journal keeps and tries again.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered; only its shutting down or being
		// unavailable counts (class 57P, 08 connection exceptions).
		return strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08")
	}
	var se *switchboard.Error
	return !errors.As(err, &se)
}
