package metadata

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/pglocal"
)

// Many calls writing at once share transactions: every step is stored
// and answered, in far fewer commits than steps; a step that fails (an
// update of a call that does not exist) fails alone, and the steps it
// shared a transaction with are stored.
func TestCallWriterCommitsCallsTogether(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	store := NewCallStore(db)
	w := NewCallWriter(store, 1)
	defer w.Close()

	const calls = 64
	var wg sync.WaitGroup
	errs := make([]error, calls)
	ghost := &sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, Status: sb.CallCompleted}
	var ghostErr error
	start := make(chan struct{})
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2000", Status: sb.CallRinging}
			if errs[i] = w.CreateCall(ctx, c); errs[i] != nil {
				return
			}
			if errs[i] = w.AddCallEvents(ctx, &sb.CallEvent{CallID: c.ID, TenantID: tenant.ID, Type: sb.EventRinging}); errs[i] != nil {
				return
			}
			c.Status = sb.CallCompleted
			errs[i] = w.UpdateCall(ctx, c)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		ghostErr = w.UpdateCall(ctx, ghost)
	}()
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if sb.ErrorCode(ghostErr) != sb.ENOTFOUND {
		t.Errorf("updating a call that does not exist: %v, want ENOTFOUND", ghostErr)
	}
	var completed, events int
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM calls WHERE tenant_id = $1 AND status = 'completed'", tenant.ID).Scan(&completed); err != nil {
		t.Fatal(err)
	}
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM call_events WHERE tenant_id = $1", tenant.ID).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if completed != calls || events != calls {
		t.Errorf("%d completed records and %d events stored, want %d of each", completed, events, calls)
	}
	steps := int64(3*calls + 1)
	t.Logf("%d steps in %d commits, %d written again alone", steps, w.commits.Load(), w.retried.Load())
	if n := w.commits.Load(); n >= steps/2 {
		t.Errorf("%d commits for %d steps: the steps were not written together", n, steps)
	}
}

// A stopped writer refuses steps rather than hanging.
func TestCallWriterStopped(t *testing.T) {
	db := mustOpen(t)
	w := NewCallWriter(NewCallStore(db), 2)
	w.Close()
	err := w.CreateCall(context.Background(), &sb.Call{TenantID: sb.NewID(), Direction: sb.Inbound})
	if sb.ErrorCode(err) != sb.EUNAVAILABLE {
		t.Errorf("a step after Close: %v, want EUNAVAILABLE", err)
	}
}

// Events for many tenants go in one statement: each becomes a delivery
// for every webhook of its own tenant that wants it, and nothing for a
// tenant without one.
func TestWebhookEnqueueMany(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	a, b, c := mustTenant(t, db, "A"), mustTenant(t, db, "B"), mustTenant(t, db, "C")
	for _, h := range []struct {
		tenant sb.ID
		events string
	}{{a.ID, "{call.answered,call.ended}"}, {a.ID, "{call.ended}"}, {b.ID, "{call.offered}"}} {
		if _, err := db.pool.Exec(ctx, "INSERT INTO webhooks (id, tenant_id, url, secret, events, created_at) VALUES ($1, $2, 'https://crm.test/h', 'x', $3, now())",
			sb.NewID(), h.tenant, h.events); err != nil {
			t.Fatal(err)
		}
	}
	events := []sb.WebhookEvent{
		{TenantID: a.ID, Event: "call.ended", Payload: []byte(`{"n":1}`)},    // both of A's
		{TenantID: a.ID, Event: "call.offered", Payload: []byte(`{"n":2}`)},  // none of A's
		{TenantID: b.ID, Event: "call.offered", Payload: []byte(`{"n":3}`)},  // B's
		{TenantID: c.ID, Event: "call.ended", Payload: []byte(`{"n":4}`)},    // C has none
		{TenantID: a.ID, Event: "call.answered", Payload: []byte(`{"n":5}`)}, // A's first
	}
	n, err := NewWebhookStore(db, nil).Enqueue(ctx, events...)
	if err != nil || n != 4 {
		t.Fatalf("enqueued %d, %v: want 4 deliveries", n, err)
	}
	rows, err := db.pool.Query(ctx, "SELECT tenant_id, event, payload->>'n' FROM webhook_deliveries ORDER BY payload->>'n', tenant_id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var tenant sb.ID
		var event, n string
		if err := rows.Scan(&tenant, &event, &n); err != nil {
			t.Fatal(err)
		}
		name := map[sb.ID]string{a.ID: "A", b.ID: "B", c.ID: "C"}[tenant]
		got = append(got, name+" "+event+" "+n)
	}
	want := "[A call.ended 1 A call.ended 1 B call.offered 3 A call.answered 5]"
	if fmt.Sprint(got) != want {
		t.Errorf("deliveries %v, want %s", got, want)
	}
}

// Whole calls' records from many calls at once, as call control writes
// them for a call answered by an operator (created; ringing; answered;
// ended with its timeline; the trace), straight to the store and through
// CallWriter. The shared test database runs without fsync, so this starts
// its own durable one, as a deployment's is: commits wait for the disk.
// Besides the time per call it reports PostgreSQL's own cost per call:
// its processes' CPU (pg-cpu-ms/call, Linux), its statements' execution
// time and shared buffers touched (pg-exec-ms/call, blks/call, from
// pg_stat_statements), the WAL written (wal-B/call) and the writer's
// commits (commits/call). The CPU and time figures move with the
// machine's load; blocks and WAL do not. -v logs the statements
// PostgreSQL spent most on. Run with -benchtime 3000x.
func BenchmarkCallRecords(b *testing.B) {
	// Not mustCtx's: a run takes as long as it is asked to.
	ctx := b.Context()
	dir, err := os.MkdirTemp("", "switchboard-bench-pg-") // a folder PostgreSQL's user can reach
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := pglocal.Start(ctx, dir, pglocal.WithSetting("shared_preload_libraries", "pg_stat_statements"))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	db, err := Open(ctx, srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		b.Fatal(err)
	}
	cost, err := newPgCost(db, srv.DataDir())
	if err != nil {
		b.Fatal(err)
	}
	tenant := mustTenant(b, db, "Acme")
	operator := sb.NewID()
	store := NewCallStore(db)
	writer := NewCallWriter(store, 4)
	defer writer.Close()
	at := netip.MustParseAddrPort("192.0.2.1:5060")
	sipMessage := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1-0\r\nFrom: <sip:+4930123@192.0.2.1>;tag=1\r\n" +
		"To: <sip:2000@192.0.2.2>;tag=2\r\nCall-ID: 1-4242@192.0.2.1\r\nCSeq: 1 INVITE\r\nContact: <sip:192.0.2.2:5060>\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\n" +
		"t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
	// record writes one call as the switch does: answered by an operator,
	// or (forwarded) by a party that is none.
	record := func(rec sb.CallRecorder, forwarded bool) error {
		ctx := context.Background()
		c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, From: "+4930123", To: "2000", Source: "192.0.2.1", SIPCallID: "1-4242@192.0.2.1", Status: sb.CallRinging}
		event := func(t sb.EventType, detail map[string]any) *sb.CallEvent {
			return &sb.CallEvent{CallID: c.ID, TenantID: tenant.ID, Type: t, Detail: detail}
		}
		if err := rec.CreateCall(ctx, c); err != nil {
			return err
		}
		// Answered: its state and timeline so far in one step.
		now := time.Now()
		c.Status, c.AnsweredAt, c.Codec = sb.CallAnswered, &now, "PCMU"
		if !forwarded {
			c.OperatorID = &operator
		}
		if err := rec.WriteCallStep(ctx, &sb.CallStep{Call: c, Events: []*sb.CallEvent{event(sb.EventReceived, nil), event(sb.EventTrying, nil),
			event(sb.EventOffered, map[string]any{"operator_id": operator.String()}), event(sb.EventRinging, nil),
			event(sb.EventAnswered, map[string]any{"operator_id": operator.String()})}}); err != nil {
			return err
		}
		// Ended: the rest of its timeline, its trace, its final state.
		c.Status, c.EndedAt, c.HangupBy, c.DurationMS = sb.CallCompleted, &now, sb.PartyCaller, 1000
		c.FromCaller, c.ToCaller = sb.MediaStats{Packets: 50, Bytes: 8000, MOS: 4.4}, sb.MediaStats{Packets: 50, Bytes: 8000, MOS: 4.4}
		t := &sb.CallTrace{TenantID: tenant.ID, CallID: c.ID, Quality: []sb.QualitySample{
			{At: now, Leg: "trunk", Source: "switchboard", Packets: 50}, {At: now, Leg: "browser", Source: "switchboard", Packets: 50}}}
		for range 6 {
			t.SIP = append(t.SIP, sb.SIPMessage{At: now, Inbound: true, Transport: "udp", Src: at, Dst: at, Message: sipMessage})
		}
		return rec.WriteCallStep(ctx, &sb.CallStep{Call: c, Trace: t,
			Events: []*sb.CallEvent{event(sb.EventWebRTC, map[string]any{"webrtc": "connected"}), event(sb.EventHungUp, nil), event(sb.EventEnded, nil)}})
	}
	// A table of some size, its statistics known, as a deployment's is:
	// on a nearly empty one the planner may update a call through any index
	// that starts with its tenant.
	for range 2000 {
		if err := record(store, false); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	// As many calls in progress as the benchmark keeps going (64 on two
	// CPUs), or calls begun at a rate, as a service sees them: at a few
	// hundred a second most of a call's steps find the writer idle.
	for _, c := range []struct {
		name      string
		rec       sb.CallRecorder
		rate      int // calls begun a second; 0: as many as can be
		forwarded bool
	}{{"direct", store, 0, false}, {"writer", writer, 0, false}, {"direct-300cps", store, 300, false}, {"writer-300cps", writer, 300, false},
		{"writer-300cps-forwarded", writer, 300, true}} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := db.pool.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
				b.Fatal(err)
			}
			before, err := cost.sample(ctx)
			if err != nil {
				b.Fatal(err)
			}
			commits := writer.commits.Load()
			if c.rate == 0 {
				b.SetParallelism(32)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := record(c.rec, c.forwarded); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				tick := time.NewTicker(time.Second / time.Duration(c.rate))
				var wg sync.WaitGroup
				for range b.N {
					<-tick.C
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := record(c.rec, c.forwarded); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
				tick.Stop()
			}
			b.StopTimer()
			cost.report(ctx, b, before, b.N)
			if c.rec == writer {
				b.ReportMetric(float64(writer.commits.Load()-commits)/float64(b.N), "commits/call")
			}
			cost.top(ctx, b, b.N)
		})
	}
}

// Calls that end together store their traces in shared round trips, each
// redacted by its tenant's policy, with the calls' records and events: no
// step of the batch falls back to being written alone. A trace written
// again (a journal replaying it) is stored once.
func TestCallWriterWritesTracesTogether(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	masked, open := mustTenant(t, db, "Masked"), mustTenant(t, db, "Open")
	if err := NewTenantService(db).SetTracePolicy(ctx, masked.ID, sb.TracePolicy{RetentionDays: 30, MaskNumbers: true}); err != nil {
		t.Fatal(err)
	}
	store := NewCallStore(db)
	w := NewCallWriter(store, 1)
	defer w.Close()
	at := netip.MustParseAddrPort("192.0.2.1:5060")
	const calls = 48
	var wg sync.WaitGroup
	errs := make([]error, calls)
	ids := make([]sb.ID, calls)
	start := make(chan struct{})
	for i := range calls {
		tenant := masked
		if i%2 == 1 {
			tenant = open
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2000", Status: sb.CallCompleted}
			if errs[i] = w.CreateCall(ctx, c); errs[i] != nil {
				return
			}
			ids[i] = c.ID
			tr := &sb.CallTrace{TenantID: tenant.ID, CallID: c.ID,
				SIP:     []sb.SIPMessage{{Inbound: true, Transport: "udp", Src: at, Dst: at, Message: "INVITE sip:+15550001111@h SIP/2.0\r\n\r\n"}},
				Quality: []sb.QualitySample{{Leg: "trunk", Source: "switchboard", Packets: 50}}}
			if errs[i] = w.AddCallEvents(ctx, &sb.CallEvent{CallID: c.ID, TenantID: tenant.ID, Type: sb.EventHungUp}); errs[i] != nil {
				return
			}
			if errs[i] = w.AddCallTrace(ctx, tr); errs[i] != nil {
				return
			}
			errs[i] = w.AddCallTrace(ctx, tr) // replayed
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for i, id := range ids {
		want := "INVITE sip:+15550001111@h"
		if i%2 == 0 {
			want = "INVITE sip:+*******1111@h"
		}
		var msgs, samples, events int
		var msg string
		if err := db.pool.QueryRow(ctx, `SELECT count(*), min(message),
			(SELECT count(*) FROM call_quality_samples q WHERE q.call_id = $1),
			(SELECT count(*) FROM call_events e WHERE e.call_id = $1)
			FROM call_sip_messages WHERE call_id = $1`, id).Scan(&msgs, &msg, &samples, &events); err != nil {
			t.Fatal(err)
		}
		if msgs != 1 || samples != 1 || events != 1 || !strings.HasPrefix(msg, want) {
			t.Errorf("call %d: %d messages (%q), %d quality samples, %d events; want one of each, the message starting %q", i, msgs, msg, samples, events, want)
		}
	}
	steps := int64(4 * calls)
	t.Logf("%d steps in %d commits, %d written again alone", steps, w.commits.Load(), w.retried.Load())
	if n := w.commits.Load(); n >= steps/2 {
		t.Errorf("%d commits for %d steps: the steps were not written together", n, steps)
	}
	if n := w.retried.Load(); n != 0 {
		t.Errorf("%d steps written again alone: a batch of good steps failed", n)
	}
}

// Behind is how long the oldest step being written has waited for the
// database: nothing while the writer is idle or holds only a journal's
// replay, the step's whole wait while a lock holds its commit, and
// nothing again once it is through.
func TestCallWriterBehind(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	w := NewCallWriter(NewCallStore(db), 2)
	defer w.Close()
	c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2000", Status: sb.CallRinging}
	if err := w.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if d := w.Behind(); d != 0 {
		t.Fatalf("behind %v with nothing to write, want 0", d)
	}
	lock := lockCalls(t, db)
	// A journal's replay held by the lock is no call's wait.
	replayed := make(chan error, 1)
	replay := *c
	go func() { replayed <- w.UpdateCall(sb.Replaying(ctx), &replay) }()
	time.Sleep(400 * time.Millisecond)
	if d := w.Behind(); d != 0 {
		t.Fatalf("behind %v with only a replay held by the lock, want 0", d)
	}
	c.Status = sb.CallAnswered
	handed := time.Now()
	done := make(chan error, 1)
	go func() { done <- w.UpdateCall(ctx, c) }()
	const held = 300 * time.Millisecond
	for w.Behind() < held {
		if time.Since(handed) > 10*time.Second {
			t.Fatalf("behind %v 10 s into a write held by a lock, want at least %v", w.Behind(), held)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d, since := w.Behind(), time.Since(handed); d > since {
		t.Errorf("behind %v, more than the %v since the step was handed over", d, since)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan error{replayed, done} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if d := w.Behind(); d != 0 {
		t.Errorf("behind %v once the writes went through, want 0", d)
	}
}

// A call's step (answered, ended) is one transaction however many parts
// it has, even when no other call's step shares it; its parts are stored once
// when it is written again (a journal replaying it); and a step of a call
// that does not exist stores none of its parts.
func TestCallWriterWritesAStepInOneTransaction(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	store := NewCallStore(db)
	w := NewCallWriter(store, 1)
	defer w.Close()
	at := netip.MustParseAddrPort("192.0.2.1:5060")
	stepOf := func(c *sb.Call) *sb.CallStep {
		now := time.Now()
		c.Status, c.EndedAt, c.HangupBy = sb.CallCompleted, &now, sb.PartyCaller
		return &sb.CallStep{Call: c,
			Events: []*sb.CallEvent{{CallID: c.ID, TenantID: tenant.ID, Type: sb.EventHungUp}, {CallID: c.ID, TenantID: tenant.ID, Type: sb.EventEnded}},
			Trace: &sb.CallTrace{TenantID: tenant.ID, CallID: c.ID,
				SIP:     []sb.SIPMessage{{Inbound: true, Transport: "udp", Src: at, Dst: at, Message: "BYE sip:x SIP/2.0\r\n\r\n"}},
				Quality: []sb.QualitySample{{Leg: "trunk", Source: "switchboard", Packets: 50}}}}
	}
	c := &sb.Call{TenantID: tenant.ID, Direction: sb.Inbound, To: "2000", Status: sb.CallAnswered}
	if err := w.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	step := stepOf(c)
	commits := w.commits.Load()
	if err := w.WriteCallStep(ctx, step); err != nil {
		t.Fatal(err)
	}
	if n := w.commits.Load() - commits; n != 1 {
		t.Errorf("a step alone took %d transactions, want 1", n)
	}
	if err := w.WriteCallStep(sb.Replaying(ctx), step); err != nil {
		t.Errorf("the step written again: %v", err)
	}
	var status string
	var events, msgs, samples int
	if err := db.pool.QueryRow(ctx, `SELECT status,
		(SELECT count(*) FROM call_events e WHERE e.call_id = $1),
		(SELECT count(*) FROM call_sip_messages m WHERE m.call_id = $1),
		(SELECT count(*) FROM call_quality_samples q WHERE q.call_id = $1)
		FROM calls WHERE id = $1`, c.ID).Scan(&status, &events, &msgs, &samples); err != nil {
		t.Fatal(err)
	}
	if status != string(sb.CallCompleted) || events != 2 || msgs != 1 || samples != 1 {
		t.Errorf("stored: %s, %d events, %d SIP messages, %d quality samples; want completed, 2, 1, 1", status, events, msgs, samples)
	}

	missing := stepOf(&sb.Call{ID: sb.NewID(), TenantID: tenant.ID, Direction: sb.Inbound, To: "2000"})
	if err := w.WriteCallStep(ctx, missing); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("a step of no call: %v, want ENOTFOUND", err)
	}
	if e, s, q := rowsOf(t, db, missing.Call.ID); e+s+q != 0 {
		t.Errorf("a step of no call stored %d events, %d SIP messages, %d quality samples", e, s, q)
	}
}
