package media

import "time"

// Stats keeps RFC 3550 receive statistics for one RTP stream: packets,
// bytes, cumulative loss (A.3) and interarrival jitter (A.8). The zero value
// is ready once ClockRate is set. A Stats is updated by one goroutine;
// callers that read it from another must synchronise.
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
	lostBefore int64  // loss accumulated over earlier SSRCs
	jitter     float64
	transit    int64
	epoch      time.Time
}

// Update accounts for one packet with header h and payload size n that
// arrived at now.
func (s *Stats) Update(h *Header, n int, now time.Time) {
	s.Packets++
	s.Bytes += uint64(n)
	if !s.started || h.SSRC != s.ssrc {
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
	s.received++
	if d := h.Seq - s.maxSeq; d != 0 && d < 0x8000 { // in order, maybe with a gap
		if h.Seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = h.Seq
	}
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
// received. Duplicates can make it negative, as RFC 3550 allows.
func (s *Stats) Lost() int64 {
	if !s.started {
		return 0
	}
	return s.lostBefore + s.lostCurrent()
}

// Jitter returns the interarrival jitter.
func (s *Stats) Jitter() time.Duration {
	if s.ClockRate == 0 {
		return 0
	}
	return time.Duration(s.jitter * float64(time.Second) / float64(s.ClockRate))
}
