package main

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-voice/switchboard/media"
)

// stream measures one direction of one call from its pattern frames:
// which arrived intact, how late, how unevenly.
type stream struct {
	mu       sync.Mutex
	received int
	corrupt  int
	firstSeq uint32
	lastSeq  uint32
	lastD    time.Duration // transit time of the previous frame
	jitter   float64       // RFC 3550 interarrival jitter, in seconds
	delays   []time.Duration
}

// add takes one received payload.
func (s *stream) add(payload []byte, now time.Time) {
	seq, sentAt, ok := media.CheckPatternFrame(payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.corrupt++
		return
	}
	if s.received > 0 && seq <= s.lastSeq {
		return // duplicate or late: not counted twice
	}
	d := now.Sub(sentAt)
	if s.received == 0 {
		s.firstSeq = seq
	}
	if s.received > 0 {
		diff := math.Abs((d - s.lastD).Seconds())
		s.jitter += (diff - s.jitter) / 16
	}
	s.received++
	s.lastSeq, s.lastD = seq, d
	s.delays = append(s.delays, d)
}

// expected is how many frames should have arrived between the first and
// the last that did (RFC 3550 A.3): frames still in flight when a call
// ends are not loss.
func (s *stream) expected() int {
	if s.received == 0 {
		return 0
	}
	return int(s.lastSeq-s.firstSeq) + 1
}

// direction sums streams of one direction over a run.
type direction struct {
	Sent       int     `json:"frames_sent"` // including those in flight when calls ended
	Expected   int     `json:"frames_expected"`
	Received   int     `json:"frames_received"`
	Corrupt    int     `json:"frames_corrupt"`
	LossPct    float64 `json:"loss_pct"`
	JitterMS   float64 `json:"jitter_ms_mean"`
	DelayP50MS float64 `json:"delay_ms_p50"`
	DelayP95MS float64 `json:"delay_ms_p95"`
	DelayP99MS float64 `json:"delay_ms_p99"`
	// InService is the part of the delay the service itself added, by its
	// own measure (switchboard only).
	InService *serviceDelay `json:"in_service,omitempty"`

	jitterSum float64
	streams   int
	delays    []time.Duration
}

func (d *direction) add(s *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.Expected += s.expected()
	d.Received += s.received
	d.Corrupt += s.corrupt
	d.jitterSum += s.jitter
	d.streams++
	d.delays = append(d.delays, s.delays...)
}

func (d *direction) finish() {
	if d.Expected > 0 {
		d.LossPct = 100 * float64(d.Expected-d.Received) / float64(d.Expected)
	}
	if d.streams > 0 {
		d.JitterMS = 1000 * d.jitterSum / float64(d.streams)
	}
	d.DelayP50MS, d.DelayP95MS, d.DelayP99MS = ms(percentile(d.delays, 50)), ms(percentile(d.delays, 95)), ms(percentile(d.delays, 99))
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
