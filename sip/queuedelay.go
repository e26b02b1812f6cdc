package sip

import (
	"sync/atomic"
	"time"
)

// queueDelay watches how long SIP waits in the UDP socket's queue: from
// the kernel's receive timestamp of each datagram to the moment the
// server reads it. A moment's wait (a burst, a collection, another
// process on the CPU) passes by itself. A wait that stands — every
// datagram of a window waited longer than the limit, the way CoDel
// judges a queue — means more SIP comes in than the service gets
// through: each answer is then late by at least the limit, peers start
// retransmitting at T1 (500 ms) and add to the load. New calls are
// refused with 503 while it stands, so that the calls taken keep their
// pace and the queue drains.
type queueDelay struct {
	limit time.Duration // 0: never behind
	now   func() time.Time

	// The reader's own: one goroutine reads the socket.
	start time.Time     // the window's first read
	min   time.Duration // the shortest wait of the window's reads
	reads int

	behind atomic.Bool
}

const (
	// delayWindow is how long a wait must stand.
	delayWindow = 200 * time.Millisecond
	// delayMinReads: a window of fewer reads is no queue, however late
	// they were read (a quiet service on a busy machine).
	delayMinReads = 16
)

func newQueueDelay(limit time.Duration) *queueDelay {
	return &queueDelay{limit: limit, now: time.Now}
}

// observe takes one datagram's kernel receive time (Unix nanoseconds),
// read now; 0 (the kernel gave none) is not counted. The wait is told by
// the wall clock, the kernel's; the windows by the monotonic one, so
// that a step of the wall clock neither holds a verdict nor fakes one.
func (q *queueDelay) observe(at int64) {
	if q == nil || q.limit <= 0 || at == 0 {
		return
	}
	now := q.now()
	wait := max(time.Duration(now.UnixNano()-at), 0)
	switch since := now.Sub(q.start); {
	case since >= 2*delayWindow || since < 0:
		// A spell with no reads: either nothing came (this read was
		// prompt, the queue is empty) or the reader was not run at all,
		// and a verdict of behind stands until reads say otherwise.
		q.behind.Store(q.behind.Load() && wait > q.limit)
		q.start, q.min, q.reads = now, wait, 1
	case since >= delayWindow:
		q.behind.Store(q.reads >= delayMinReads && q.min > q.limit)
		q.start, q.min, q.reads = now, wait, 1
	default:
		q.min = min(q.min, wait)
		q.reads++
	}
}

// Behind reports whether SIP stood in the queue longer than the limit
// through the last window.
func (q *queueDelay) Behind() bool { return q != nil && q.behind.Load() }

// watchDelay counts q among the sockets whose queue Behind looks at, or
// no longer.
func (s *Server) watchDelay(q *queueDelay, on bool) {
	for {
		old := s.delays.Load()
		var next []*queueDelay
		if old != nil {
			for _, d := range *old {
				if d != q {
					next = append(next, d)
				}
			}
		}
		if on {
			next = append(next, q)
		}
		if s.delays.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Behind reports whether SIP stands in a UDP socket's queue past
// Config.QueueDelay: new calls are refused until it no longer does.
func (s *Server) Behind() bool {
	if l := s.delays.Load(); l != nil {
		for _, q := range *l {
			if q.Behind() {
				return true
			}
		}
	}
	return false
}
