package switchboard

import (
	"context"
	"time"
)

// AuditEntry is one line of the audit log: who did what to which resource,
// when, why, from where, and how it turned out. It never holds a phone
// number or other personal data in the clear, so erasing a person's data
// never breaks the chain.
//
// Each tenant's log (and the system's) is numbered and chained on its own,
// so that nothing a tenant reads counts another tenant's entries.
type AuditEntry struct {
	// Seq is the entry's number in its tenant's log: 1, 2, 3...
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
	// Hash is the entry's in its tenant's chain: SHA-256 over PrevHash,
	// the Hash of the tenant's entry before (32 zero bytes for its first),
	// and the entry's canonical content. An entry appended before tenants
	// had chains of their own has no PrevHash, and its Hash, which the
	// tenant's chain goes on from, is checked by the service alone.
	PrevHash []byte `json:"prev_hash,omitempty"`
	Hash     []byte `json:"hash"`
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
	// VerifyAudit checks the whole log for an admin of the actor's tenant.
	// whole says whether every entry holds. firstBroken is the number of
	// the tenant's first entry that does not hold in itself (its content,
	// its number, its link), 0 when none of the tenant's: then the log
	// broke elsewhere (a missing entry, or an entry not the tenant's), and
	// the tenant's entries appended before that place cannot be vouched
	// for either, since a rewrite of them would show there.
	VerifyAudit(ctx context.Context) (whole bool, firstBroken int64, err error)
}
