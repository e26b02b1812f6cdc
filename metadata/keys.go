package metadata

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// KeyRing is what key rotation needs of the keyring (recordings.Keyring):
// recordings' data keys are wrapped with it, small secrets sealed.
type KeyRing interface {
	Sealer
	Active() uint32
	Rewrap(version uint32, wrapped, ad []byte) (uint32, []byte, error)
}

// KeyUse is one row holding something the keyring protects, under the
// key version that protects it.
type KeyUse struct {
	What     string // "recording" or one of sealedColumns' names
	TenantID sb.ID
	ID       sb.ID // the row's: the recording, trunk or webhook
	Version  uint32
}

func (u KeyUse) String() string {
	return fmt.Sprintf("%s %s (tenant %s): key version %d", u.What, u.ID, u.TenantID, u.Version)
}

// sealedColumn is one column holding secrets sealed with the keyring,
// each bound to its row's ID. Every such column is listed here, so that
// rotation re-seals them all and the check finds them all: a secret left
// under an old version stops working once that version leaves the keyring.
type sealedColumn struct {
	what, table, column string
	text                bool // "sealed:" + base64 (digest_ha1, which may also hold a bare HA1)
}

var sealedColumns = []sealedColumn{
	{what: "trunk digest HA1", table: "trunks", column: "digest_ha1", text: true},
	{what: "trunk outbound password", table: "trunks", column: "outbound_secret"},
	{what: "webhook secret", table: "webhooks", column: "secret"},
	{what: "webhook new secret", table: "webhooks", column: "new_secret"},
	{what: "WhatsApp app secret", table: "whatsapp_connections", column: "app_secret"},
	{what: "WhatsApp access token", table: "whatsapp_connections", column: "access_token"},
}

// sealedSecret is one sealed secret as stored: stored is the column's
// value, compared when it is replaced.
type sealedSecret struct {
	KeyUse
	col    sealedColumn
	stored any
	sealed []byte
}

// KeyStore finds and moves what the keyring protects: recordings' wrapped
// data keys and the secrets sealed with it (sealedColumns).
type KeyStore struct {
	db    *DB
	batch int
}

// NewKeyStore returns a KeyStore on db.
func NewKeyStore(db *DB) *KeyStore { return &KeyStore{db: db, batch: 500} }

// OldKeys lists every row whose data key or sealed secret is under a
// version other than active: what must be rotated before an old version
// can leave the keyring.
func (s *KeyStore) OldKeys(ctx context.Context, active uint32) ([]KeyUse, error) {
	var out []KeyUse
	err := s.eachStaleDataKeys(ctx, active, func(batch []WrappedKey) error {
		for _, k := range batch {
			out = append(out, k.use())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	secrets, err := s.staleSecrets(ctx, active)
	if err != nil {
		return nil, err
	}
	for _, sec := range secrets {
		out = append(out, sec.KeyUse)
	}
	return out, nil
}

// RotationReport counts what a rotation did.
type RotationReport struct {
	DataKeys int // recordings' data keys re-wrapped
	Secrets  int // sealed secrets re-sealed
	Failed   int // could not be opened: skipped, reported once each
}

// Rotate re-wraps every recording's data key and re-seals every sealed
// secret that is not under ring's active version. A row that cannot be
// opened (its version not in ring, or tampered) is skipped and passed to
// failed once; the rest go on. progress is told how far it got. Each row
// is replaced only if it still holds what was read (a concurrent
// rotation, destruction or new secret wins).
func (s *KeyStore) Rotate(ctx context.Context, ring KeyRing, progress func(done, total int), failed func(KeyUse, error)) (RotationReport, error) {
	var r RotationReport
	active := ring.Active()
	total, err := s.countStaleDataKeys(ctx, active)
	if err != nil {
		return r, err
	}
	secrets, err := s.staleSecrets(ctx, active)
	if err != nil {
		return r, err
	}
	total += len(secrets)
	report := func() {
		if progress != nil {
			progress(r.DataKeys+r.Secrets+r.Failed, max(total, r.DataKeys+r.Secrets+r.Failed))
		}
	}
	fail := func(u KeyUse, err error) {
		r.Failed++
		if failed != nil {
			failed(u, err)
		}
	}
	err = s.eachStaleDataKeys(ctx, active, func(batch []WrappedKey) error {
		for _, k := range batch {
			version, wrapped, err := ring.Rewrap(k.Version, k.Wrapped, k.RecordingID[:])
			if err != nil {
				fail(k.use(), err)
				continue
			}
			if err := s.replaceDataKey(ctx, k, version, wrapped); err != nil {
				return err
			}
			r.DataKeys++
		}
		report()
		return nil
	})
	if err != nil {
		return r, err
	}
	for _, sec := range secrets {
		resealed, err := reseal(ring, sec)
		if err != nil {
			fail(sec.KeyUse, err)
			continue
		}
		if err := s.replaceSecret(ctx, sec, resealed); err != nil {
			return r, err
		}
		r.Secrets++
	}
	report()
	return r, nil
}

func reseal(ring KeyRing, sec sealedSecret) ([]byte, error) {
	plain, err := ring.Open(sec.sealed, sec.ID[:])
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return ring.Seal(plain, sec.ID[:])
}

// WrappedKey is one recording's wrapped data key, as key rotation sees it.
type WrappedKey struct {
	TenantID, RecordingID sb.ID
	Version               uint32
	Wrapped               []byte
}

func (k WrappedKey) use() KeyUse {
	return KeyUse{What: "recording", TenantID: k.TenantID, ID: k.RecordingID, Version: k.Version}
}

// eachStaleDataKeys passes fn every wrapped key not under version, a batch
// at a time, in the order of the recordings' IDs: each is read once, so a
// key that stays (it failed to open) is never read first again in every
// batch.
func (s *KeyStore) eachStaleDataKeys(ctx context.Context, version uint32, fn func([]WrappedKey) error) error {
	var after sb.ID
	for {
		batch, err := s.staleDataKeys(ctx, version, after)
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := fn(batch); err != nil {
			return err
		}
		after = batch[len(batch)-1].RecordingID
	}
}

// staleDataKeys returns a batch of wrapped keys not under version, of
// recordings whose ID is after after; destroyed recordings have none.
func (s *KeyStore) staleDataKeys(ctx context.Context, version uint32, after sb.ID) ([]WrappedKey, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT tenant_id, id, key_version, wrapped_key FROM recordings
		WHERE wrapped_key IS NOT NULL AND key_version <> $1 AND id > $2 ORDER BY id LIMIT $3`, int64(version), after, s.batch)
	if err != nil {
		return nil, fmt.Errorf("metadata: stale keys: %w", err)
	}
	defer rows.Close()
	var out []WrappedKey
	for rows.Next() {
		var k WrappedKey
		var v int64
		if err := rows.Scan(&k.TenantID, &k.RecordingID, &v, &k.Wrapped); err != nil {
			return nil, fmt.Errorf("metadata: stale keys: %w", err)
		}
		k.Version = uint32(v)
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *KeyStore) countStaleDataKeys(ctx context.Context, version uint32) (int, error) {
	var n int
	err := s.db.pool.QueryRow(ctx, "SELECT count(*) FROM recordings WHERE wrapped_key IS NOT NULL AND key_version <> $1", int64(version)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("metadata: count stale keys: %w", err)
	}
	return n, nil
}

// replaceDataKey stores a re-wrapped key if the recording still has the
// key it had.
func (s *KeyStore) replaceDataKey(ctx context.Context, old WrappedKey, version uint32, wrapped []byte) error {
	_, err := s.db.pool.Exec(ctx, `UPDATE recordings SET key_version = $4, wrapped_key = $5
		WHERE tenant_id = $1 AND id = $2 AND key_version = $3 AND wrapped_key = $6`,
		old.TenantID, old.RecordingID, int64(old.Version), int64(version), wrapped, old.Wrapped)
	if err != nil {
		return fmt.Errorf("metadata: replace key: %w", err)
	}
	return nil
}

// staleSecrets reads every sealed secret not under version. There are a
// few per trunk and webhook, so they are read at once.
func (s *KeyStore) staleSecrets(ctx context.Context, version uint32) ([]sealedSecret, error) {
	var out []sealedSecret
	for _, col := range sealedColumns {
		rows, err := s.db.pool.Query(ctx, fmt.Sprintf("SELECT tenant_id, id, %s FROM %s WHERE %s IS NOT NULL ORDER BY id",
			col.column, col.table, col.column))
		if err != nil {
			return nil, fmt.Errorf("metadata: sealed %ss: %w", col.what, err)
		}
		got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sealedSecret, error) {
			sec := sealedSecret{KeyUse: KeyUse{What: col.what}, col: col}
			if !col.text {
				err := row.Scan(&sec.TenantID, &sec.ID, &sec.sealed)
				sec.stored = sec.sealed
				return sec, err
			}
			var v string
			if err := row.Scan(&sec.TenantID, &sec.ID, &v); err != nil {
				return sec, err
			}
			sec.stored = v
			rest, ok := strings.CutPrefix(v, sealedPrefix)
			if !ok {
				return sec, nil // not sealed (stored before the keyring): nothing to rotate
			}
			var err error
			sec.sealed, err = base64.StdEncoding.DecodeString(rest)
			if err != nil {
				sec.sealed = []byte{} // unreadable: reported as failing to open
			}
			return sec, nil
		})
		if err != nil {
			return nil, fmt.Errorf("metadata: sealed %ss: %w", col.what, err)
		}
		for _, sec := range got {
			if sec.sealed == nil {
				continue
			}
			if len(sec.sealed) >= 4 {
				sec.Version = binary.BigEndian.Uint32(sec.sealed)
			}
			if sec.Version != version {
				out = append(out, sec)
			}
		}
	}
	return out, nil
}

// replaceSecret stores a re-sealed secret if its row still holds what
// was read.
func (s *KeyStore) replaceSecret(ctx context.Context, old sealedSecret, resealed []byte) error {
	var v any = resealed
	if old.col.text {
		v = sealedPrefix + base64.StdEncoding.EncodeToString(resealed)
	}
	_, err := s.db.pool.Exec(ctx, fmt.Sprintf("UPDATE %s SET %s = $3 WHERE id = $1 AND %s = $2", old.col.table, old.col.column, old.col.column),
		old.ID, old.stored, v)
	if err != nil {
		return fmt.Errorf("metadata: re-seal %s: %w", old.What, err)
	}
	return nil
}
