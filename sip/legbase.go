package sip

import (
	"log/slog"
	"sync"

	sb "github.com/switchboard-voice/switchboard"
)

// legBase is what every SIP leg shares, the caller's and those we place:
// the far end's actions reported to call control, and the leg's SIP trace.
type legBase struct {
	s         *Server
	sipCallID string
	log       *slog.Logger
	events    chan sb.LegEvent

	mu     sync.Mutex // guards closed and trace, and the leg's own state
	closed bool
	trace  []sb.SIPMessage // the whole trace, once closed
}

func newLegBase(s *Server, sipCallID string, log *slog.Logger) legBase {
	return legBase{s: s, sipCallID: sipCallID, log: log, events: make(chan sb.LegEvent, 16)}
}

// emit reports a far-end action without blocking.
func (b *legBase) emit(ev sb.LegEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	select {
	case b.events <- ev:
	default:
		b.log.Warn("leg event dropped: call control is not reading", "event", ev.Kind)
	}
}

func (b *legBase) Events() <-chan sb.LegEvent { return b.events }

// endEvents closes the events channel, once; b.mu is held.
func (b *legBase) endEvents() {
	if !b.closed {
		b.closed = true
		close(b.events)
	}
}

// keepTrace takes the leg's messages from the capture layer once it is
// closed: the trace call control stores.
func (b *legBase) keepTrace() {
	trace := b.s.capture.release(b.sipCallID)
	b.mu.Lock()
	b.trace = trace
	b.mu.Unlock()
}

// SIPTrace is the leg's SIP messages as they crossed the wire.
func (b *legBase) SIPTrace() []sb.SIPMessage {
	b.mu.Lock()
	closed, trace := b.closed && b.trace != nil, b.trace
	b.mu.Unlock()
	if closed {
		return trace
	}
	return b.s.capture.messages(b.sipCallID)
}
