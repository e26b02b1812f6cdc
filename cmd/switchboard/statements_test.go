package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// statements records what the service asks PostgreSQL: each statement's
// SQL and arguments, and each COPY's table.
type statements struct {
	mu     sync.Mutex
	sql    []statement
	copies []string
}

type statement struct {
	sql  string
	args []string
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	args := make([]string, len(d.Args))
	for i, a := range d.Args {
		args[i] = fmt.Sprint(a)
	}
	s.mu.Lock()
	s.sql = append(s.sql, statement{d.SQL, args})
	s.mu.Unlock()
	return ctx
}

func (*statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A pipeline's statements (the call record writer's batches under load)
// count as statements too.
func (s *statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (s *statements) TraceBatchQuery(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.TraceQueryStart(ctx, c, pgx.TraceQueryStartData{SQL: d.SQL, Args: d.Args})
}

func (*statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (s *statements) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	s.mu.Lock()
	s.copies = append(s.copies, d.TableName.Sanitize())
	s.mu.Unlock()
	return ctx
}

func (*statements) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// about returns the statements whose arguments name id, and the COPYs into
// table since mark.
func (s *statements) about(id sb.ID, mark int, tables ...string) (named []string, copies int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.sql {
		for _, a := range st.args {
			if a == id.String() {
				named = append(named, strings.Join(strings.Fields(st.sql), " "))
				break
			}
		}
	}
	for _, c := range s.copies[mark:] {
		for _, t := range tables {
			if c == `"`+t+`"` {
				copies++
			}
		}
	}
	return named, copies
}

func (s *statements) copyMark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.copies)
}

// What one answered inbound call costs the database, in statements: the
// ones that name the call (its record's insert and updates; the trace's
// policy lookup) and the COPYs of its events and SIP messages. The count
// is fixed by the call's course, so it is asserted exactly: a change that
// adds a round trip per call shows here. (Transaction BEGIN/COMMIT are
// shared by the writer's batches and not counted; quality samples are
// copied only when the call had any, which its length decides.)
func TestStatementsPerCall(t *testing.T) {
	st := &statements{}
	m := mustStartServiceWith(t, nil, func(m *Main) { m.QueryTracer = st })
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	mark := st.copyMark()
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	sendPattern(t, 5, func(p []byte) error { return call.SendRTP(p, false) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	named, copies := st.about(in.CallID, mark, "call_events", "call_sip_messages")
	// Reading the call back through the API names it too: not the call's
	// own cost.
	var own []string
	for _, s := range named {
		if !strings.HasPrefix(s, "SELECT") || strings.Contains(s, "FROM tenants") {
			own = append(own, s)
		}
	}
	const wantNamed, wantCopies = 4, 3 // insert, update at answer, trace policy, update at end; events ×2 (answer, end), SIP messages
	if len(own) != wantNamed || copies != wantCopies {
		t.Errorf("one call: %d statements naming it and %d COPYs, want %d and %d:\n%s", len(own), copies, wantNamed, wantCopies, strings.Join(own, "\n"))
	}
	t.Logf("one call: %d statements naming it, %d COPYs", len(own), copies)
}
