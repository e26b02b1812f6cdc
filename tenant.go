package switchboard

import (
	"context"
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// ID identifies every stored thing. New IDs are UUIDv7, so they sort by
// creation time and index well.
type ID = uuid.UUID

// NewID returns a new time-ordered ID.
func NewID() ID { return uuid.Must(uuid.NewV7()) }

// ParseID parses s as an ID, returning EINVALID if it is not one.
func ParseID(s string) (ID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return ID{}, Errorf(EINVALID, "%q is not a valid id", s)
	}
	return id, nil
}

// Tenant is one customer of the service: its calls, people and trunks are
// invisible to every other tenant.
type Tenant struct {
	ID              ID              `json:"id"`
	Name            string          `json:"name"`
	RecordingPolicy RecordingPolicy `json:"recording_policy"`
	Support         SupportPolicy   `json:"support"`
	Trace           TracePolicy     `json:"trace"`
	Privacy         PrivacyPolicy   `json:"privacy"`
	// ServiceDesk makes the tenant the service's own support desk: its
	// support engineers, and only they, may visit the tenants whose
	// SupportPolicy lets the service desk in. Set by the service's operator
	// only.
	ServiceDesk bool `json:"service_desk"`
	// DialTargets are where the tenant's transfers and forwards to SIP
	// URIs may go.
	DialTargets DialTargets `json:"dial_targets"`
	CreatedAt   time.Time   `json:"created_at"`
}

// PrivacyPolicy is how long a tenant keeps call records and quality
// samples (SIP traces and recordings have their own periods), and whether
// its operators see callers' numbers whole.
type PrivacyPolicy struct {
	// CallRetentionDays is how long a call record keeps who called: then
	// its numbers, references, source and timeline go, and the rest
	// (times, outcome, quality) stays for the statistics.
	CallRetentionDays int `json:"call_retention_days"`
	// QualityRetentionDays is how long quality samples are kept.
	QualityRetentionDays int `json:"quality_retention_days"`
	// MaskOperatorNumbers shows operators only the last four digits of a
	// caller's number.
	MaskOperatorNumbers bool `json:"mask_operator_numbers"`
}

// Validate checks the periods.
func (p PrivacyPolicy) Validate() error {
	if p.CallRetentionDays < 1 || p.CallRetentionDays > 3650 || p.QualityRetentionDays < 1 || p.QualityRetentionDays > 3650 {
		return Errorf(EINVALID, "retention periods are from 1 to 3650 days")
	}
	return nil
}

// SupportPolicy is a tenant's rule for support engineers' diagnostic
// access to its recordings. The default lets no support engineer in.
type SupportPolicy struct {
	// Access lets the support engineers of the service's own support desk
	// (a tenant marked ServiceDesk) see the tenant's calls and ask for
	// grants; every request they make here is audited.
	Access bool `json:"access"`
	// Approval makes every grant wait for a supervisor or admin of the
	// tenant, who is not the requester, to approve it.
	Approval bool `json:"approval"`
	// MaxTTLSeconds is the longest a grant may last.
	MaxTTLSeconds int `json:"max_ttl_seconds"`
	// Download lets a grant allow saving the decrypted audio, not only
	// playing it.
	Download bool `json:"download"`
}

// Role is what a person or an API key may do within a tenant.
type Role string

const (
	RoleOperator   Role = "operator"   // takes calls; sees own calls
	RoleSupervisor Role = "supervisor" // sees the tenant's calls and operators
	RoleSupport    Role = "support"    // diagnostic access
	RoleAdmin      Role = "admin"      // tenant settings, users, trunks, keys
)

// ParseRole returns EINVALID for anything but the four roles.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleOperator, RoleSupervisor, RoleSupport, RoleAdmin:
		return r, nil
	}
	return "", Errorf(EINVALID, "role %q is not one of operator, supervisor, support, admin", s)
}

// User is a person who logs in: an operator, supervisor, support engineer or
// admin of one tenant.
type User struct {
	ID           ID        `json:"id"`
	TenantID     ID        `json:"tenant_id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	// Disabled people keep their record but cannot log in.
	Disabled bool `json:"disabled"`
}

// APIKey lets an integration call the HTTP API as a role of one tenant. Only
// the hash of the secret is stored; the secret is shown once, at creation.
type APIKey struct {
	ID        ID        `json:"id"`
	TenantID  ID        `json:"tenant_id"`
	Role      Role      `json:"role"`
	Prefix    string    `json:"prefix"` // the first characters, to tell keys apart
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// Trunk is a PBX or carrier that sends calls in. It is recognised by its
// source address, by SIP digest credentials, or by both, and may only call
// the numbers assigned to it.
type Trunk struct {
	ID       ID             `json:"id"`
	TenantID ID             `json:"tenant_id"`
	Name     string         `json:"name"`
	Allow    []netip.Prefix `json:"allow,omitempty"`
	Username string         `json:"username,omitempty"`
	// DigestHA1 is MD5(username:realm:password), what digest verification
	// needs; the password itself is never stored.
	DigestHA1 string   `json:"-"`
	Numbers   []string `json:"numbers"`
	// RecordingConsent says the trunk's operator obtains recording consent
	// for every call it sends (an announcement on the PBX, a contract).
	RecordingConsent bool      `json:"recording_consent"`
	CreatedAt        time.Time `json:"created_at"`
}

// AllowsSource reports whether addr falls in one of the trunk's prefixes.
func (t *Trunk) AllowsSource(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range t.Allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// HasNumber reports whether the trunk may call number.
func (t *Trunk) HasNumber(number string) bool {
	for _, n := range t.Numbers {
		if n == number {
			return true
		}
	}
	return false
}

// TrunkDirectory is what the SIP side needs to recognise a trunk.
type TrunkDirectory interface {
	// TrunksForSource returns the trunks whose allowlist contains addr.
	TrunksForSource(ctx context.Context, addr netip.Addr) ([]*Trunk, error)
	// TrunkByUsername returns the trunk with that digest username, or
	// ENOTFOUND.
	TrunkByUsername(ctx context.Context, username string) (*Trunk, error)
	// HasDigestTrunks reports whether any trunk uses digest credentials, so
	// that an unknown source is challenged rather than refused.
	HasDigestTrunks(ctx context.Context) (bool, error)
}

// Actor is who is acting: a logged-in person or an API key, always within
// one tenant. A support engineer acting in a tenant that lets support in
// has that tenant as TenantID and their own as HomeTenantID.
type Actor struct {
	TenantID     ID
	HomeTenantID ID
	UserID       ID // zero for an API key
	APIKeyID     ID // zero for a person
	Role         Role
	// Where the request came from, for the audit log.
	IP        string
	UserAgent string
}

type actorKey struct{}

// NewContextWithActor returns a context carrying a.
func NewContextWithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFromContext returns the actor in ctx, or nil.
func ActorFromContext(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// DigestRealm is the realm of SIP digest challenges; trunk HA1 values are
// computed with it.
const DigestRealm = "switchboard"
