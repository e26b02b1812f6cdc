package recordings

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// tapQueue is how many packets may wait for the recorder's goroutine:
// two seconds of both directions. A recording that falls further behind
// drops packets (and counts them) rather than slowing the call.
const tapQueue = 200

// Recording is the outcome of a finished recording, for its record.
type Recording struct {
	ObjectKey  string
	KeyVersion uint32
	WrappedKey []byte
	Size       int64
	Segments   int
	Dropped    uint64 // packets the recorder could not keep up with
	// SegmentStarts is when each segment's first record was made.
	SegmentStarts []time.Time
}

// countingWriter tells the size of what went to the store.
type countingWriter struct {
	up Upload
	n  int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.up.Write(p)
	c.n += int64(n)
	return n, err
}

// Recorder seals one call's audio into its store as the call goes on. It
// is fed from the bridge's tap; everything slow happens on its own
// goroutine.
type Recorder struct {
	store   Store
	key     string
	version uint32
	wrapped []byte
	up      Upload
	cw      *countingWriter
	w       *Writer

	in      chan Record
	pool    sync.Pool
	dropped atomic.Uint64
	done    chan struct{}
	err     error // set by the goroutine before done closes

	// mu guards closing in: senders hold it shared, so a mark waiting for
	// room never holds up the bridge's taps.
	mu      sync.RWMutex
	stopped bool
}

// StartRecorder starts a recording for m: a fresh data key, wrapped with
// the keyring's active key and bound to the recording's ID, and an upload
// to store that the recording streams into.
func StartRecorder(ctx context.Context, store Store, ring *Keyring, m Meta) (*Recorder, error) {
	dataKey, err := NewDataKey()
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	version, wrapped, err := ring.Wrap(dataKey, m.RecordingID[:])
	if err != nil {
		return nil, err
	}
	key := ObjectKey(m.TenantID, m.RecordingID)
	up, err := store.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	cw := &countingWriter{up: up}
	w, err := NewWriter(cw, dataKey, m)
	if err != nil {
		up.Abort(context.WithoutCancel(ctx))
		return nil, err
	}
	r := &Recorder{store: store, key: key, version: version, wrapped: wrapped, up: up, cw: cw, w: w,
		in: make(chan Record, tapQueue), done: make(chan struct{})}
	r.pool.New = func() any { b := make([]byte, 0, 256); return &b }
	go r.run()
	return r, nil
}

func (r *Recorder) run() {
	defer close(r.done)
	for rec := range r.in {
		if r.err == nil {
			r.err = r.w.Write(rec)
		}
		r.release(rec)
	}
}

// release returns a tapped record's buffer to the pool.
func (r *Recorder) release(rec Record) {
	if rec.pooled != nil {
		*rec.pooled = rec.Payload[:0]
		r.pool.Put(rec.pooled)
	}
}

// Tap takes one audio payload from the bridge. It copies the payload and
// never blocks.
func (r *Recorder) Tap(fromCaller bool, payload []byte, at time.Time) {
	ch := ChannelOperator
	if fromCaller {
		ch = ChannelCaller
	}
	bp := r.pool.Get().(*[]byte)
	rec := Record{Kind: KindAudio, Channel: ch, At: at, Payload: append((*bp)[:0], payload...), pooled: bp}
	r.send(rec)
}

func (r *Recorder) send(rec Record) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.stopped {
		r.release(rec)
		return
	}
	select {
	case r.in <- rec:
	default:
		r.dropped.Add(1)
		r.release(rec)
	}
}

// Pause marks the start of a gap: nothing is recorded until Resume. The
// caller stops tapping; the marks say where the gap is.
func (r *Recorder) Pause(at time.Time) { r.mark(Record{Kind: KindPause, At: at}) }

// Resume marks the end of a gap.
func (r *Recorder) Resume(at time.Time) { r.mark(Record{Kind: KindResume, At: at}) }

// mark queues a pause or resume, waiting for room: a mark must not be
// dropped.
func (r *Recorder) mark(rec Record) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.stopped {
		r.in <- rec
	}
}

// stop ends the feed and waits for what was queued to be sealed.
func (r *Recorder) stop() {
	r.mu.Lock()
	if !r.stopped {
		r.stopped = true
		close(r.in)
	}
	r.mu.Unlock()
	<-r.done
}

// Finish seals the last segment and completes the upload.
func (r *Recorder) Finish(ctx context.Context) (*Recording, error) {
	r.stop()
	err := r.err
	if err == nil {
		err = r.w.Close()
	}
	if err == nil {
		err = r.up.Complete(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("recordings: finish: %w", err), r.up.Abort(context.WithoutCancel(ctx)))
	}
	return &Recording{ObjectKey: r.key, KeyVersion: r.version, WrappedKey: r.wrapped, Size: r.cw.n,
		Segments: r.w.Segments(), Dropped: r.dropped.Load(), SegmentStarts: r.w.SegmentStarts()}, nil
}

// Destroy ends the recording and removes everything it stored: consent was
// withdrawn. The wrapped key is forgotten, so even a copy of the object
// that escaped deletion cannot be opened.
func (r *Recorder) Destroy(ctx context.Context) error {
	r.stop()
	clear(r.wrapped)
	r.wrapped = nil
	return errors.Join(r.up.Abort(ctx), r.store.Delete(ctx, r.key))
}
