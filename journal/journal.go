// Package journal keeps call control's records when the database cannot
// take them. A write the database refuses for being unreachable goes to a
// local append-only file, fsync'd before the write returns; from then on
// every write goes there, in order, until a drain has replayed the file
// into the database. A write that ran out of time against a database that
// still answers (a slow one, not a dead one) goes there too, alone: the
// other calls' writes go on straight to the database, and only that call's
// later writes follow it into the file, so that its record is written in
// order. Replays are idempotent (a call created twice is one call, an
// event stored twice is one event, a trace is stored once), so a crash in
// the middle of a drain, or a write the database took just before its
// answer was lost, leaves each record written exactly once.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// maxHeadTimeouts is how many drains in a row the journal's first entry
// may run out of time against a live database before it and its call's
// later entries go to the back, so that one write the database never
// takes in time (a row kept locked, a huge trace) cannot hold every other
// record back.
const maxHeadTimeouts = 3

// entry is one journaled write.
type entry struct {
	Op     string          `json:"op"` // create, update, events, trace, step
	Call   *sb.Call        `json:"call,omitempty"`
	Events []*sb.CallEvent `json:"events,omitempty"`
	Trace  *sb.CallTrace   `json:"trace,omitempty"`
}

// Recorder is a CallRecorder with a journal in front of the database.
type Recorder struct {
	db          sb.CallRecorder
	path        string
	unreachable func(error) bool
	log         *slog.Logger

	// drain is held by Drain: one at a time, so that the file only
	// grows while a drain writes its entries to the database.
	drain sync.Mutex

	// mu guards what follows and the file. A call's writes come from its
	// own goroutine, in order.
	mu      sync.RWMutex
	pending int // entries in the file waiting for the database
	// down is set when the database was found unreachable: every write
	// goes to the file until a drain has emptied it.
	down bool
	// held counts each call's entries in the file: while it has any, its
	// later writes go there too, behind them.
	held map[sb.ID]int
	// headTimeouts counts the drains in a row whose first entry ran out of
	// time against a live database.
	headTimeouts int

	// A drain that wrote nothing because the database was down or too
	// slow makes the next ones wait, wait doubling up to maxRetryWait:
	// an overloaded database is not sent the same write every second, nor
	// the machine made to read the journal again for it.
	now     func() time.Time
	retryAt time.Time
	wait    time.Duration

	// lock keeps other processes off the file while this one runs.
	lock *os.File
}

// maxRetryWait is the longest a drain waits after drains that wrote
// nothing.
const maxRetryWait = 8 * time.Second

// calls returns the calls e writes to.
func (e entry) calls() []sb.ID {
	var ids []sb.ID
	add := func(id sb.ID) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if e.Call != nil {
		add(e.Call.ID)
	}
	if e.Trace != nil {
		add(e.Trace.CallID)
	}
	for _, ev := range e.Events {
		add(ev.CallID)
	}
	return ids
}

// anyPart reports whether err, or any error it joins (a step's, one for
// each of its parts), satisfies is: an unreachable database refusing
// one part of a step is an unreachable database, whatever another part's
// refusal says.
func anyPart(err error, is func(error) bool) bool {
	if err == nil {
		return false
	}
	if is(err) {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if anyPart(e, is) {
				return true
			}
		}
	}
	return false
}

// timedOut reports whether err is a write that ran out of time or was
// cancelled: it was not refused, and may be taken later.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

var _ sb.CallRecorder = (*Recorder)(nil)

// Open returns a recorder writing to db, journaling to path the writes
// that fail because the database is unreachable (as unreachable says).
// Entries left in path by an earlier run are replayed by the next Drain.
func Open(path string, db sb.CallRecorder, unreachable func(error) bool, log *slog.Logger) (*Recorder, error) {
	r := &Recorder{db: db, path: path, unreachable: unreachable, log: log, held: map[sb.ID]int{}, now: time.Now}
	var err error
	if r.lock, err = lock(path); err != nil {
		return nil, err
	}
	if err := r.repairTail(); err != nil {
		return nil, err
	}
	entries, err := r.read(0)
	if err != nil {
		return nil, err
	}
	r.pending = len(entries)
	for _, e := range entries {
		r.hold(e.calls(), 1)
	}
	if r.pending > 0 {
		r.down = true
		log.Warn("call records left in the journal by the last run; they go to the database when it takes them", "entries", r.pending)
	}
	return r, nil
}

// Pending returns how many writes wait in the journal.
func (r *Recorder) Pending() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.pending
}

// Down reports whether the database was found unreachable: every write
// goes to the journal until a drain has emptied it.
func (r *Recorder) Down() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.down
}

func (r *Recorder) CreateCall(ctx context.Context, c *sb.Call) error {
	return r.write(ctx, entry{Op: "create", Call: c})
}

func (r *Recorder) UpdateCall(ctx context.Context, c *sb.Call) error {
	return r.write(ctx, entry{Op: "update", Call: c})
}

func (r *Recorder) AddCallEvents(ctx context.Context, events ...*sb.CallEvent) error {
	if len(events) == 0 {
		return nil
	}
	return r.write(ctx, entry{Op: "events", Events: events})
}

func (r *Recorder) AddCallTrace(ctx context.Context, t *sb.CallTrace) error {
	return r.write(ctx, entry{Op: "trace", Trace: t})
}

// WriteCallStep keeps the step as one entry: written together, or
// journaled together.
func (r *Recorder) WriteCallStep(ctx context.Context, s *sb.CallStep) error {
	if s.Call == nil && s.Trace == nil && len(s.Events) == 0 {
		return nil
	}
	return r.write(ctx, entry{Op: "step", Call: s.Call, Events: s.Events, Trace: s.Trace})
}

func (r *Recorder) write(ctx context.Context, e entry) error {
	r.mu.RLock()
	direct := !r.down && !r.holds(e.calls())
	r.mu.RUnlock()
	dead := false
	if direct {
		err := r.apply(ctx, e)
		switch {
		case anyPart(err, r.unreachable):
			dead = true
			r.log.Warn("database unavailable: call records go to the journal until it is back", "err", err)
		case timedOut(err):
			// The database answers, slowly: this record waits in the
			// journal for the next drain, the others go on to the database.
			r.log.Warn("a call record ran out of time; the journal keeps it for the next drain", "op", e.Op, "err", err)
		default:
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.append(e); err != nil {
		return err
	}
	r.pending++
	r.hold(e.calls(), 1) // after apply: a create sets its call's ID
	r.down = r.down || dead
	return nil
}

// holds reports whether the file holds an entry of any of ids.
func (r *Recorder) holds(ids []sb.ID) bool {
	for _, id := range ids {
		if r.held[id] > 0 {
			return true
		}
	}
	return false
}

// hold adds n to each of ids' entries in the file.
func (r *Recorder) hold(ids []sb.ID, n int) {
	for _, id := range ids {
		if r.held[id] += n; r.held[id] <= 0 {
			delete(r.held, id)
		}
	}
}

// apply writes one entry to the database, idempotently.
func (r *Recorder) apply(ctx context.Context, e entry) error {
	var err error
	switch e.Op {
	case "create":
		if err = r.db.CreateCall(ctx, e.Call); sb.ErrorCode(err) == sb.ECONFLICT {
			err = nil // created before: the write took, its answer was lost
		}
	case "update":
		err = r.db.UpdateCall(ctx, e.Call)
	case "events":
		err = r.db.AddCallEvents(ctx, e.Events...)
	case "trace":
		err = r.db.AddCallTrace(ctx, e.Trace)
	case "step":
		err = r.db.WriteCallStep(ctx, &sb.CallStep{Call: e.Call, Events: e.Events, Trace: e.Trace})
	default:
		err = fmt.Errorf("journal: unknown entry %q", e.Op)
	}
	return err
}

// append adds e to the file and makes it durable.
func (r *Recorder) append(e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return errors.Join(fmt.Errorf("journal: %w", err), f.Close())
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// Not taken: leave no torn line (a short write on a full disk)
		// for the next entry to be glued to, nor a line the caller was
		// told is not there.
		err = errors.Join(err, f.Truncate(st.Size()))
	}
	return errors.Join(err, f.Close())
}

// repairTail cuts a torn last line (a crash while it was written, before
// its write returned) off the file, so that the next entry appended
// starts a line of its own instead of being lost with it.
func (r *Recorder) repairTail() error {
	b, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) || len(b) == 0 || b[len(b)-1] == '\n' {
		return nil
	} else if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	keep := bytes.LastIndexByte(b, '\n') + 1
	if json.Valid(b[keep:]) {
		// Whole but for its newline: keep it, on a line of its own.
		f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		_, err = f.Write([]byte{'\n'})
		if err == nil {
			err = f.Sync()
		}
		if err = errors.Join(err, f.Close()); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		return nil
	}
	r.log.Warn("journal: a torn last entry (written when the process stopped) is dropped", "bytes", len(b)-keep)
	if err := os.Truncate(r.path, int64(keep)); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// read returns the file's entries from byte offset from on; an unreadable
// line is logged and skipped, and a last line without its newline (being
// written) is left for later.
func (r *Recorder) read(from int64) ([]entry, error) {
	var entries []entry
	err := r.scan(from, func(e *entry, _ int64) bool {
		if e != nil {
			entries = append(entries, *e)
		}
		return true
	})
	return entries, err
}

// scan calls fn with each entry of the file from byte offset from on, and
// the offset just after it, until fn returns false. An unreadable line is
// logged and passed as nil; a last line without its newline is not
// passed.
func (r *Recorder) scan(from int64, fn func(e *entry, end int64) bool) error {
	f, err := os.Open(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	off := from
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		off += int64(len(line))
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			r.log.Warn("journal: unreadable entry dropped", "err", err)
			if !fn(nil, off) {
				return nil
			}
			continue
		}
		if !fn(&e, off) {
			return nil
		}
	}
}

// Drain replays the journal into the database and returns how many
// entries went. It stops at the first the database cannot take yet (it is
// unreachable, or the write ran out of time), having read the file only
// that far; an entry the database refuses for what it is is logged and
// skipped, so that one bad record cannot hold the others back. A first
// entry that ran out of time against a live database maxHeadTimeouts
// drains in a row goes to the back with its call's later entries. After a
// drain that wrote nothing for either reason, the next drains wait (1 s
// doubling up to maxRetryWait). Writes go on while a drain writes to the
// database: they are added behind what it replays.
func (r *Recorder) Drain(ctx context.Context) (int, error) {
	r.drain.Lock()
	defer r.drain.Unlock()
	r.mu.RLock()
	pending := r.pending
	r.mu.RUnlock()
	if pending == 0 || r.now().Before(r.retryAt) {
		return 0, nil
	}
	went := 0
	var done []entry // what went, or was refused for good
	var consumed int64
	var stuck error
	dead := false
	// Only what is in the file now: writers may append faster than the
	// database takes entries, and this drain must end to cut what went.
	size, err := r.size()
	if err != nil {
		return 0, err
	}
	err = r.scan(0, func(e *entry, end int64) bool {
		if end > size {
			return false
		}
		if e == nil {
			consumed = end
			return true
		}
		err := r.apply(sb.Replaying(ctx), *e)
		if dead = anyPart(err, r.unreachable); dead || timedOut(err) {
			stuck = err
			return false
		} else if err != nil {
			r.log.Error("journal: a call record the database refused is dropped", "op", e.Op, "err", err)
		}
		went++
		done = append(done, *e)
		consumed = end
		return true
	})
	if err != nil {
		return 0, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if went > 0 {
		r.headTimeouts = 0
	}
	if stuck != nil && went == 0 {
		r.wait = min(max(2*r.wait, time.Second), maxRetryWait)
		r.retryAt = r.now().Add(r.wait)
	} else {
		r.wait, r.retryAt = 0, time.Time{}
	}
	moveBehind := false
	switch {
	case dead:
		r.down, r.headTimeouts = true, 0
	case stuck != nil:
		if r.headTimeouts++; r.headTimeouts >= maxHeadTimeouts {
			moveBehind = true
			r.headTimeouts = 0
		}
	}
	if moveBehind {
		// The file holds the rest, and what was added since.
		rest, err := r.read(consumed)
		if err != nil {
			return went, err
		}
		r.log.Error("journal: a call record the database does not take in time goes to the back of the journal, behind the others",
			"op", rest[0].Op, "call", rest[0].calls(), "drains", maxHeadTimeouts, "err", stuck)
		moved := behind(rest)
		if !slices.Equal(moved[0].calls(), rest[0].calls()) {
			// Another call's entries come first now: no reason to wait.
			r.wait, r.retryAt = 0, time.Time{}
		}
		return went, r.rewrite(moved)
	}
	if consumed == 0 {
		return went, nil
	}
	left, err := r.cut(consumed)
	if err != nil {
		// The file still holds what went: the next drain writes it again,
		// and its calls' writes stay behind it until then.
		return went, err
	}
	for _, e := range done {
		r.hold(e.calls(), -1)
	}
	if left > 0 {
		r.pending -= went
		return went, nil
	}
	r.pending, r.down, r.headTimeouts = 0, false, 0
	clear(r.held)
	r.log.Info("journal drained into the database", "entries", went)
	return went, nil
}

// size returns the file's length in bytes, 0 when there is none.
func (r *Recorder) size() (int64, error) {
	st, err := os.Stat(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	return st.Size(), nil
}

// cut removes the file's first n bytes, atomically, and returns how many
// bytes are left; with none left the file is gone.
func (r *Recorder) cut(n int64) (int64, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	left := st.Size() - n
	if left <= 0 {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("journal: %w", err)
		}
		return 0, nil
	}
	if _, err := f.Seek(n, io.SeekStart); err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	return left, r.replace(func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

// behind returns entries with the first and every later entry of its
// calls moved to the back, in their order.
func behind(entries []entry) []entry {
	ids := entries[0].calls()
	var front, back []entry
	for i, e := range entries {
		if i == 0 || slices.ContainsFunc(e.calls(), func(id sb.ID) bool { return slices.Contains(ids, id) }) {
			back = append(back, e)
		} else {
			front = append(front, e)
		}
	}
	return append(front, back...)
}

// rewrite replaces the file with entries, atomically.
func (r *Recorder) rewrite(entries []entry) error {
	err := r.replace(func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		r.pending = len(entries)
	}
	return err
}

// replace writes the file anew with what fill writes, atomically and
// durably.
func (r *Recorder) replace(fill func(io.Writer) error) error {
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	w := bufio.NewWriter(f)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}
