package metadata

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	sb "github.com/switchboard-voice/switchboard"
)

// pgx does not know sb.ID (google/uuid's UUID): it sent each one through
// its driver.Valuer, as text, which its uuid codec cannot write in binary;
// the encode failed, built an error message, parsed the text back and
// encoded again. Every call's record names several IDs, so that was a
// tenth of the service's CPU at a few hundred calls a second. Each
// connection's type map now hands an ID to the uuid codec as the 16 bytes
// it is.

// registerIDs teaches conn's type map sb.ID; it is the pool's AfterConnect.
func registerIDs(_ context.Context, conn *pgx.Conn) error {
	withIDs(conn.TypeMap())
	return nil
}

// withIDs puts sb.ID's encoding first in m's wrappers.
func withIDs(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapID}, m.TryWrapEncodePlanFuncs...)
}

func tryWrapID(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if id, ok := value.(sb.ID); ok {
		return &idEncodePlan{}, pgtype.UUID{Bytes: id, Valid: true}, true
	}
	return nil, nil, false
}

// idEncodePlan encodes an sb.ID as a pgtype.UUID.
type idEncodePlan struct {
	next pgtype.EncodePlan
	// uuid is what next is handed, by pointer, so that handing it over
	// boxes no copy: an allocation for each ID of every statement. A
	// plan is its type map's, and a type map is one connection's, used
	// by one goroutine at a time (pgtype.Map is not safe for concurrent
	// use).
	uuid pgtype.UUID
}

func (p *idEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *idEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	p.uuid = pgtype.UUID{Bytes: value.(sb.ID), Valid: true}
	return p.next.Encode(&p.uuid, buf)
}
