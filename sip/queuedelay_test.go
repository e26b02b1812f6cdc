package sip

import (
	"testing"
	"time"
)

// A queue is behind when every read of a whole window waited past the
// limit; a late read among prompt ones, a window of few reads, or a quiet
// spell is not a queue, but a spell the reader was not run in does not
// clear one.
func TestQueueDelayStandsOrPasses(t *testing.T) {
	const limit = 100 * time.Millisecond
	ms := int64(time.Millisecond)
	type read struct {
		after int64 // since the previous read, ms
		wait  int64 // in the queue, ms
	}
	every := func(n int, after, wait int64) []read {
		r := make([]read, n)
		for i := range r {
			r[i] = read{after, wait}
		}
		return r
	}
	cat := func(parts ...[]read) []read {
		var out []read
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		reads []read
		want  bool
	}{
		{"prompt", every(100, 5, 1), false},
		{"standing", every(100, 5, 150), true},
		{"standing, then caught up", cat(every(100, 5, 150), every(100, 5, 2)), false},
		{"one late read a window", cat(every(20, 5, 150), []read{{5, 3}}, every(20, 5, 150), []read{{5, 3}}, every(20, 5, 150)), false},
		{"few reads, however late", every(30, 30, 400), false},
		{"at the limit", every(100, 5, 100), false},
		{"standing, then quiet", cat(every(100, 5, 150), []read{{1000, 2}}), false},
		{"standing, then the reader not run", cat(every(100, 5, 150), []read{{1000, 1000}}), true},
		{"prompt, then the reader not run once", cat(every(100, 5, 1), []read{{1000, 1000}}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var now int64 = 1e18
			q := newQueueDelay(limit)
			q.now = func() time.Time { return time.Unix(0, now) }
			for _, r := range tc.reads {
				now += r.after * ms
				q.observe(now - r.wait*ms)
			}
			if got := q.Behind(); got != tc.want {
				t.Errorf("behind %v, want %v", got, tc.want)
			}
		})
	}
}

// Without a limit, or without the kernel's receive times, nothing is
// ever behind.
func TestQueueDelayOff(t *testing.T) {
	var now int64 = 1e18
	off := newQueueDelay(0)
	off.now = func() time.Time { return time.Unix(0, now) }
	unstamped := newQueueDelay(time.Millisecond)
	unstamped.now = off.now
	for range 1000 {
		now += int64(time.Millisecond)
		off.observe(now - int64(time.Second))
		unstamped.observe(0)
	}
	if off.Behind() || unstamped.Behind() {
		t.Errorf("behind: with no limit %v, with no receive times %v; want neither", off.Behind(), unstamped.Behind())
	}
}
