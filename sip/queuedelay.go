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
	limit int64        // nanoseconds; 0: never behind
	now   func() int64 // Unix nanoseconds, the clock of the kernel's stamps

	// The reader's own: one goroutine reads the socket.
	start int64 // the window's first read
	min   int64 // the shortest wait of the window's reads
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
	return &queueDelay{limit: int64(limit), now: func() int64 { return time.Now().UnixNano() }}
}

// observe takes one datagram's kernel receive time, read now; 0 (the
// kernel gave none) is not counted.
func (q *queueDelay) observe(at int64) {
	if q == nil || q.limit <= 0 || at == 0 {
		return
	}
	now := q.now()
	wait := now - at
	switch since := now - q.start; {
	case since >= 2*int64(delayWindow):
		// Nothing was read for a window: the queue was empty.
		q.behind.Store(false)
		q.start, q.min, q.reads = now, wait, 1
	case since >= int64(delayWindow):
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

// watchDelay counts q among the sockets whose queue Behind looks at.
func (s *Server) watchDelay(q *queueDelay) {
	for {
		old := s.delays.Load()
		var next []*queueDelay
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, q)
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
