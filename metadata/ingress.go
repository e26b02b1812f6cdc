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

// IngressService stores browser callers' tokens as hashes.
type IngressService struct {
	db     *DB
	trunks *TrunkService
}

var _ sb.IngressService = (*IngressService)(nil)

// NewIngressService returns an IngressService on db.
func NewIngressService(db *DB) *IngressService {
	return &IngressService{db: db, trunks: NewTrunkService(db)}
}

const tokenPrefix = "sbw_"

// IssueToken stores t and returns its secret.
func (s *IngressService) IssueToken(ctx context.Context, t *sb.WebRTCToken) (string, error) {
	a, err := staff(ctx, "issuing browser call tokens", sb.RoleSupervisor, sb.RoleAdmin)
	if err != nil {
		return "", err
	}
	now := s.db.now()
	switch {
	case t.From == "" || len(t.From) > 100 || strings.ContainsAny(t.From, "\r\n\x00"):
		return "", sb.Errorf(sb.EINVALID, "from: 1 to 100 characters naming the visitor")
	case len(t.ExternalRef) > 200:
		return "", sb.Errorf(sb.EINVALID, "external_ref: at most 200 characters")
	case t.ExpiresAt.IsZero():
		t.ExpiresAt = now.Add(sb.DefaultTokenTTL)
	case !t.ExpiresAt.After(now) || t.ExpiresAt.Sub(now) > sb.MaxTokenTTL:
		return "", sb.Errorf(sb.EINVALID, "a token lives between 1 s and %s", sb.MaxTokenTTL)
	}
	err = s.db.pool.QueryRow(ctx, "SELECT trunk_id FROM trunk_numbers WHERE tenant_id = $1 AND number = $2",
		a.TenantID, t.Number).Scan(&t.TrunkID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", sb.Errorf(sb.ENOTFOUND, "number %q is not one of the tenant's", t.Number)
	} else if err != nil {
		return "", fmt.Errorf("metadata: token number: %w", err)
	}
	secret, hash, err := newSecret(tokenPrefix)
	if err != nil {
		return "", err
	}
	t.ID, t.TenantID, t.CreatedAt, t.ExpiresAt = sb.NewID(), a.TenantID, now, t.ExpiresAt.UTC().Truncate(time.Microsecond)
	_, err = s.db.pool.Exec(ctx, `INSERT INTO webrtc_tokens (id, tenant_id, trunk_id, number, caller, external_ref, hash, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.TenantID, t.TrunkID, t.Number, t.From, t.ExternalRef, hash, t.ExpiresAt, t.CreatedAt)
	if err != nil {
		return "", mapError(err, "token")
	}
	// Tokens are worth nothing a day after they expire.
	if _, err := s.db.pool.Exec(ctx, "DELETE FROM webrtc_tokens WHERE tenant_id = $1 AND expires_at < $2",
		a.TenantID, now.Add(-24*time.Hour)); err != nil {
		return "", fmt.Errorf("metadata: old tokens: %w", err)
	}
	return secret, nil
}

// RedeemToken marks the token used and returns it with its trunk.
// RestoreToken makes a redeemed, unexpired token usable again: the call it
// placed was never answered.
func (s *IngressService) RestoreToken(ctx context.Context, id sb.ID) (bool, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE webrtc_tokens SET used_at = NULL
		WHERE id = $1 AND used_at IS NOT NULL AND expires_at > $2`, id, s.db.now())
	if err != nil {
		return false, fmt.Errorf("metadata: restore token: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *IngressService) RedeemToken(ctx context.Context, secret string) (*sb.WebRTCToken, *sb.Trunk, error) {
	refused := sb.Errorf(sb.EUNAUTHORIZED, "invalid or expired token")
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 128 {
		return nil, nil, refused
	}
	t := &sb.WebRTCToken{}
	err := s.db.pool.QueryRow(ctx, `UPDATE webrtc_tokens SET used_at = $2
		WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING id, tenant_id, trunk_id, number, caller, external_ref, expires_at, created_at`,
		hashSecret(secret), s.db.now()).Scan(&t.ID, &t.TenantID, &t.TrunkID, &t.Number, &t.From, &t.ExternalRef, &t.ExpiresAt, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, refused
	} else if err != nil {
		return nil, nil, fmt.Errorf("metadata: token: %w", err)
	}
	ts, err := s.trunks.query(ctx, "WHERE t.tenant_id = $1 AND t.id = $2", t.TenantID, t.TrunkID)
	if err != nil {
		return nil, nil, err
	}
	if len(ts) == 0 || !ts[0].HasNumber(t.Number) {
		return nil, nil, refused // the number moved or the trunk is gone
	}
	return t, ts[0], nil
}
