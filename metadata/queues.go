package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// QueueStore keeps the tenants' queues: who answers them, how long
// callers wait, where they overflow, and which numbers lead to them.
type QueueStore struct{ db *DB }

var _ sb.QueueDirectory = (*QueueStore)(nil)

// NewQueueStore returns a QueueStore on db.
func NewQueueStore(db *DB) *QueueStore { return &QueueStore{db: db} }

// CreateQueue stores q with its members and numbers (provisioning, as the
// system). Members must be the tenant's people, numbers the tenant's; a
// number already in another queue moves to this one.
func (s *QueueStore) CreateQueue(ctx context.Context, q *sb.Queue) error {
	if q.ID == (sb.ID{}) {
		q.ID = sb.NewID()
	}
	if err := q.Validate(); err != nil {
		return err
	}
	q.CreatedAt = s.db.now()
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO queues (id, tenant_id, name, max_wait_ms, overflow, overflow_queue, overflow_uri, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			q.ID, q.TenantID, q.Name, q.MaxWait.Milliseconds(), q.Overflow.Kind, q.Overflow.QueueID, q.Overflow.URI, q.CreatedAt)
		if err != nil {
			return mapError(err, "queue")
		}
		for _, u := range q.Members {
			if _, err := tx.Exec(ctx, "INSERT INTO queue_members (tenant_id, queue_id, user_id) VALUES ($1, $2, $3)", q.TenantID, q.ID, u); err != nil {
				return mapError(err, "queue member")
			}
		}
		for _, n := range q.Numbers {
			tag, err := tx.Exec(ctx, "UPDATE trunk_numbers SET queue_id = $3 WHERE tenant_id = $1 AND number = $2", q.TenantID, n, q.ID)
			if err != nil {
				return mapError(err, "queue number")
			}
			if tag.RowsAffected() == 0 {
				return sb.Errorf(sb.ENOTFOUND, "number %q is not one of the tenant's", n)
			}
		}
		return nil
	})
}

// QueueForNumber returns the queue the number leads to, or nil.
func (s *QueueStore) QueueForNumber(ctx context.Context, tenantID sb.ID, number string) (*sb.Queue, error) {
	qs, err := s.query(ctx, "q.tenant_id = $1 AND q.id = (SELECT queue_id FROM trunk_numbers WHERE tenant_id = $1 AND number = $2)", tenantID, number)
	if err != nil || len(qs) == 0 {
		return nil, err
	}
	return qs[0], nil
}

// QueueByID returns one of the tenant's queues, or ENOTFOUND.
func (s *QueueStore) QueueByID(ctx context.Context, tenantID, id sb.ID) (*sb.Queue, error) {
	qs, err := s.query(ctx, "q.tenant_id = $1 AND q.id = $2", tenantID, id)
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, sb.Errorf(sb.ENOTFOUND, "queue not found")
	}
	return qs[0], nil
}

// QueueByName returns one of the tenant's queues by name, or ENOTFOUND.
func (s *QueueStore) QueueByName(ctx context.Context, tenantID sb.ID, name string) (*sb.Queue, error) {
	qs, err := s.query(ctx, "q.tenant_id = $1 AND q.name = $2", tenantID, name)
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, sb.Errorf(sb.ENOTFOUND, "queue %q not found", name)
	}
	return qs[0], nil
}

// FindQueues lists the actor's tenant's queues, for supervisors and admins.
func (s *QueueStore) FindQueues(ctx context.Context) ([]*sb.Queue, error) {
	a, err := staff(ctx, "listing queues", sb.RoleSupervisor, sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return s.query(ctx, "q.tenant_id = $1", a.TenantID)
}

func (s *QueueStore) query(ctx context.Context, where string, args ...any) ([]*sb.Queue, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT q.id, q.tenant_id, q.name, q.max_wait_ms, q.overflow, q.overflow_queue, q.overflow_uri, q.created_at,
		coalesce((SELECT array_agg(m.user_id ORDER BY m.user_id) FROM queue_members m WHERE m.queue_id = q.id), '{}'),
		coalesce((SELECT array_agg(n.number ORDER BY n.number) FROM trunk_numbers n WHERE n.tenant_id = q.tenant_id AND n.queue_id = q.id), '{}')
		FROM queues q WHERE `+where+" ORDER BY q.name", args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: queues: %w", err)
	}
	defer rows.Close()
	var out []*sb.Queue
	for rows.Next() {
		q := &sb.Queue{}
		var waitMS int64
		if err := rows.Scan(&q.ID, &q.TenantID, &q.Name, &waitMS, &q.Overflow.Kind, &q.Overflow.QueueID, &q.Overflow.URI, &q.CreatedAt,
			&q.Members, &q.Numbers); err != nil {
			return nil, fmt.Errorf("metadata: queues: %w", err)
		}
		q.MaxWait = time.Duration(waitMS) * time.Millisecond
		if len(q.Members) == 0 {
			q.Members = nil
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("metadata: queues: %w", err)
	}
	return out, nil
}

// MemberByEmail returns the ID of the tenant's person with that email, for
// provisioning a queue's members, or ENOTFOUND.
func (s *QueueStore) MemberByEmail(ctx context.Context, tenantID sb.ID, email string) (sb.ID, error) {
	var id sb.ID
	err := s.db.pool.QueryRow(ctx, "SELECT id FROM users WHERE tenant_id = $1 AND email = $2", tenantID, email).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, sb.Errorf(sb.ENOTFOUND, "no one with email %q in the tenant", email)
	}
	if err != nil {
		return id, fmt.Errorf("metadata: queue member: %w", err)
	}
	return id, nil
}
