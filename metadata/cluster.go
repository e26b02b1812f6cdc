package metadata

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// presenceChannel is the NOTIFY channel on which an instance says it has
// an operator free.
const presenceChannel = "switchboard_presence"

// instanceAlive is how recent an instance's heartbeat must be for its
// operators to be offered calls: a few of sb's presence periods.
const instanceAlive = 10 * time.Second

// Cluster shares an instance's operators' presence with the other
// instances on the database, and tells it of theirs.
type Cluster struct {
	db       *DB
	instance string
	sipAddr  string
}

var _ sb.Cluster = (*Cluster)(nil)

// NewCluster returns the Cluster of the instance named instance, which
// the others reach at sipAddr (host:port, UDP).
func NewCluster(db *DB, instance, sipAddr string) *Cluster {
	return &Cluster{db: db, instance: instance, sipAddr: sipAddr}
}

// SetSIPAddr says where the other instances reach this one's SIP, once
// it is listening; before the first Publish.
func (c *Cluster) SetSIPAddr(addr string) { c.sipAddr = addr }

// Publish replaces the instance's presence snapshot and heartbeat; ops nil
// withdraws the instance. When one of its operators is free the others
// are notified, after the commit.
func (c *Cluster) Publish(ctx context.Context, ops []sb.Presence) error {
	return pgx.BeginFunc(ctx, c.db.pool, func(tx pgx.Tx) error {
		if ops == nil {
			_, err := tx.Exec(ctx, `DELETE FROM instances WHERE name = $1`, c.instance)
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO instances (name, sip_addr, heartbeat_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET sip_addr = excluded.sip_addr, heartbeat_at = excluded.heartbeat_at`,
			c.instance, c.sipAddr, c.db.now()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM operator_presence WHERE instance = $1`, c.instance); err != nil {
			return err
		}
		free := false
		rows := make([][]any, 0, len(ops))
		for _, p := range ops {
			rows = append(rows, []any{p.OperatorID, p.TenantID, c.instance, p.State, p.IdleSince})
			free = free || p.State == "available"
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"operator_presence"},
			[]string{"operator_id", "tenant_id", "instance", "state", "idle_since"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		if free {
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, presenceChannel, c.instance)
			return err
		}
		return nil
	})
}

// Candidates lists the tenant's operators free on other live instances,
// idle longest first.
func (c *Cluster) Candidates(ctx context.Context, tenantID sb.ID, members, skip []sb.ID) ([]sb.RemoteOperator, error) {
	if members == nil {
		members = []sb.ID{}
	}
	if skip == nil {
		skip = []sb.ID{}
	}
	rows, err := c.db.pool.Query(ctx, `SELECT p.operator_id, i.name, i.sip_addr
		FROM operator_presence p JOIN instances i ON i.name = p.instance
		WHERE p.tenant_id = $1 AND p.state = 'available' AND p.instance <> $2 AND i.heartbeat_at > $3
		  AND (cardinality($4::uuid[]) = 0 OR p.operator_id = ANY($4)) AND NOT p.operator_id = ANY($5)
		ORDER BY p.idle_since LIMIT 8`,
		tenantID, c.instance, c.db.now().Add(-instanceAlive), members, skip)
	if err != nil {
		return nil, fmt.Errorf("metadata: candidates: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (sb.RemoteOperator, error) {
		var o sb.RemoteOperator
		err := r.Scan(&o.OperatorID, &o.Instance, &o.SIPAddr)
		return o, err
	})
}

// Listen calls wake each time another instance says it has an operator
// free, on a connection of its own, until ctx ends or the connection
// fails.
func (c *Cluster) Listen(ctx context.Context, wake func()) error {
	pc, err := c.db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // LISTEN belongs to this connection: it never goes back to the pool
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+presenceChannel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != c.instance {
			wake()
		}
	}
}
