package metadata

import (
	"context"
	"fmt"

	sb "github.com/switchboard-voice/switchboard"
)

// Names names the people, API keys, trunks and queues of the actor's
// tenant by ID, in one query, for pages that must never show a bare ID.
type Names struct{ db *DB }

var _ sb.Namer = (*Names)(nil)

// NewNames returns the namer on db.
func NewNames(db *DB) *Names { return &Names{db: db} }

// Names returns a name for each of ids the actor's tenant holds: a
// person's name (their email if they gave none), "API key" and a key's
// label (or its prefix), a trunk's or queue's name. Other tenants' IDs and
// keys revoked since are left out.
func (n *Names) Names(ctx context.Context, ids []sb.ID) (map[sb.ID]string, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	out := map[sb.ID]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := n.db.pool.Query(ctx, `
		SELECT id, COALESCE(NULLIF(name, ''), email) FROM users WHERE tenant_id = $1 AND id = ANY($2)
		UNION ALL SELECT id, 'API key ' || COALESCE(NULLIF(label, ''), prefix || '…') FROM api_keys WHERE tenant_id = $1 AND id = ANY($2)
		UNION ALL SELECT id, name FROM trunks WHERE tenant_id = $1 AND id = ANY($2)
		UNION ALL SELECT id, name FROM queues WHERE tenant_id = $1 AND id = ANY($2)`, a.TenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("metadata: names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id sb.ID
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("metadata: names: %w", err)
		}
		out[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metadata: names: %w", err)
	}
	return out, nil
}
