package sip

import (
	"bytes"
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

	mu       sync.Mutex // guards closed, trace, inviting and owed, and the leg's own state
	closed   bool
	trace    []sb.SIPMessage // the whole trace, once closed
	inviting int             // re-INVITEs of ours under way: the far end's offers and re-INVITEs get 491
	// owed counts the far end's offers (and re-INVITEs) taken and not
	// yet answered: another gets 500 with Retry-After meanwhile, and a
	// re-INVITE of ours waits; idle is closed when it drops to zero.
	owed int
	idle chan struct{}

	// Our description of the session (offeranswer.go).
	version uint64 // its o= version
	lastSDP []byte // as last sent
	holding bool   // we put the far end on hold (Hold, holdOffer)
	// direction is the far end's, as its last offer or answer gave it:
	// sendonly or inactive while it holds us.
	direction string
}

func newLegBase(s *Server, sipCallID string, log *slog.Logger) legBase {
	return legBase{s: s, sipCallID: sipCallID, log: log, events: make(chan sb.LegEvent, 16), version: 1}
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

// sendFunc sends an in-dialog request of ours and returns its final
// response; a re-INVITE's body is made by describe (legBase.sending).
type sendFunc func(ctx context.Context, req *sip.Request, describe func() []byte) (*sip.Response, error)

// sending sends an in-dialog request of ours with do and returns its
// final response. A re-INVITE counts itself under way and takes its body
// from describe, called with b.mu held, in one step: an offer of the far
// end's is either answered before it, and our description follows it, or
// crosses it and gets 491 (RFC 3261 §14.2, RFC 3311 §5.2); either way our
// o= version moves by one per description sent (RFC 3264 §8). While an
// offer of the far end's awaits our answer, the re-INVITE waits for it.
func (b *legBase) sending(ctx context.Context, req *sip.Request, describe func() []byte, do func(context.Context, *sip.Request) (*sip.Response, error)) (*sip.Response, error) {
	if req.IsInvite() {
		if b.s.exchanging != nil {
			b.s.exchanging(false)
		}
		b.mu.Lock()
		for b.owed > 0 {
			idle := b.idle
			b.mu.Unlock()
			select {
			case <-idle:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			b.mu.Lock()
		}
		b.inviting++
		if describe != nil {
			req.SetBody(describe())
		}
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			b.inviting--
			b.mu.Unlock()
		}()
	}
	return do(ctx, req)
}

// holdOffer is the offer of a Hold of ours (reinvite), described anew
// for each attempt, since an offer of the far end's taken while a 491's
// wait ran may have moved our version, and undone when an attempt is
// refused.
type holdOffer struct {
	b    *legBase
	held bool
	// describe is the leg's description in direction dir; keep saves
	// what else of the leg's description an attempt changes, and returns
	// what restores it (nil: nothing else). b.mu is held.
	describe func(dir string) []byte
	keep     func() (restore func())

	was     bool   // whether we held before the hold
	sent    []byte // the last attempt's description
	lastSDP []byte // what the far end has, and its version
	version uint64
	restore func()
}

// offer describes an attempt's offer; b.mu is held (legBase.sending).
func (o *holdOffer) offer() []byte {
	b := o.b
	if o.sent == nil {
		o.was = b.holding
	}
	if o.sent == nil || !bytes.Equal(b.lastSDP, o.sent) {
		// What the far end has: before our first attempt, or the offer
		// taken since the last was refused.
		o.lastSDP, o.version, o.restore = b.lastSDP, b.version, nil
		if o.keep != nil {
			o.restore = o.keep()
		}
	}
	// We hold from this offer on: an offer of the far end's answered
	// before it is answered as we stood then
	// (TestHoldCrossingTheCallersOffer).
	b.holding = o.held
	o.sent = o.describe(holdDirection(b.direction, o.held))
	return o.sent
}

// refused undoes an attempt the far end refused, or that failed before
// its answer: a refused offer changes nothing (RFC 3261 §14.1, RFC 3264
// §8), so we hold, or not, as before, and our next description follows
// the one the far end has, unless another has been sent since. One the
// far end took (2xx) stays what it has, even when its answer is no use
// to us.
func (o *holdOffer) refused() {
	b := o.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = o.was
	if bytes.Equal(b.lastSDP, o.sent) {
		b.lastSDP, b.version = o.lastSDP, o.version
		if o.restore != nil {
			o.restore()
		}
	}
}

// taking counts an offer (or re-INVITE) of the far end's as taken, until
// settle is called, once, as its answer (or refusal) is decided: before
// it is sent, since the far end may offer again as soon as it has it.
// b.mu is held; settle takes it.
func (b *legBase) taking() (settle func()) {
	if b.owed == 0 {
		b.idle = make(chan struct{})
	}
	b.owed++
	settled := false
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if settled {
			return
		}
		settled = true
		if b.owed--; b.owed == 0 {
			close(b.idle)
		}
	}
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
