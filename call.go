package switchboard

import (
	"context"
	"errors"
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
	// PartyForwarded is the far end of a call switchboard forwarded (a
	// queue's overflow to a SIP URI).
	PartyForwarded Party = "forwarded"
)

// Call is one call's record: who, when, how long, how it ended, and how
// the audio fared in each direction.
type Call struct {
	ID        ID        `json:"id"`
	TenantID  ID        `json:"tenant_id"`
	Direction Direction `json:"direction"`
	TrunkID   *ID       `json:"trunk_id,omitempty"`
	// TrunkName is the trunk's name as read with the record, or, for a
	// trunk deleted since, the name it had: the record outlives it.
	TrunkName string `json:"trunk_name,omitempty"`
	// OperatorID is the operator who answered, nil if nobody did.
	OperatorID *ID `json:"operator_id,omitempty"`
	// OperatorName is the operator's name (or email) as read with the
	// record; never written.
	OperatorName string `json:"operator_name,omitempty"`
	From         string `json:"from"`   // caller's number or user part
	To           string `json:"to"`     // dialled number
	Source       string `json:"source"` // signalling source address, e.g. "udp:203.0.113.5:5060"
	SIPCallID    string `json:"sip_call_id,omitempty"`

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

	// What went wrong, for a call that did not end normally: on which leg,
	// at which stage, and the Q.850 cause of the final SIP code.
	FailureLeg   string `json:"failure_leg,omitempty"`
	FailureStage string `json:"failure_stage,omitempty"`
	Q850Cause    int    `json:"q850_cause,omitempty"`
	// PostDialDelayMS is INVITE to ringing; TimeToAnswerMS INVITE to 200.
	PostDialDelayMS int64 `json:"post_dial_delay_ms,omitempty"`
	TimeToAnswerMS  int64 `json:"time_to_answer_ms,omitempty"`
	// Tags name quality problems: high-jitter, high-loss, low-mos,
	// one-way-audio, silence, ice-failure.
	Tags []string `json:"tags,omitempty"`
	// ExternalRef is the call's reference in another system (a CRM
	// ticket, a chat or messenger ID); Labels are what integrations
	// attach.
	ExternalRef string   `json:"external_ref,omitempty"`
	Labels      []string `json:"labels,omitempty"`

	// Channel is what the call came in on or went out by when it is not
	// a trunk's SIP: ChannelWhatsApp. The messenger's own error code, when
	// its platform refused a request of ours, is APIErrorCode.
	Channel      string `json:"channel,omitempty"`
	APIErrorCode int    `json:"api_error_code,omitempty"`
}

// Quality tags on a call record.
const (
	TagHighJitter  = "high-jitter"
	TagHighLoss    = "high-loss"
	TagLowMOS      = "low-mos"
	TagOneWayAudio = "one-way-audio"
	TagSilence     = "silence"
	TagICEFailure  = "ice-failure"
)

// Legs a call can fail on.
const (
	FailedOnTrunk   = "trunk"       // the SIP side: the caller, the PBX, the carrier
	FailedOnBrowser = "browser"     // the operator's side
	FailedOnService = "switchboard" // the service itself: shutdown, a fault
)

// Stages a call can fail at.
const (
	StageAuth       = "auth"        // the trunk was not recognised
	StageRouting    = "routing"     // no trunk number, or no operator to offer the call to
	StageOffer      = "offer"       // the SDP offer could not be taken
	StageRinging    = "ringing"     // offered, not answered
	StageMediaSetup = "media_setup" // answered, but the 200 was not acknowledged
	StageMedia      = "media"       // media stopped during the call
	StageTeardown   = "teardown"    // ending the call went wrong
)

// Q850Cause is the ISDN cause of a SIP final response, by RFC 3398
// section 8.2.6.1; 16 (normal call clearing) for 2xx, 0 when there is none.
func Q850Cause(sipCode int) int {
	switch {
	case sipCode >= 200 && sipCode < 300:
		return 16
	case sipCode == 404 || sipCode == 485 || sipCode == 604:
		return 1
	case sipCode == 486 || sipCode == 600:
		return 17
	case sipCode == 480:
		return 18
	case sipCode == 401 || sipCode == 402 || sipCode == 403 || sipCode == 407 || sipCode == 603:
		return 21
	case sipCode == 410:
		return 22
	case sipCode == 482 || sipCode == 483:
		return 25
	case sipCode == 484:
		return 28
	case sipCode == 502:
		return 38
	case sipCode == 400 || sipCode == 481 || sipCode == 500 || sipCode == 503:
		return 41
	case sipCode == 606:
		return 58
	case sipCode == 405:
		return 63
	case sipCode == 406 || sipCode == 415 || sipCode == 501:
		return 79
	case sipCode == 408 || sipCode == 504:
		return 102
	case sipCode >= 400:
		return 127
	}
	return 0
}

// MediaStats summarises one direction of a call's audio.
type MediaStats struct {
	Packets  uint64  `json:"packets"`
	Bytes    uint64  `json:"bytes"`
	Lost     int64   `json:"lost"`          // expected minus received (RFC 3550 A.3)
	JitterMS float64 `json:"jitter_ms"`     // interarrival jitter (RFC 3550 A.8)
	MOS      float64 `json:"mos,omitempty"` // E-model estimate (ITU-T G.107), 1 to 4.5
	// Silent is true when audio arrived but every frame was silence.
	Silent bool `json:"silent,omitempty"`
}

// QualitySample is one leg's receive quality at a moment of a call, as
// running totals: the interval between two samples is their difference.
type QualitySample struct {
	At time.Time `json:"at"`
	// Leg is whose audio was received: "trunk" is the caller's, as
	// switchboard received it; "browser" is the operator's, as switchboard
	// received it, or, with Source "browser", the caller's as the
	// operator's browser received it.
	Leg      string  `json:"leg"`
	Source   string  `json:"source"` // "switchboard" or "browser"
	Packets  uint64  `json:"packets"`
	Lost     int64   `json:"lost"`
	JitterMS float64 `json:"jitter_ms"`
	RTTMS    float64 `json:"rtt_ms,omitempty"`
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
	EventWebRTC       EventType = "webrtc"        // the operator's ICE/DTLS state or candidate pair changed
	EventDialing      EventType = "dialing"       // an operator places a call
	EventEarlyMedia   EventType = "early_media"   // 183 with SDP: ringback or announcements reach the operator
	EventTrunkFailed  EventType = "trunk_failed"  // a trunk did not take the call we placed; the next is tried
	EventHoldFailed   EventType = "hold_failed"   // the trunk refused a hold or resume
	EventTransferred  EventType = "transferred"   // the operator handed the call to another
	EventOperatorLost EventType = "operator_lost" // the operator's connection dropped: the call waits for them
	EventOperatorBack EventType = "operator_back" // the operator's page is back on the call
	EventQueued       EventType = "queued"        // the call waits in a queue for a free operator
	EventQueueTimeout EventType = "queue_timeout" // the queue's longest wait passed: the call overflows
	EventForwarded    EventType = "forwarded"     // the call is forwarded to a SIP URI
	EventReferred     EventType = "referred"      // the caller's side took the transfer (REFER) and switchboard left the call
	EventHandedOver   EventType = "handed_over"   // the call is offered to an operator on another instance

	EventConsent            EventType = "consent"             // recording consent stated or refused
	EventRecordingStarted   EventType = "recording_started"   // the call is being recorded
	EventRecordingStored    EventType = "recording_stored"    // the recording is stored whole
	EventRecordingFailed    EventType = "recording_failed"    // recording could not start or be stored
	EventRecordingDestroyed EventType = "recording_destroyed" // the recording was destroyed
	EventRecordingPaused    EventType = "recording_paused"    // a gap in the recording begins
	EventRecordingResumed   EventType = "recording_resumed"   // the gap ends
)

// EventSessionExpired says the far end's session refresh (RFC 4028) never
// came, and the call was ended before the session expired.
const EventSessionExpired EventType = "session_expired"

// EventMediaFailed is a leg whose media path could not be set up or broke
// (ICE or DTLS-SRTP); the event's reason says why.
const EventMediaFailed EventType = "media_failed"

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
	// Tag selects calls with that quality tag, e.g. "one-way-audio".
	Tag string
	// Failed selects calls that failed somewhere (a failure stage is set).
	Failed bool
	// ExternalRef selects the calls with that reference.
	ExternalRef string
	// Label selects the calls an integration gave that label.
	Label string
	// InProgress selects the calls not ended yet (ringing, answered).
	InProgress bool
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

// replayKey marks a context as a replay of records written before.
type replayKey struct{}

// Replaying marks ctx as a replay of records written before (a journal's
// drain): no call waits for what is written under it, so a recorder does
// not count its wait as the wait of calls in progress.
func Replaying(ctx context.Context) context.Context { return context.WithValue(ctx, replayKey{}, true) }

// IsReplay reports whether ctx was marked by Replaying.
func IsReplay(ctx context.Context) bool { return ctx.Value(replayKey{}) != nil }

// CallRecorder writes call records as call control moves a call along.
// It is not scoped by actor: call control is the system itself.
type CallRecorder interface {
	// CreateCall inserts a new call record.
	CreateCall(ctx context.Context, c *Call) error
	// UpdateCall writes the call's current state (status, times, stats).
	UpdateCall(ctx context.Context, c *Call) error
	// AddCallEvents appends events to calls' timelines.
	AddCallEvents(ctx context.Context, events ...*CallEvent) error
	// AddCallTrace stores a call's SIP messages and quality samples,
	// redacted by its tenant's trace policy.
	AddCallTrace(ctx context.Context, t *CallTrace) error
	// WriteCallStep writes what a call's record gained at one moment
	// (answered, ended) together, where the recorder can: its events,
	// its trace and its state, the state last.
	WriteCallStep(ctx context.Context, s *CallStep) error
}

// CallStep is what a call's record gained at one moment: the events on
// its timeline since the last step, its trace (when it ends), and its
// state. Each part may be missing.
type CallStep struct {
	Call   *Call
	Events []*CallEvent
	Trace  *CallTrace
}

// WriteApart writes s through rec's writes of one part each, every part
// whatever the others' answers, the state last: whoever finds the record
// in its new state can read what came with it.
func (s *CallStep) WriteApart(ctx context.Context, rec CallRecorder) error {
	var errs []error
	if len(s.Events) > 0 {
		errs = append(errs, rec.AddCallEvents(ctx, s.Events...))
	}
	if s.Trace != nil {
		errs = append(errs, rec.AddCallTrace(ctx, s.Trace))
	}
	if s.Call != nil {
		errs = append(errs, rec.UpdateCall(ctx, s.Call))
	}
	return errors.Join(errs...)
}

// CallReferencer attaches a call's reference in another system and
// labels, for integrations (API keys) and supervisors and admins.
type CallReferencer interface {
	SetCallReference(ctx context.Context, callID ID, externalRef string, labels []string) (*Call, error)
}

// CallTraceService reads calls' traces, for the people who diagnose calls:
// supervisors, support engineers and admins of the call's tenant.
type CallTraceService interface {
	FindCallTrace(ctx context.Context, callID ID) (*CallTrace, error)
}

// CallTrace is what a call leaves for diagnosis besides its record and
// timeline.
type CallTrace struct {
	TenantID ID              `json:"tenant_id"`
	CallID   ID              `json:"call_id"`
	SIP      []SIPMessage    `json:"sip"`
	Quality  []QualitySample `json:"quality"`
}
