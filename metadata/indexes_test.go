package metadata

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
)

// lastQuery keeps the last query that contains a marker, with its
// arguments, so a test can ask PostgreSQL how it plans exactly what the
// code sent.
type lastQuery struct {
	marker string
	mu     sync.Mutex
	sql    string
	args   []any
}

func (l *lastQuery) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, l.marker) && !strings.HasPrefix(d.SQL, "EXPLAIN") {
		l.mu.Lock()
		l.sql, l.args = d.SQL, d.Args
		l.mu.Unlock()
	}
	return ctx
}

func (l *lastQuery) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The indexes on calls and traces hold only the rows their queries find
// (migration 0028: a call's three writes and its trace rows cost fewer
// index entries), and the queries that need the partial ones can still
// use them: a partial index whose predicate the query does not imply
// would silently become a scan of every call. (Retention's sweeps of
// traces compare each row's time with its tenant's retention, a join
// condition; the planner takes the block range index when a table is
// large.)
func TestCallIndexesServeTheirQueries(t *testing.T) {
	ctx := mustCtx(t)
	for _, c := range []struct {
		name, marker string
		find         func(ctx context.Context, s *CallStore, tenant sb.ID) error
		index        string
		// fewLive ends all but a few of the calls, as a day's calls are.
		fewLive bool
	}{
		{"calls by quality tag", "tags @>", func(ctx context.Context, s *CallStore, tenant sb.ID) error {
			_, err := s.FindCalls(sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant, Role: sb.RoleSupervisor}), sb.CallFilter{Tag: "one-way-audio"})
			return err
		}, "calls_tags_idx", false},
		{"an operator's calls", "operator_id = $2", func(ctx context.Context, s *CallStore, tenant sb.ID) error {
			_, err := s.FindCalls(sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant, UserID: sb.NewID(), Role: sb.RoleOperator}), sb.CallFilter{})
			return err
		}, "calls_tenant_operator_idx", false},
		{"calls to anonymise", "x.anonymised_at IS NULL", func(ctx context.Context, s *CallStore, _ sb.ID) error {
			_, err := s.ExpiredData(ctx)
			return err
		}, "calls_to_anonymise_idx", false},
		{"calls in progress", "ended_at IS NULL", func(ctx context.Context, s *CallStore, tenant sb.ID) error {
			_, err := s.FindCalls(sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant, Role: sb.RoleSupervisor}), sb.CallFilter{InProgress: true})
			return err
		}, "calls_live_idx", true},
		{"calls ringing", "status = $2", func(ctx context.Context, s *CallStore, tenant sb.ID) error {
			_, err := s.FindCalls(sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant, Role: sb.RoleSupervisor}), sb.CallFilter{Status: sb.CallRinging})
			return err
		}, "calls_live_idx", true},
		{"a crashed instance's calls", "c.instance = $1", func(ctx context.Context, s *CallStore, _ sb.ID) error {
			_, err := s.ForInstance("crashed").RecoverCalls(ctx)
			return err
		}, "calls_live_idx", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := &lastQuery{marker: c.marker}
			db, err := Open(ctx, testenv.DatabaseURL(t), WithQueryTracer(q))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(db.Close)
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			tenant := mustTenant(t, db, "Acme")
			// A tenant with calls, none tagged, answered or ended, and
			// statistics that say so.
			if _, err := db.pool.Exec(ctx, `INSERT INTO calls (id, tenant_id, direction, status, created_at)
				SELECT gen_random_uuid(), $1, 'inbound', 'ringing', now() - make_interval(secs => i) FROM generate_series(1, 2000) i`, tenant.ID); err != nil {
				t.Fatal(err)
			}
			if c.fewLive {
				if _, err := db.pool.Exec(ctx, `UPDATE calls SET status = 'completed', ended_at = created_at
					WHERE tenant_id = $1 AND created_at < now() - interval '10 seconds'`, tenant.ID); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.pool.Exec(ctx, "ANALYZE calls"); err != nil {
				t.Fatal(err)
			}
			if err := c.find(ctx, NewCallStore(db), tenant.ID); err != nil {
				t.Fatal(err)
			}
			q.mu.Lock()
			sql, args := q.sql, q.args
			q.mu.Unlock()
			if sql == "" {
				t.Fatalf("no query containing %q was sent", c.marker)
			}
			plan := explainWithoutScans(t, db, sql, args)
			if !strings.Contains(plan, c.index) {
				t.Errorf("%s does not use %s:\n%s\n%s", c.name, c.index, sql, plan)
			}
		})
	}
	// What each index holds.
	db := mustOpen(t)
	for index, want := range map[string]string{
		"calls_tags_idx":              "WHERE (tags <> '{}'::text[])",
		"calls_live_idx":              "WHERE (ended_at IS NULL)",
		"calls_tenant_operator_idx":   "WHERE (operator_id IS NOT NULL)",
		"calls_to_anonymise_idx":      "WHERE ((anonymised_at IS NULL) AND (ended_at IS NOT NULL))",
		"call_sip_messages_at_idx":    "USING brin (at)",
		"call_quality_samples_at_idx": "USING brin (at)",
	} {
		var def string
		if err := db.pool.QueryRow(ctx, "SELECT indexdef FROM pg_indexes WHERE indexname = $1", index).Scan(&def); err != nil {
			t.Fatalf("%s: %v", index, err)
		}
		if !strings.Contains(def, want) {
			t.Errorf("%s is %s, want it to hold %s", index, def, want)
		}
	}
}

// explainWithoutScans returns PostgreSQL's plan for sql with scans of
// whole tables priced out, as on a table too large to read whole, and
// plain index scans too: whether an index can serve the query is the
// question, not which one the planner likes best on a small table.
func explainWithoutScans(t *testing.T, db *DB, sql string, args []any) string {
	t.Helper()
	ctx := mustCtx(t)
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Nor an index read in its order (the newest calls first) to be
	// filtered, which the planner prefers for a LIMIT on a small table.
	for _, set := range []string{"SET LOCAL enable_seqscan = off", "SET LOCAL enable_indexscan = off"} {
		if _, err := tx.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// A call's answer is written as a heap-only tuple (migration 0029): it
// changes no column an index holds, so no index takes an entry and the
// new version stays on the row's page. A call an operator answers names
// them, which their calls' index holds, so that answer is not.
func TestAnswerIsHeapOnly(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	store := NewCallStore(db)
	for _, c := range []struct {
		name     string
		operator *sb.ID
		hot      int
	}{{"forwarded", nil, 1}, {"taken by an operator", new(sb.NewID()), 0}} {
		call := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, From: "+4930123", To: "2000", Status: sb.CallRinging}
		if err := store.CreateCall(ctx, call); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		call.Status, call.AnsweredAt, call.Codec, call.OperatorID, call.TimeToAnswerMS = sb.CallAnswered, &now, "PCMU", c.operator, 900
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The connection's counts not yet reported, this transaction's
		// among them: what the update adds to them.
		counts := func() (updated, hot int) {
			if err := tx.QueryRow(ctx, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'calls'").Scan(&updated, &hot); err != nil {
				t.Fatal(err)
			}
			return updated, hot
		}
		updated, hot := counts()
		if err := store.UpdateCall(withTx(ctx, tx), call); err != nil {
			t.Fatal(err)
		}
		u, h := counts()
		updated, hot = u-updated, h-hot
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if updated != 1 || hot != c.hot {
			t.Errorf("%s: the answer updated %d rows, %d of them heap-only; want 1, %d", c.name, updated, hot, c.hot)
		}
	}
}
