package metadata

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// CallWriter is a CallRecorder that writes many calls' records in one
// transaction. A call writes its record in several short steps (created,
// ringing, answered, ended, its trace), each waiting for the database;
// alone, each step is a transaction and a commit that waits for the disk,
// and under a few hundred new calls a second the commits, not the work,
// are the limit. The writer's workers each take every step waiting when
// they are free and commit them together, so one disk flush serves many
// calls. Each step still returns only once it is committed, with its own
// answer: a batch that fails for anything but an unreachable database is
// run again step by step, so one bad write fails alone.
type CallWriter struct {
	store   *CallStore
	ops     chan *writeOp
	stop    chan struct{}
	wg      sync.WaitGroup
	timeout time.Duration // one batch's transaction, retries included

	// waiting counts the steps handed to the writer and not yet answered:
	// the database's backlog, which overload protection reads.
	waiting atomic.Int64

	// commits counts the transactions that committed steps, and retried
	// the steps written again alone after their batch failed.
	commits, retried atomic.Int64

	// since is, for each worker, when the oldest step of the batch it
	// writes was handed over (Unix nanoseconds), 0 while it waits for
	// work: how far behind the database is, which overload protection
	// reads.
	since []atomic.Int64
}

var _ sb.CallRecorder = (*CallWriter)(nil)

type writeOp struct {
	// write is the step alone, in its own round trips.
	write func(context.Context) error
	// What the step writes, so that a batch can put many steps in few
	// round trips: a create alone, or any of the others (a CallStep).
	create, update *sb.Call
	events         []*sb.CallEvent
	trace          *sb.CallTrace

	at   int64 // handed over, Unix nanoseconds; 0: a replay, which no call waits for
	done chan error
}

const (
	// maxBatch bounds the steps one transaction takes.
	maxBatch = 128
	// batchTimeout bounds one batch's transaction by default.
	batchTimeout = 5 * time.Second
)

// WriterOption tunes a CallWriter.
type WriterOption func(*CallWriter)

// WithBatchTimeout bounds each batch's transaction, its retries included
// (default 5 s). A batch that runs out of time answers its steps with
// context.DeadlineExceeded; DB.Dead tells a slow database from a dead one.
func WithBatchTimeout(d time.Duration) WriterOption {
	return func(w *CallWriter) { w.timeout = d }
}

// NewCallWriter returns a writer for store with workers transactions in
// flight at most. Close stops it.
func NewCallWriter(store *CallStore, workers int, opts ...WriterOption) *CallWriter {
	w := &CallWriter{store: store, ops: make(chan *writeOp), stop: make(chan struct{}), timeout: batchTimeout}
	for _, o := range opts {
		o(w)
	}
	w.since = make([]atomic.Int64, max(workers, 1))
	for i := range w.since {
		w.wg.Add(1)
		go w.work(&w.since[i])
	}
	return w
}

// Close stops the workers once the steps they hold are written. Steps
// asked for after Close fail.
func (w *CallWriter) Close() {
	close(w.stop)
	w.wg.Wait()
}

func (w *CallWriter) CreateCall(ctx context.Context, c *sb.Call) error {
	return w.do(ctx, &writeOp{create: c, write: func(ctx context.Context) error { return w.store.CreateCall(ctx, c) }})
}

func (w *CallWriter) UpdateCall(ctx context.Context, c *sb.Call) error {
	return w.do(ctx, &writeOp{update: c, write: func(ctx context.Context) error { return w.store.UpdateCall(ctx, c) }})
}

func (w *CallWriter) AddCallEvents(ctx context.Context, events ...*sb.CallEvent) error {
	if len(events) == 0 {
		return nil
	}
	return w.do(ctx, &writeOp{events: events, write: func(ctx context.Context) error { return w.store.AddCallEvents(ctx, events...) }})
}

func (w *CallWriter) AddCallTrace(ctx context.Context, t *sb.CallTrace) error {
	if len(t.SIP) == 0 && len(t.Quality) == 0 {
		return nil
	}
	return w.do(ctx, &writeOp{trace: t, write: func(ctx context.Context) error { return w.store.AddCallTrace(ctx, t) }})
}

// WriteCallStep writes the step's parts in one transaction, with other
// calls' steps.
func (w *CallWriter) WriteCallStep(ctx context.Context, s *sb.CallStep) error {
	op := &writeOp{update: s.Call, events: s.Events, trace: s.Trace, write: func(ctx context.Context) error { return w.store.WriteCallStep(ctx, s) }}
	if op.trace != nil && len(op.trace.SIP) == 0 && len(op.trace.Quality) == 0 {
		op.trace = nil
	}
	if op.update == nil && op.trace == nil && len(op.events) == 0 {
		return nil
	}
	return w.do(ctx, op)
}

// Backlog is how many steps wait for the database: handed to the writer
// and not yet answered.
func (w *CallWriter) Backlog() int { return int(w.waiting.Load()) }

// Behind is how long the oldest step being written has waited: since it
// was handed over, through its batch's commit. Zero when no batch is
// being written. Steps still waiting for a worker are younger: workers
// take them in the order they came. A replay (sb.Replaying: a journal's
// drain) is no call's wait and does not count.
func (w *CallWriter) Behind() time.Duration {
	now := time.Now().UnixNano()
	var oldest int64
	for i := range w.since {
		if at := w.since[i].Load(); at != 0 && (oldest == 0 || at < oldest) {
			oldest = at
		}
	}
	if oldest == 0 {
		return 0
	}
	return time.Duration(now - oldest)
}

// do hands the step to a worker and waits for its commit. A step whose
// ctx ends while it waits for a worker is not written. One already taken
// is waited for whatever ctx says, until its batch's own deadline: its
// caller's next step must not overtake it (a call's update before its
// record), and an answer that arrives is the true one.
func (w *CallWriter) do(ctx context.Context, op *writeOp) error {
	op.done = make(chan error, 1)
	if !sb.IsReplay(ctx) {
		op.at = time.Now().UnixNano()
	}
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	select {
	case w.ops <- op:
	case <-w.stop:
		return sb.Errorf(sb.EUNAVAILABLE, "the call record writer is stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-op.done
}

func (w *CallWriter) work(since *atomic.Int64) {
	defer w.wg.Done()
	batch := make([]*writeOp, 0, maxBatch)
	for {
		select {
		case op := <-w.ops:
			batch = append(batch[:0], op)
		case <-w.stop:
			return
		}
		// Everything already waiting joins: no waiting for more, so a
		// quiet service writes each step at once.
	more:
		for len(batch) < maxBatch {
			select {
			case op := <-w.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		since.Store(oldestOf(batch))
		w.write(batch, since)
	}
}

// write commits batch in one transaction and tells each step.
// The batch's steps stop counting in since as their answers go: a step
// answered is not behind.
func (w *CallWriter) write(batch []*writeOp, since *atomic.Int64) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	if len(batch) == 1 && batch[0].parts() <= 1 {
		err := batch[0].write(ctx)
		if err == nil {
			w.commits.Add(1)
		}
		since.Store(0)
		batch[0].done <- err
		return
	}
	err := w.store.db.inTx(ctx, func(tx pgx.Tx) error { return w.together(ctx, tx, batch) })
	if err == nil {
		w.commits.Add(1)
	}
	if err == nil || Unreachable(err) || errors.Is(err, context.DeadlineExceeded) {
		// All written, or none could be: each step's caller decides (the
		// journal keeps them while the database is away).
		since.Store(0)
		for _, op := range batch {
			op.done <- err
		}
		return
	}
	// One step failed and took the transaction with it: each again alone,
	// for its own answer.
	w.retried.Add(int64(len(batch)))
	for i, op := range batch {
		err := op.write(ctx)
		if err == nil {
			w.commits.Add(1)
		}
		if rest := batch[i+1:]; len(rest) > 0 {
			since.Store(oldestOf(rest))
		} else {
			since.Store(0)
		}
		op.done <- err
	}
}

// parts is how many of the writes a batch can hold together the step
// has: a CallStep's parts are written in one transaction even alone.
func (op *writeOp) parts() int {
	n := 0
	for _, set := range []bool{op.create != nil, op.update != nil, len(op.events) > 0, op.trace != nil} {
		if set {
			n++
		}
	}
	return n
}

// oldestOf is when the oldest of steps a call waits for was handed
// over; 0 when none is (replays only).
func oldestOf(steps []*writeOp) int64 {
	var oldest int64
	for _, op := range steps {
		if op.at != 0 && (oldest == 0 || op.at < oldest) {
			oldest = op.at
		}
	}
	return oldest
}

// together writes batch's steps in tx in few round trips, whatever their
// number: the calls' inserts and updates and the traces' policy lookups
// in one pipeline, then one COPY for all the events and one for each
// table of the traces. A COPY goes after the pipeline, which creates the
// calls its rows name; steps of one call come from one caller, each
// waiting for the last, so no reordering puts a call's update before its
// record.
func (w *CallWriter) together(ctx context.Context, tx pgx.Tx, batch []*writeOp) error {
	s := w.store
	b := &pgx.Batch{}
	var queued []*writeOp
	var events [][]any
	for _, op := range batch {
		if op.create != nil {
			sql, args := s.createCallStmt(s.prepareCall(op.create))
			b.Queue(sql, args...)
		}
		if op.update != nil {
			sql, args := updateCallStmt(op.update)
			b.Queue(sql, args...)
		}
		if op.trace != nil {
			b.Queue(tracePolicySQL, op.trace.TenantID, op.trace.CallID)
		}
		if op.events != nil {
			events = s.eventRows(events, op.events)
		}
		if op.create != nil || op.update != nil || op.trace != nil {
			queued = append(queued, op)
		}
	}
	var sip, quality [][]any
	if b.Len() > 0 {
		br := tx.SendBatch(ctx, b)
		for _, op := range queued {
			var err error
			if op.create != nil {
				_, err = br.Exec()
				err = mapError(err, "call")
			}
			if op.update != nil && err == nil {
				err = updatedCall(br.Exec())
			}
			if op.trace != nil && err == nil {
				var p sb.TracePolicy
				var stored bool
				if err = br.QueryRow().Scan(&p.DropBodies, &p.MaskNumbers, &stored); err != nil {
					err = mapError(err, "tenant")
				} else if !stored {
					sip, quality = traceRows(sip, quality, op.trace, p)
				}
			}
			if err != nil {
				return errors.Join(err, br.Close())
			}
		}
		if err := br.Close(); err != nil {
			return mapError(err, "call")
		}
	}
	if len(events) > 0 {
		if err := copyEvents(ctx, tx, events); err != nil {
			return err
		}
	}
	if err := copyTrace(ctx, tx, sip, quality); err != nil {
		return err
	}
	tctx := withTx(ctx, tx)
	for _, op := range batch {
		if op.create == nil && op.update == nil && op.trace == nil && op.events == nil {
			if err := op.write(tctx); err != nil {
				return err
			}
		}
	}
	return nil
}
