package metadata

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// auditLock serialises appends, so each entry chains onto the one before.
const auditLock int64 = 0x5357_4244_4155_4454 // "SWBDAUDT"

// AuditLog is the PostgreSQL audit log. It is one chain, in the order
// entries were appended: each entry's hash (hash) covers the previous
// entry's (prev_hash) and its own canonical content with its place in the
// log (seq). That chain, which `audit verify` walks and the checkpoints
// sign, is the service's: its numbering and links count every tenant's
// entries, so a tenant is never shown them. Each tenant's entries (and the
// system's, tenant_id NULL) are also a chain of their own, which is what
// the tenant's admins read: the entry's number among its tenant's
// (tenant_seq: 1, 2, 3... with no gaps), and its hash in the tenant's chain
// (tenant_hash), covering the tenant's previous entry's (tenant_prev_hash)
// and the same content with that number. The tenant's chain is made from
// what the log's chain covers, so Verify recomputes it rather than trust
// it. Entries appended before tenants had chains of their own (migration
// 0030) have a number but no tenant hash: their tenant is shown their hash
// in the log, as before, and the tenant's chain goes on from it.
type AuditLog struct{ db *DB }

var _ sb.AuditLog = (*AuditLog)(nil)

// NewAuditLog returns the audit log on db.
func NewAuditLog(db *DB) *AuditLog { return &AuditLog{db: db} }

// hashedEntry is the content an entry's hashes cover, in a fixed order. It
// is frozen, not sb.AuditEntry itself, so that a field added to the API's
// entry changes no hash already stored. PrevHash and Hash are always null:
// the previous hash is hashed before the content.
type hashedEntry struct {
	// Chain is "" in the log's chain (Seq the entry's place in the log),
	// "tenant" in its tenant's (Seq its number there).
	Chain        string    `json:"chain,omitempty"`
	Seq          int64     `json:"seq"`
	ID           sb.ID     `json:"id"`
	TenantID     *sb.ID    `json:"tenant_id,omitempty"`
	At           time.Time `json:"at"`
	ActorUserID  *sb.ID    `json:"actor_user_id,omitempty"`
	ActorKeyID   *sb.ID    `json:"actor_api_key_id,omitempty"`
	ActorRole    string    `json:"actor_role,omitempty"`
	Action       string    `json:"action"`
	ResourceType string    `json:"resource_type,omitempty"`
	ResourceID   string    `json:"resource_id,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Ticket       string    `json:"ticket,omitempty"`
	Detail       string    `json:"detail,omitempty"`
	IP           string    `json:"ip,omitempty"`
	UserAgent    string    `json:"user_agent,omitempty"`
	Outcome      string    `json:"outcome"`
	PrevHash     []byte    `json:"prev_hash"`
	Hash         []byte    `json:"hash"`
}

// tenantChain marks the content hashed in a tenant's chain.
const tenantChain = "tenant"

// canonical is e's content as the chain named hashes it, numbered seq.
// The names the API reads with an entry are not of it.
func canonical(e *sb.AuditEntry, chain string, seq int64) []byte {
	b, _ := json.Marshal(hashedEntry{Chain: chain, Seq: seq, ID: e.ID, TenantID: e.TenantID, At: e.At.UTC(),
		ActorUserID: e.ActorUserID, ActorKeyID: e.ActorKeyID, ActorRole: string(e.ActorRole), Action: e.Action,
		ResourceType: e.ResourceType, ResourceID: e.ResourceID, Reason: e.Reason, Ticket: e.Ticket, Detail: e.Detail,
		IP: e.IP, UserAgent: e.UserAgent, Outcome: e.Outcome}) // a struct of plain fields cannot fail
	return b
}

// logHash is e's hash in the log's chain, at its place seq.
func logHash(prev []byte, e *sb.AuditEntry, seq int64) []byte {
	return sha256Of(prev, canonical(e, "", seq))
}

// tenantHash is e's hash in its tenant's chain, at its number e.Seq.
func tenantHash(prev []byte, e *sb.AuditEntry) []byte {
	return sha256Of(prev, canonical(e, tenantChain, e.Seq))
}

func sha256Of(prev, content []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(content)
	return h.Sum(nil)
}

// Append adds entries in one transaction at the head of the chain.
func (l *AuditLog) Append(ctx context.Context, entries ...*sb.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return l.db.inTx(ctx, func(tx pgx.Tx) error { return appendAudit(ctx, tx, l.db.now(), entries...) })
}

// chainHead is the newest entry of a tenant's chain: its number and the
// hash its tenant is shown.
type chainHead struct {
	seq  int64
	hash []byte
}

// chainKey names a tenant's chain; the zero ID is the system's.
func chainKey(tenantID *sb.ID) sb.ID {
	if tenantID == nil {
		return sb.ID{}
	}
	return *tenantID
}

// appendAudit adds entries at the head of the chain inside tx, so that a
// change and its audit entries commit together or not at all. Each entry
// is stamped with its number and hashes in its tenant's chain (Seq,
// PrevHash, Hash: what its tenant is shown) and stored with its place and
// hashes in the log's.
func appendAudit(ctx context.Context, tx pgx.Tx, now time.Time, entries ...*sb.AuditEntry) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLock); err != nil {
		return fmt.Errorf("metadata: audit lock: %w", err)
	}
	var seq int64
	prev := make([]byte, 32)
	err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&seq, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("metadata: audit head: %w", err)
	}
	heads := map[sb.ID]chainHead{}
	rows := make([][]any, len(entries))
	for i, e := range entries {
		k := chainKey(e.TenantID)
		head, ok := heads[k]
		if !ok {
			if head, err = tenantHead(ctx, tx, e.TenantID); err != nil {
				return err
			}
		}
		seq++
		if e.ID == (sb.ID{}) {
			e.ID = sb.NewID()
		}
		if e.At.IsZero() {
			e.At = now
		}
		e.At = e.At.UTC().Truncate(time.Microsecond)
		if e.Outcome == "" {
			e.Outcome = "ok"
		}
		hash := logHash(prev, e, seq)
		e.Seq, e.PrevHash = head.seq+1, head.hash
		e.Hash = tenantHash(e.PrevHash, e)
		heads[k] = chainHead{seq: e.Seq, hash: e.Hash}
		rows[i] = []any{seq, e.ID, e.TenantID, e.At, e.ActorUserID, e.ActorKeyID, string(e.ActorRole), e.Action,
			e.ResourceType, e.ResourceID, e.Reason, e.Ticket, e.Detail, e.IP, e.UserAgent, e.Outcome, prev, hash,
			e.Seq, e.PrevHash, e.Hash}
		prev = hash
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"audit_log"}, []string{"seq", "id", "tenant_id", "at", "actor_user_id", "actor_key_id",
		"actor_role", "action", "resource_type", "resource_id", "reason", "ticket", "detail", "ip", "user_agent", "outcome", "prev_hash", "hash",
		"tenant_seq", "tenant_prev_hash", "tenant_hash"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("metadata: audit append: %w", err)
	}
	return nil
}

// tenantHead reads the head of a tenant's chain (tenantID nil: the
// system's); a chain without entries has number 0 and a hash of zeros.
func tenantHead(ctx context.Context, tx pgx.Tx, tenantID *sb.ID) (chainHead, error) {
	q := "SELECT tenant_seq, coalesce(tenant_hash, hash) FROM audit_log WHERE tenant_id = $1 ORDER BY tenant_seq DESC LIMIT 1"
	args := []any{tenantID}
	if tenantID == nil {
		q, args = "SELECT tenant_seq, coalesce(tenant_hash, hash) FROM audit_log WHERE tenant_id IS NULL ORDER BY tenant_seq DESC LIMIT 1", nil
	}
	head := chainHead{hash: make([]byte, 32)}
	err := tx.QueryRow(ctx, q, args...).Scan(&head.seq, &head.hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return head, fmt.Errorf("metadata: audit head: %w", err)
	}
	return head, nil
}

// actorEntry is an audit entry with who acted and from where, taken from
// the actor.
func actorEntry(a *sb.Actor, action, resourceType string, resourceID sb.ID) *sb.AuditEntry {
	e := &sb.AuditEntry{TenantID: &a.TenantID, ActorRole: a.Role, Action: action, ResourceType: resourceType,
		ResourceID: resourceID.String(), IP: a.IP, UserAgent: a.UserAgent}
	if a.UserID != (sb.ID{}) {
		e.ActorUserID = &a.UserID
	}
	if a.APIKeyID != (sb.ID{}) {
		e.ActorKeyID = &a.APIKeyID
	}
	return e
}

// Verify walks the whole log and returns the place in it (seq) of the
// first entry whose hash or link does not hold, in the log's chain or in
// its tenant's, 0 if every one does.
func (l *AuditLog) Verify(ctx context.Context) (int64, error) {
	v, err := l.verify(ctx)
	if err != nil {
		return 0, err
	}
	return v.first, nil
}

// auditVerification is what a walk of the whole log found.
type auditVerification struct {
	// first is the place in the log of the first entry that does not
	// hold, or of the first one missing; 0 when none.
	first int64
	// entries is, for each chain (chainKey) with an entry that does not
	// hold in itself (its content, its number, its link in the chain),
	// the first such entry's number in its tenant's log. A link of the
	// log's chain that does not hold (an entry missing, or rewritten with
	// the hashes after it recomputed up to there) is in first alone: whose
	// entries it concerns cannot be told.
	entries map[sb.ID]int64
}

func (l *AuditLog) verify(ctx context.Context) (*auditVerification, error) {
	rows, err := l.db.pool.Query(ctx, "SELECT "+auditColumns+" FROM audit_log ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("metadata: audit verify: %w", err)
	}
	defer rows.Close()
	v := &auditVerification{entries: map[sb.ID]int64{}}
	broken := func(seq int64) {
		if v.first == 0 {
			v.first = seq
		}
	}
	prev := make([]byte, 32)
	var want int64 = 1
	heads := map[sb.ID]chainHead{}
	for rows.Next() {
		r, err := scanAuditRow(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: audit verify: %w", err)
		}
		e, k := r.entry, chainKey(r.entry.TenantID)
		head, ok := heads[k]
		if !ok {
			head.hash = make([]byte, 32)
		}
		if r.seq != want || !bytes.Equal(r.prev, prev) {
			broken(min(r.seq, want))
		}
		// One of the tenant's missing, or numbered twice, is found at the
		// next: the number where the tenant's log stops holding.
		numbered := e.Seq == head.seq+1
		if !numbered || !bytes.Equal(r.hash, logHash(r.prev, e, r.seq)) ||
			r.chained && (!bytes.Equal(e.PrevHash, head.hash) || !bytes.Equal(e.Hash, tenantHash(e.PrevHash, e))) {
			broken(r.seq)
			if _, ok := v.entries[k]; !ok {
				v.entries[k] = min(e.Seq, head.seq+1)
			}
		}
		prev, want = r.hash, r.seq+1
		heads[k] = chainHead{seq: e.Seq, hash: e.Hash}
	}
	return v, rows.Err()
}

// auditRow is an entry as stored: entry as its tenant sees it (Seq its
// number there, PrevHash and Hash its tenant's chain), and its place and
// hashes in the log's chain. chained is false for an entry appended before
// tenants had chains of their own: it has no tenant hash and no PrevHash,
// and its Hash is its hash in the log.
type auditRow struct {
	entry      *sb.AuditEntry
	seq        int64
	prev, hash []byte
	chained    bool
}

const auditColumns = `seq, id, tenant_id, at, actor_user_id, actor_key_id, actor_role, action,
	resource_type, resource_id, reason, ticket, detail, ip, user_agent, outcome, prev_hash, hash,
	tenant_seq, tenant_prev_hash, tenant_hash`

// scanAuditRow reads one row of auditColumns.
func scanAuditRow(row pgx.Row) (*auditRow, error) {
	r := &auditRow{entry: &sb.AuditEntry{}}
	e := r.entry
	var role string
	var tenantHash []byte
	err := row.Scan(&r.seq, &e.ID, &e.TenantID, &e.At, &e.ActorUserID, &e.ActorKeyID, &role, &e.Action,
		&e.ResourceType, &e.ResourceID, &e.Reason, &e.Ticket, &e.Detail, &e.IP, &e.UserAgent, &e.Outcome, &r.prev, &r.hash,
		&e.Seq, &e.PrevHash, &tenantHash)
	e.ActorRole = sb.Role(role)
	e.Hash, r.chained = tenantHash, tenantHash != nil
	if !r.chained {
		e.Hash = r.hash
	}
	return r, err
}

// Recent returns the newest entries, up to limit, of one tenant, or of the
// whole log when tenantID is nil, newest first, as their tenants see them.
// It serves the system (tools and tests); people read FindAuditEntries.
func (l *AuditLog) Recent(ctx context.Context, tenantID *sb.ID, limit int) ([]*sb.AuditEntry, error) {
	q := "SELECT " + auditColumns + " FROM audit_log WHERE ($1::uuid IS NULL OR tenant_id = $1) ORDER BY seq DESC LIMIT $2"
	return l.entries(ctx, q, tenantID, limit)
}

// entries runs q, a query of auditColumns, and returns its entries.
func (l *AuditLog) entries(ctx context.Context, q string, args ...any) ([]*sb.AuditEntry, error) {
	rows, err := l.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: audit entries: %w", err)
	}
	defer rows.Close()
	out := []*sb.AuditEntry{}
	for rows.Next() {
		r, err := scanAuditRow(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: audit entries: %w", err)
		}
		out = append(out, r.entry)
	}
	return out, rows.Err()
}

// checkpointMessage is what a checkpoint's signature covers.
func checkpointMessage(seq int64, hash []byte) []byte {
	msg := []byte("switchboard audit checkpoint v1 ")
	msg = binary.BigEndian.AppendUint64(msg, uint64(seq))
	return append(msg, hash...)
}

// Checkpoint signs the chain's current head with key, unless it is
// already checkpointed. It returns the head's sequence number, 0 for an
// empty log.
func (l *AuditLog) Checkpoint(ctx context.Context, key ed25519.PrivateKey) (int64, error) {
	var seq int64
	var hash []byte
	err := l.db.pool.QueryRow(ctx, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("metadata: audit head: %w", err)
	}
	sig := ed25519.Sign(key, checkpointMessage(seq, hash))
	if _, err := l.db.pool.Exec(ctx, "INSERT INTO audit_checkpoints (seq, hash, at, signature) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING",
		seq, hash, l.db.now(), sig); err != nil {
		return 0, fmt.Errorf("metadata: audit checkpoint: %w", err)
	}
	return seq, nil
}

// VerifyCheckpoints checks every checkpoint's signature with pub and that
// the entry it names still has the hash it signed. It returns the sequence
// number of the first checkpoint that does not hold, 0 if all do, and how
// many were checked.
func (l *AuditLog) VerifyCheckpoints(ctx context.Context, pub ed25519.PublicKey) (broken int64, checked int, err error) {
	rows, err := l.db.pool.Query(ctx, `SELECT c.seq, c.hash, c.signature, a.hash FROM audit_checkpoints c
		LEFT JOIN audit_log a ON a.seq = c.seq ORDER BY c.seq`)
	if err != nil {
		return 0, 0, fmt.Errorf("metadata: audit checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var hash, sig, entryHash []byte
		if err := rows.Scan(&seq, &hash, &sig, &entryHash); err != nil {
			return 0, checked, fmt.Errorf("metadata: audit checkpoints: %w", err)
		}
		checked++
		if !ed25519.Verify(pub, checkpointMessage(seq, hash), sig) || !bytes.Equal(hash, entryHash) {
			return seq, checked, nil
		}
	}
	return 0, checked, rows.Err()
}

// LastCheckpoint is when the newest signed checkpoint was made; ok is
// false when there is none.
func (l *AuditLog) LastCheckpoint(ctx context.Context) (at time.Time, ok bool, err error) {
	err = l.db.pool.QueryRow(ctx, "SELECT at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("metadata: audit checkpoints: %w", err)
	}
	return at, true, nil
}

// FindAuditEntries returns the actor's tenant's audit entries, newest
// first, numbered in the tenant's own log: for admins only, checked here,
// where the data is read. action, since and until filter when set; before
// continues a listing (keyset, by that number).
func (l *AuditLog) FindAuditEntries(ctx context.Context, f sb.AuditFilter) ([]*sb.AuditEntry, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != sb.RoleAdmin {
		return nil, sb.Errorf(sb.EFORBIDDEN, "only a tenant's admins read its audit log")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return l.entries(ctx, "SELECT "+auditColumns+` FROM audit_log WHERE tenant_id = $1
		AND ($2 = '' OR action = $2) AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
		AND ($5::bigint = 0 OR tenant_seq < $5) ORDER BY tenant_seq DESC LIMIT $6`, a.TenantID, f.Action, f.Since, f.Until, f.Before, limit)
}
