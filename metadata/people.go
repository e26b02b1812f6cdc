package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// A tenant's people as its admins manage them: invitations, roles, names,
// disabling, and passwords set through one-time links. Roles are checked
// and changes audited here, in the transaction of the change.

// signOutChannel is the NOTIFY channel on which a person's id is sent when
// their sessions were ended (disabled, new role, password reset): every
// instance closes that person's operator socket.
const signOutChannel = "switchboard_signout"

// How long a one-time password link lasts.
const (
	inviteTTL = 7 * 24 * time.Hour
	resetTTL  = 24 * time.Hour
)

// FindUsers lists a page of the tenant's people, oldest first, for its
// supervisors and admins.
func (s *UserService) FindUsers(ctx context.Context, p sb.Page) ([]*sb.User, error) {
	a, err := staff(ctx, "listing people", sb.RoleSupervisor, sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return tenantPage(ctx, s.db, "SELECT "+userColumns+" FROM users", a.TenantID, p, scanUser)
}

// hashInSlot checks a new password's length and hashes it with argon2id
// in one of the process's hash slots.
func hashInSlot(ctx context.Context, password string) (string, error) {
	if len(password) < minPassword {
		return "", sb.Errorf(sb.EINVALID, "a password needs at least %d characters", minPassword)
	}
	if len(password) > 1024 {
		return "", sb.Errorf(sb.EINVALID, "a password has at most 1024 characters")
	}
	type result struct {
		hash string
		err  error
	}
	r, err := withHashSlot(ctx, func() result {
		h, err := hashPassword(password)
		return result{h, err}
	})
	if err != nil {
		return "", err
	}
	return r.hash, r.err
}

// newPasswordToken replaces the person's one-time link with a new one and
// returns its secret.
func (s *UserService) newPasswordToken(ctx context.Context, tx pgx.Tx, u *sb.User, purpose string, ttl time.Duration) (string, error) {
	token, hash, err := newSecret("")
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, "DELETE FROM password_tokens WHERE tenant_id = $1 AND user_id = $2", u.TenantID, u.ID); err != nil {
		return "", fmt.Errorf("metadata: password token: %w", err)
	}
	now := s.db.now()
	if _, err := tx.Exec(ctx, `INSERT INTO password_tokens (token_hash, user_id, tenant_id, purpose, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, hash, u.ID, u.TenantID, purpose, now, now.Add(ttl)); err != nil {
		return "", fmt.Errorf("metadata: password token: %w", err)
	}
	return token, nil
}

// links says whether a sign-out revokes the people's one-time password
// links too.
type links bool

const (
	revokeLinks links = true
	// keepLinks: a new role only; an invitation not yet used still works,
	// for the person in their new role.
	keepLinks links = false
)

// signOut ends the people's sessions, revokes their one-time password
// links unless told to keep them and, after the commit, tells every
// instance to close their operator sockets. Every sign-out (disabled, new
// role, password reset, changed or set, tenant deleted) goes through here.
func signOut(ctx context.Context, tx pgx.Tx, l links, tenantID sb.ID, userIDs ...sb.ID) error {
	if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = ANY($2)", tenantID, userIDs); err != nil {
		return fmt.Errorf("metadata: end sessions: %w", err)
	}
	if l == revokeLinks {
		if _, err := tx.Exec(ctx, "DELETE FROM password_tokens WHERE tenant_id = $1 AND user_id = ANY($2)", tenantID, userIDs); err != nil {
			return fmt.Errorf("metadata: revoke password links: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, id::text) FROM unnest($2::uuid[]) AS id", signOutChannel, userIDs); err != nil {
		return fmt.Errorf("metadata: sign-out notice: %w", err)
	}
	return nil
}

// InviteUser adds a person to the admin's tenant: with their first
// password, or with a one-time link to set it, whose secret is returned.
func (s *UserService) InviteUser(ctx context.Context, u *sb.User, password string) (string, error) {
	a, err := staff(ctx, "adding a person", sb.RoleAdmin)
	if err != nil {
		return "", err
	}
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	u.Name = strings.TrimSpace(u.Name)
	if i := strings.IndexByte(u.Email, '@'); i <= 0 || i == len(u.Email)-1 || len(u.Email) > 254 {
		return "", sb.Errorf(sb.EINVALID, "email: %q is not an email address", u.Email)
	}
	if len(u.Name) > 200 {
		return "", sb.Errorf(sb.EINVALID, "name: at most 200 characters")
	}
	if _, err := sb.ParseRole(string(u.Role)); err != nil {
		return "", err
	}
	hash := "" // no password matches until they set one
	if password != "" {
		if hash, err = hashInSlot(ctx, password); err != nil {
			return "", err
		}
	}
	u.ID, u.TenantID, u.PasswordHash, u.CreatedAt, u.Disabled = sb.NewID(), a.TenantID, hash, s.db.now(), false
	var token string
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, tenant_id, email, name, role, password_hash, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.ID, u.TenantID, u.Email, u.Name, u.Role, u.PasswordHash, u.CreatedAt); err != nil {
			return mapError(err, "user")
		}
		e := actorEntry(a, "user.invite", "user", u.ID)
		e.Detail = "role " + string(u.Role) + ", with a password"
		if password == "" {
			e.Detail = "role " + string(u.Role) + ", with a link to set the password"
			if token, err = s.newPasswordToken(ctx, tx, u, "invite", inviteTTL); err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// UpdateUser changes a person's role, name or whether they are disabled,
// for the tenant's admins. A new role or a disabling ends their sessions
// and operator sockets so it applies at once; nobody changes their own
// role or disables themselves.
func (s *UserService) UpdateUser(ctx context.Context, id sb.ID, c sb.UserChange) (*sb.User, error) {
	a, err := staff(ctx, "changing a person", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if c.Role != nil {
		if _, err := sb.ParseRole(string(*c.Role)); err != nil {
			return nil, err
		}
	}
	if c.Name != nil {
		n := strings.TrimSpace(*c.Name)
		if len(n) > 200 {
			return nil, sb.Errorf(sb.EINVALID, "name: at most 200 characters")
		}
		c.Name = &n
	}
	var u *sb.User
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if u, err = scanUser(tx.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
			a.TenantID, id)); err != nil {
			return mapError(err, "user")
		}
		self := a.UserID == u.ID
		var entries []*sb.AuditEntry
		end := false
		if c.Role != nil && *c.Role != u.Role {
			if self {
				return sb.Errorf(sb.EFORBIDDEN, "another admin must change your own role")
			}
			e := actorEntry(a, "user.role", "user", u.ID)
			e.Detail = string(u.Role) + " → " + string(*c.Role)
			u.Role, end = *c.Role, true
			entries = append(entries, e)
		}
		if c.Name != nil && *c.Name != u.Name {
			u.Name = *c.Name
			entries = append(entries, actorEntry(a, "user.name", "user", u.ID)) // the name itself is personal data
		}
		if c.Disabled != nil && *c.Disabled != u.Disabled {
			if self {
				return sb.Errorf(sb.EFORBIDDEN, "another admin must disable you")
			}
			action := "user.enable"
			if *c.Disabled {
				action, end = "user.disable", true
			}
			u.Disabled = *c.Disabled
			entries = append(entries, actorEntry(a, action, "user", u.ID))
		}
		if len(entries) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET role = $3, name = $4,
			disabled_at = CASE WHEN $5 THEN coalesce(disabled_at, $6) END WHERE tenant_id = $1 AND id = $2`,
			a.TenantID, id, u.Role, u.Name, u.Disabled, s.db.now()); err != nil {
			return fmt.Errorf("metadata: update user: %w", err)
		}
		if end {
			l := keepLinks
			if u.Disabled {
				l = revokeLinks
			}
			if err := signOut(ctx, tx, l, a.TenantID, u.ID); err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, s.db.now(), entries...)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ResetPassword sets a person's password for an admin, or returns a
// one-time link's secret with which they set it; either way their
// sessions and operator sockets end.
func (s *UserService) ResetPassword(ctx context.Context, id sb.ID, password string) (string, error) {
	a, err := staff(ctx, "resetting a password", sb.RoleAdmin)
	if err != nil {
		return "", err
	}
	hash := ""
	if password != "" {
		if hash, err = hashInSlot(ctx, password); err != nil {
			return "", err
		}
	}
	var token string
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE", a.TenantID, id))
		if err != nil {
			return mapError(err, "user")
		}
		// First: signing out revokes the person's links, the one made
		// below included.
		if err := signOut(ctx, tx, revokeLinks, a.TenantID, u.ID); err != nil {
			return err
		}
		e := actorEntry(a, "user.password_reset", "user", u.ID)
		if password != "" {
			e.Detail = "set by the admin"
			if _, err := tx.Exec(ctx, "UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2", a.TenantID, id, hash); err != nil {
				return fmt.Errorf("metadata: reset password: %w", err)
			}
		} else {
			// The old password keeps working until the link is used: a
			// reset that only sends a link cannot lock anyone out.
			e.Detail = "a link to set it"
			if token, err = s.newPasswordToken(ctx, tx, u, "reset", resetTTL); err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// ChangePassword changes the acting person's own password, the old one
// given; all their sessions end (the caller starts a new one).
func (s *UserService) ChangePassword(ctx context.Context, old, password string) error {
	a, err := actor(ctx)
	if err != nil {
		return err
	}
	if a.UserID == (sb.ID{}) {
		return sb.Errorf(sb.EFORBIDDEN, "an API key has no password")
	}
	tenant := a.TenantID
	if visiting(a) {
		tenant = a.HomeTenantID
	}
	u, err := scanUser(s.db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE tenant_id = $1 AND id = $2", tenant, a.UserID))
	if err != nil {
		return mapError(err, "user")
	}
	ok, err := withHashSlot(ctx, func() bool { return checkPassword(u.PasswordHash, old) })
	if err != nil {
		return err
	}
	if !ok {
		return sb.Errorf(sb.EFORBIDDEN, "old_password: that is not your password")
	}
	hash, err := hashInSlot(ctx, password)
	if err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		// Compare and swap: a change made meanwhile is not overwritten.
		tag, err := tx.Exec(ctx, "UPDATE users SET password_hash = $4 WHERE tenant_id = $1 AND id = $2 AND password_hash = $3",
			tenant, u.ID, u.PasswordHash, hash)
		if err != nil {
			return fmt.Errorf("metadata: change password: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return sb.Errorf(sb.ECONFLICT, "the password was changed meanwhile; try again")
		}
		if err := signOut(ctx, tx, revokeLinks, tenant, u.ID); err != nil {
			return err
		}
		e := actorEntry(a, "user.password_change", "user", u.ID)
		e.TenantID = &u.TenantID
		return appendAudit(ctx, tx, s.db.now(), e)
	})
}

// SetPassword spends a one-time link's token. Whoever holds it is the
// person: the context's actor, if any, says only where the request came
// from.
func (s *UserService) SetPassword(ctx context.Context, token, password string) (*sb.User, error) {
	invalid := sb.Errorf(sb.EUNAUTHORIZED, "this link is not valid, or was used or has expired")
	if token == "" || len(token) > 128 {
		return nil, invalid
	}
	// Look before hashing: a made-up token must not cost an argon2 hash.
	var live bool
	if err := s.db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM password_tokens WHERE token_hash = $1 AND expires_at > $2)",
		hashSecret(token), s.db.now()).Scan(&live); err != nil {
		return nil, fmt.Errorf("metadata: password token: %w", err)
	} else if !live {
		return nil, invalid
	}
	hash, err := hashInSlot(ctx, password)
	if err != nil {
		return nil, err
	}
	var u *sb.User
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		var tenantID, userID sb.ID
		var purpose string
		err := tx.QueryRow(ctx, "DELETE FROM password_tokens WHERE token_hash = $1 AND expires_at > $2 RETURNING tenant_id, user_id, purpose",
			hashSecret(token), s.db.now()).Scan(&tenantID, &userID, &purpose)
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid // spent meanwhile
		} else if err != nil {
			return fmt.Errorf("metadata: password token: %w", err)
		}
		// A disabled person's link sets nothing (disabling revokes links;
		// this holds for one made by a reset since).
		u, err = scanUser(tx.QueryRow(ctx, "UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL RETURNING "+userColumns,
			tenantID, userID, hash))
		if errors.Is(err, pgx.ErrNoRows) {
			return sb.Errorf(sb.EFORBIDDEN, "this account is disabled; ask an admin")
		} else if err != nil {
			return mapError(err, "user")
		}
		if err := signOut(ctx, tx, revokeLinks, tenantID, userID); err != nil {
			return err
		}
		e := &sb.AuditEntry{TenantID: &u.TenantID, ActorUserID: &u.ID, ActorRole: u.Role, Action: "user.password_set",
			ResourceType: "user", ResourceID: u.ID.String(), Detail: "by a one-time link (" + purpose + ")"}
		if from := sb.ActorFromContext(ctx); from != nil {
			e.IP, e.UserAgent = from.IP, from.UserAgent
		}
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ListenSignOuts calls signedOut with each person whose sessions any
// instance ended (disabled, new role, password reset), on a connection of
// its own, until ctx ends or the connection fails.
func ListenSignOuts(ctx context.Context, db *DB, signedOut func(userID sb.ID)) error {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // LISTEN belongs to this connection: it never goes back to the pool
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+signOutChannel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if id, err := sb.ParseID(n.Payload); err == nil {
			signedOut(id)
		}
	}
}
