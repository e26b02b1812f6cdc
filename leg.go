package switchboard

import (
	"context"
	"errors"
	"time"
)

// LegEventKind is something the far end of a leg did on its own.
type LegEventKind int

const (
	LegCanceled     LegEventKind = iota + 1 // caller sent CANCEL before answer
	LegHungUp                               // far end sent BYE
	LegHeld                                 // re-INVITE put the call on hold
	LegResumed                              // re-INVITE took it off hold
	LegMediaTimeout                         // no RTP for longer than the media timeout

	// What the far end of a call we place does.
	LegRinging    // 180 Ringing
	LegEarlyMedia // 183 with SDP: ringback or announcements flow before the answer
	LegAnswered   // 200 OK, ACKed: the call is up
	LegFailed     // a final non-2xx response, or no answer at all (Code 408)

	// On a call that came in, LegFailed says the adapter ended the INVITE
	// itself before the answer, with Code (a reliable 180 the caller never
	// acknowledged): the caller has its final response.

	LegDTMF // a key the caller pressed, sent in a SIP INFO (Reason: the digit)

	// The far end's session refresh (RFC 4028) did not come: the session
	// is about to expire, and the leg is to be hung up (Reason says so).
	LegSessionExpired

	// The leg's media path could not be set up, or broke: ICE found no
	// path, or the DTLS handshake failed (a certificate that does not
	// match the SDP's fingerprint). Reason says which.
	LegMediaFailed
)

func (k LegEventKind) String() string {
	switch k {
	case LegCanceled:
		return "canceled"
	case LegHungUp:
		return "hung up"
	case LegHeld:
		return "held"
	case LegResumed:
		return "resumed"
	case LegMediaTimeout:
		return "media timeout"
	case LegRinging:
		return "ringing"
	case LegEarlyMedia:
		return "early media"
	case LegAnswered:
		return "answered"
	case LegFailed:
		return "failed"
	case LegDTMF:
		return "dtmf"
	case LegSessionExpired:
		return "session expired"
	case LegMediaFailed:
		return "media failed"
	}
	return "unknown"
}

// LegEvent reports what the far end of a leg did.
type LegEvent struct {
	Kind LegEventKind
	// Reason carries detail for a person, e.g. the Reason header of a BYE.
	Reason string
	// Code is the final response of a failed outbound call.
	Code int
}

// Leg is one side of a call as call control drives it: a trunk's (or a
// browser caller's) leg that came in, or a leg we placed.
type Leg interface {
	// Events delivers what the far end does. The channel is closed when the
	// leg is closed.
	Events() <-chan LegEvent
	// Media is the leg's RTP path.
	Media() MediaPort
	// Hangup sends BYE on an answered call; on a call we placed that is
	// not answered yet, CANCEL.
	Hangup(ctx context.Context, reason string) error
	// Hold puts the far end on hold (a re-INVITE offering sendonly) or
	// takes them off.
	Hold(ctx context.Context, held bool) error
	// Close releases the leg's sockets and dialog state. It is safe to call
	// more than once.
	Close() error
	// SIPTrace returns the leg's SIP messages as they crossed the wire so
	// far; after Close, all of them.
	SIPTrace() []SIPMessage
}

// TrunkLeg is the leg of an inbound call: a trunk's, or a browser
// caller's. The adapter has already authenticated the caller, sent 100
// Trying and negotiated the codec when it hands a leg over.
type TrunkLeg interface {
	Leg
	// Ring sends 180 Ringing.
	Ring(ctx context.Context) error
	// Answer sends 200 OK with the SDP answer and returns once it is ACKed,
	// or with an error if no ACK arrives. When ctx ends first it returns
	// ctx's error; the 200 may be out and the call is then ended with
	// Hangup (on SIP, a BYE with its reason once the ACK comes; an ACK
	// and BYE after Close are not in SIPTrace).
	Answer(ctx context.Context) error
	// Reject sends a final non-2xx response with a Reason header.
	Reject(ctx context.Context, code int, reason string) error
}

// ErrHungUp says the far end hung up before a step of the call could
// finish: a caller who sent BYE instead of acknowledging the 200 OK.
var ErrHungUp = errors.New("the far end hung up")

// ErrCanceled says the caller canceled before the answer could be given:
// their CANCEL crossed the 200 OK, got there first and was answered 487,
// so there is no dialog and the call was never answered.
var ErrCanceled = errors.New("the caller canceled before the answer")

// Referrer is a trunk leg that can hand its call to a SIP URI itself
// (REFER): the caller's side calls the target, and switchboard leaves the
// call.
type Referrer interface {
	// Refer returns nil once the target answered; on an error the call
	// is still up and still ours.
	Refer(ctx context.Context, uri string) error
}

// InboundCall is what the sip adapter hands to call control for a new call.
type InboundCall struct {
	Trunk     *Trunk
	From      string // caller number or user part
	To        string // dialled number
	Source    string // e.g. "udp:203.0.113.5:5060"
	SIPCallID string
	Leg       TrunkLeg
	// Consent is what the PBX stated about recording (X-Recording-Consent),
	// or the trunk's standing assertion; nil when nothing was said.
	Consent *Consent
	// ExternalRef is the call's reference in another system, known from
	// the start (a browser caller's token carries it).
	ExternalRef string
	// Hop is set when another instance handed the call over for one of
	// this instance's operators; Trunk then only names the tenant.
	Hop *Hop
	// SRTP names the crypto suite protecting the trunk's media (SDES), or
	// is "DTLS-SRTP" when DTLS over ICE keys it; empty when it is plain RTP.
	SRTP string
	// Channel is the messenger the call came from (ChannelWhatsApp);
	// empty for a trunk's or a browser caller's.
	Channel string
	// Hops bounds a call forwarded from this one, so that a forward that
	// leads back here cannot loop: the INVITE's Max-Forwards less one,
	// NoHops when that leaves none; 0 when nothing bounds it (calls not
	// from SIP).
	Hops int
}

// NoHops is InboundCall.Hops when the INVITE's Max-Forwards leaves no hop
// for a call forwarded from it.
const NoHops = -1

// HopsAfter is InboundCall.Hops for an INVITE's Max-Forwards.
func HopsAfter(maxForwards int) int {
	if maxForwards <= 1 {
		return NoHops
	}
	return maxForwards - 1
}

// OutboundRoute is how to reach a number through one of a tenant's trunks.
type OutboundRoute struct {
	TrunkID   ID
	Target    string // host:port of the carrier or PBX
	Transport string // udp or tcp
	Media     string // MediaRTP (or empty) or MediaDTLS: how the call's audio is carried
	Username  string // digest credentials, answered when challenged
	Password  string `json:"-"`
	CallerID  string // the number presented as From
	Register  bool   // keep the trunk registered with Target (carriers behind NAT or with dynamic addresses)
	Hop       string // a hand-over to another instance: the signed hop token it checks (HopHeader)
	// MaxForwards is the INVITE's Max-Forwards: the hops a call forwarded
	// from another may take (InboundCall.Hops); 0 for the default, 70.
	MaxForwards int
	// Opus is set, per call, when the party the call is placed for takes
	// Opus (an operator whose connection negotiated it): a MediaDTLS
	// route then offers Opus first, before G.711. Opus is carried
	// unchanged, so it is offered only to whoever can take it.
	Opus bool `json:"-"`
}

// How a trunk's outbound calls carry their audio.
const (
	MediaRTP  = "rtp"  // plain RTP/AVP, G.711
	MediaDTLS = "dtls" // UDP/TLS/RTP/SAVPF: DTLS-SRTP over ICE (RFC 5763, 5764, 8445), G.711, and Opus first when OutboundRoute.Opus
)

// Registration states a trunk's outbound registration goes through.
const (
	RegRegistering = "registering"
	RegRegistered  = "registered"
	RegFailed      = "failed"
)

// Registration is where a trunk's outbound registration stands.
type Registration struct {
	State     string    `json:"state"`
	Expires   time.Time `json:"expires,omitzero"` // when the registrar forgets us unless refreshed
	LastCode  int       `json:"last_code,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	At        time.Time `json:"at"` // of the last attempt
}

// OutboundLeg is the SIP side of a call we place. Its events are
// ringing, early media, the answer or the failure, then a hangup from the
// far end.
type OutboundLeg interface {
	Leg
	// SIPCallID is the INVITE's Call-ID.
	SIPCallID() string
}

// Dialer places calls through trunks; the sip adapter implements it.
type Dialer interface {
	// Dial sends the INVITE and returns at once; what follows arrives on
	// the leg's events.
	Dial(ctx context.Context, r OutboundRoute, number string) (OutboundLeg, error)
}

// RefusedCall is an INVITE the sip adapter refused itself once it knew
// the trunk (a number the trunk does not have, an offer it could not
// take), so that the refusal has a call record like any other.
type RefusedCall struct {
	Trunk     *Trunk
	From      string
	To        string
	Source    string
	SIPCallID string
	Code      int    // the final response sent
	Reason    string // why, for a person
	Leg       string // FailedOnTrunk or FailedOnService
	Stage     string // StageRouting, StageOffer, StageMediaSetup
	Trace     []SIPMessage
}

// CallDispatcher takes new inbound calls. The sip adapter declares the same
// method in its own handler interface; Switch implements it.
type CallDispatcher interface {
	// DispatchInbound takes ownership of the call's leg and returns at once;
	// the call proceeds in its own goroutine.
	DispatchInbound(call *InboundCall)
}

// CallOffer is what an operator is shown while a call rings for them.
type CallOffer struct {
	CallID ID     `json:"call_id"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Channel names the messenger the call is from or to (ChannelWhatsApp),
	// so the page can say so; empty for a phone call.
	Channel string `json:"channel,omitempty"`
}

// RecordingView is where a call's recording stands, as its operator is
// shown it.
type RecordingView struct {
	// State is "recording", "paused" or "not recorded".
	State string `json:"state"`
	// Consent is what was last stated about recording: "given",
	// "refused", or "" when nothing was.
	Consent string `json:"consent"`
	// Paused is set while a pause stands, also before a recording starts
	// (it starts paused).
	Paused bool `json:"paused"`
}

// Recording states an operator is shown.
const (
	RecordingOn     = "recording"
	RecordingPaused = "paused"
	RecordingOff    = "not recorded"
)

// RecordingNotifier is an OperatorConn that shows its operator where the
// recording of their call stands: call control tells it when the call is
// bridged to them and after every change, whatever its cause (the PBX, an
// integration, the operator, the caller's key).
type RecordingNotifier interface {
	RecordingState(callID ID, s RecordingView)
}

// OperatorConn is a logged-in operator's live connection (signaling socket
// and shift-long PeerConnection), as call control uses it. Its methods are
// notifications and must not block on the network for long.
type OperatorConn interface {
	OperatorID() ID
	TenantID() ID
	// Offer shows an incoming call. The operator answers through
	// Switch.Accept or Switch.Decline.
	Offer(o CallOffer) error
	// Revoke withdraws an offer: the caller gave up, or it timed out.
	Revoke(callID ID, reason string)
	// Connected tells the operator the call is bridged.
	Connected(callID ID)
	// Ended tells the operator the call is over and why.
	Ended(callID ID, reason string)
	// StateChanged tells the operator their availability changed on the
	// service's initiative (for example set away after a missed call).
	StateChanged(available bool, reason string)
	// Held tells the operator whether the call is on hold: after a
	// reconnect, the hold they set stands; after the trunk refused a hold
	// or resume, nothing changed.
	Held(callID ID, held bool)
	// Move closes the operator's connection so that it reconnects to
	// another instance: this one is draining. Never while they are on a
	// call.
	Move(reason string)
	// Media is the operator's audio path for the whole shift.
	Media() MediaPort
}
