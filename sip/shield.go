package sip

import (
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The shield keeps floods and scanners off the SIP listeners. Each source
// address may send a bounded rate of messages (a token bucket) until it
// proves itself a trunk; a source that floods, or keeps failing to be
// recognised (unknown source, wrong digest password), is banned for a
// while: its datagrams, and its messages on open connections, are dropped
// before they are parsed, and its connections closed. A source that a trunk's call came from is trusted
// and not rate-limited, so that a busy carrier is never throttled.

// Shield settings.
type ShieldConfig struct {
	// Rate is how many messages a second an untrusted source may send,
	// with bursts of twice as many; zero turns rate limiting off.
	Rate float64
	// Failures within a minute that ban a source (unknown source, wrong
	// password); zero turns banning for failures off.
	Failures int
	// BanFor is how long a ban lasts.
	BanFor time.Duration
}

// DefaultShield suits a public address: a scanner is banned after ten
// refusals in a minute, or after a thousand messages dropped for rate.
var DefaultShield = ShieldConfig{Rate: 50, Failures: 10, BanFor: 10 * time.Minute}

const (
	floodDrops    = 1000             // messages dropped for rate that ban a source
	trustFor      = 10 * time.Minute // how long a trunk's source stays trusted
	maxSources    = 100000           // sources tracked; beyond, the idle ones are forgotten first
	failureWindow = time.Minute
)

type source struct {
	tokens      float64
	last        time.Time
	dropped     int
	failures    int
	failedSince time.Time
	bannedUntil time.Time
	trustedTill time.Time
}

type shield struct {
	conf  ShieldConfig
	now   func() time.Time
	onBan func(addr netip.Addr, reason string)

	dropped atomic.Uint64 // messages and connections refused, ever

	mu      sync.Mutex
	sources map[netip.Addr]*source
	streams map[netip.Addr]map[io.Closer]bool // open TCP/TLS connections, closed by a ban
}

func newShield(c ShieldConfig, now func() time.Time, onBan func(netip.Addr, string)) *shield {
	return &shield{conf: c, now: now, onBan: onBan, sources: map[netip.Addr]*source{}, streams: map[netip.Addr]map[io.Closer]bool{}}
}

// track notes a connection accepted from addr (open), to be closed if
// addr is banned, or forgets it once closed.
func (s *shield) track(addr netip.Addr, c io.Closer, open bool) {
	if s == nil {
		return
	}
	addr = addr.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case open && s.streams[addr] == nil:
		s.streams[addr] = map[io.Closer]bool{c: true}
	case open:
		s.streams[addr][c] = true
	default:
		delete(s.streams[addr], c)
		if len(s.streams[addr]) == 0 {
			delete(s.streams, addr)
		}
	}
}

// ban reports the ban of addr and closes its connections; not under the
// lock.
func (s *shield) ban(addr netip.Addr, reason string) {
	s.mu.Lock()
	var open []io.Closer
	for c := range s.streams[addr] {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
	if s.onBan != nil {
		s.onBan(addr, reason)
	}
}

// get returns the source's state, making it; under the lock.
func (s *shield) get(addr netip.Addr, now time.Time) *source {
	src := s.sources[addr]
	if src == nil {
		if len(s.sources) >= maxSources {
			s.forgetIdle(now)
		}
		src = &source{tokens: 2 * s.conf.Rate, last: now}
		s.sources[addr] = src
	}
	return src
}

// forgetIdle drops the sources that are neither banned nor trusted and
// have been quiet for a minute; under the lock.
func (s *shield) forgetIdle(now time.Time) {
	for a, src := range s.sources {
		if now.After(src.bannedUntil) && now.After(src.trustedTill) && now.Sub(src.last) > time.Minute {
			delete(s.sources, a)
		}
	}
}

// admit reports whether a message (or a connection) from addr is let in.
func (s *shield) admit(addr netip.Addr) bool {
	if s == nil {
		return true
	}
	addr = addr.Unmap()
	now := s.now()
	s.mu.Lock()
	src := s.get(addr, now)
	switch {
	case now.Before(src.bannedUntil):
		s.mu.Unlock()
		s.dropped.Add(1)
		return false
	case now.Before(src.trustedTill) || s.conf.Rate == 0:
		src.last = now
		s.mu.Unlock()
		return true
	}
	src.tokens = min(2*s.conf.Rate, src.tokens+now.Sub(src.last).Seconds()*s.conf.Rate)
	src.last = now
	if src.tokens >= 1 {
		src.tokens--
		s.mu.Unlock()
		return true
	}
	src.dropped++
	banned := src.dropped >= floodDrops
	if banned {
		src.bannedUntil, src.dropped = now.Add(s.conf.BanFor), 0
	}
	s.mu.Unlock()
	s.dropped.Add(1)
	if banned {
		s.ban(addr, "flood")
	}
	return false
}

// failed counts a refusal of addr: an unknown source, a wrong password.
func (s *shield) failed(addr netip.Addr) {
	if s == nil || s.conf.Failures == 0 {
		return
	}
	addr = addr.Unmap()
	now := s.now()
	s.mu.Lock()
	src := s.get(addr, now)
	if now.Sub(src.failedSince) > failureWindow {
		src.failures, src.failedSince = 0, now
	}
	src.failures++
	banned := src.failures >= s.conf.Failures && now.After(src.trustedTill)
	if banned {
		src.bannedUntil, src.failures = now.Add(s.conf.BanFor), 0
	}
	s.mu.Unlock()
	if banned {
		s.ban(addr, "repeated authentication failures")
	}
}

// trust exempts a trunk's source from rate limits for a while.
func (s *shield) trust(addr netip.Addr) {
	if s == nil {
		return
	}
	addr = addr.Unmap()
	now := s.now()
	s.mu.Lock()
	src := s.get(addr, now)
	src.trustedTill, src.failures = now.Add(trustFor), 0
	s.mu.Unlock()
}

// banned counts the sources banned now.
func (s *shield) banned() int {
	if s == nil {
		return 0
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, src := range s.sources {
		if now.Before(src.bannedUntil) {
			n++
		}
	}
	return n
}
