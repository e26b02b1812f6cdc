package whatsapp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// endTimeout bounds the reject or terminate a closing leg sends when
// nothing told WhatsApp the call ended.
const endTimeout = 5 * time.Second

// Peer is the WebRTC side of a WhatsApp user's call, as this package
// uses it; *webrtc.Visitor implements it. Its Answer waits for the media
// to connect; Leave is the user hanging up; Emit delivers what the
// webhooks report.
type Peer interface {
	sb.TrunkLeg
	Leave()
	Emit(sb.LegEvent)
}

// OfferingPeer is a peer that made the offer of a call we place, and
// takes the user's answer.
type OfferingPeer interface {
	Peer
	SetAnswer(sdp string) error
}

// userLeg is a WhatsApp user's leg: the peer's media, with the call's
// signalling done through the Graph API (ours) and the webhooks (theirs).
type userLeg struct {
	Peer
	svc      *Service
	graph    *graph
	conn     sb.ID  // the connection it came in or went out through
	id       string // the WhatsApp call ID
	answer   string // our SDP answer, for a call the user placed
	outbound bool   // a call we placed

	// terminated is set once the call is over on WhatsApp's side (their
	// terminate or refusal, or our reject or terminate sent), so that
	// nothing follows it; a leg closed without it tells WhatsApp itself.
	terminated atomic.Bool
	answered   atomic.Bool // a call we placed: the user's answer connected
	// accepted is set once WhatsApp confirmed our accept of a user's
	// call; acceptSent once one went out, confirmed or not.
	accepted, acceptSent atomic.Bool
	closeOnce            sync.Once
}

var (
	_ sb.TrunkLeg     = (*userLeg)(nil)
	_ sb.MessengerLeg = (*userLeg)(nil)
)

// Ring has nothing to send: pre_accept was sent with the answer, and the
// user's phone shows the call ringing until accept.
func (l *userLeg) Ring(context.Context) error { return nil }

// Answer sends accept with our SDP answer, then waits for the media.
func (l *userLeg) Answer(ctx context.Context) error {
	l.acceptSent.Store(true)
	if err := l.graph.act(ctx, l.id, "accept", l.answer); err != nil {
		return err
	}
	l.accepted.Store(true)
	return l.Peer.Answer(ctx)
}

// Reject refuses a user's call nobody can take.
func (l *userLeg) Reject(ctx context.Context, code int, reason string) error {
	var err error
	if !l.terminated.Swap(true) { // else WhatsApp ended it already
		err = l.graph.act(ctx, l.id, "reject", "")
	}
	l.Peer.Reject(ctx, code, reason)
	return err
}

// Hangup ends the call on our side: terminate (on a call we place not yet
// answered, that is its cancel), or reject for a user's call we never
// accepted.
func (l *userLeg) Hangup(ctx context.Context, reason string) error {
	var err error
	if !l.terminated.Swap(true) { // else WhatsApp ended it already
		err = l.tellEnded(ctx)
	}
	l.Peer.Hangup(ctx, reason)
	return err
}

// Close forgets the call and closes the peer. Whatever ended the call,
// WhatsApp hears of it: a leg closed before anything told WhatsApp (an
// accept refused, media that never connected, a pre_accept that failed)
// sends terminate for a call accepted or placed, and reject for a user's
// call never accepted, once.
func (l *userLeg) Close() error {
	l.closeOnce.Do(func() {
		l.svc.forget(l)
		if l.terminated.Swap(true) {
			return
		}
		// The call is over for us whatever its context was: the end is
		// sent on a context of its own, bounded.
		ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
		defer cancel()
		if err := l.tellEnded(ctx); err != nil {
			l.svc.log.Warn("whatsapp: telling WhatsApp the call ended", "connection", l.conn, "whatsapp_call_id", l.id, "err", err)
		}
	})
	return l.Peer.Close()
}

// tellEnded sends the action that ends the call in its state on
// WhatsApp's side. An accept that went out unconfirmed (the request
// failed on the way) may have been taken: if WhatsApp refuses our reject,
// the call is terminated.
func (l *userLeg) tellEnded(ctx context.Context) error {
	if l.outbound || l.accepted.Load() {
		return l.graph.act(ctx, l.id, "terminate", "")
	}
	err := l.graph.act(ctx, l.id, "reject", "")
	var me *sb.MessengerError
	if err != nil && l.acceptSent.Load() && errors.As(err, &me) {
		return l.graph.act(ctx, l.id, "terminate", "")
	}
	return err
}

// SIPCallID is empty: the call has no SIP.
func (l *userLeg) SIPCallID() string { return "" }

// ExternalRef is the WhatsApp call ID.
func (l *userLeg) ExternalRef() string { return l.id }

// ConnectionID is the connection the call goes through.
func (l *userLeg) ConnectionID() sb.ID { return l.conn }

// userTerminated is WhatsApp's terminate webhook: the user hung up (or
// WhatsApp ended the call).
func (l *userLeg) userTerminated(outbound bool, reason string) {
	l.terminated.Store(true)
	if outbound && !l.answered.Load() {
		l.Emit(sb.LegEvent{Kind: sb.LegFailed, Code: 487, Reason: reason})
		return
	}
	l.Leave()
}
