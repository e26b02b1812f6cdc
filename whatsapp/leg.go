package whatsapp

import (
	"context"
	"sync"
	"sync/atomic"

	sb "github.com/switchboard-voice/switchboard"
)

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
	svc    *Service
	graph  *graph
	conn   sb.ID  // the connection it came in or went out through
	id     string // the WhatsApp call ID
	answer string // our SDP answer, for a call the user placed

	// terminated is set once the call is over on WhatsApp's side (their
	// terminate, or ours sent), so that no terminate follows it.
	terminated atomic.Bool
	answered   atomic.Bool // a call we placed: the user's answer connected
	closeOnce  sync.Once
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
	if err := l.graph.act(ctx, l.id, "accept", l.answer); err != nil {
		return err
	}
	return l.Peer.Answer(ctx)
}

// Reject refuses a user's call nobody can take.
func (l *userLeg) Reject(ctx context.Context, code int, reason string) error {
	err := l.end(ctx, "reject")
	l.Peer.Reject(ctx, code, reason)
	return err
}

// Hangup ends the call on our side: terminate (on a call we place not yet
// answered, that is its cancel).
func (l *userLeg) Hangup(ctx context.Context, reason string) error {
	err := l.end(ctx, "terminate")
	l.Peer.Hangup(ctx, reason)
	return err
}

func (l *userLeg) end(ctx context.Context, action string) error {
	if l.terminated.Swap(true) {
		return nil // WhatsApp ended it already
	}
	return l.graph.act(ctx, l.id, action, "")
}

// Close forgets the call and closes the peer.
func (l *userLeg) Close() error {
	l.closeOnce.Do(func() { l.svc.forget(l.id) })
	return l.Peer.Close()
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
