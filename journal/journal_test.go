package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

var errDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

// db is a CallRecorder that can be down, or too slow for some calls'
// writes (as a row kept locked makes it), keeping what it took.
type db struct {
	mu      sync.Mutex
	down    bool
	slow    map[sb.ID]bool
	calls   map[sb.ID]sb.Call
	events  map[sb.ID]sb.EventType
	traces  map[sb.ID]int
	applied int
	replays int // writes applied that were marked as a replay
	tries   int // writes asked for while up, taken or not
}

func newDB() *db {
	return &db{calls: map[sb.ID]sb.Call{}, events: map[sb.ID]sb.EventType{}, traces: map[sb.ID]int{}, slow: map[sb.ID]bool{}}
}

func (d *db) setSlow(id sb.ID, slow bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.slow[id] = slow
}

func (d *db) take(ctx context.Context, call sb.ID, fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errDown
	}
	d.tries++
	if d.slow[call] {
		return fmt.Errorf("write call: %w", context.DeadlineExceeded)
	}
	d.applied++
	if sb.IsReplay(ctx) {
		d.replays++
	}
	return fn()
}

func (d *db) CreateCall(ctx context.Context, c *sb.Call) error {
	return d.take(ctx, c.ID, func() error {
		if _, ok := d.calls[c.ID]; ok {
			return sb.Errorf(sb.ECONFLICT, "call exists")
		}
		d.calls[c.ID] = *c
		return nil
	})
}

func (d *db) UpdateCall(ctx context.Context, c *sb.Call) error {
	return d.take(ctx, c.ID, func() error {
		if _, ok := d.calls[c.ID]; !ok {
			return sb.Errorf(sb.ENOTFOUND, "call not found")
		}
		d.calls[c.ID] = *c
		return nil
	})
}

func (d *db) AddCallEvents(ctx context.Context, events ...*sb.CallEvent) error {
	return d.take(ctx, events[0].CallID, func() error {
		for _, e := range events {
			d.events[e.ID] = e.Type
		}
		return nil
	})
}

func (d *db) WriteCallStep(ctx context.Context, s *sb.CallStep) error {
	return s.WriteApart(ctx, d)
}

func (d *db) AddCallTrace(ctx context.Context, t *sb.CallTrace) error {
	return d.take(ctx, t.CallID, func() error { d.traces[t.CallID] = len(t.SIP); return nil })
}

func unreachable(err error) bool { return errors.Is(err, errDown) }

// clock is a time the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// While the database is down, writes go to the journal, in order, and the
// call goes on; a drain after it is back writes each record once, even
// when the drain is cut short and the process restarts.
func TestJournalKeepsRecordsWhileTheDatabaseIsDown(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	d := newDB()
	r, err := Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, c); err != nil || r.Pending() != 0 || r.Down() {
		t.Fatalf("with the database up: %v, %d pending, down %v", err, r.Pending(), r.Down())
	}

	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	c.Status = sb.CallAnswered
	if err := r.UpdateCall(ctx, c); err != nil {
		t.Fatalf("an update while down: %v", err)
	}
	second := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	events := []*sb.CallEvent{{ID: sb.NewID(), CallID: c.ID, Type: sb.EventAnswered}, {ID: sb.NewID(), CallID: second.ID, Type: sb.EventReceived}}
	for _, err := range []error{r.CreateCall(ctx, second), r.AddCallEvents(ctx, events...), r.AddCallTrace(ctx, &sb.CallTrace{CallID: c.ID, SIP: make([]sb.SIPMessage, 3)})} {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Status = sb.CallCompleted // after journaling: the journal holds what was written then
	if err := r.UpdateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if r.Pending() != 5 || !r.Down() {
		t.Fatalf("%d pending, down %v; want 5, down", r.Pending(), r.Down())
	}
	if n, err := r.Drain(ctx); n != 0 || err != nil || r.Pending() != 5 {
		t.Fatalf("a drain while down: %d, %v, %d pending", n, err, r.Pending())
	}

	// Back up; the process restarts before draining: the journal is read
	// again. One entry went to the database already (its answer lost).
	d.mu.Lock()
	d.down = false
	d.calls[second.ID] = *second
	d.mu.Unlock()
	r2, err := Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil || r2.Pending() != 5 {
		t.Fatalf("reopened: %d pending, %v", r2.Pending(), err)
	}
	if n, err := r2.Drain(ctx); n != 5 || err != nil || r2.Pending() != 0 || r2.Down() {
		t.Fatalf("drain: %d, %v, %d pending, down %v", n, err, r2.Pending(), r2.Down())
	}
	// The drain's writes are marked as a replay, which no call waits for;
	// the first call's create, written straight, was not.
	if d.replays != 5 {
		t.Errorf("%d writes marked as a replay, want the drain's 5", d.replays)
	}
	if got := d.calls[c.ID]; got.Status != sb.CallCompleted || len(d.calls) != 2 || len(d.events) != 2 || d.traces[c.ID] != 3 {
		t.Errorf("after the drain: call %s, %d calls, %d events, trace %d", got.Status, len(d.calls), len(d.events), d.traces[c.ID])
	}
	// Writes go straight to the database again.
	before := d.applied
	if err := r2.UpdateCall(ctx, c); err != nil || d.applied != before+1 || r2.Pending() != 0 {
		t.Errorf("after the drain: %v, %d pending", err, r2.Pending())
	}
}

// slowDB answers every write with its deadline, as a database too slow to
// commit in time does.
type slowDB struct{ *db }

func (slowDB) UpdateCall(context.Context, *sb.Call) error { return context.DeadlineExceeded }

// A drain whose write runs out of time keeps the entry and those after it
// for the next drain, even when the database is judged slow, not gone: a
// record is dropped only when the database refuses it.
func TestDrainKeepsWhatRanOutOfTime(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	d := newDB()
	d.down = true
	r, err := Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateCall(ctx, c); err != nil || r.Pending() != 2 {
		t.Fatalf("journaled: %v, %d pending", err, r.Pending())
	}
	d.down = false
	slow, err := Open(path, slowDB{d}, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := slow.Drain(ctx); n != 1 || err != nil || slow.Pending() != 1 {
		t.Fatalf("drain into a slow database: %d went, %v, %d pending; want the create to go and the update kept", n, err, slow.Pending())
	}
}

// A write that ran out of time against a database that still answers is
// not lost and does not send every write to the journal: it waits there
// alone, its call's later writes follow it in order, the other calls'
// writes go on straight to the database, and a drain writes it once the
// database takes it.
func TestTimedOutWriteWaitsInTheJournalAlone(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	r, err := Open(filepath.Join(t.TempDir(), "journal"), d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, a); err != nil {
		t.Fatal(err)
	}
	d.setSlow(a.ID, true)
	a.Status = sb.CallCompleted
	if err := r.UpdateCall(ctx, a); err != nil || r.Pending() != 1 || r.Down() {
		t.Fatalf("an update that ran out of time: %v, %d pending, down %v; want it kept in the journal, the database not down", err, r.Pending(), r.Down())
	}
	d.setSlow(a.ID, false) // the call's next write must still follow the one waiting
	ev := &sb.CallEvent{ID: sb.NewID(), CallID: a.ID, Type: sb.EventEnded}
	if err := r.AddCallEvents(ctx, ev); err != nil || r.Pending() != 2 {
		t.Fatalf("the call's next write: %v, %d pending; want it behind its update", err, r.Pending())
	}
	if _, ok := d.events[ev.ID]; ok {
		t.Fatal("the call's event overtook its update")
	}
	b := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, b); err != nil || r.Pending() != 2 || d.calls[b.ID].ID != b.ID {
		t.Fatalf("another call's write: %v, %d pending; want it straight in the database", err, r.Pending())
	}
	if n, err := r.Drain(ctx); n != 2 || err != nil || r.Pending() != 0 {
		t.Fatalf("drain: %d, %v, %d pending", n, err, r.Pending())
	}
	if d.calls[a.ID].Status != sb.CallCompleted || d.events[ev.ID] != sb.EventEnded {
		t.Errorf("after the drain: call %s, event %q", d.calls[a.ID].Status, d.events[ev.ID])
	}
	before := d.applied
	if err := r.UpdateCall(ctx, a); err != nil || d.applied != before+1 || r.Pending() != 0 {
		t.Errorf("after the drain: %v, %d pending; want straight to the database", err, r.Pending())
	}
}

// One record the database never takes in time (its row kept locked) does
// not hold the journal: after maxHeadTimeouts drains it goes to the back
// with its call's later entries, the others drain, and it is written once
// the database takes it.
func TestDrainMovesAStuckRecordBehind(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	d.down = true
	r, err := Open(filepath.Join(t.TempDir(), "journal"), d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stuck := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	other := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	ev := &sb.CallEvent{ID: sb.NewID(), CallID: other.ID, Type: sb.EventReceived}
	for _, err := range []error{r.CreateCall(ctx, stuck), r.UpdateCall(ctx, stuck), r.CreateCall(ctx, other), r.AddCallEvents(ctx, ev)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	d.setSlow(stuck.ID, true)
	clock := &clock{t: time.Now()}
	r.now = clock.now
	for i := range maxHeadTimeouts {
		if n, err := r.Drain(ctx); n != 0 || err != nil || r.Pending() != 4 {
			t.Fatalf("drain %d: %d went, %v, %d pending", i+1, n, err, r.Pending())
		}
		clock.t = clock.t.Add(maxRetryWait)
	}
	if n, err := r.Drain(ctx); n != 2 || err != nil || r.Pending() != 2 {
		t.Fatalf("the drain after the stuck record went behind: %d went, %v, %d pending; want the other call's 2", n, err, r.Pending())
	}
	if d.calls[other.ID].ID != other.ID || d.events[ev.ID] != sb.EventReceived {
		t.Fatal("the other call's records are not in the database")
	}
	d.setSlow(stuck.ID, false)
	if n, err := r.Drain(ctx); n != 2 || err != nil || r.Pending() != 0 {
		t.Fatalf("drain once the database takes it: %d, %v, %d pending", n, err, r.Pending())
	}
	if d.calls[stuck.ID].ID != stuck.ID {
		t.Error("the stuck call's record was lost")
	}
}

// Writes go on while a drain replays the journal, and none is lost or
// overtaken: each call's writes, its record's creation journaled when it
// ran out of time, end in the database in the order the call made them.
func TestDrainAlongsideWrites(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	r, err := Open(filepath.Join(t.TempDir(), "journal"), d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	calls := make([]*sb.Call, 8)
	for i := range calls {
		calls[i] = &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
		d.setSlow(calls[i].ID, true)
		if err := r.CreateCall(ctx, calls[i]); err != nil {
			t.Fatal(err)
		}
		d.setSlow(calls[i].ID, false)
	}
	if r.Pending() != len(calls) {
		t.Fatalf("%d pending, want the %d creations that ran out of time", r.Pending(), len(calls))
	}
	stop := make(chan struct{})
	drained := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				drained <- nil
				return
			default:
			}
			if _, err := r.Drain(ctx); err != nil {
				drained <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, len(calls)*3)
	for _, c := range calls {
		wg.Go(func() {
			for _, s := range []sb.CallStatus{sb.CallAnswered, sb.CallCompleted} {
				u := *c
				u.Status = s
				errs <- r.UpdateCall(ctx, &u)
			}
			errs <- r.AddCallEvents(ctx, &sb.CallEvent{ID: sb.NewID(), CallID: c.ID, Type: sb.EventEnded})
		})
	}
	wg.Wait()
	close(stop)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a write: %v", err)
		}
	}
	if _, err := r.Drain(ctx); err != nil || r.Pending() != 0 {
		t.Fatalf("last drain: %v, %d pending", err, r.Pending())
	}
	for _, c := range calls {
		if got := d.calls[c.ID].Status; got != sb.CallCompleted {
			t.Errorf("call %s ended %s, want %s", c.ID, got, sb.CallCompleted)
		}
	}
	if len(d.events) != len(calls) {
		t.Errorf("%d events, want %d", len(d.events), len(calls))
	}
}

// A drain that wrote nothing because the database was too slow (or down)
// does not ask it again at the next tick: the drains after it wait 1 s,
// then 2, 4, up to maxRetryWait, and the wait ends with the first drain
// that writes.
func TestDrainWaitsAfterGoingNowhere(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	r, err := Open(filepath.Join(t.TempDir(), "journal"), d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := &clock{t: time.Now()}
	r.now = clock.now
	c := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	d.setSlow(c.ID, true)
	if err := r.CreateCall(ctx, c); err != nil || r.Pending() != 1 {
		t.Fatalf("journaled: %v, %d pending", err, r.Pending())
	}
	tries := func() int { d.mu.Lock(); defer d.mu.Unlock(); return d.tries }
	base := tries()
	for _, step := range []struct {
		advance time.Duration
		asked   int // the database asked again
	}{
		{0, 1},                      // the first drain asks
		{0, 0},                      // the same second: waits
		{999 * time.Millisecond, 0}, // within the 1 s wait
		{time.Millisecond, 1},       // 1 s later: asks, wait now 2 s
		{time.Second, 0},
		{time.Second, 1},     // wait now 4 s
		{4 * time.Second, 1}, // wait now 8 s
		{4 * time.Second, 0},
		{4 * time.Second, 1}, // wait stays at maxRetryWait
		{7 * time.Second, 0},
	} {
		clock.t = clock.t.Add(step.advance)
		before := tries()
		if n, err := r.Drain(ctx); n != 0 || err != nil {
			t.Fatalf("drain into a slow database: %d, %v", n, err)
		}
		if got := tries() - before; got != step.asked {
			t.Fatalf("after %s more: the database was asked %d times, want %d (%d in all)", step.advance, got, step.asked, tries()-base)
		}
	}
	d.setSlow(c.ID, false)
	clock.t = clock.t.Add(maxRetryWait)
	if n, err := r.Drain(ctx); n != 1 || err != nil || r.Pending() != 0 {
		t.Fatalf("drain once the database is quick again: %d, %v, %d pending", n, err, r.Pending())
	}
	if r.wait != 0 || !r.retryAt.IsZero() {
		t.Errorf("after a drain that wrote: wait %s until %s, want none", r.wait, r.retryAt)
	}
}

// A journal whose last line was torn by a crash mid-write loses only that
// line: the next entry starts a line of its own and is replayed, with the
// whole entries before the tear.
func TestTornLastLineDoesNotSwallowTheNext(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	d := newDB()
	d.down = true
	r, err := Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	before := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, before); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"op":"create","call":{"id":"`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r, err = Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil || r.Pending() != 1 {
		t.Fatalf("reopened: %v, %d pending; want the whole entry", err, r.Pending())
	}
	after := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, after); err != nil || r.Pending() != 2 {
		t.Fatalf("an entry after the tear: %v, %d pending", err, r.Pending())
	}
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	if n, err := r.Drain(ctx); n != 2 || err != nil || r.Pending() != 0 {
		t.Fatalf("drain: %d, %v, %d pending", n, err, r.Pending())
	}
	for _, c := range []*sb.Call{before, after} {
		if d.calls[c.ID].ID != c.ID {
			t.Errorf("call %s lost", c.ID)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the drained journal is still there: %v", err)
	}
}

// A drain whose cut fails (no room for the copy: here the temporary file
// cannot be created) must not forget what is still in the file: the
// call's later writes have to stay behind the entries the next drain
// replays again, or an old update overwrites a newer one.
func TestFailedCutKeepsTheCallBehindItsEntries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	d := newDB()
	r, err := Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	x := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	y := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	d.setSlow(x.ID, true)
	if err := r.CreateCall(ctx, x); err != nil {
		t.Fatal(err)
	}
	x.Status = sb.CallAnswered
	if err := r.UpdateCall(ctx, x); err != nil {
		t.Fatal(err)
	}
	d.setSlow(y.ID, true)
	if err := r.CreateCall(ctx, y); err != nil || r.Pending() != 3 {
		t.Fatalf("journaled: %v, %d pending", err, r.Pending())
	}
	d.setSlow(x.ID, false)
	if err := os.Mkdir(path+".tmp", 0o700); err != nil { // the cut's copy fails
		t.Fatal(err)
	}
	if n, err := r.Drain(ctx); n != 2 || err == nil {
		t.Fatalf("drain with a failing cut: %d, %v", n, err)
	}
	if r.Pending() != 3 {
		t.Errorf("after the failed cut: %d pending, but the file still holds 3 entries", r.Pending())
	}
	x.Status = sb.CallCompleted
	if err := r.UpdateCall(ctx, x); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + ".tmp")
	d.setSlow(y.ID, false)
	if _, err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.calls[x.ID].Status; got != sb.CallCompleted {
		t.Errorf("call %s after the drains, want %s: the replayed old update overtook the newer one", got, sb.CallCompleted)
	}
}

// Once the stuck record has gone to the back, the next drain has the
// other calls' records first: it should not wait out the backoff the
// stuck record ran up.
func TestDrainAfterMoveBehindDoesNotWait(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	r, err := Open(filepath.Join(t.TempDir(), "journal"), d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	r.now = clk.now
	stuck := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	other := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	d.setSlow(stuck.ID, true)
	d.setSlow(other.ID, true)
	if err := r.CreateCall(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	if err := r.CreateCall(ctx, other); err != nil || r.Pending() != 2 {
		t.Fatalf("journaled: %v, %d pending", err, r.Pending())
	}
	d.setSlow(other.ID, false)
	for i := range maxHeadTimeouts {
		if n, err := r.Drain(ctx); n != 0 || err != nil {
			t.Fatalf("drain %d: %d, %v", i+1, n, err)
		}
		clk.t = clk.t.Add(r.wait) // just the wait
	}
	clk.t = clk.t.Add(-r.wait + time.Second) // 1 s after the move
	if n, err := r.Drain(ctx); n != 1 || err != nil {
		t.Errorf("the drain 1 s after the stuck record went behind: %d went, %v; want the other call's record (waits %s)", n, err, r.wait)
	}
}

// A last entry whole but for its newline (the write stopped just before
// it) is kept, and the next entry starts a line of its own.
func TestWholeLastEntryWithoutItsNewlineIsKept(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	a := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := os.WriteFile(path, fmt.Appendf(nil, `{"op":"create","call":{"id":%q,"status":"ringing"}}`, a.ID), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDB()
	d.down = true
	r, err := Open(path, d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil || r.Pending() != 1 {
		t.Fatalf("opened: %v, %d pending; want the whole entry", err, r.Pending())
	}
	b := &sb.Call{ID: sb.NewID(), Status: sb.CallRinging}
	if err := r.CreateCall(ctx, b); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	if n, err := r.Drain(ctx); n != 2 || err != nil {
		t.Fatalf("drain: %d, %v", n, err)
	}
	for _, c := range []*sb.Call{a, b} {
		if d.calls[c.ID].ID != c.ID {
			t.Errorf("call %s lost", c.ID)
		}
	}
}

// A call's step (its events, trace and state together) is one entry while
// the database is down, and its drain writes every part.
func TestJournalKeepsAStepWhole(t *testing.T) {
	ctx := context.Background()
	d := newDB()
	r, err := Open(filepath.Join(t.TempDir(), "journal"), d, unreachable, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := &sb.Call{ID: sb.NewID(), Status: sb.CallAnswered}
	if err := r.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	c.Status = sb.CallCompleted
	step := &sb.CallStep{Call: c, Events: []*sb.CallEvent{{ID: sb.NewID(), CallID: c.ID, Type: sb.EventEnded}},
		Trace: &sb.CallTrace{CallID: c.ID, SIP: make([]sb.SIPMessage, 2)}}
	if err := r.WriteCallStep(ctx, step); err != nil || r.Pending() != 1 {
		t.Fatalf("a step while down: %v, %d entries pending, want 1", err, r.Pending())
	}
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	if n, err := r.Drain(ctx); n != 1 || err != nil {
		t.Fatalf("drain: %d, %v", n, err)
	}
	if got := d.calls[c.ID]; got.Status != sb.CallCompleted || len(d.events) != 1 || d.traces[c.ID] != 2 {
		t.Errorf("after the drain: call %s, %d events, trace of %d messages; want completed, 1, 2", got.Status, len(d.events), d.traces[c.ID])
	}
}

// halfDown refuses a step's parts one way each: one part as a record the
// database does not have, the others for being unreachable.
type halfDown struct{ *db }

func (h halfDown) WriteCallStep(context.Context, *sb.CallStep) error {
	return errors.Join(sb.Errorf(sb.ENOTFOUND, "call not found"), errDown)
}

// A step one of whose parts found the database unreachable goes to the
// journal, whatever another part's refusal says: its final state is not
// lost to a refusal that a reachable database would not have made. The
// test's unreachable is the service's: an error that is a refusal of
// ours (an *sb.Error) anywhere in it is not unreachability.
func TestJournalKeepsAStepAPartOfWhichFoundTheDatabaseDown(t *testing.T) {
	ctx := context.Background()
	refusalOrDown := func(err error) bool {
		var se *sb.Error
		return !errors.As(err, &se) && errors.Is(err, errDown)
	}
	r, err := Open(filepath.Join(t.TempDir(), "journal"), halfDown{newDB()}, refusalOrDown, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := &sb.Call{ID: sb.NewID(), Status: sb.CallCompleted}
	if err := r.WriteCallStep(ctx, &sb.CallStep{Call: c}); err != nil || r.Pending() != 1 || !r.Down() {
		t.Errorf("a step half refused, half unreachable: %v, %d pending, down %v; want it journaled and the database down", err, r.Pending(), r.Down())
	}
}
