package metadata

import (
	"context"
	"fmt"

	sb "github.com/switchboard-voice/switchboard"
)

// Sealer encrypts small secrets at rest; recordings.Keyring is one.
type Sealer interface {
	Seal(secret, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// RouteStore keeps how each tenant's calls go out: its outbound trunks.
// Passwords are sealed with the sealer; without one, only routes without
// a password can be set or used.
type RouteStore struct {
	db     *DB
	sealer Sealer
}

var _ sb.RouteDirectory = (*RouteStore)(nil)

// NewRouteStore returns a RouteStore on db; sealer may be nil.
func NewRouteStore(db *DB, sealer Sealer) *RouteStore { return &RouteStore{db: db, sealer: sealer} }

// SetOutbound makes a trunk take outbound calls (provisioning, as the
// system). The password, if any, is sealed and bound to the trunk.
func (s *RouteStore) SetOutbound(ctx context.Context, r sb.OutboundRoute, priority int) error {
	var secret []byte
	if r.Password != "" {
		if s.sealer == nil {
			return sb.Errorf(sb.EINVALID, "a keyring is needed to keep an outbound password (SWITCHBOARD_KEYRING)")
		}
		var err error
		if secret, err = s.sealer.Seal([]byte(r.Password), r.TrunkID[:]); err != nil {
			return fmt.Errorf("metadata: seal outbound password: %w", err)
		}
	}
	if r.Transport == "" {
		r.Transport = "udp"
	}
	if r.Media == "" {
		r.Media = sb.MediaRTP
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE trunks SET outbound_target = $2, outbound_transport = $3, outbound_username = $4,
		outbound_secret = $5, caller_id = $6, outbound_priority = $7, outbound_register = $8, outbound_media = $9 WHERE id = $1`,
		r.TrunkID, r.Target, r.Transport, r.Username, secret, r.CallerID, priority, r.Register, r.Media)
	if err != nil {
		return mapError(err, "trunk")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "trunk not found")
	}
	return nil
}

// OutboundRoutes returns the tenant's outbound trunks, first choice
// first, with their passwords opened. It serves call control.
func (s *RouteStore) OutboundRoutes(ctx context.Context, tenantID sb.ID) ([]sb.OutboundRoute, error) {
	return s.routes(ctx, "tenant_id = $1 AND outbound_target IS NOT NULL", tenantID)
}

// RegisteringRoutes returns every trunk that is to be kept registered,
// across tenants, for the registration loops (the system).
func (s *RouteStore) RegisteringRoutes(ctx context.Context) ([]sb.OutboundRoute, error) {
	return s.routes(ctx, "outbound_target IS NOT NULL AND outbound_register")
}

func (s *RouteStore) routes(ctx context.Context, where string, args ...any) ([]sb.OutboundRoute, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT id, outbound_target, outbound_transport, outbound_media, outbound_username, outbound_secret, caller_id,
		outbound_register FROM trunks WHERE `+where+` ORDER BY outbound_priority, name`, args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: outbound routes: %w", err)
	}
	defer rows.Close()
	var out []sb.OutboundRoute
	for rows.Next() {
		var r sb.OutboundRoute
		var secret []byte
		if err := rows.Scan(&r.TrunkID, &r.Target, &r.Transport, &r.Media, &r.Username, &secret, &r.CallerID, &r.Register); err != nil {
			return nil, fmt.Errorf("metadata: outbound routes: %w", err)
		}
		if secret != nil {
			if s.sealer == nil {
				return nil, fmt.Errorf("metadata: trunk %s has a sealed password and no keyring is configured", r.TrunkID)
			}
			p, err := s.sealer.Open(secret, r.TrunkID[:])
			if err != nil {
				return nil, fmt.Errorf("metadata: open trunk %s's password: %w", r.TrunkID, err)
			}
			r.Password = string(p)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
