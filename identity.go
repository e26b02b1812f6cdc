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
	// caller cannot learn which emails exist.
	Authenticate(ctx context.Context, email, password string) (*User, error)
	// FindUserByID returns ENOTFOUND if there is no such user in the
	// actor's tenant.
	FindUserByID(ctx context.Context, id ID) (*User, error)
	// FindUsers lists the actor's tenant's people, for supervisors and
	// admins.
	FindUsers(ctx context.Context) ([]*User, error)
	// SetUserRole changes a person's role, for admins, audited; the
	// person's sessions end.
	SetUserRole(ctx context.Context, id ID, role Role) (*User, error)
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
	// FindAPIKeys lists the actor's tenant's keys, never their secrets,
	// for admins.
	FindAPIKeys(ctx context.Context) ([]*APIKey, error)
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
	// it does not exist or has expired.
	FindSession(ctx context.Context, token string) (*Session, error)
	// DeleteSession ends the session; ending an unknown one is not an error.
	DeleteSession(ctx context.Context, token string) error
}
