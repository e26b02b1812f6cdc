package recordings

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/switchboard-voice/switchboard/media"
)

// A recording is heard as a WAV file made on the fly: 16-bit PCM, two
// channels (the caller left, the operator right), at the recording's
// clock rate, silence where nothing was said or the recording was paused.
// Its length is known from the record, so any byte range maps to a span
// of time, and the span to the few segments that hold it.
const (
	wavHeaderSize = 44
	frameBytes    = 4 // one sample of each channel, 16 bits each
	// orderSlack is how far a record's time may stray from its segment's
	// start: the two directions are tapped on different goroutines.
	orderSlack = time.Second
	// keepSegments is how many decrypted segments a stream keeps at hand.
	keepSegments = 4
)

// segmentSet decrypts a recording's segments as reads need them, keeps a
// few at hand, and asks before each.
type segmentSet struct {
	r      *Reader
	starts []time.Duration // each segment's start from the recording's; built by scanning when unknown
	cache  map[int][]Record

	// Before is called before a segment is decrypted; an error stops the
	// read. The grant check hangs here, so a revoked grant stops a stream.
	Before func(segment int) error
	// Decrypted counts the segments decrypted so far.
	Decrypted int
}

func newSegmentSet(r *Reader, starts []int64) segmentSet {
	s := segmentSet{r: r, cache: map[int][]Record{}}
	if len(starts) == r.Segments() {
		s.starts = make([]time.Duration, len(starts))
		for i, ms := range starts {
			s.starts[i] = time.Duration(ms) * time.Millisecond
		}
	}
	return s
}

// Audio is a recording rendered as a WAV file, read by byte ranges. It
// decrypts a segment only when a range needs it, and asks before each.
type Audio struct {
	segmentSet
	rate   int64
	decode [2]func(byte) int16 // each channel's law
	from   int64               // the window's first sample frame
	frames int64               // sample frames in the window
	header [wavHeaderSize]byte
}

// NewAudio renders the recording in r, which lasted duration, as a WAV
// file of the window [from, to) (to 0: the end). starts is each segment's
// start in milliseconds from the recording's (nil: unknown; the first read
// then decrypts every segment once to learn them).
func NewAudio(r *Reader, duration time.Duration, starts []int64, from, to time.Duration) (*Audio, error) {
	m := r.Meta()
	a := &Audio{segmentSet: newSegmentSet(r, starts), rate: int64(m.ClockRate)}
	for ch := range a.decode {
		switch c := m.ChannelCodec(uint8(ch)); c {
		case "PCMU":
			a.decode[ch] = media.UlawToLinear
		case "PCMA":
			a.decode[ch] = media.AlawToLinear
		default:
			return nil, fmt.Errorf("recordings: cannot play codec %q", c)
		}
	}
	if to == 0 || to > duration {
		to = duration
	}
	if from < 0 || from >= to {
		return nil, fmt.Errorf("recordings: the window %s–%s is outside the recording's %s", from, to, duration)
	}
	a.from, a.frames = a.frame(from), a.frame(to)-a.frame(from)
	h := a.header[:]
	copy(h[0:], "RIFF")
	// RIFF sizes are 32 bits: a file past 4 GiB (37 hours of G.711) says
	// 0xFFFFFFFF, which players read as "to the end of the file".
	binary.LittleEndian.PutUint32(h[4:], riffSize(36+a.frames*frameBytes))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 2)
	binary.LittleEndian.PutUint32(h[24:], uint32(a.rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(a.rate*frameBytes))
	binary.LittleEndian.PutUint16(h[32:], frameBytes)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], riffSize(a.frames*frameBytes))
	return a, nil
}

func riffSize(n int64) uint32 { return uint32(min(n, math.MaxUint32)) }

// frame is the sample frame at d, and at the time of frame f: split at the
// second, so that neither overflows however long the recording.
func (a *Audio) frame(d time.Duration) int64 {
	return int64(d/time.Second)*a.rate + int64(d%time.Second)*a.rate/int64(time.Second)
}

func (a *Audio) at(f int64) time.Duration {
	return time.Duration(f/a.rate)*time.Second + time.Duration(f%a.rate*int64(time.Second)/a.rate)
}

// Size is the WAV file's length in bytes.
func (a *Audio) Size() int64 { return wavHeaderSize + a.frames*frameBytes }

// Span is the time a byte range of the file covers, from the window's
// start.
func (a *Audio) Span(off, n int64) (from, to time.Duration) {
	f0 := max(off-wavHeaderSize, 0) / frameBytes
	f1 := (max(off+n-wavHeaderSize, 0) + frameBytes - 1) / frameBytes
	return a.at(f0), a.at(f1)
}

// WriteRange writes bytes [off, off+n) of the file to w, one second of
// audio at a time.
func (a *Audio) WriteRange(w io.Writer, off, n int64) error {
	if off < 0 || n < 0 || off+n > a.Size() {
		return fmt.Errorf("recordings: range %d+%d is outside the file's %d bytes", off, n, a.Size())
	}
	if off < wavHeaderSize {
		k := min(n, wavHeaderSize-off)
		if _, err := w.Write(a.header[off : off+k]); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	block := make([]byte, a.rate*frameBytes)
	for n > 0 {
		f0 := (off - wavHeaderSize) / frameBytes
		f1 := min(f0+a.rate, a.frames)
		if err := a.render(block[:(f1-f0)*frameBytes], a.from+f0); err != nil {
			return err
		}
		skip := (off - wavHeaderSize) % frameBytes
		k := min(n, (f1-f0)*frameBytes-skip)
		if _, err := w.Write(block[skip : skip+k]); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// render fills buf with the audio from sample frame first on.
func (a *Audio) render(buf []byte, first int64) error {
	clear(buf)
	last := first + int64(len(buf)/frameBytes)
	segs, err := a.segments(a.at(first), a.at(last))
	if err != nil {
		return err
	}
	start := a.r.Meta().Start
	for _, i := range segs {
		for _, rec := range a.cache[i] {
			if rec.Kind != KindAudio || rec.Channel > ChannelOperator {
				continue
			}
			f := a.frame(rec.At.Sub(start)) - first
			decode := a.decode[rec.Channel]
			for k, b := range rec.Payload {
				if j := f + int64(k); j >= 0 && j < last-first {
					binary.LittleEndian.PutUint16(buf[j*frameBytes+int64(rec.Channel)*2:], uint16(decode(b)))
				}
			}
		}
	}
	return nil
}

// segments decrypts (or finds at hand) the segments that may hold audio
// from t0 to t1 (from the recording's start), and returns their numbers.
func (a *segmentSet) segments(t0, t1 time.Duration) ([]int, error) {
	if a.starts == nil {
		if err := a.index(); err != nil {
			return nil, err
		}
	}
	// The first segment starting after t1 holds nothing earlier than t1
	// but strays; the last starting before t0 may hold t0.
	lo := sort.Search(len(a.starts), func(i int) bool { return a.starts[i] > t0-orderSlack }) - 1
	hi := sort.Search(len(a.starts), func(i int) bool { return a.starts[i] > t1+orderSlack })
	var out []int
	for i := max(lo, 0); i < hi; i++ {
		if _, ok := a.cache[i]; !ok {
			if err := a.decrypt(i); err != nil {
				return nil, err
			}
		}
		out = append(out, i)
	}
	for i := range a.cache {
		if i < lo-keepSegments || i >= hi+keepSegments {
			delete(a.cache, i)
		}
	}
	return out, nil
}

func (a *segmentSet) decrypt(i int) error {
	if a.Before != nil {
		if err := a.Before(i); err != nil {
			return err
		}
	}
	recs, err := a.r.Segment(i)
	if err != nil {
		return err
	}
	a.Decrypted++
	a.cache[i] = recs
	return nil
}

// index learns each segment's start by decrypting them all once: only for
// a recording whose record lacks them.
func (a *segmentSet) index() error {
	start := a.r.Meta().Start
	a.starts = make([]time.Duration, a.r.Segments())
	for i := range a.starts {
		if err := a.decrypt(i); err != nil {
			return err
		}
		if recs := a.cache[i]; len(recs) > 0 {
			a.starts[i] = recs[0].At.Sub(start)
		} else if i > 0 {
			a.starts[i] = a.starts[i-1]
		}
		if len(a.cache) > keepSegments {
			delete(a.cache, i-keepSegments)
		}
	}
	return nil
}

// ReadAt reads the file's bytes at off, so an Audio serves through
// io.SectionReader and http.ServeContent.
func (a *Audio) ReadAt(p []byte, off int64) (int, error) {
	if off >= a.Size() {
		return 0, io.EOF
	}
	n := min(int64(len(p)), a.Size()-off)
	w := sliceWriter{p: p[:0]}
	if err := a.WriteRange(&w, off, n); err != nil {
		return len(w.p), err
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// sliceWriter writes into a slice that has the room.
type sliceWriter struct{ p []byte }

func (w *sliceWriter) Write(b []byte) (int, error) {
	w.p = append(w.p, b...)
	return len(b), nil
}
