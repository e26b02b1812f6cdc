package switchboard

import (
	"context"
	"io"
	"time"
)

// GrantStatus is where an access grant stands.
type GrantStatus string

const (
	GrantPending  GrantStatus = "pending"  // waits for a second person of the tenant
	GrantApproved GrantStatus = "approved" // usable until it expires
	GrantDenied   GrantStatus = "denied"
	GrantRevoked  GrantStatus = "revoked"
	GrantExpired  GrantStatus = "expired"
)

// DefaultGrantTTL is how long a grant lasts when the request names no
// time: long enough to listen to a call, short enough to be forgotten.
const DefaultGrantTTL = 15 * time.Minute

// AccessGrant is one person's time-limited access to one call's
// recording, for a stated reason. It is the only way to hear a recording.
type AccessGrant struct {
	ID            ID          `json:"id"`
	TenantID      ID          `json:"tenant_id"`
	RecordingID   ID          `json:"recording_id"`
	CallID        ID          `json:"call_id"`
	RequestedBy   ID          `json:"requested_by"`
	RequesterRole Role        `json:"requester_role"`
	Reason        string      `json:"reason"`
	Ticket        string      `json:"ticket"`
	Download      bool        `json:"download"`
	TTLSeconds    int         `json:"ttl_seconds"`
	Status        GrantStatus `json:"status"`
	RequestedAt   time.Time   `json:"requested_at"`
	DecidedBy     *ID         `json:"decided_by,omitempty"`
	DecidedAt     *time.Time  `json:"decided_at,omitempty"`
	// ExpiresAt ends a pending request, or the access once approved.
	ExpiresAt time.Time  `json:"expires_at"`
	EndedBy   *ID        `json:"ended_by,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// RequestedByName, DecidedByName and EndedByName are those people's
	// names, where they are of the grant's tenant, as the API reads them
	// with the grant; never stored.
	RequestedByName string `json:"requested_by_name,omitempty"`
	DecidedByName   string `json:"decided_by_name,omitempty"`
	EndedByName     string `json:"ended_by_name,omitempty"`
}

// GrantRequest asks for access to a call's recording.
type GrantRequest struct {
	CallID   ID
	Reason   string
	Ticket   string
	TTL      time.Duration // 0: DefaultGrantTTL; at most the tenant's ceiling
	Download bool
}

// GrantFilter selects grants; zero fields do not filter.
type GrantFilter struct {
	Status GrantStatus
	CallID *ID
}

// AudioAccess is what a grant is used for.
type AudioAccess string

const (
	AccessPlay     AudioAccess = "play"     // streamed to the holder's browser
	AccessDownload AudioAccess = "download" // saved as a file; needs a grant that allows it
)

// GrantService manages access grants, in the actor's tenant. Every change
// and every use is audited in the same transaction, so none happens
// without its entry.
type GrantService interface {
	// RequestGrant asks for access for the actor, a support engineer or an
	// admin. The grant is approved at once unless the tenant requires a
	// second person.
	RequestGrant(ctx context.Context, r GrantRequest) (*AccessGrant, error)
	// DecideGrant approves or denies a pending grant; only a supervisor or
	// admin of the tenant who did not ask for it decides.
	DecideGrant(ctx context.Context, id ID, approve bool) (*AccessGrant, error)
	// RevokeGrant ends a pending or approved grant at once.
	RevokeGrant(ctx context.Context, id ID) (*AccessGrant, error)
	// FindGrants lists grants: a requester sees their own, a supervisor or
	// admin the tenant's.
	FindGrants(ctx context.Context, f GrantFilter) ([]*AccessGrant, error)
	FindGrantByID(ctx context.Context, id ID) (*AccessGrant, error)
	// UseGrant checks that the actor holds id, approved and unexpired, and
	// allowing access; it audits the access with detail (what was read) and
	// returns the grant and its recording. Without a durable audit entry
	// there is no access. A refused use is audited too, whoever acting in
	// the grant's tenant asked: someone not the holder gets the error a
	// grant that does not exist gives them (ENOTFOUND, or EFORBIDDEN for a
	// role that holds no grants). Another tenant's grant, or none, is
	// refused the same way and audited nowhere.
	UseGrant(ctx context.Context, id ID, access AudioAccess, detail string) (*AccessGrant, *Recording, error)
	// CheckGrant reports whether the actor's grant id is still usable:
	// nil, or EFORBIDDEN once it was revoked or expired.
	CheckGrant(ctx context.Context, id ID) error
	// ExpireGrants ends the grants whose time is up, auditing each, and
	// returns how many. It runs as the system.
	ExpireGrants(ctx context.Context) (int, error)
}

// AudioFile is a recording made audible for one grant's holder: a WAV
// file read by byte ranges, decrypted as it is read, or for an Opus
// recording an Ogg Opus file made on opening.
type AudioFile interface {
	io.ReaderAt
	io.Closer
	Size() int64
	// ContentType is "audio/wav" (G.711 recordings, decoded to PCM) or
	// "audio/ogg" (Opus recordings, as they arrived).
	ContentType() string
}

// RecordingPlayer is the only path from a stored recording to audio. It
// uses the grant (checking and auditing it) before it decrypts anything,
// and stops a read in progress once the grant is revoked or expires.
type RecordingPlayer interface {
	// OpenAudio opens the grant's recording as an audio file of the window
	// [from, to) (to 0: the end). detail says what the request reads, for
	// the audit log.
	OpenAudio(ctx context.Context, grantID ID, access AudioAccess, from, to time.Duration, detail string) (AudioFile, error)
}
