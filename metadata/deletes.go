package metadata

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// Deleting a trunk or a queue, the one way for the API's admins
// (TrunkAdmin, QueueAdmin) and the service's operator (Provisioning): in
// the caller's transaction, refused while a call that needs it has not
// ended.

// callsInProgress returns how many calls matching where (on the calls c)
// have not ended.
func callsInProgress(ctx context.Context, tx pgx.Tx, where string, args ...any) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM calls c WHERE c.ended_at IS NULL AND "+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("metadata: calls in progress: %w", err)
	}
	return n, nil
}

// deleteTrunk deletes one of the tenant's trunks, with its numbers, its
// outbound route and its browser-caller tokens, after writing its name
// onto the calls that name it, and returns its name. ECONFLICT while a
// call of it has not ended, ENOTFOUND if the tenant has no such trunk.
//
// The row lock orders this with other changes of the trunk only: calls
// name their trunk with no foreign key, and an INVITE is authorised from
// the trunk cache, so a call that starts between the check and the commit
// is recorded anyway. It ends normally, its record naming the trunk by ID
// only.
func deleteTrunk(ctx context.Context, tx pgx.Tx, tenantID, id sb.ID) (string, error) {
	var name string
	if err := tx.QueryRow(ctx, "SELECT name FROM trunks WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenantID, id).Scan(&name); err != nil {
		return "", mapError(err, "trunk")
	}
	n, err := callsInProgress(ctx, tx, "c.tenant_id = $1 AND c.trunk_id = $2", tenantID, id)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", sb.Errorf(sb.ECONFLICT, "trunk %q has %d call(s) in progress: try again once they have ended", name, n)
	}
	if _, err := tx.Exec(ctx, "UPDATE calls SET trunk_name = $3 WHERE tenant_id = $1 AND trunk_id = $2", tenantID, id, name); err != nil {
		return "", fmt.Errorf("metadata: delete trunk: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM trunks WHERE tenant_id = $1 AND id = $2", tenantID, id); err != nil {
		return "", fmt.Errorf("metadata: delete trunk: %w", err)
	}
	return name, nil
}

// deleteQueue deletes one of the tenant's queues and returns its name;
// its numbers lead to no queue any more (their calls are offered to all
// the tenant's operators), and the queues that overflowed to it refuse
// instead (their names are returned). Calls keep the queue's name in their
// timeline. ECONFLICT while a call waits in it or was dialled to one of
// its numbers and has not ended, ENOTFOUND if the tenant has no such
// queue.
func deleteQueue(ctx context.Context, tx pgx.Tx, tenantID, id sb.ID) (name string, rerouted []string, err error) {
	if err := tx.QueryRow(ctx, "SELECT name FROM queues WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenantID, id).Scan(&name); err != nil {
		return "", nil, mapError(err, "queue")
	}
	n, err := callsInProgress(ctx, tx, `c.tenant_id = $1 AND (
		c.to_number IN (SELECT number FROM trunk_numbers WHERE tenant_id = $1 AND queue_id = $2)
		OR EXISTS (SELECT 1 FROM call_events v WHERE v.tenant_id = $1 AND v.call_id = c.id AND v.type = $3 AND v.detail->>'queue_id' = $2::text))`,
		tenantID, id, string(sb.EventQueued))
	if err != nil {
		return "", nil, err
	}
	if n > 0 {
		return "", nil, sb.Errorf(sb.ECONFLICT, "queue %q has %d call(s) in progress: try again once they have ended", name, n)
	}
	rows, err := tx.Query(ctx, `UPDATE queues SET overflow = 'reject', overflow_queue = NULL
		WHERE tenant_id = $1 AND overflow_queue = $2 AND id <> $2 RETURNING name`, tenantID, id)
	if err != nil {
		return "", nil, fmt.Errorf("metadata: delete queue: %w", err)
	}
	if rerouted, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return "", nil, fmt.Errorf("metadata: delete queue: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM queues WHERE tenant_id = $1 AND id = $2", tenantID, id); err != nil {
		return "", nil, fmt.Errorf("metadata: delete queue: %w", err)
	}
	return name, rerouted, nil
}
