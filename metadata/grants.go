package metadata

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// pendingTTL is how long a request waits for approval before it lapses.
const pendingTTL = 24 * time.Hour

// GrantStore keeps access grants. Roles are checked here, where grants are
// read and changed, and every change and use is audited in the same
// transaction.
type GrantStore struct{ db *DB }

var _ sb.GrantService = (*GrantStore)(nil)

// NewGrantStore returns a GrantStore on db.
func NewGrantStore(db *DB) *GrantStore { return &GrantStore{db: db} }

const grantColumns = `id, tenant_id, recording_id, call_id, requested_by, requester_role, reason, ticket, download,
	ttl_seconds, status, requested_at, decided_by, decided_at, expires_at, ended_by, ended_at`

func scanGrant(row pgx.Row) (*sb.AccessGrant, error) {
	g := &sb.AccessGrant{}
	err := row.Scan(&g.ID, &g.TenantID, &g.RecordingID, &g.CallID, &g.RequestedBy, &g.RequesterRole, &g.Reason, &g.Ticket,
		&g.Download, &g.TTLSeconds, &g.Status, &g.RequestedAt, &g.DecidedBy, &g.DecidedAt, &g.ExpiresAt, &g.EndedBy, &g.EndedAt)
	return g, err
}

// grantEntry is the audit entry for an action on g, carrying the grant's
// reason and ticket so the log alone tells why.
func grantEntry(a *sb.Actor, action string, g *sb.AccessGrant) *sb.AuditEntry {
	e := actorEntry(a, action, "grant", g.ID)
	e.Reason, e.Ticket = g.Reason, g.Ticket
	return e
}

// person returns the actor if it is a logged-in person with one of roles:
// grants are never given to, or decided by, an API key.
func person(ctx context.Context, what string, roles ...sb.Role) (*sb.Actor, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if a.UserID == (sb.ID{}) {
		return nil, sb.Errorf(sb.EFORBIDDEN, "%s: only a person logged in as themselves, never an API key", what)
	}
	for _, r := range roles {
		if a.Role == r {
			return a, nil
		}
	}
	return nil, sb.Errorf(sb.EFORBIDDEN, "%s: not allowed for the %s role", what, a.Role)
}

// visiting reports whether a is a support engineer acting in a tenant not
// their own.
func visiting(a *sb.Actor) bool { return a.HomeTenantID != (sb.ID{}) && a.HomeTenantID != a.TenantID }

// RequestGrant asks for access to a call's latest recording for the actor.
func (s *GrantStore) RequestGrant(ctx context.Context, r sb.GrantRequest) (*sb.AccessGrant, error) {
	a, err := person(ctx, "asking for access to a recording", sb.RoleSupport, sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	g := &sb.AccessGrant{ID: sb.NewID(), TenantID: a.TenantID, CallID: r.CallID, RequestedBy: a.UserID, RequesterRole: a.Role,
		Reason: strings.TrimSpace(r.Reason), Ticket: strings.TrimSpace(r.Ticket), Download: r.Download}
	switch {
	case g.Reason == "" || len(g.Reason) > 1000:
		return nil, sb.Errorf(sb.EINVALID, "reason: say why you need to hear this call (up to 1000 characters)")
	case g.Ticket == "" || len(g.Ticket) > 200:
		return nil, sb.Errorf(sb.EINVALID, "ticket: name the ticket this access is for (up to 200 characters)")
	case r.TTL < 0:
		return nil, sb.Errorf(sb.EINVALID, "ttl: must be positive")
	}
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		var p sb.SupportPolicy
		if err := tx.QueryRow(ctx, "SELECT support_access, grant_approval, grant_max_ttl_seconds, grant_download FROM tenants WHERE id = $1",
			a.TenantID).Scan(&p.Access, &p.Approval, &p.MaxTTLSeconds, &p.Download); err != nil {
			return mapError(err, "tenant")
		}
		if visiting(a) && !p.Access {
			return sb.Errorf(sb.ENOTFOUND, "call not found")
		}
		ttl := r.TTL
		if ttl == 0 {
			ttl = min(sb.DefaultGrantTTL, time.Duration(p.MaxTTLSeconds)*time.Second)
		}
		if ttl > time.Duration(p.MaxTTLSeconds)*time.Second {
			return sb.Errorf(sb.EINVALID, "ttl: this tenant allows grants of at most %s", time.Duration(p.MaxTTLSeconds)*time.Second)
		}
		if r.Download && !p.Download {
			return sb.Errorf(sb.EFORBIDDEN, "this tenant does not allow downloading recordings; ask to play it instead")
		}
		err := tx.QueryRow(ctx, `SELECT id FROM recordings WHERE tenant_id = $1 AND call_id = $2 AND wrapped_key IS NOT NULL
			AND status IN ('complete', 'failed') ORDER BY started_at DESC LIMIT 1`, a.TenantID, r.CallID).Scan(&g.RecordingID)
		if err != nil {
			return mapError(err, "recording")
		}
		now := s.db.now()
		g.TTLSeconds, g.RequestedAt = int(ttl/time.Second), now
		g.Status, g.ExpiresAt = sb.GrantApproved, now.Add(ttl)
		if p.Approval {
			g.Status, g.ExpiresAt = sb.GrantPending, now.Add(pendingTTL)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO access_grants ("+grantColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
			$10, $11, $12, $13, $14, $15, $16, $17)`, g.ID, g.TenantID, g.RecordingID, g.CallID, g.RequestedBy, g.RequesterRole,
			g.Reason, g.Ticket, g.Download, g.TTLSeconds, g.Status, g.RequestedAt, g.DecidedBy, g.DecidedAt, g.ExpiresAt,
			g.EndedBy, g.EndedAt); err != nil {
			return mapError(err, "grant")
		}
		e := grantEntry(a, "grant.request", g)
		e.Detail = fmt.Sprintf("recording %s, %s, download %t, %s", g.RecordingID, ttl, g.Download, g.Status)
		return appendAudit(ctx, tx, now, e)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// lockGrant reads grant id of the actor's tenant for update.
func lockGrant(ctx context.Context, tx pgx.Tx, a *sb.Actor, id sb.ID) (*sb.AccessGrant, error) {
	g, err := scanGrant(tx.QueryRow(ctx, "SELECT "+grantColumns+" FROM access_grants WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
		a.TenantID, id))
	if err != nil {
		return nil, mapError(err, "grant")
	}
	return g, nil
}

// lapse marks g expired if its time is up, auditing it as the system; it
// reports whether it did.
func lapse(ctx context.Context, tx pgx.Tx, g *sb.AccessGrant, now time.Time) (bool, error) {
	if g.ExpiresAt.After(now) || (g.Status != sb.GrantPending && g.Status != sb.GrantApproved) {
		return false, nil
	}
	g.Status, g.EndedAt = sb.GrantExpired, &g.ExpiresAt
	if _, err := tx.Exec(ctx, "UPDATE access_grants SET status = 'expired', ended_at = expires_at WHERE id = $1", g.ID); err != nil {
		return false, fmt.Errorf("metadata: expire grant: %w", err)
	}
	e := &sb.AuditEntry{TenantID: &g.TenantID, Action: "grant.expire", ResourceType: "grant", ResourceID: g.ID.String(),
		Reason: g.Reason, Ticket: g.Ticket}
	return true, appendAudit(ctx, tx, now, e)
}

// DecideGrant approves or denies a pending grant.
func (s *GrantStore) DecideGrant(ctx context.Context, id sb.ID, approve bool) (*sb.AccessGrant, error) {
	a, err := person(ctx, "deciding on access to a recording", sb.RoleSupervisor, sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if visiting(a) {
		return nil, sb.Errorf(sb.ENOTFOUND, "grant not found")
	}
	var g *sb.AccessGrant
	var refused error
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if g, err = lockGrant(ctx, tx, a, id); err != nil {
			return err
		}
		now := s.db.now()
		if lapsed, err := lapse(ctx, tx, g, now); err != nil {
			return err
		} else if lapsed {
			refused = sb.Errorf(sb.ECONFLICT, "the request expired before it was decided")
			return nil
		}
		if g.Status != sb.GrantPending {
			return sb.Errorf(sb.ECONFLICT, "the grant is %s, not waiting for a decision", g.Status)
		}
		if g.RequestedBy == a.UserID {
			refused = sb.Errorf(sb.EFORBIDDEN, "a second person must decide: you asked for this grant")
			e := grantEntry(a, "grant.approve", g)
			e.Outcome = "denied"
			return appendAudit(ctx, tx, now, e)
		}
		action := "grant.deny"
		g.Status, g.DecidedBy, g.DecidedAt = sb.GrantDenied, &a.UserID, &now
		if approve {
			action = "grant.approve"
			g.Status, g.ExpiresAt = sb.GrantApproved, now.Add(time.Duration(g.TTLSeconds)*time.Second)
		}
		if _, err := tx.Exec(ctx, "UPDATE access_grants SET status = $2, decided_by = $3, decided_at = $4, expires_at = $5 WHERE id = $1",
			g.ID, g.Status, g.DecidedBy, g.DecidedAt, g.ExpiresAt); err != nil {
			return fmt.Errorf("metadata: decide grant: %w", err)
		}
		return appendAudit(ctx, tx, now, grantEntry(a, action, g))
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	return g, nil
}

// RevokeGrant ends a grant: its holder, or a supervisor or admin of the
// tenant, may.
func (s *GrantStore) RevokeGrant(ctx context.Context, id sb.ID) (*sb.AccessGrant, error) {
	a, err := person(ctx, "revoking access to a recording", sb.RoleSupport, sb.RoleSupervisor, sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	var g *sb.AccessGrant
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if g, err = lockGrant(ctx, tx, a, id); err != nil {
			return err
		}
		if a.Role == sb.RoleSupport && g.RequestedBy != a.UserID {
			return sb.Errorf(sb.ENOTFOUND, "grant not found")
		}
		if g.Status != sb.GrantPending && g.Status != sb.GrantApproved {
			return sb.Errorf(sb.ECONFLICT, "the grant is %s already", g.Status)
		}
		now := s.db.now()
		g.Status, g.EndedBy, g.EndedAt = sb.GrantRevoked, &a.UserID, &now
		if _, err := tx.Exec(ctx, "UPDATE access_grants SET status = 'revoked', ended_by = $2, ended_at = $3 WHERE id = $1",
			g.ID, g.EndedBy, g.EndedAt); err != nil {
			return fmt.Errorf("metadata: revoke grant: %w", err)
		}
		return appendAudit(ctx, tx, now, grantEntry(a, "grant.revoke", g))
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// grantScope limits grant reads: a supervisor or admin sees the tenant's,
// a support engineer their own, anyone else none.
func grantScope(a *sb.Actor) (string, []any, error) {
	switch {
	case a.UserID == (sb.ID{}):
		return "", nil, sb.Errorf(sb.EFORBIDDEN, "grants: only people see grants, never an API key")
	case (a.Role == sb.RoleSupervisor || a.Role == sb.RoleAdmin) && !visiting(a):
		return "tenant_id = $1", []any{a.TenantID}, nil
	case a.Role == sb.RoleSupport:
		return "tenant_id = $1 AND requested_by = $2", []any{a.TenantID, a.UserID}, nil
	}
	return "", nil, sb.Errorf(sb.EFORBIDDEN, "grants: not visible to the %s role", a.Role)
}

// FindGrants lists the grants the actor may see, newest first.
func (s *GrantStore) FindGrants(ctx context.Context, f sb.GrantFilter) ([]*sb.AccessGrant, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	where, args, err := grantScope(a)
	if err != nil {
		return nil, err
	}
	if f.Status != "" {
		args = append(args, f.Status)
		where += " AND status = $" + strconv.Itoa(len(args))
	}
	if f.CallID != nil {
		args = append(args, *f.CallID)
		where += " AND call_id = $" + strconv.Itoa(len(args))
	}
	rows, err := s.db.pool.Query(ctx, "SELECT "+grantColumns+" FROM access_grants WHERE "+where+" ORDER BY requested_at DESC LIMIT 200", args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: find grants: %w", err)
	}
	defer rows.Close()
	out := []*sb.AccessGrant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: find grants: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// FindGrantByID returns a grant the actor may see.
func (s *GrantStore) FindGrantByID(ctx context.Context, id sb.ID) (*sb.AccessGrant, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	where, args, err := grantScope(a)
	if err != nil {
		return nil, err
	}
	args = append(args, id)
	g, err := scanGrant(s.db.pool.QueryRow(ctx, "SELECT "+grantColumns+" FROM access_grants WHERE "+where+
		" AND id = $"+strconv.Itoa(len(args)), args...))
	if err != nil {
		return nil, mapError(err, "grant")
	}
	return g, nil
}

// usable says why the actor may not use g now, or nil.
func usable(a *sb.Actor, g *sb.AccessGrant, now time.Time) error {
	switch {
	case g.RequestedBy != a.UserID:
		return sb.Errorf(sb.ENOTFOUND, "grant not found")
	case g.Status == sb.GrantPending:
		return sb.Errorf(sb.EFORBIDDEN, "the grant waits for approval")
	case g.Status != sb.GrantApproved:
		return sb.Errorf(sb.EFORBIDDEN, "the grant is %s", g.Status)
	case !g.ExpiresAt.After(now):
		return sb.Errorf(sb.EFORBIDDEN, "the grant expired")
	}
	return nil
}

// UseGrant checks and audits one use of the actor's grant. A refused use
// is audited too, whoever asked: the holder, or anyone else of the
// grant's tenant (another engineer or admin, a supervisor, an operator,
// an API key), since an insider's attempt on a recording is what the log
// is for. Those others are told what they would be told of a grant that
// does not exist (404 for the roles that may hold grants, 403 for the
// others), so the answer confirms nothing. A grant that is not in the
// actor's tenant, or none, leaves no entry: a stranger cannot write to a
// tenant's log, which is never trimmed.
func (s *GrantStore) UseGrant(ctx context.Context, id sb.ID, access sb.AudioAccess, detail string) (*sb.AccessGrant, *sb.Recording, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, nil, err
	}
	_, notAllowed := person(ctx, "hearing a recording", sb.RoleSupport, sb.RoleAdmin)
	var g *sb.AccessGrant
	var rec *sb.Recording
	var refused error
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if g, err = lockGrant(ctx, tx, a, id); err != nil {
			if notAllowed != nil && sb.ErrorCode(err) == sb.ENOTFOUND {
				return notAllowed // as for a grant that exists
			}
			return err
		}
		now := s.db.now()
		if _, err := lapse(ctx, tx, g, now); err != nil {
			return err
		}
		refused = notAllowed
		if refused == nil {
			refused = usable(a, g, now)
		}
		if refused == nil && access == sb.AccessDownload && !g.Download {
			refused = sb.Errorf(sb.EFORBIDDEN, "the grant allows playing, not downloading")
		}
		if refused == nil {
			rec, err = scanRecording(tx.QueryRow(ctx, "SELECT "+recordingColumns+" FROM recordings WHERE tenant_id = $1 AND id = $2",
				g.TenantID, g.RecordingID))
			if err != nil {
				return mapError(err, "recording")
			}
			if rec.WrappedKey == nil {
				refused = sb.Errorf(sb.ENOTFOUND, "the recording was destroyed")
			}
		}
		e := grantEntry(a, "recording."+string(access), g)
		e.ResourceType, e.ResourceID, e.Detail = "recording", g.RecordingID.String(), "grant "+g.ID.String()+", "+detail
		if g.RequestedBy != a.UserID {
			// The grant's reason and ticket are its holder's, not this actor's.
			e.Reason, e.Ticket = "not the grant's holder", ""
		}
		if refused != nil {
			e.Outcome = "denied"
		}
		return appendAudit(ctx, tx, now, e)
	})
	if err != nil {
		return nil, nil, err
	}
	if refused != nil {
		return nil, nil, refused
	}
	return g, rec, nil
}

// CheckGrant reports whether the actor's grant is still usable, for a
// stream in progress to stop when it is revoked or expires.
func (s *GrantStore) CheckGrant(ctx context.Context, id sb.ID) error {
	a, err := actor(ctx)
	if err != nil {
		return err
	}
	g, err := scanGrant(s.db.pool.QueryRow(ctx, "SELECT "+grantColumns+" FROM access_grants WHERE tenant_id = $1 AND id = $2",
		a.TenantID, id))
	if err != nil {
		return mapError(err, "grant")
	}
	return usable(a, g, s.db.now())
}

// ExpireGrants ends every grant whose time is up and audits each.
func (s *GrantStore) ExpireGrants(ctx context.Context) (int, error) {
	n := 0
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+grantColumns+` FROM access_grants WHERE status IN ('pending', 'approved')
			AND expires_at <= $1 ORDER BY expires_at LIMIT 1000 FOR UPDATE`, s.db.now())
		if err != nil {
			return fmt.Errorf("metadata: expired grants: %w", err)
		}
		var due []*sb.AccessGrant
		for rows.Next() {
			g, err := scanGrant(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("metadata: expired grants: %w", err)
			}
			due = append(due, g)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("metadata: expired grants: %w", err)
		}
		now := s.db.now()
		for _, g := range due {
			if _, err := lapse(ctx, tx, g, now); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
