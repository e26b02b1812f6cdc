package switchboard

import (
	"context"
	"time"
)

// AuditEntry is one line of the audit log: who did what to which resource,
// when, why, from where, and how it turned out. It never holds a phone
// number or other personal data in the clear, so erasing a person's data
// never breaks the chain.
type AuditEntry struct {
	Seq          int64     `json:"seq"`
	ID           ID        `json:"id"`
	TenantID     *ID       `json:"tenant_id,omitempty"` // nil for the system
	At           time.Time `json:"at"`
	ActorUserID  *ID       `json:"actor_user_id,omitempty"`
	ActorKeyID   *ID       `json:"actor_api_key_id,omitempty"`
	ActorRole    Role      `json:"actor_role,omitempty"`
	Action       string    `json:"action"`
	ResourceType string    `json:"resource_type,omitempty"`
	ResourceID   string    `json:"resource_id,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Ticket       string    `json:"ticket,omitempty"`
	// Detail says what an access touched: a byte range, a time window.
	Detail    string `json:"detail,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Outcome   string `json:"outcome"` // "ok", "denied", "failed"
	PrevHash  []byte `json:"prev_hash"`
	Hash      []byte `json:"hash"`
	// ActorName and ResourceName name the actor (a person of the tenant,
	// or an API key's label) and the resource (a person, key, trunk or
	// queue of the tenant) as the API reads them with the entry; never
	// stored, and not in the entry's hash.
	ActorName    string `json:"actor_name,omitempty"`
	ResourceName string `json:"resource_name,omitempty"`
}

// AuditLog is the append-only audit log.
type AuditLog interface {
	// Append adds entries at the head of the chain, stamping their time,
	// sequence and hashes.
	Append(ctx context.Context, entries ...*AuditEntry) error
}

// AuditFilter selects audit entries; zero fields do not filter. Before
// continues a listing below that sequence number.
type AuditFilter struct {
	Action string
	Since  *time.Time
	Until  *time.Time
	Before int64
	Limit  int
}

// AuditService reads the audit log, scoped to the actor's tenant and
// limited to its admins.
type AuditService interface {
	FindAuditEntries(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
	// VerifyAudit checks the whole chain and returns the sequence number
	// of the first broken entry, 0 if it is whole.
	VerifyAudit(ctx context.Context) (int64, error)
}
