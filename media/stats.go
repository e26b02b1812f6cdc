package media

import "time"

// Stats keeps RFC 3550 receive statistics for one RTP stream: packets,
// bytes, cumulative loss (A.3) and interarrival jitter (A.8). Sequence
// numbers are followed as A.1 does: a jump of more than maxDropout ahead
// (or maxMisorder behind) is taken for a restart of the sender's sequence
// (a looped announcement, an SBC re-anchoring the media) once the next
// packet follows it, and the stream is counted afresh from there. The zero
// value is ready once ClockRate is set. A Stats is updated by one
// goroutine; callers that read it from another must synchronise.
type Stats struct {
	ClockRate uint32

	Packets uint64
	Bytes   uint64

	started    bool
	ssrc       uint32
	baseSeq    uint32
	maxSeq     uint16
	cycles     uint32
	received   uint64 // packets of the current SSRC
	lostBefore int64  // loss accumulated over earlier SSRCs and sequence restarts
	badSeq     uint16 // after a large jump: the sequence number that confirms a restart
	jumped     bool   // badSeq is set
	jitter     float64
	transit    int64
	epoch      time.Time
	rebase     bool // Rebase was called: the next packet starts a new count
}

// Rebase says the stream paused (a hold, or its end): the next packet
// starts the count afresh, as a new source's would, so that the sequence
// numbers a sender skipped across the pause are not counted as lost, nor
// the pause as jitter.
func (s *Stats) Rebase() { s.rebase = true }

// Update accounts for one packet with header h and payload size n that
// arrived at now.
func (s *Stats) Update(h *Header, n int, now time.Time) {
	s.Packets++
	s.Bytes += uint64(n)
	if !s.started || h.SSRC != s.ssrc || s.rebase {
		s.rebase = false
		if s.started {
			s.lostBefore += s.lostCurrent()
		} else {
			s.epoch = now
		}
		s.started = true
		s.ssrc = h.SSRC
		s.baseSeq = uint32(h.Seq)
		s.maxSeq = h.Seq
		s.cycles = 0
		s.received = 1
		s.transit = s.arrival(now) - int64(h.Timestamp)
		return
	}
	switch d := h.Seq - s.maxSeq; {
	case d < maxDropout: // in order, maybe with a gap
		if h.Seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = h.Seq
		s.jumped = false
	case d <= 1<<16-maxMisorder: // a very large jump
		if !s.jumped || h.Seq != s.badSeq {
			// Wait for the next packet to say whether the sender restarted.
			s.jumped, s.badSeq = true, h.Seq+1
			return
		}
		// Two packets in sequence: the sender restarted its sequence.
		s.lostBefore += max(s.lostCurrent(), 0)
		s.baseSeq, s.maxSeq, s.cycles, s.received, s.jumped = uint32(h.Seq), h.Seq, 0, 0, false
	default: // a duplicate, or reordered
	}
	s.received++
	transit := s.arrival(now) - int64(h.Timestamp)
	d := transit - s.transit
	s.transit = transit
	if d < 0 {
		d = -d
	}
	s.jitter += (float64(d) - s.jitter) / 16
}

func (s *Stats) arrival(now time.Time) int64 {
	return now.Sub(s.epoch).Nanoseconds() * int64(s.ClockRate) / int64(time.Second)
}

func (s *Stats) lostCurrent() int64 {
	expected := int64(s.cycles+uint32(s.maxSeq)) - int64(s.baseSeq) + 1
	return expected - int64(s.received)
}

// Lost returns the cumulative number of packets lost: expected minus
// received, never below zero (duplicates can outnumber what was lost,
// which RFC 3550 reports as negative; a record of loss does not).
func (s *Stats) Lost() int64 {
	if !s.started {
		return 0
	}
	return max(s.lostBefore+s.lostCurrent(), 0)
}

// RFC 3550 A.1: the largest gap ahead taken as loss, and the furthest
// behind a packet may come and still be the same stream's.
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// Jitter returns the interarrival jitter.
func (s *Stats) Jitter() time.Duration {
	if s.ClockRate == 0 {
		return 0
	}
	return time.Duration(s.jitter * float64(time.Second) / float64(s.ClockRate))
}
