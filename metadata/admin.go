package metadata

import (
	"context"

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

// VerifyAudit checks the whole audit log for a tenant's admin, and says
// where it breaks in the tenant's own numbering only: the log's places
// count every tenant's entries.
func (l *AuditLog) VerifyAudit(ctx context.Context) (whole bool, firstBroken int64, err error) {
	a, err := staff(ctx, "verifying the audit log", sb.RoleAdmin)
	if err != nil {
		return false, 0, err
	}
	v, err := l.verify(ctx)
	if err != nil {
		return false, 0, err
	}
	return v.first == 0, v.entries[a.TenantID], nil
}

// audited makes a change and appends its audit entry in one transaction:
// a change refused or failed leaves no entry, and an entry that cannot be
// written undoes the change. The store methods change calls with the ctx
// it is given write in that transaction (db.inTx joins it).
func (db *DB) audited(ctx context.Context, e *sb.AuditEntry, change func(ctx context.Context, tx pgx.Tx) error) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := change(withTx(ctx, tx), tx); err != nil {
			return err
		}
		return appendAudit(ctx, tx, db.now(), e)
	})
}
