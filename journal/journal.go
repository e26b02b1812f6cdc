// Package journal keeps call control's records when the database cannot
// take them. A write the database refuses for being unreachable goes to a
// local append-only file, fsync'd before the write returns; from then on
// every write goes there, in order, until a drain has replayed the file
// into the database. Replays are idempotent (a call created twice is one
// call, an event stored twice is one event, a trace is stored once), so a
// crash in the middle of a drain, or a write the database took just before
// its answer was lost, leaves each record written exactly once.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	sb "github.com/switchboard-voice/switchboard"
)

// entry is one journaled write.
type entry struct {
	Op     string          `json:"op"` // create, update, events, trace
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

	// mu is held for reading by writes that go to the database (they run
	// side by side: each call's writes come from its own goroutine, in
	// order), and for writing by the journal's appends and drains.
	mu      sync.RWMutex
	pending int // entries in the file waiting for the database
}

var _ sb.CallRecorder = (*Recorder)(nil)

// Open returns a recorder writing to db, journaling to path the writes
// that fail because the database is unreachable (as unreachable says).
// Entries left in path by an earlier run are replayed by the next Drain.
func Open(path string, db sb.CallRecorder, unreachable func(error) bool, log *slog.Logger) (*Recorder, error) {
	r := &Recorder{db: db, path: path, unreachable: unreachable, log: log}
	entries, err := r.read()
	if err != nil {
		return nil, err
	}
	r.pending = len(entries)
	if r.pending > 0 {
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

func (r *Recorder) write(ctx context.Context, e entry) error {
	r.mu.RLock()
	if r.pending == 0 {
		err := r.apply(ctx, e)
		r.mu.RUnlock()
		if !r.unreachable(err) {
			return err
		}
		r.log.Warn("database unavailable: call records go to the journal until it is back", "err", err)
	} else {
		r.mu.RUnlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.append(e); err != nil {
		return err
	}
	r.pending++
	return nil
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
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// read returns the file's entries; a torn last line (a crash while it was
// written, before its write returned) is dropped.
func (r *Recorder) read() ([]entry, error) {
	b, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var entries []entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			r.log.Warn("journal: unreadable entry dropped", "err", err)
			continue
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

// Drain replays the journal into the database and returns how many
// entries went. It stops at the first the database cannot take yet (it is
// unreachable, or the write ran out of time); an entry the database
// refuses for what it is is logged and skipped, so that one bad record
// cannot hold the others back.
func (r *Recorder) Drain(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == 0 {
		return 0, nil
	}
	entries, err := r.read()
	if err != nil {
		return 0, err
	}
	for i, e := range entries {
		// A write that ran out of time was not refused: it waits for the
		// next drain with the rest, whether the database is gone or slow.
		if err := r.apply(ctx, e); r.unreachable(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			// Keep what is left: rewrite the file without what went.
			return i, r.rewrite(entries[i:])
		} else if err != nil {
			r.log.Error("journal: a call record the database refused is dropped", "op", e.Op, "err", err)
		}
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return len(entries), fmt.Errorf("journal: %w", err)
	}
	r.pending = 0
	r.log.Info("journal drained into the database", "entries", len(entries))
	return len(entries), nil
}

// rewrite replaces the file with entries, atomically.
func (r *Recorder) rewrite(entries []entry) error {
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err = enc.Encode(e); err != nil {
			break
		}
	}
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
	r.pending = len(entries)
	return nil
}
