package metadata

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// pageArgs turns a page into the arguments of "id > $n LIMIT $m"; a limit
// out of range is the most a page holds.
func pageArgs(p sb.Page) (sb.ID, int) {
	if p.Limit < 1 || p.Limit > sb.MaxPage {
		p.Limit = sb.MaxPage
	}
	return p.After, p.Limit
}

// tenantPage reads a page of a tenant's rows, oldest first (IDs are
// UUIDv7): selectFrom is "SELECT <columns> FROM <table>", scan reads one
// row.
func tenantPage[T any](ctx context.Context, db *DB, selectFrom string, tenantID sb.ID, p sb.Page, scan func(pgx.Row) (T, error)) ([]T, error) {
	after, limit := pageArgs(p)
	rows, err := db.pool.Query(ctx, selectFrom+" WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3", tenantID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("metadata: %s: %w", selectFrom, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("metadata: %s: %w", selectFrom, err)
	}
	return out, nil
}
