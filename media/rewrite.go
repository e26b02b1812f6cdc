package media

import (
	"sync/atomic"
	"time"
)

// Rewriter makes one outgoing RTP stream out of a succession of incoming
// ones. A browser's shift-long track carries call after call, each from a
// different trunk stream; the far end must see one SSRC whose sequence
// numbers and timestamps run on without jumps. When the incoming SSRC
// changes (a new call, or a peer that restarted its stream), Rewriter
// re-bases so the next packet follows the last one sent, with the timestamp
// advanced by the wall-clock time that passed.
//
// A Rewriter is used by one goroutine at a time.
type Rewriter struct {
	ssrc      uint32
	clockRate atomic.Uint32

	started  bool
	inSSRC   uint32
	seqDelta uint16
	tsDelta  uint32
	lastSeq  uint16 // last sequence number sent
	lastTS   uint32 // last timestamp sent
	lastSent time.Time
	restart  atomic.Bool // re-base on the next packet, whatever its SSRC
}

// Restart makes the next packet start a new incoming stream, even with the
// SSRC of the last one: a new call from a peer that reuses its SSRC (a
// PBX with a fixed one, a replayed capture) must not repeat the sequence
// numbers already sent, which SRTP's replay protection would drop. It may
// be called from another goroutine.
func (r *Rewriter) Restart() { r.restart.Store(true) }

// NewRewriter returns a rewriter whose output uses ssrc and starts at seq
// and ts. clockRate converts idle wall-clock time into timestamp units.
func NewRewriter(ssrc uint32, seq uint16, ts uint32, clockRate uint32) *Rewriter {
	r := &Rewriter{ssrc: ssrc, lastSeq: seq - 1, lastTS: ts}
	r.clockRate.Store(clockRate)
	return r
}

// SetClockRate changes the rate at which idle time turns into timestamp
// units, for the stream's next codec: a browser's track carries Opus
// (48 kHz) for one call and G.711 (8 kHz) for the next. It may be called
// from another goroutine.
func (r *Rewriter) SetClockRate(hz uint32) { r.clockRate.Store(hz) }

// SSRC returns the outgoing SSRC.
func (r *Rewriter) SSRC() uint32 { return r.ssrc }

// Rewrite rewrites pkt's SSRC, sequence number and timestamp in place. h
// must be pkt's parsed header and now the time the packet is sent.
func (r *Rewriter) Rewrite(pkt []byte, h *Header, now time.Time) {
	if !r.started || h.SSRC != r.inSSRC || r.restart.CompareAndSwap(true, false) {
		// Re-base: the first packet of this stream follows the last one
		// sent, and time that passed in between shows in the timestamp.
		gap := uint32(0)
		if r.started {
			elapsed := now.Sub(r.lastSent)
			rate := r.clockRate.Load()
			gap = uint32(elapsed.Milliseconds()) * (rate / 1000)
			if gap == 0 {
				gap = rate / 50 // one 20 ms frame, so timestamps never repeat
			}
		}
		r.inSSRC = h.SSRC
		r.seqDelta = r.lastSeq + 1 - h.Seq
		r.tsDelta = r.lastTS + gap - h.Timestamp
		r.started = true
	}
	seq := h.Seq + r.seqDelta
	ts := h.Timestamp + r.tsDelta
	// Only move forward: a reordered late packet keeps its place but must
	// not pull the "last" marks back.
	if int16(seq-r.lastSeq) > 0 {
		r.lastSeq = seq
		r.lastTS = ts
		r.lastSent = now
	}
	SetSeq(pkt, seq)
	SetTimestamp(pkt, ts)
	SetSSRC(pkt, r.ssrc)
	h.Seq, h.Timestamp, h.SSRC = seq, ts, r.ssrc
}
