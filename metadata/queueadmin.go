package metadata

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// QueueAdmin creates, changes and removes a tenant's queues, for its
// admins, within the actor's tenant. Each change is audited in its own
// transaction: one refused leaves no entry.
type QueueAdmin struct{ store *QueueStore }

var _ sb.QueueAdmin = (*QueueAdmin)(nil)

// NewQueueAdmin returns a QueueAdmin over the queue store.
func NewQueueAdmin(store *QueueStore) *QueueAdmin { return &QueueAdmin{store: store} }

// CreateQueue stores q in the actor's tenant.
func (s *QueueAdmin) CreateQueue(ctx context.Context, q *sb.Queue) error {
	a, err := staff(ctx, "creating a queue", sb.RoleAdmin)
	if err != nil {
		return err
	}
	q.TenantID = a.TenantID
	if q.ID == (sb.ID{}) {
		q.ID = sb.NewID()
	}
	return s.store.db.audited(ctx, actorEntry(a, "queue.create", "queue", q.ID), func(ctx context.Context, _ pgx.Tx) error {
		return s.store.CreateQueue(ctx, q)
	})
}

// QueueByID returns one of the actor's tenant's queues.
func (s *QueueAdmin) QueueByID(ctx context.Context, id sb.ID) (*sb.Queue, error) {
	a, err := staff(ctx, "reading a queue", sb.RoleSupervisor, sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return s.store.QueueByID(ctx, a.TenantID, id)
}

// UpdateQueue changes what ch sets: its members and numbers are replaced
// by those given.
func (s *QueueAdmin) UpdateQueue(ctx context.Context, id sb.ID, ch sb.QueueChange) (*sb.Queue, error) {
	a, err := staff(ctx, "changing a queue", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	q, err := s.store.QueueByID(ctx, a.TenantID, id)
	if err != nil {
		return nil, err
	}
	if ch.Name != nil {
		q.Name = *ch.Name
	}
	if ch.MaxWaitSeconds != nil {
		q.MaxWait = time.Duration(*ch.MaxWaitSeconds * float64(time.Second))
	}
	if ch.Overflow != nil {
		q.Overflow = *ch.Overflow
	}
	if ch.Members != nil {
		q.Members = *ch.Members
	}
	if ch.Numbers != nil {
		q.Numbers = *ch.Numbers
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	err = s.store.db.audited(ctx, actorEntry(a, "queue.update", "queue", id), func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE queues SET name = $3, max_wait_ms = $4, overflow = $5, overflow_queue = $6, overflow_uri = $7
			WHERE tenant_id = $1 AND id = $2`, a.TenantID, id, q.Name, q.MaxWait.Milliseconds(), q.Overflow.Kind, q.Overflow.QueueID, q.Overflow.URI); err != nil {
			return mapError(err, "queue")
		}
		if ch.Members != nil {
			if _, err := tx.Exec(ctx, "DELETE FROM queue_members WHERE tenant_id = $1 AND queue_id = $2", a.TenantID, id); err != nil {
				return mapError(err, "queue member")
			}
			for _, u := range q.Members {
				if _, err := tx.Exec(ctx, "INSERT INTO queue_members (tenant_id, queue_id, user_id) VALUES ($1, $2, $3)", a.TenantID, id, u); err != nil {
					return mapError(err, "queue member")
				}
			}
		}
		if ch.Numbers != nil {
			if _, err := tx.Exec(ctx, "UPDATE trunk_numbers SET queue_id = NULL WHERE tenant_id = $1 AND queue_id = $2", a.TenantID, id); err != nil {
				return mapError(err, "queue number")
			}
			for _, n := range q.Numbers {
				tag, err := tx.Exec(ctx, "UPDATE trunk_numbers SET queue_id = $3 WHERE tenant_id = $1 AND number = $2", a.TenantID, n, id)
				if err != nil {
					return mapError(err, "queue number")
				}
				if tag.RowsAffected() == 0 {
					return sb.Errorf(sb.ENOTFOUND, "number %q is not one of the tenant's", n)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.store.QueueByID(ctx, a.TenantID, id)
}

// DeleteQueue removes a queue as deleteQueue does, as the CLI's queue
// delete does: ECONFLICT while a call waits in it or was dialled to one of
// its numbers and has not ended. Its numbers lead to all of the tenant's
// operators again, and queues that overflowed to it refuse instead.
func (s *QueueAdmin) DeleteQueue(ctx context.Context, id sb.ID) (*sb.Queue, error) {
	a, err := staff(ctx, "deleting a queue", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	q, err := s.store.QueueByID(ctx, a.TenantID, id)
	if err != nil {
		return nil, err
	}
	err = s.store.db.audited(ctx, actorEntry(a, "queue.delete", "queue", id), func(ctx context.Context, tx pgx.Tx) error {
		_, _, err := deleteQueue(ctx, tx, a.TenantID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}
