package switchboard

import (
	"context"
	"time"
)

// Direction is which way a call was set up, seen from the service.
type Direction string

const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)

// CallStatus is how a call ended, or that it has not yet.
type CallStatus string

const (
	CallRinging   CallStatus = "ringing"   // not answered yet
	CallAnswered  CallStatus = "answered"  // in progress
	CallCompleted CallStatus = "completed" // answered, then hung up
	CallNoAnswer  CallStatus = "no-answer" // offered, nobody took it in time
	CallBusy      CallStatus = "busy"      // every operator was on a call
	CallCanceled  CallStatus = "canceled"  // the caller gave up while ringing
	CallFailed    CallStatus = "failed"    // a technical fault ended it
	CallRejected  CallStatus = "rejected"  // declined by every operator offered, or refused by policy
)

// Ended reports whether s is a final status.
func (s CallStatus) Ended() bool { return s != CallRinging && s != CallAnswered }

// Party names who ended a call.
type Party string

const (
	PartyCaller   Party = "caller"   // the trunk side
	PartyOperator Party = "operator" // the browser side
	PartySystem   Party = "system"   // timeout, shutdown, fault
)

// Call is one call's record: who, when, how long, how it ended, and how
// the audio fared in each direction.
type Call struct {
	ID        ID        `json:"id"`
	TenantID  ID        `json:"tenant_id"`
	Direction Direction `json:"direction"`
	TrunkID   *ID       `json:"trunk_id,omitempty"`
	// OperatorID is the operator who answered, nil if nobody did.
	OperatorID *ID    `json:"operator_id,omitempty"`
	From       string `json:"from"`   // caller's number or user part
	To         string `json:"to"`     // dialled number
	Source     string `json:"source"` // signalling source address, e.g. "udp:203.0.113.5:5060"
	SIPCallID  string `json:"sip_call_id,omitempty"`

	Status     CallStatus `json:"status"`
	HangupBy   Party      `json:"hangup_by,omitempty"`
	SIPCode    int        `json:"sip_code,omitempty"` // final response sent on the trunk side
	Reason     string     `json:"reason,omitempty"`   // why it ended, for a person
	Codec      string     `json:"codec,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	// Duration is talk time: answer to end, zero if not answered.
	DurationMS int64 `json:"duration_ms"`

	// Media statistics, per direction: FromCaller is trunk → operator,
	// ToCaller is operator → trunk.
	FromCaller MediaStats `json:"from_caller"`
	ToCaller   MediaStats `json:"to_caller"`
}

// MediaStats summarises one direction of a call's audio.
type MediaStats struct {
	Packets  uint64  `json:"packets"`
	Bytes    uint64  `json:"bytes"`
	Lost     int64   `json:"lost"`      // expected minus received (RFC 3550 A.3)
	JitterMS float64 `json:"jitter_ms"` // interarrival jitter (RFC 3550 A.8)
}

// EventType names a step in a call's timeline.
type EventType string

const (
	EventReceived     EventType = "received"      // INVITE accepted for processing
	EventTrying       EventType = "trying"        // 100 Trying sent
	EventOffered      EventType = "offered"       // offered to an operator
	EventRinging      EventType = "ringing"       // 180 sent
	EventDeclined     EventType = "declined"      // operator declined
	EventRingTimeout  EventType = "ring_timeout"  // operator did not answer in time
	EventAnswered     EventType = "answered"      // operator answered, 200 OK sent
	EventHeld         EventType = "held"          // caller put the call on hold
	EventResumed      EventType = "resumed"       // caller took the call off hold
	EventDTMF         EventType = "dtmf"          // a DTMF digit passed through
	EventMute         EventType = "muted"         // operator muted their microphone
	EventUnmute       EventType = "unmuted"       // operator unmuted it
	EventMediaTimeout EventType = "media_timeout" // no RTP for too long
	EventHungUp       EventType = "hung_up"       // someone hung up
	EventCanceled     EventType = "canceled"      // caller canceled before answer
	EventRejected     EventType = "rejected"      // final non-2xx sent
	EventEnded        EventType = "ended"         // the call is over

	EventConsent            EventType = "consent"             // recording consent stated or refused
	EventRecordingStarted   EventType = "recording_started"   // the call is being recorded
	EventRecordingStored    EventType = "recording_stored"    // the recording is stored whole
	EventRecordingFailed    EventType = "recording_failed"    // recording could not start or be stored
	EventRecordingDestroyed EventType = "recording_destroyed" // the recording was destroyed
	EventRecordingPaused    EventType = "recording_paused"    // a gap in the recording begins
	EventRecordingResumed   EventType = "recording_resumed"   // the gap ends
)

// CallEvent is one entry of a call's timeline.
type CallEvent struct {
	ID       ID             `json:"id"`
	CallID   ID             `json:"call_id"`
	TenantID ID             `json:"tenant_id"`
	At       time.Time      `json:"at"`
	Type     EventType      `json:"type"`
	Detail   map[string]any `json:"detail,omitempty"`
}

// CallFilter selects calls. Zero fields do not filter. Results are newest
// first; After continues a listing after the call with that ID (keyset
// pagination).
type CallFilter struct {
	Since      *time.Time
	Until      *time.Time
	Status     CallStatus
	Number     string // matches From or To
	OperatorID *ID
	After      *ID
	Limit      int
}

// CallService reads call records. Every method is scoped to the tenant of
// the actor in ctx; another tenant's call is ENOTFOUND.
type CallService interface {
	// FindCalls returns calls matching f, newest first.
	FindCalls(ctx context.Context, f CallFilter) ([]*Call, error)
	// FindCallByID returns ENOTFOUND if the call does not exist or is
	// not visible to the actor.
	FindCallByID(ctx context.Context, id ID) (*Call, error)
	// FindCallEvents returns the call's timeline in order, or ENOTFOUND.
	FindCallEvents(ctx context.Context, id ID) ([]*CallEvent, error)
}

// CallRecorder writes call records as call control moves a call along.
// It is not scoped by actor: call control is the system itself.
type CallRecorder interface {
	// CreateCall inserts a new call record.
	CreateCall(ctx context.Context, c *Call) error
	// UpdateCall writes the call's current state (status, times, stats).
	UpdateCall(ctx context.Context, c *Call) error
	// AddCallEvents appends events to calls' timelines.
	AddCallEvents(ctx context.Context, events ...*CallEvent) error
}
