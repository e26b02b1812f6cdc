package sip

import (
	"context"
	"log/slog"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	sb "github.com/switchboard-voice/switchboard"
)

// legBase is what every SIP leg shares, the caller's and those we place:
// the far end's actions reported to call control, and the leg's SIP trace.
type legBase struct {
	s         *Server
	sipCallID string
	log       *slog.Logger
	events    chan sb.LegEvent

	mu       sync.Mutex // guards closed, trace and inviting, and the leg's own state
	closed   bool
	trace    []sb.SIPMessage // the whole trace, once closed
	inviting int             // re-INVITEs of ours under way: the far end's offers and re-INVITEs get 491
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

// sending sends an in-dialog request of ours with do and returns its
// final response; while a re-INVITE of ours is under way, the far end's
// offers and re-INVITEs crossing it get 491 (RFC 3261 §14.2, RFC 3311
// §5.2).
func (b *legBase) sending(ctx context.Context, req *sip.Request, do func(context.Context, *sip.Request) (*sip.Response, error)) (*sip.Response, error) {
	if req.IsInvite() {
		b.mu.Lock()
		b.inviting++
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			b.inviting--
			b.mu.Unlock()
		}()
	}
	return do(ctx, req)
}

// inOrder checks a request of the far end's in dialog d against the
// dialog's remote sequence number, which it then becomes: one below it
// is out of order and refused with 500 (RFC 3261 §12.2.2), and the call
// goes on. It reports whether the request is to be taken.
func (b *legBase) inOrder(d *sipgo.Dialog, req *sip.Request, tx sip.ServerTransaction) bool {
	if err := d.ReadRequest(req, tx); err != nil {
		b.outOfOrder(req, tx)
		return false
	}
	return true
}

// outOfOrder refuses a request below its dialog's remote sequence number:
// 500, and the call goes on (RFC 3261 §12.2.2).
func (b *legBase) outOfOrder(req *sip.Request, tx sip.ServerTransaction) {
	b.s.reject(req, tx, sip.StatusInternalServerError, "CSeq out of order")
}
