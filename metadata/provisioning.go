package metadata

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// Provisioning is what the service's operator does from the command line,
// with the database's credentials: it lists across tenants and changes
// without an actor in the context. Each change takes the audit entry the
// command wrote and appends it in the change's own transaction, so the
// change and its entry commit together or not at all.
type Provisioning struct{ db *DB }

// NewProvisioning returns the operator's provisioning on db.
func NewProvisioning(db *DB) *Provisioning { return &Provisioning{db: db} }

// TenantRecord is a tenant as the service's operator sees it.
type TenantRecord struct {
	ID        sb.ID      `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
	Users     int        `json:"users"`
	Trunks    int        `json:"trunks"`
	Queues    int        `json:"queues"`
	APIKeys   int        `json:"api_keys"`
}

const tenantRecordSelect = `SELECT t.id, t.name, t.created_at, t.deleted_at,
	(SELECT count(*) FROM users u WHERE u.tenant_id = t.id),
	(SELECT count(*) FROM trunks r WHERE r.tenant_id = t.id),
	(SELECT count(*) FROM queues q WHERE q.tenant_id = t.id),
	(SELECT count(*) FROM api_keys k WHERE k.tenant_id = t.id)
	FROM tenants t `

func scanTenantRecord(row pgx.Row) (*TenantRecord, error) {
	t := &TenantRecord{}
	err := row.Scan(&t.ID, &t.Name, &t.CreatedAt, &t.DeletedAt, &t.Users, &t.Trunks, &t.Queues, &t.APIKeys)
	return t, err
}

// Tenants lists the tenants by name; deleted ones only if deleted is true.
func (p *Provisioning) Tenants(ctx context.Context, deleted bool) ([]*TenantRecord, error) {
	where := "WHERE t.deleted_at IS NULL "
	if deleted {
		where = ""
	}
	rows, err := p.db.pool.Query(ctx, tenantRecordSelect+where+"ORDER BY t.name, t.id")
	if err != nil {
		return nil, fmt.Errorf("metadata: tenants: %w", err)
	}
	defer rows.Close()
	out := []*TenantRecord{}
	for rows.Next() {
		t, err := scanTenantRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Tenant returns one tenant, deleted or not, or ENOTFOUND.
func (p *Provisioning) Tenant(ctx context.Context, id sb.ID) (*TenantRecord, error) {
	t, err := scanTenantRecord(p.db.pool.QueryRow(ctx, tenantRecordSelect+"WHERE t.id = $1", id))
	if err != nil {
		return nil, mapError(err, "tenant")
	}
	return t, nil
}

// DeleteTenant marks the tenant deleted and takes every way in from it:
// its API keys are deleted, its people disabled and signed out (sessions,
// password links, operator sockets), its trunks and WhatsApp connections
// (their names kept on their calls) and queues deleted, support access
// closed. Its calls,
// recordings and audit entries stay until retention removes them. It
// returns ECONFLICT while any of its calls is in progress, ENOTFOUND for
// no tenant or one already deleted.
func (p *Provisioning) DeleteTenant(ctx context.Context, id sb.ID, e *sb.AuditEntry) error {
	return p.db.inTx(ctx, func(tx pgx.Tx) error {
		var deleted *time.Time
		if err := tx.QueryRow(ctx, "SELECT deleted_at FROM tenants WHERE id = $1 FOR UPDATE", id).Scan(&deleted); err != nil {
			return mapError(err, "tenant")
		}
		if deleted != nil {
			return sb.Errorf(sb.ENOTFOUND, "tenant %s was deleted at %s", id, deleted.UTC().Format(time.RFC3339))
		}
		n, err := callsInProgress(ctx, tx, "c.tenant_id = $1", id)
		if err != nil {
			return err
		}
		if n > 0 {
			return sb.Errorf(sb.ECONFLICT, "tenant %s has %d call(s) in progress: try again once they have ended", id, n)
		}
		for _, q := range []string{
			"UPDATE tenants SET deleted_at = $2, support_access = false WHERE id = $1",
			"DELETE FROM api_keys WHERE tenant_id = $1",
			"UPDATE users SET disabled_at = coalesce(disabled_at, $2) WHERE tenant_id = $1",
			"UPDATE calls c SET trunk_name = t.name FROM trunks t WHERE t.tenant_id = $1 AND c.tenant_id = $1 AND c.trunk_id = t.id",
			"DELETE FROM trunks WHERE tenant_id = $1",
			"DELETE FROM queues WHERE tenant_id = $1",
			"UPDATE calls c SET trunk_name = w.name FROM whatsapp_connections w WHERE w.tenant_id = $1 AND c.tenant_id = $1 AND c.trunk_id = w.id",
			"DELETE FROM whatsapp_connections WHERE tenant_id = $1",
		} {
			args := []any{id}
			if strings.Contains(q, "$2") {
				args = append(args, p.db.now())
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("metadata: delete tenant: %w", err)
			}
		}
		rows, err := tx.Query(ctx, "SELECT id FROM users WHERE tenant_id = $1", id)
		if err != nil {
			return fmt.Errorf("metadata: delete tenant: %w", err)
		}
		people, err := pgx.CollectRows(rows, pgx.RowTo[sb.ID])
		if err != nil {
			return fmt.Errorf("metadata: delete tenant: %w", err)
		}
		if err := signOut(ctx, tx, revokeLinks, id, people...); err != nil {
			return err
		}
		return appendAudit(ctx, tx, p.db.now(), e)
	})
}

// Users lists a tenant's people by email.
func (p *Provisioning) Users(ctx context.Context, tenantID sb.ID) ([]*sb.User, error) {
	rows, err := p.db.pool.Query(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 ORDER BY email", tenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: users: %w", err)
	}
	defer rows.Close()
	out := []*sb.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserByEmail returns the person with that login email, or ENOTFOUND.
func (p *Provisioning) UserByEmail(ctx context.Context, email string) (*sb.User, error) {
	u, err := scanUser(p.db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE email = $1", strings.ToLower(strings.TrimSpace(email))))
	if err != nil {
		return nil, mapError(err, "user")
	}
	return u, nil
}

// UserByID returns the person, or ENOTFOUND.
func (p *Provisioning) UserByID(ctx context.Context, id sb.ID) (*sb.User, error) {
	u, err := scanUser(p.db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
	if err != nil {
		return nil, mapError(err, "user")
	}
	return u, nil
}

// SetUserDisabled disables or enables a person; disabling ends their
// sessions, and login refuses them from then on. Enabling a person of a
// deleted tenant is refused (ECONFLICT).
func (p *Provisioning) SetUserDisabled(ctx context.Context, id sb.ID, disabled bool, e *sb.AuditEntry) error {
	return p.db.inTx(ctx, func(tx pgx.Tx) error {
		var tenantDeleted bool
		var tenantID sb.ID
		err := tx.QueryRow(ctx, `SELECT t.deleted_at IS NOT NULL, u.tenant_id FROM users u JOIN tenants t ON t.id = u.tenant_id
			WHERE u.id = $1 FOR UPDATE OF u`, id).Scan(&tenantDeleted, &tenantID)
		if err != nil {
			return mapError(err, "user")
		}
		if tenantDeleted && !disabled {
			return sb.Errorf(sb.ECONFLICT, "user %s belongs to a deleted tenant", id)
		}
		if _, err := tx.Exec(ctx, "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, $3) END WHERE id = $1",
			id, disabled, p.db.now()); err != nil {
			return fmt.Errorf("metadata: disable user: %w", err)
		}
		if disabled {
			// Their sessions end, and every instance closes their socket.
			if err := signOut(ctx, tx, revokeLinks, tenantID, id); err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, p.db.now(), e)
	})
}

// SetUserPassword replaces a person's password and ends their sessions.
// A password shorter than the minimum is EINVALID.
func (p *Provisioning) SetUserPassword(ctx context.Context, id sb.ID, password string, e *sb.AuditEntry) error {
	hash, err := hashInSlot(ctx, password)
	if err != nil {
		return err
	}
	return p.db.inTx(ctx, func(tx pgx.Tx) error {
		var tenantID sb.ID
		err := tx.QueryRow(ctx, "UPDATE users SET password_hash = $2 WHERE id = $1 RETURNING tenant_id", id, hash).Scan(&tenantID)
		if err != nil {
			return mapError(err, "user")
		}
		if err := signOut(ctx, tx, revokeLinks, tenantID, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, p.db.now(), e)
	})
}

// APIKeys lists a tenant's API keys (never their secrets), oldest first,
// as the API's admins see them: label, expiry and last use too.
func (p *Provisioning) APIKeys(ctx context.Context, tenantID sb.ID) ([]*sb.APIKey, error) {
	rows, err := p.db.pool.Query(ctx, "SELECT "+apiKeyColumns+" FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id", tenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: api keys: %w", err)
	}
	defer rows.Close()
	out := []*sb.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey deletes the key: its next request is refused. ENOTFOUND if
// there is no such key.
func (p *Provisioning) RevokeAPIKey(ctx context.Context, id sb.ID, e *sb.AuditEntry) error {
	return p.db.inTx(ctx, func(tx pgx.Tx) error {
		var tenantID sb.ID
		if err := tx.QueryRow(ctx, "DELETE FROM api_keys WHERE id = $1 RETURNING tenant_id", id).Scan(&tenantID); err != nil {
			return mapError(err, "api key")
		}
		e.TenantID = &tenantID
		return appendAudit(ctx, tx, p.db.now(), e)
	})
}

// TrunkRecord is a trunk as the service's operator sees it: never its
// digest HA1 or outbound password.
type TrunkRecord struct {
	ID               sb.ID     `json:"id"`
	TenantID         sb.ID     `json:"tenant_id"`
	Name             string    `json:"name"`
	Allow            []string  `json:"allow"`
	Username         string    `json:"username,omitempty"`
	Numbers          []string  `json:"numbers"`
	RecordingConsent bool      `json:"recording_consent"`
	OutboundTarget   string    `json:"outbound_target,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// Trunks lists a tenant's trunks by name.
func (p *Provisioning) Trunks(ctx context.Context, tenantID sb.ID) ([]*TrunkRecord, error) {
	rows, err := p.db.pool.Query(ctx, `SELECT t.id, t.tenant_id, t.name, t.allow::text[], coalesce(t.username, ''),
		coalesce((SELECT array_agg(n.number ORDER BY n.number) FROM trunk_numbers n WHERE n.tenant_id = t.tenant_id AND n.trunk_id = t.id), '{}'),
		t.recording_consent, coalesce(t.outbound_target, ''), t.created_at
		FROM trunks t WHERE t.tenant_id = $1 ORDER BY t.name`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: trunks: %w", err)
	}
	defer rows.Close()
	out := []*TrunkRecord{}
	for rows.Next() {
		t := &TrunkRecord{}
		if err := rows.Scan(&t.ID, &t.TenantID, &t.Name, &t.Allow, &t.Username, &t.Numbers, &t.RecordingConsent, &t.OutboundTarget, &t.CreatedAt); err != nil {
			return nil, fmt.Errorf("metadata: trunks: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTrunk deletes one of the tenant's trunks as deleteTrunk does, as
// an admin's delete through the API does.
func (p *Provisioning) DeleteTrunk(ctx context.Context, tenantID, id sb.ID, e *sb.AuditEntry) error {
	return p.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := deleteTrunk(ctx, tx, tenantID, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, p.db.now(), e)
	})
}

// Queues lists a tenant's queues by name.
func (p *Provisioning) Queues(ctx context.Context, tenantID sb.ID) ([]*sb.Queue, error) {
	qs, err := NewQueueStore(p.db).query(ctx, "q.tenant_id = $1", tenantID)
	if qs == nil && err == nil {
		qs = []*sb.Queue{}
	}
	return qs, err
}

// DeleteQueue deletes one of the tenant's queues as deleteQueue does, as
// an admin's delete through the API does, and returns the names of the
// queues that overflowed to it.
func (p *Provisioning) DeleteQueue(ctx context.Context, tenantID, id sb.ID, e *sb.AuditEntry) (rerouted []string, err error) {
	err = p.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, rerouted, err = deleteQueue(ctx, tx, tenantID, id); err != nil {
			return err
		}
		if len(rerouted) > 0 {
			e.Detail += ";overflow_rerouted=" + fmt.Sprint(len(rerouted))
		}
		return appendAudit(ctx, tx, p.db.now(), e)
	})
	return rerouted, err
}
