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

	// The taps append to queue (records whose payloads are copied into
	// its bytes); the goroutine swaps it for an empty one every
	// drainEvery and seals what it took. No allocation, no channel send
	// and no goroutine wake-up per packet.
	mu      sync.Mutex
	queue   tapBatch
	spare   tapBatch // the goroutine's: the batch it took last, emptied and zeroed
	stopped bool
	dropped atomic.Uint64

	kick    chan struct{} // wakes the goroutine early when the queue is half full
	closing chan struct{} // closed by stop
	done    chan struct{}
	err     error // set by the goroutine before done closes
}

// tapBatch is what the taps queued since the last drain.
type tapBatch struct {
	recs  []Record
	bytes []byte // the payloads, one after another
}

func newTapBatch() tapBatch {
	return tapBatch{recs: make([]Record, 0, tapQueue), bytes: make([]byte, 0, tapQueue*172)}
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
		queue: newTapBatch(), spare: newTapBatch(), kick: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r, nil
}

// drainEvery is how often the recorder's goroutine takes what the taps
// queued. Waking it for every packet (a hundred a second per call) cost
// more CPU than sealing them; the queue holds two seconds, and a burst
// that half fills it wakes the goroutine early.
const drainEvery = 100 * time.Millisecond

func (r *Recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(drainEvery)
	defer tick.Stop()
	for {
		var last bool
		select {
		case <-tick.C:
		case <-r.kick:
		case <-r.closing:
			last = true
		}
		r.mu.Lock()
		batch := r.queue
		r.queue = r.spare
		r.mu.Unlock()
		for _, rec := range batch.recs {
			if r.err == nil {
				r.err = r.w.Write(rec)
			}
		}
		// The payloads are in the writer's segment now: no plaintext is
		// left lying in a batch.
		clear(batch.recs)
		clear(batch.bytes)
		r.spare = tapBatch{recs: batch.recs[:0], bytes: batch.bytes[:0]}
		if last {
			return
		}
	}
}

// Tap takes one audio payload from the bridge. It copies the payload and
// never blocks.
func (r *Recorder) Tap(fromCaller bool, payload []byte, at time.Time) {
	ch := ChannelOperator
	if fromCaller {
		ch = ChannelCaller
	}
	r.mu.Lock()
	if r.stopped || len(r.queue.recs) >= tapQueue {
		if !r.stopped {
			r.dropped.Add(1)
		}
		r.mu.Unlock()
		return
	}
	n := r.queue.add(Record{Kind: KindAudio, Channel: ch, At: at}, payload)
	r.mu.Unlock()
	if n == tapQueue/2 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// add appends rec with a copy of payload and returns how many records
// are queued.
func (b *tapBatch) add(rec Record, payload []byte) int {
	off := len(b.bytes)
	b.bytes = append(b.bytes, payload...)
	rec.Payload = b.bytes[off:len(b.bytes):len(b.bytes)]
	b.recs = append(b.recs, rec)
	return len(b.recs)
}

// Pause marks the start of a gap: nothing is recorded until Resume. The
// caller stops tapping; the marks say where the gap is.
func (r *Recorder) Pause(at time.Time) { r.mark(Record{Kind: KindPause, At: at}) }

// Resume marks the end of a gap.
func (r *Recorder) Resume(at time.Time) { r.mark(Record{Kind: KindResume, At: at}) }

// mark queues a pause or resume; a mark is never dropped.
func (r *Recorder) mark(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.queue.add(rec, nil)
	}
}

// stop ends the feed and waits for what was queued to be sealed.
func (r *Recorder) stop() {
	r.mu.Lock()
	if !r.stopped {
		r.stopped = true
		close(r.closing)
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
	r.w.discard()
	clear(r.wrapped)
	r.wrapped = nil
	return errors.Join(r.up.Abort(ctx), r.store.Delete(ctx, r.key))
}
