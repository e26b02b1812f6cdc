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

// API keys as a tenant's admins manage them. A key is looked up in the
// database on every request (no instance keeps one), so a revoked key is
// refused at its next request on every instance.

// lastUsedGrain is how stale a key's last use may be before a request
// writes it again: a write per request would cost more than the answer.
const lastUsedGrain = time.Minute

const apiKeyColumns = "id, tenant_id, role, prefix, label, created_at, expires_at, last_used_at"

func scanAPIKey(row pgx.Row) (*sb.APIKey, error) {
	k := &sb.APIKey{}
	err := row.Scan(&k.ID, &k.TenantID, &k.Role, &k.Prefix, &k.Label, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt)
	return k, err
}

// AuthenticateAPIKey returns the key whose secret this is, or
// EUNAUTHORIZED if there is none (never was, or revoked) or it expired.
func (s *APIKeyService) AuthenticateAPIKey(ctx context.Context, secret string) (*sb.APIKey, error) {
	if !strings.HasPrefix(secret, apiKeyPrefix) || len(secret) > 128 {
		return nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid API key")
	}
	k, err := scanAPIKey(s.db.pool.QueryRow(ctx, "SELECT "+apiKeyColumns+" FROM api_keys WHERE hash = $1", hashSecret(secret)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid API key")
	} else if err != nil {
		return nil, fmt.Errorf("metadata: api key: %w", err)
	}
	now := s.db.now()
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		return nil, sb.Errorf(sb.EUNAUTHORIZED, "this API key has expired")
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= lastUsedGrain {
		if _, err := s.db.pool.Exec(ctx, "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
			k.ID, now); err != nil {
			return nil, fmt.Errorf("metadata: api key last use: %w", err)
		}
		k.LastUsedAt = &now
	}
	return k, nil
}

// IssueAPIKey makes a key of the admin's tenant and returns its secret,
// which is shown this once.
func (s *APIKeyService) IssueAPIKey(ctx context.Context, r sb.APIKeyRequest) (*sb.APIKey, string, error) {
	a, err := staff(ctx, "making an API key", sb.RoleAdmin)
	if err != nil {
		return nil, "", err
	}
	if _, err := sb.ParseRole(string(r.Role)); err != nil {
		return nil, "", err
	}
	label := strings.TrimSpace(r.Label)
	if len(label) > 200 {
		return nil, "", sb.Errorf(sb.EINVALID, "label: at most 200 characters")
	}
	now := s.db.now()
	if r.ExpiresAt != nil {
		t := r.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			return nil, "", sb.Errorf(sb.EINVALID, "expires_at: must be in the future")
		}
		r.ExpiresAt = &t
	}
	secret, hash, err := newSecret(apiKeyPrefix)
	if err != nil {
		return nil, "", err
	}
	k := &sb.APIKey{ID: sb.NewID(), TenantID: a.TenantID, Role: r.Role, Prefix: secret[:12], Label: label, Hash: hash,
		CreatedAt: now, ExpiresAt: r.ExpiresAt}
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, tenant_id, role, prefix, label, hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, k.ID, k.TenantID, k.Role, k.Prefix, k.Label, k.Hash, k.CreatedAt, k.ExpiresAt); err != nil {
			return mapError(err, "api key")
		}
		e := actorEntry(a, "apikey.create", "api_key", k.ID)
		e.Detail = "role " + string(k.Role)
		if k.ExpiresAt != nil {
			e.Detail += ", expires " + k.ExpiresAt.Format(time.RFC3339)
		}
		return appendAudit(ctx, tx, now, e)
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// FindAPIKeys lists a page of the tenant's API keys, oldest first, never
// their secrets, for its admins.
func (s *APIKeyService) FindAPIKeys(ctx context.Context, p sb.Page) ([]*sb.APIKey, error) {
	a, err := staff(ctx, "listing API keys", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return tenantPage(ctx, s.db, "SELECT "+apiKeyColumns+" FROM api_keys", a.TenantID, p, scanAPIKey)
}

// RevokeAPIKey deletes one of the tenant's keys, for its admins: its hash
// is gone, so no instance can take it again.
func (s *APIKeyService) RevokeAPIKey(ctx context.Context, id sb.ID) error {
	a, err := staff(ctx, "revoking an API key", sb.RoleAdmin)
	if err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		var role sb.Role
		var prefix string
		err := tx.QueryRow(ctx, "DELETE FROM api_keys WHERE tenant_id = $1 AND id = $2 RETURNING role, prefix", a.TenantID, id).Scan(&role, &prefix)
		if err != nil {
			return mapError(err, "api key")
		}
		e := actorEntry(a, "apikey.revoke", "api_key", id)
		e.Detail = "role " + string(role) + ", " + prefix + "…"
		return appendAudit(ctx, tx, s.db.now(), e)
	})
}
