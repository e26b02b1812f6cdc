package switchboard

import (
	"context"
	"time"
)

// RecordingPolicy is a tenant's rule for recording calls. The law in many
// places wants every party's consent, so the default records nothing.
type RecordingPolicy string

const (
	RecordNever        RecordingPolicy = "never"   // no call is recorded (default)
	RecordWithConsent  RecordingPolicy = "consent" // only calls with a consent record given for that call
	RecordTrunkAsserts RecordingPolicy = "trunk"   // also when the trunk asserts consent for all its calls
)

// ParseRecordingPolicy returns EINVALID for anything but the three
// policies.
func ParseRecordingPolicy(s string) (RecordingPolicy, error) {
	switch p := RecordingPolicy(s); p {
	case RecordNever, RecordWithConsent, RecordTrunkAsserts:
		return p, nil
	}
	return "", Errorf(EINVALID, "recording policy %q is not never, consent or trunk", s)
}

// ConsentMechanism is how a call's recording consent came about.
type ConsentMechanism string

const (
	ConsentTrunkPolicy ConsentMechanism = "trunk_policy" // the trunk asserts consent for every call it sends
	ConsentSIPHeader   ConsentMechanism = "sip_header"   // the PBX said so in X-Recording-Consent
	ConsentAPI         ConsentMechanism = "api"          // an integration said so
	ConsentOperator    ConsentMechanism = "operator"     // the operator confirmed after an announcement
	ConsentDTMF        ConsentMechanism = "dtmf"         // the caller pressed a key
)

// Consent is a call's recording consent as a record: given or refused, how,
// when, by whom, and under which tenant policy it was weighed.
type Consent struct {
	Given     bool             `json:"given"`
	Mechanism ConsentMechanism `json:"mechanism"`
	At        time.Time        `json:"at"`
	By        string           `json:"by,omitempty"` // trunk, user or key that stated it
	Policy    RecordingPolicy  `json:"policy,omitempty"`
}

// MayRecord weighs a tenant's policy against a call's consent: whether the
// call may be recorded, and the consent that allows it.
func MayRecord(p RecordingPolicy, consent *Consent) bool {
	if consent == nil || !consent.Given {
		return false
	}
	switch p {
	case RecordWithConsent:
		return consent.Mechanism != ConsentTrunkPolicy
	case RecordTrunkAsserts:
		return true
	}
	return false
}

// RecordingStatus is where a recording stands.
type RecordingStatus string

const (
	RecordingActive    RecordingStatus = "recording" // the call is being recorded
	RecordingComplete  RecordingStatus = "complete"  // stored whole
	RecordingFailed    RecordingStatus = "failed"    // storing it failed; what exists is truncated
	RecordingDestroyed RecordingStatus = "destroyed" // consent withdrawn or retention: audio and key gone
)

// Recording is a call recording's record: never the audio, never a key in
// the clear.
type Recording struct {
	ID       ID              `json:"id"`
	TenantID ID              `json:"tenant_id"`
	CallID   ID              `json:"call_id"`
	Status   RecordingStatus `json:"status"`
	// Each direction is kept in the codec it arrived in: Codec is the
	// caller's channel's, OperatorCodec the operator's (the two sides of a
	// G.711 call may differ).
	Codec         string     `json:"codec"`
	OperatorCodec string     `json:"operator_codec"`
	ClockRate     uint32     `json:"clock_rate"`
	StartedAt     time.Time  `json:"started_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
	DurationMS    int64      `json:"duration_ms"`
	SizeBytes     int64      `json:"size_bytes"`
	Format        int        `json:"format"` // container format version
	Segments      int        `json:"segments"`
	Truncated     bool       `json:"truncated,omitempty"` // cut short: it plays up to its last whole segment
	Dropped       uint64     `json:"dropped_packets"`
	Consent       Consent    `json:"consent"`
	// RetentionUntil is when the tenant's retention ends and the sweep
	// destroys the recording.
	RetentionUntil *time.Time `json:"retention_until,omitempty"`
	ObjectKey      string     `json:"-"`
	KeyVersion     uint32     `json:"-"`
	WrappedKey     []byte     `json:"-"`
	// SegmentStarts is when each segment begins, in milliseconds from
	// StartedAt; nil when unknown (a recording made before they were kept).
	SegmentStarts []int64 `json:"-"`
	// OggLayout is an Opus recording's file layout, sealed under its data
	// key (recordings.Player); nil until first played.
	OggLayout []byte `json:"-"`
}

// Recordings starts call recordings; call control asks it once a call is
// answered.
type Recordings interface {
	// Begin weighs the tenant's policy against consent and, when the call
	// may be recorded, starts recording it, each direction in the codec it
	// arrives in: caller is the caller's leg's, operator the codec the
	// operator's side sends. It returns nil, nil when the call is not to be
	// recorded.
	Begin(ctx context.Context, c *Call, consent *Consent, caller, operator Codec) (ActiveRecording, error)
	// ConsentDigit is the key the tenant's callers press to consent after
	// the announcement; 0 when DTMF consent is off.
	ConsentDigit(ctx context.Context, tenantID ID) (byte, error)
}

// ActiveRecording is a recording in progress.
type ActiveRecording interface {
	// Tap takes relayed audio; it is a Bridge Tap.
	Tap(fromCaller bool, payload []byte, at time.Time)
	// Pause marks the start of a gap (the caller is reading out a card
	// number); Resume marks its end. Call control stops tapping between.
	Pause(at time.Time)
	Resume(at time.Time)
	// Finish stores the recording whole and records it.
	Finish(ctx context.Context) (*Recording, error)
	// Destroy removes the audio and the key and records the destruction.
	Destroy(ctx context.Context, reason string) error
}

// RecordingService reads recording records, scoped to the actor's tenant.
type RecordingService interface {
	// FindRecordingByCallID returns ENOTFOUND if the call has no recording
	// the actor may see.
	FindRecordingByCallID(ctx context.Context, callID ID) (*Recording, error)
}
