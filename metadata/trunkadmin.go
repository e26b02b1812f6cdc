package metadata

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// TrunkAdmin changes and removes a tenant's trunks and their outbound
// routes, for its admins. Every query is bound to the actor's tenant: a
// trunk of another tenant is not found. Each change is audited in its own
// transaction: one refused leaves no entry.
type TrunkAdmin struct {
	trunks *TrunkService
	routes *RouteStore
}

var _ sb.TrunkAdmin = (*TrunkAdmin)(nil)

// NewTrunkAdmin returns a TrunkAdmin over the trunk and route stores, which
// seal what they keep.
func NewTrunkAdmin(trunks *TrunkService, routes *RouteStore) *TrunkAdmin {
	return &TrunkAdmin{trunks: trunks, routes: routes}
}

// TrunkByID returns one of the actor's tenant's trunks.
func (s *TrunkAdmin) TrunkByID(ctx context.Context, id sb.ID) (*sb.Trunk, error) {
	a, err := staff(ctx, "reading a trunk", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return s.trunk(ctx, a.TenantID, id)
}

func (s *TrunkAdmin) trunk(ctx context.Context, tenantID, id sb.ID) (*sb.Trunk, error) {
	ts, err := s.trunks.query(ctx, "WHERE t.tenant_id = $1 AND t.id = $2", tenantID, id)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, sb.Errorf(sb.ENOTFOUND, "trunk not found")
	}
	return ts[0], nil
}

// UpdateTrunk changes what ch sets. New digest credentials replace the old
// at once; a number taken away no longer reaches the tenant, and one kept
// keeps its queue.
func (s *TrunkAdmin) UpdateTrunk(ctx context.Context, id sb.ID, ch sb.TrunkChange) (*sb.Trunk, error) {
	a, err := staff(ctx, "changing a trunk", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	t, err := s.trunk(ctx, a.TenantID, id)
	if err != nil {
		return nil, err
	}
	before := slices.Clone(t.Numbers)
	if ch.Name != nil {
		t.Name = *ch.Name
	}
	if ch.Allow != nil {
		t.Allow = make([]netip.Prefix, len(*ch.Allow))
		for i, p := range *ch.Allow {
			t.Allow[i] = p.Masked()
		}
	}
	if ch.Numbers != nil {
		t.Numbers = slices.Compact(slices.Sorted(slices.Values(*ch.Numbers)))
	}
	if ch.RecordingConsent != nil {
		t.RecordingConsent = *ch.RecordingConsent
	}
	credentials := ch.Username != nil || ch.Password != nil
	if credentials {
		if ch.Username == nil || ch.Password == nil {
			return nil, sb.Errorf(sb.EINVALID, "username and password change together")
		}
		t.Username = *ch.Username
	}
	// Unchanged credentials are the ones stored: valid as they are.
	if err := validTrunk(t, t.Username != "" && (!credentials || *ch.Password != "")); err != nil {
		return nil, err
	}
	var username, ha1 *string
	if credentials && t.Username != "" {
		t.DigestHA1 = DigestHA1(t.Username, *ch.Password)
		stored, err := s.trunks.sealHA1(t)
		if err != nil {
			return nil, err
		}
		username, ha1 = &t.Username, &stored
	}
	err = s.trunks.db.audited(ctx, actorEntry(a, "trunk.update", "trunk", id), func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE trunks SET name = $3, allow = $4, recording_consent = $5 WHERE tenant_id = $1 AND id = $2`,
			a.TenantID, id, t.Name, t.Allow, t.RecordingConsent); err != nil {
			return mapError(err, "trunk")
		}
		if credentials {
			if _, err := tx.Exec(ctx, `UPDATE trunks SET username = $3, digest_ha1 = $4 WHERE tenant_id = $1 AND id = $2`,
				a.TenantID, id, username, ha1); err != nil {
				return mapError(err, "trunk")
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM trunk_numbers WHERE tenant_id = $1 AND trunk_id = $2 AND NOT number = ANY ($3)`,
			a.TenantID, id, t.Numbers); err != nil {
			return mapError(err, "trunk")
		}
		for _, n := range t.Numbers {
			if slices.Contains(before, n) {
				continue
			}
			if _, err := tx.Exec(ctx, "INSERT INTO trunk_numbers (number, trunk_id, tenant_id) VALUES ($1, $2, $3)", n, id, a.TenantID); err != nil {
				return mapError(err, "trunk")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.trunk(ctx, a.TenantID, id)
}

// DeleteTrunk removes a trunk as deleteTrunk does (ECONFLICT while a call
// of it has not ended), as the CLI's trunk delete does.
func (s *TrunkAdmin) DeleteTrunk(ctx context.Context, id sb.ID) (*sb.Trunk, error) {
	a, err := staff(ctx, "deleting a trunk", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	t, err := s.trunk(ctx, a.TenantID, id)
	if err != nil {
		return nil, err
	}
	err = s.trunks.db.audited(ctx, actorEntry(a, "trunk.delete", "trunk", id), func(ctx context.Context, tx pgx.Tx) error {
		_, err := deleteTrunk(ctx, tx, a.TenantID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// routeTargetRE is the form of a route's target the trunks table takes.
var routeTargetRE = regexp.MustCompile(`^[^:\s]+:[0-9]{1,5}$`)

const routeSelect = `SELECT id, name, outbound_target, outbound_transport, outbound_media, outbound_username, outbound_secret IS NOT NULL, caller_id,
	outbound_priority, outbound_register FROM trunks WHERE tenant_id = $1 AND outbound_target IS NOT NULL`

func scanRoute(row pgx.Row) (sb.Route, error) {
	var r sb.Route
	err := row.Scan(&r.TrunkID, &r.TrunkName, &r.Target, &r.Transport, &r.Media, &r.Username, &r.HasPassword, &r.CallerID, &r.Priority, &r.Register)
	return r, err
}

// Routes lists the tenant's outbound routes, first choice first.
func (s *TrunkAdmin) Routes(ctx context.Context) ([]sb.Route, error) {
	a, err := staff(ctx, "listing outbound routes", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := s.trunks.db.pool.Query(ctx, routeSelect+" ORDER BY outbound_priority, name", a.TenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: outbound routes: %w", err)
	}
	defer rows.Close()
	out := []sb.Route{}
	for rows.Next() {
		r, err := scanRoute(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: outbound routes: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetRoute gives a trunk an outbound route, or changes the one it has. A
// password is sealed and bound to the trunk; one not given is kept.
func (s *TrunkAdmin) SetRoute(ctx context.Context, trunkID sb.ID, ch sb.RouteChange) (*sb.Route, error) {
	a, err := staff(ctx, "setting an outbound route", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if _, err := s.trunk(ctx, a.TenantID, trunkID); err != nil {
		return nil, err
	}
	r, err := scanRoute(s.trunks.db.pool.QueryRow(ctx, routeSelect+" AND id = $2", a.TenantID, trunkID))
	if err != nil && err != pgx.ErrNoRows {
		return nil, fmt.Errorf("metadata: outbound route: %w", err)
	}
	r.TrunkID = trunkID
	if r.Transport == "" {
		r.Transport, r.Priority, r.Media = "udp", 100, sb.MediaRTP
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&r.Target, ch.Target)
	set(&r.Transport, ch.Transport)
	set(&r.Media, ch.Media)
	set(&r.Username, ch.Username)
	set(&r.CallerID, ch.CallerID)
	if ch.Priority != nil {
		r.Priority = *ch.Priority
	}
	if ch.Register != nil {
		r.Register = *ch.Register
	}
	switch {
	case !routeTargetRE.MatchString(r.Target):
		return nil, sb.Errorf(sb.EINVALID, "an outbound route's target is host:port, not %q", r.Target)
	case r.Transport != "udp" && r.Transport != "tcp":
		return nil, sb.Errorf(sb.EINVALID, "an outbound route's transport is udp or tcp, not %q", r.Transport)
	case r.Media != sb.MediaRTP && r.Media != sb.MediaDTLS:
		return nil, sb.Errorf(sb.EINVALID, "an outbound route's media is %s or %s (DTLS-SRTP over ICE), not %q", sb.MediaRTP, sb.MediaDTLS, r.Media)
	case r.Priority < 0 || r.Priority > 1000:
		return nil, sb.Errorf(sb.EINVALID, "an outbound route's priority is from 0 (first) to 1000")
	}
	secret := "keep"
	var sealed []byte
	if ch.Password != nil {
		secret = "set"
		if *ch.Password != "" {
			if s.routes.sealer == nil {
				return nil, sb.Errorf(sb.EINVALID, "a keyring is needed to keep an outbound password (SWITCHBOARD_KEYRING)")
			}
			if sealed, err = s.routes.sealer.Seal([]byte(*ch.Password), trunkID[:]); err != nil {
				return nil, fmt.Errorf("metadata: seal outbound password: %w", err)
			}
		}
	}
	err = s.trunks.db.audited(ctx, actorEntry(a, "route.set", "trunk", trunkID), func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE trunks SET outbound_target = $3, outbound_transport = $4, outbound_username = $5,
			outbound_secret = CASE WHEN $6 = 'set' THEN $7 ELSE outbound_secret END, caller_id = $8, outbound_priority = $9, outbound_register = $10,
			outbound_media = $11
			WHERE tenant_id = $1 AND id = $2`,
			a.TenantID, trunkID, r.Target, r.Transport, r.Username, secret, sealed, r.CallerID, r.Priority, r.Register, r.Media); err != nil {
			return mapError(err, "outbound route")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, err := scanRoute(s.trunks.db.pool.QueryRow(ctx, routeSelect+" AND id = $2", a.TenantID, trunkID))
	if err != nil {
		return nil, fmt.Errorf("metadata: outbound route: %w", err)
	}
	return &out, nil
}

// DeleteRoute takes a trunk's outbound route away; the trunk still takes
// calls in.
func (s *TrunkAdmin) DeleteRoute(ctx context.Context, trunkID sb.ID) error {
	a, err := staff(ctx, "deleting an outbound route", sb.RoleAdmin)
	if err != nil {
		return err
	}
	return s.trunks.db.audited(ctx, actorEntry(a, "route.delete", "trunk", trunkID), func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE trunks SET outbound_target = NULL, outbound_username = '', outbound_secret = NULL,
			caller_id = '', outbound_register = false WHERE tenant_id = $1 AND id = $2 AND outbound_target IS NOT NULL`, a.TenantID, trunkID)
		if err != nil {
			return mapError(err, "outbound route")
		}
		if tag.RowsAffected() == 0 {
			return sb.Errorf(sb.ENOTFOUND, "outbound route not found")
		}
		return nil
	})
}

// CreateTrunk stores a trunk in the actor's tenant.
func (s *TrunkAdmin) CreateTrunk(ctx context.Context, t *sb.Trunk, password string) error {
	a, err := staff(ctx, "creating a trunk", sb.RoleAdmin)
	if err != nil {
		return err
	}
	t.TenantID = a.TenantID
	if t.ID == (sb.ID{}) {
		t.ID = sb.NewID()
	}
	return s.trunks.db.audited(ctx, actorEntry(a, "trunk.create", "trunk", t.ID), func(ctx context.Context, _ pgx.Tx) error {
		return s.trunks.CreateTrunk(ctx, t, password)
	})
}

// Numbers lists the tenant's numbers and where they lead.
func (s *TrunkAdmin) Numbers(ctx context.Context) ([]sb.Number, error) {
	a, err := staff(ctx, "listing numbers", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := s.trunks.db.pool.Query(ctx, `SELECT n.number, t.id, t.name, q.id, coalesce(q.name, '')
		FROM trunk_numbers n JOIN trunks t ON t.tenant_id = n.tenant_id AND t.id = n.trunk_id
		LEFT JOIN queues q ON q.tenant_id = n.tenant_id AND q.id = n.queue_id
		WHERE n.tenant_id = $1 ORDER BY n.number`, a.TenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: numbers: %w", err)
	}
	defer rows.Close()
	out := []sb.Number{}
	for rows.Next() {
		var n sb.Number
		if err := rows.Scan(&n.Number, &n.TrunkID, &n.TrunkName, &n.QueueID, &n.QueueName); err != nil {
			return nil, fmt.Errorf("metadata: numbers: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
