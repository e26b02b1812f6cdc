package switchboard

import (
	"context"
	"time"
)

// TenantService manages tenants. It is used by provisioning, which runs as
// the system, so it is not scoped by actor.
type TenantService interface {
	CreateTenant(ctx context.Context, t *Tenant) error
	// FindTenantByID returns ENOTFOUND if there is no such tenant.
	FindTenantByID(ctx context.Context, id ID) (*Tenant, error)
}

// UserService manages people and their logins.
type UserService interface {
	// CreateUser stores u with an argon2id hash of password. Returns
	// ECONFLICT if the email is taken, EINVALID for a weak password or bad
	// email, ENOTFOUND if the tenant does not exist.
	CreateUser(ctx context.Context, u *User, password string) error
	// Authenticate returns the user with that email and password, or
	// EUNAUTHORIZED whatever was wrong (no such user, wrong password), so a
	// caller cannot learn which emails exist; EFORBIDDEN for a disabled
	// user, said only after the right password.
	Authenticate(ctx context.Context, email, password string) (*User, error)
	// FindUserByID returns ENOTFOUND if there is no such user in the
	// actor's tenant.
	FindUserByID(ctx context.Context, id ID) (*User, error)
	// FindUsers lists a page of the actor's tenant's people, oldest first,
	// for supervisors and admins.
	FindUsers(ctx context.Context, p Page) ([]*User, error)
	// InviteUser adds a person to the actor's tenant, for admins, audited.
	// With a password it is their first; without one, the returned token is
	// a one-time link's secret with which they set it (SetPassword). Returns
	// ECONFLICT if the email is taken.
	InviteUser(ctx context.Context, u *User, password string) (token string, err error)
	// UpdateUser changes what the change names, for admins, audited, each
	// part its own entry. A new role or a disabling ends the person's
	// sessions (and operator sockets, through SignOuts). Nobody changes
	// their own role or disables themselves: another admin must.
	UpdateUser(ctx context.Context, id ID, c UserChange) (*User, error)
	// ResetPassword sets a person's password for an admin, or, without
	// one, returns a one-time link's secret; their sessions end. Audited.
	ResetPassword(ctx context.Context, id ID, password string) (token string, err error)
	// ChangePassword changes the acting person's own password; old must be
	// right (EFORBIDDEN otherwise). Their other sessions end. Audited.
	ChangePassword(ctx context.Context, old, password string) error
	// SetPassword spends a one-time token from an invitation or a reset;
	// EUNAUTHORIZED if it is unknown, spent or expired. Audited.
	SetPassword(ctx context.Context, token, password string) (*User, error)
}

// UserChange is a change to a person; nil fields stay as they are.
type UserChange struct {
	Role     *Role   `json:"role,omitempty"`
	Name     *string `json:"name,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

// TrunkService manages trunks.
type TrunkService interface {
	// CreateTrunk stores t. password may be empty for an IP-only trunk; a
	// trunk needs at least one allowed prefix or a username. Returns
	// ECONFLICT if a number or username is already taken.
	CreateTrunk(ctx context.Context, t *Trunk, password string) error
	// FindTrunks lists the actor's tenant's trunks, for admins.
	FindTrunks(ctx context.Context) ([]*Trunk, error)
}

// APIKeyService manages API keys.
type APIKeyService interface {
	// CreateAPIKey stores a new key for the tenant and role and returns it
	// with its secret, which is never available again.
	CreateAPIKey(ctx context.Context, tenantID ID, role Role) (*APIKey, string, error)
	// AuthenticateAPIKey returns the key whose secret this is, or
	// EUNAUTHORIZED.
	AuthenticateAPIKey(ctx context.Context, secret string) (*APIKey, error)
	// IssueAPIKey makes a key of the actor's tenant, for admins, audited,
	// and returns it with its secret, which is never available again.
	IssueAPIKey(ctx context.Context, r APIKeyRequest) (*APIKey, string, error)
	// FindAPIKeys lists a page of the actor's tenant's keys, oldest first,
	// never their secrets, for admins.
	FindAPIKeys(ctx context.Context, p Page) ([]*APIKey, error)
	// RevokeAPIKey deletes the key, for admins, audited: its next request,
	// on any instance, is refused. ENOTFOUND if it is not the tenant's.
	RevokeAPIKey(ctx context.Context, id ID) error
}

// APIKeyRequest is what an admin asks of a new key.
type APIKeyRequest struct {
	Role      Role
	Label     string
	ExpiresAt *time.Time // nil: until revoked
}

// Session is a person's browser login.
type Session struct {
	UserID    ID
	TenantID  ID
	Role      Role
	ExpiresAt time.Time
}

// SessionService manages browser logins. Only a hash of the token is
// stored.
type SessionService interface {
	// CreateSession starts a session for the user and returns its token.
	CreateSession(ctx context.Context, u *User, ttl time.Duration) (token string, s *Session, err error)
	// FindSession returns the live session for token, or EUNAUTHORIZED if
	// it does not exist, has expired or its person is disabled.
	FindSession(ctx context.Context, token string) (*Session, error)
	// DeleteSession ends the session; ending an unknown one is not an error.
	DeleteSession(ctx context.Context, token string) error
}
