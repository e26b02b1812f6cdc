package metadata

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	sb "github.com/switchboard-voice/switchboard"
)

// An ID is written as the uuid it is, in binary and text, alone, through a
// pointer and in an array; a nil pointer is NULL. (The real database reads
// them back in every store test.)
func TestIDsEncodeAsUUIDs(t *testing.T) {
	m := pgtype.NewMap()
	withIDs(m)
	id := sb.NewID()
	bin, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id, nil)
	if err != nil || !bytes.Equal(bin, id[:]) {
		t.Errorf("binary: %x, %v; want %x", bin, err, id[:])
	}
	txt, err := m.Encode(pgtype.UUIDOID, pgtype.TextFormatCode, id, nil)
	if err != nil || string(txt) != id.String() {
		t.Errorf("text: %q, %v; want %q", txt, err, id.String())
	}
	ptr, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, &id, nil)
	if err != nil || !bytes.Equal(ptr, id[:]) {
		t.Errorf("through a pointer: %x, %v", ptr, err)
	}
	var none *sb.ID
	if null, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, none, nil); err != nil || null != nil {
		t.Errorf("nil pointer: %x, %v; want NULL", null, err)
	}
	ids := []sb.ID{id, sb.NewID()}
	want, err := pgtype.NewMap().Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	arr, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil)
	if err != nil || !bytes.Equal(arr, want) {
		t.Errorf("array: %x, %v; want %x", arr, err, want)
	}
}

// Encoding an ID in binary, as every statement of a call does several
// times, allocates nothing of its own.
func TestIDEncodesWithoutAllocating(t *testing.T) {
	m := pgtype.NewMap()
	withIDs(m)
	var id any = sb.NewID() // boxed once, as a statement's argument is
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id, buf[:0]) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// BenchmarkEncodeID is one ID as a statement's argument.
func BenchmarkEncodeID(b *testing.B) {
	for _, bc := range []struct {
		name string
		ids  bool
	}{{"valuer", false}, {"registered", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := pgtype.NewMap()
			if bc.ids {
				withIDs(m)
			}
			id := sb.NewID()
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
