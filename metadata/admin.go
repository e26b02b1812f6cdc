package metadata

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// The tenant's people, keys and trunks as its admins (and, for people, its
// supervisors) see them. Roles are checked here.

// staff returns the actor if it is one of roles in its own tenant.
func staff(ctx context.Context, what string, roles ...sb.Role) (*sb.Actor, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if !visiting(a) {
		for _, r := range roles {
			if a.Role == r {
				return a, nil
			}
		}
	}
	return nil, sb.Errorf(sb.EFORBIDDEN, "%s: not allowed for the %s role", what, a.Role)
}

// FindUsers lists the tenant's people, for its supervisors and admins.
func (s *UserService) FindUsers(ctx context.Context) ([]*sb.User, error) {
	a, err := staff(ctx, "listing people", sb.RoleSupervisor, sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 ORDER BY email", a.TenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: find users: %w", err)
	}
	defer rows.Close()
	out := []*sb.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: find users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetUserRole changes a person's role, for the tenant's admins, and ends
// their sessions so the new role applies at once. An admin cannot change
// their own role: another admin must.
func (s *UserService) SetUserRole(ctx context.Context, id sb.ID, role sb.Role) (*sb.User, error) {
	a, err := staff(ctx, "changing a role", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if a.UserID == (sb.ID{}) {
		return nil, sb.Errorf(sb.EFORBIDDEN, "changing a role: only a person, never an API key")
	}
	if _, err := sb.ParseRole(string(role)); err != nil {
		return nil, err
	}
	if id == a.UserID {
		return nil, sb.Errorf(sb.EFORBIDDEN, "another admin must change your own role")
	}
	var u *sb.User
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if u, err = scanUser(tx.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
			a.TenantID, id)); err != nil {
			return mapError(err, "user")
		}
		if u.Role == role {
			return nil
		}
		e := actorEntry(a, "user.role", "user", u.ID)
		e.Detail = string(u.Role) + " → " + string(role)
		u.Role = role
		if _, err := tx.Exec(ctx, "UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2", a.TenantID, id, role); err != nil {
			return fmt.Errorf("metadata: set role: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2", a.TenantID, id); err != nil {
			return fmt.Errorf("metadata: end sessions: %w", err)
		}
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// FindAPIKeys lists the tenant's API keys (never their secrets), for its
// admins.
func (s *APIKeyService) FindAPIKeys(ctx context.Context) ([]*sb.APIKey, error) {
	a, err := staff(ctx, "listing API keys", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, "SELECT id, tenant_id, role, prefix, created_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at", a.TenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: find api keys: %w", err)
	}
	defer rows.Close()
	out := []*sb.APIKey{}
	for rows.Next() {
		k := &sb.APIKey{}
		if err := rows.Scan(&k.ID, &k.TenantID, &k.Role, &k.Prefix, &k.CreatedAt); err != nil {
			return nil, fmt.Errorf("metadata: find api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// VerifyAudit checks the whole audit chain for a tenant's admin, returning
// the first broken entry's sequence number (0: whole) and how many
// entries the chain holds.
func (l *AuditLog) VerifyAudit(ctx context.Context) (broken int64, err error) {
	if _, err := staff(ctx, "verifying the audit log", sb.RoleAdmin); err != nil {
		return 0, err
	}
	return l.Verify(ctx)
}
