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

// AuditLog is the PostgreSQL audit log: each entry's hash covers the
// previous entry's hash and its own canonical content.
type AuditLog struct{ db *DB }

var _ sb.AuditLog = (*AuditLog)(nil)

// NewAuditLog returns the audit log on db.
func NewAuditLog(db *DB) *AuditLog { return &AuditLog{db: db} }

// canonical is the content an entry's hash covers, in a fixed order.
func canonical(e *sb.AuditEntry) []byte {
	c := *e
	c.PrevHash, c.Hash = nil, nil
	c.ActorName, c.ResourceName = "", "" // read with the entry, not of it
	c.At = c.At.UTC()
	b, _ := json.Marshal(c) // a struct of plain fields cannot fail
	return b
}

func chainHash(prev []byte, e *sb.AuditEntry) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical(e))
	return h.Sum(nil)
}

// Append adds entries in one transaction at the head of the chain.
func (l *AuditLog) Append(ctx context.Context, entries ...*sb.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return l.db.inTx(ctx, func(tx pgx.Tx) error { return appendAudit(ctx, tx, l.db.now(), entries...) })
}

// appendAudit adds entries at the head of the chain inside tx, so that a
// change and its audit entries commit together or not at all.
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
	rows := make([][]any, len(entries))
	for i, e := range entries {
		seq++
		e.Seq = seq
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
		e.PrevHash = prev
		e.Hash = chainHash(prev, e)
		prev = e.Hash
		rows[i] = []any{e.Seq, e.ID, e.TenantID, e.At, e.ActorUserID, e.ActorKeyID, string(e.ActorRole), e.Action,
			e.ResourceType, e.ResourceID, e.Reason, e.Ticket, e.Detail, e.IP, e.UserAgent, e.Outcome, e.PrevHash, e.Hash}
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"audit_log"}, []string{"seq", "id", "tenant_id", "at", "actor_user_id", "actor_key_id",
		"actor_role", "action", "resource_type", "resource_id", "reason", "ticket", "detail", "ip", "user_agent", "outcome", "prev_hash", "hash"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("metadata: audit append: %w", err)
	}
	return nil
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

// Verify walks the whole chain and returns the sequence number of the
// first entry whose hash or link does not hold, 0 if the chain is whole.
func (l *AuditLog) Verify(ctx context.Context) (int64, error) {
	rows, err := l.db.pool.Query(ctx, "SELECT "+auditColumns+" FROM audit_log ORDER BY seq")
	if err != nil {
		return 0, fmt.Errorf("metadata: audit verify: %w", err)
	}
	defer rows.Close()
	prev := make([]byte, 32)
	var want int64 = 1
	for rows.Next() {
		e, err := scanAuditEntry(rows)
		if err != nil {
			return 0, fmt.Errorf("metadata: audit verify: %w", err)
		}
		if e.Seq != want || !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(e.Hash, chainHash(prev, e)) {
			return want, nil
		}
		prev = e.Hash
		want++
	}
	return 0, rows.Err()
}

const auditColumns = `seq, id, tenant_id, at, actor_user_id, actor_key_id, actor_role, action,
	resource_type, resource_id, reason, ticket, detail, ip, user_agent, outcome, prev_hash, hash`

// Recent returns the newest entries, up to limit, of one tenant, or of the
// whole log when tenantID is nil. It serves the system (tools and tests);
// the role-checked reading for people comes with the support console.
func (l *AuditLog) Recent(ctx context.Context, tenantID *sb.ID, limit int) ([]*sb.AuditEntry, error) {
	q := "SELECT " + auditColumns + " FROM audit_log WHERE ($1::uuid IS NULL OR tenant_id = $1) ORDER BY seq DESC LIMIT $2"
	rows, err := l.db.pool.Query(ctx, q, tenantID, limit)
	if err != nil {
		return nil, fmt.Errorf("metadata: audit entries: %w", err)
	}
	defer rows.Close()
	var out []*sb.AuditEntry
	for rows.Next() {
		e, err := scanAuditEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: audit entries: %w", err)
		}
		out = append(out, e)
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
// first: for admins only, checked here, where the data is read. action,
// since and until filter when set; before continues a listing (keyset).
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
	rows, err := l.db.pool.Query(ctx, "SELECT "+auditColumns+` FROM audit_log WHERE tenant_id = $1
		AND ($2 = '' OR action = $2) AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
		AND ($5::bigint = 0 OR seq < $5) ORDER BY seq DESC LIMIT $6`, a.TenantID, f.Action, f.Since, f.Until, f.Before, limit)
	if err != nil {
		return nil, fmt.Errorf("metadata: audit entries: %w", err)
	}
	defer rows.Close()
	out := []*sb.AuditEntry{}
	for rows.Next() {
		e, err := scanAuditEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: audit entries: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// scanAuditEntry reads one row of auditColumns.
func scanAuditEntry(row pgx.Row) (*sb.AuditEntry, error) {
	e := &sb.AuditEntry{}
	var role string
	err := row.Scan(&e.Seq, &e.ID, &e.TenantID, &e.At, &e.ActorUserID, &e.ActorKeyID, &role, &e.Action,
		&e.ResourceType, &e.ResourceID, &e.Reason, &e.Ticket, &e.Detail, &e.IP, &e.UserAgent, &e.Outcome, &e.PrevHash, &e.Hash)
	e.ActorRole = sb.Role(role)
	return e, err
}
