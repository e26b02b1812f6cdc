package metadata

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// DeskStore is what an operator's page reads about their calls
// (switchboard.Desk).
type DeskStore struct{ db *DB }

// NewDeskStore returns the operator's desk over db.
func NewDeskStore(db *DB) *DeskStore { return &DeskStore{db: db} }

var _ sb.Desk = (*DeskStore)(nil)

// takesCalls allows the people who take calls, in their own tenant.
func takesCalls(ctx context.Context, what string) (*sb.Actor, error) {
	return staff(ctx, what, sb.RoleOperator, sb.RoleSupervisor, sb.RoleAdmin)
}

// Caller describes a call of the actor's tenant and the tenant's earlier
// calls with the same number.
func (s *DeskStore) Caller(ctx context.Context, callID sb.ID, limit int) (*sb.CallerInfo, error) {
	a, err := takesCalls(ctx, "reading a caller")
	if err != nil {
		return nil, err
	}
	c := &sb.CallerInfo{CallID: callID, Labels: []string{}, Earlier: []sb.EarlierCall{}}
	var source string
	err = s.db.pool.QueryRow(ctx, `SELECT c.direction, c.from_number, c.to_number, c.channel || ':' || c.source, c.external_ref, c.labels,
			coalesce(t.name, c.trunk_name)
		FROM calls c LEFT JOIN trunks t ON t.tenant_id = c.tenant_id AND t.id = c.trunk_id
		WHERE c.tenant_id = $1 AND c.id = $2`, a.TenantID, callID).
		Scan(&c.Direction, &c.From, &c.To, &source, &c.ExternalRef, &c.Labels, &c.Via)
	if err != nil {
		return nil, mapError(fmt.Errorf("metadata: caller: %w", err), "call")
	}
	c.Channel = sb.CallChannel(source)
	if c.Labels == nil {
		c.Labels = []string{}
	}
	number := c.From
	if c.Direction == sb.Outbound {
		number = c.To
	}
	if c.Channel == "web" || number == "" {
		return c, nil // a web visitor's "number" is whatever the widget's site said
	}
	rows, err := s.db.pool.Query(ctx, `SELECT id, created_at, direction, status, duration_ms, external_ref, labels FROM calls
		WHERE tenant_id = $1 AND (from_number = $2 OR to_number = $2) AND id <> $3 AND source NOT LIKE 'webrtc:%'
		ORDER BY created_at DESC, id DESC LIMIT $4`, a.TenantID, number, callID, limit)
	if err != nil {
		return nil, fmt.Errorf("metadata: earlier calls: %w", err)
	}
	c.Earlier, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (sb.EarlierCall, error) {
		var e sb.EarlierCall
		err := r.Scan(&e.CallID, &e.At, &e.Direction, &e.Status, &e.DurationMS, &e.ExternalRef, &e.Labels)
		if e.Labels == nil {
			e.Labels = []string{}
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: earlier calls: %w", err)
	}
	return c, nil
}

// Recent lists the calls that reached the actor: offered to them (the
// timeline's offered events name them), answered or placed by them.
func (s *DeskStore) Recent(ctx context.Context, limit int) ([]sb.RecentCall, error) {
	a, err := takesCalls(ctx, "listing recent calls")
	if err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, `WITH mine AS (
			SELECT id FROM calls WHERE tenant_id = $1 AND operator_id = $2
			UNION
			SELECT call_id FROM call_events WHERE tenant_id = $1 AND type = 'offered' AND detail->>'operator_id' = $2::text
		)
		SELECT c.id, c.created_at, c.direction, CASE WHEN c.direction = 'outbound' THEN c.to_number ELSE c.from_number END,
			c.channel || ':' || c.source, c.status, c.duration_ms, c.operator_id IS NOT DISTINCT FROM $2,
			(SELECT e.type FROM call_events e WHERE e.tenant_id = $1 AND e.call_id = c.id
				AND (e.type IN ('declined', 'ring_timeout') AND e.detail->>'operator_id' = $2::text OR e.type = 'canceled')
				ORDER BY e.type = 'canceled', e.at DESC, e.id DESC LIMIT 1)
		FROM calls c JOIN mine ON mine.id = c.id
		WHERE c.tenant_id = $1
		ORDER BY c.created_at DESC, c.id DESC LIMIT $3`, a.TenantID, a.UserID, limit)
	if err != nil {
		return nil, fmt.Errorf("metadata: recent calls: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sb.RecentCall, error) {
		var (
			c      sb.RecentCall
			source string
			took   bool
			missed *string // what ended the offer to the operator, if on the timeline
		)
		err := r.Scan(&c.CallID, &c.At, &c.Direction, &c.Number, &source, &c.Status, &c.DurationMS, &took, &missed)
		c.Channel = sb.CallChannel(source)
		c.Outcome = recentOutcome(c, took, missed)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: recent calls: %w", err)
	}
	return out, nil
}

// recentOutcome is what a call was for the operator it reached.
func recentOutcome(c sb.RecentCall, took bool, missed *string) string {
	switch {
	case c.Direction == sb.Outbound:
		return string(c.Status)
	case took:
		return "answered"
	case missed != nil && *missed == string(sb.EventDeclined):
		return "declined"
	case missed != nil && *missed == string(sb.EventRingTimeout):
		return "missed"
	case missed != nil || c.Status == sb.CallCanceled:
		return "canceled"
	case c.Status == sb.CallRinging || c.Status == sb.CallAnswered:
		return "ringing"
	}
	return "missed"
}

// Colleagues lists the tenant's enabled people who take calls, by name,
// and its queues.
func (s *DeskStore) Colleagues(ctx context.Context) ([]sb.Colleague, []sb.QueueEntry, error) {
	a, err := takesCalls(ctx, "listing colleagues")
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.db.pool.Query(ctx, `SELECT id, CASE WHEN name = '' THEN email ELSE name END FROM users
		WHERE tenant_id = $1 AND disabled_at IS NULL AND role IN ('operator', 'supervisor', 'admin')
		ORDER BY 2, id`, a.TenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: colleagues: %w", err)
	}
	ops, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sb.Colleague, error) {
		var c sb.Colleague
		return c, r.Scan(&c.ID, &c.Name)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: colleagues: %w", err)
	}
	rows, err = s.db.pool.Query(ctx, `SELECT id, name FROM queues WHERE tenant_id = $1 ORDER BY name, id`, a.TenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: queues: %w", err)
	}
	qs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sb.QueueEntry, error) {
		var q sb.QueueEntry
		return q, r.Scan(&q.ID, &q.Name)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: queues: %w", err)
	}
	return ops, qs, nil
}
