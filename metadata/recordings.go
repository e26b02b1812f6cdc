package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// RecordingStore keeps recordings' records. Writes come from the system
// (call control); reads are scoped to the actor's tenant.
type RecordingStore struct{ db *DB }

var _ sb.RecordingService = (*RecordingStore)(nil)

// NewRecordingStore returns a RecordingStore on db.
func NewRecordingStore(db *DB) *RecordingStore { return &RecordingStore{db: db} }

// TenantPolicy returns the tenant's recording policy.
func (s *RecordingStore) TenantPolicy(ctx context.Context, tenantID sb.ID) (sb.RecordingPolicy, error) {
	var p sb.RecordingPolicy
	if err := s.db.pool.QueryRow(ctx, "SELECT recording_policy FROM tenants WHERE id = $1", tenantID).Scan(&p); err != nil {
		return "", mapError(err, "tenant")
	}
	return p, nil
}

// ConsentDigit returns the key the tenant's callers press to consent to
// recording, 0 if DTMF consent is off.
func (s *RecordingStore) ConsentDigit(ctx context.Context, tenantID sb.ID) (byte, error) {
	var d string
	if err := s.db.pool.QueryRow(ctx, "SELECT recording_consent_digit FROM tenants WHERE id = $1", tenantID).Scan(&d); err != nil {
		return 0, mapError(err, "tenant")
	}
	if d == "" {
		return 0, nil
	}
	return d[0], nil
}

// SetConsentDigit sets the key callers press to consent ("" turns it off).
func (s *RecordingStore) SetConsentDigit(ctx context.Context, tenantID sb.ID, digit string) error {
	if len(digit) > 1 || (digit != "" && !strings.Contains("0123456789*#", digit)) {
		return sb.Errorf(sb.EINVALID, "the consent key must be one of 0-9, * or #")
	}
	tag, err := s.db.pool.Exec(ctx, "UPDATE tenants SET recording_consent_digit = $2 WHERE id = $1", tenantID, digit)
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}

// CreateRecording stores a new recording's record, wrapped key included,
// before any audio is written: a crash leaves a record to finish as
// truncated, never an object nobody knows about.
func (s *RecordingStore) CreateRecording(ctx context.Context, r *sb.Recording) error {
	if r.Format == 0 {
		r.Format = 1
	}
	if r.OperatorCodec == "" {
		r.OperatorCodec = r.Codec
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO recordings (id, tenant_id, call_id, status, codec, clock_rate, started_at,
		consent_given, consent_mechanism, consent_at, consent_by, consent_policy, object_key, key_version, wrapped_key, format, operator_codec)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		r.ID, r.TenantID, r.CallID, r.Status, r.Codec, int64(r.ClockRate), r.StartedAt,
		r.Consent.Given, r.Consent.Mechanism, r.Consent.At, r.Consent.By, r.Consent.Policy, r.ObjectKey, int64(r.KeyVersion), r.WrappedKey, r.Format, r.OperatorCodec)
	return mapError(err, "recording")
}

// UpdateRecording writes a recording's outcome. A destroyed recording
// loses its wrapped key for good, and stays destroyed: any update of one
// is ECONFLICT, a second destruction included (two instances destroying
// it at once, for erasure and retention), so that only the first writes
// its end and size and records the destruction. The key is otherwise left as stored, never written back from
// r: a key rotation may have re-wrapped it since r was read, and the old
// wrapping dies with its keyring version. r gets the key as stored.
func (s *RecordingStore) UpdateRecording(ctx context.Context, r *sb.Recording) error {
	var version int64
	err := s.db.pool.QueryRow(ctx, `UPDATE recordings SET status = $3, ended_at = $4, size_bytes = $5, segments = $6,
		dropped_packets = $7, segment_starts = $8, truncated = $9,
		wrapped_key = CASE WHEN $3 = 'destroyed' THEN NULL ELSE wrapped_key END,
		ogg_layout = CASE WHEN $3 = 'destroyed' THEN NULL ELSE ogg_layout END
		WHERE tenant_id = $1 AND id = $2 AND status <> 'destroyed'
		RETURNING key_version, wrapped_key`,
		r.TenantID, r.ID, r.Status, r.EndedAt, r.SizeBytes, r.Segments, int64(r.Dropped), r.SegmentStarts, r.Truncated).Scan(&version, &r.WrappedKey)
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := s.db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM recordings WHERE tenant_id = $1 AND id = $2)", r.TenantID, r.ID).Scan(&exists); err != nil {
			return mapError(err, "recording")
		}
		if exists {
			return sb.Errorf(sb.ECONFLICT, "recording %s was destroyed", r.ID)
		}
		return sb.Errorf(sb.ENOTFOUND, "recording not found")
	}
	if err != nil {
		return mapError(err, "recording")
	}
	r.KeyVersion = uint32(version)
	return nil
}

// SetOggLayout keeps an Opus recording's sealed file layout, unless the
// recording was destroyed meanwhile.
func (s *RecordingStore) SetOggLayout(ctx context.Context, tenantID, id sb.ID, sealed []byte) error {
	_, err := s.db.pool.Exec(ctx, `UPDATE recordings SET ogg_layout = $3
		WHERE tenant_id = $1 AND id = $2 AND wrapped_key IS NOT NULL`, tenantID, id, sealed)
	return mapError(err, "recording")
}

// StuckRecordings returns up to limit recordings still marked as being
// made whose calls, run by instance, ended at or before endedBefore: what
// a crash, or a store or database failure while one was finished or
// destroyed, left behind. Each instance reaps its own: a recording in
// progress lives where its call arrived, spool included.
func (s *RecordingStore) StuckRecordings(ctx context.Context, instance string, endedBefore time.Time, limit int) ([]*sb.Recording, error) {
	return s.list(ctx, "stuck recordings", "SELECT "+prefixed("r.", recordingColumns)+` FROM recordings r
		JOIN calls c ON c.tenant_id = r.tenant_id AND c.id = r.call_id
		WHERE r.status = 'recording' AND c.instance = $1 AND c.ended_at <= $2
		ORDER BY r.started_at LIMIT $3`, instance, endedBefore, limit)
}

// list runs a query of recordings.
func (s *RecordingStore) list(ctx context.Context, what, query string, args ...any) ([]*sb.Recording, error) {
	rows, err := s.db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: %s: %w", what, err)
	}
	defer rows.Close()
	var out []*sb.Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: %s: %w", what, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const recordingColumns = `id, tenant_id, call_id, status, codec, clock_rate, started_at, ended_at, size_bytes, segments,
	dropped_packets, consent_given, consent_mechanism, consent_at, consent_by, consent_policy, object_key, key_version, wrapped_key, format, segment_starts, operator_codec, truncated, ogg_layout`

func scanRecording(row pgx.Row) (*sb.Recording, error) {
	r := &sb.Recording{}
	var clock, version, dropped int64
	err := row.Scan(&r.ID, &r.TenantID, &r.CallID, &r.Status, &r.Codec, &clock, &r.StartedAt, &r.EndedAt, &r.SizeBytes, &r.Segments,
		&dropped, &r.Consent.Given, &r.Consent.Mechanism, &r.Consent.At, &r.Consent.By, &r.Consent.Policy, &r.ObjectKey, &version, &r.WrappedKey, &r.Format, &r.SegmentStarts, &r.OperatorCodec, &r.Truncated, &r.OggLayout)
	r.ClockRate, r.KeyVersion, r.Dropped = uint32(clock), uint32(version), uint64(dropped)
	if r.EndedAt != nil {
		r.DurationMS = r.EndedAt.Sub(r.StartedAt).Milliseconds()
	}
	return r, err
}

// FindRecordingByCallID returns the call's latest recording, visible to
// the actor under the same rules as the call itself.
func (s *RecordingStore) FindRecordingByCallID(ctx context.Context, callID sb.ID) (*sb.Recording, error) {
	if _, err := NewCallStore(s.db).FindCallByID(ctx, callID); err != nil {
		return nil, err
	}
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	r, err := scanRecording(s.db.pool.QueryRow(ctx, "SELECT "+recordingColumns+
		" FROM recordings WHERE tenant_id = $1 AND call_id = $2 ORDER BY started_at DESC LIMIT 1", a.TenantID, callID))
	if err != nil {
		return nil, mapError(err, "recording")
	}
	if r.Status != sb.RecordingDestroyed {
		var until time.Time
		if err := s.db.pool.QueryRow(ctx, "SELECT $2::timestamptz + make_interval(days => recording_retention_days) FROM tenants WHERE id = $1",
			a.TenantID, r.StartedAt).Scan(&until); err != nil {
			return nil, mapError(err, "tenant")
		}
		r.RetentionUntil = &until
	}
	return r, nil
}

// FindRecordingByID returns a recording for the system (tests, tools).
func (s *RecordingStore) FindRecordingByID(ctx context.Context, tenantID, id sb.ID) (*sb.Recording, error) {
	r, err := scanRecording(s.db.pool.QueryRow(ctx, "SELECT "+recordingColumns+" FROM recordings WHERE tenant_id = $1 AND id = $2", tenantID, id))
	if err != nil {
		return nil, mapError(err, "recording")
	}
	return r, nil
}

// SetRecordingRetention sets how many days the tenant keeps recordings.
func (s *RecordingStore) SetRecordingRetention(ctx context.Context, tenantID sb.ID, days int) error {
	if days < 1 || days > 3650 {
		return sb.Errorf(sb.EINVALID, "recording retention must be 1 to 3650 days")
	}
	tag, err := s.db.pool.Exec(ctx, "UPDATE tenants SET recording_retention_days = $2 WHERE id = $1", tenantID, days)
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}

// ExpiredRecordings returns up to limit recordings, of every tenant, whose
// tenant's retention has passed at now and which still have audio.
func (s *RecordingStore) ExpiredRecordings(ctx context.Context, now time.Time, limit int) ([]*sb.Recording, error) {
	return s.list(ctx, "expired recordings", "SELECT "+prefixed("r.", recordingColumns)+` FROM recordings r JOIN tenants t ON t.id = r.tenant_id
		WHERE r.status IN ('complete', 'failed') AND r.started_at + make_interval(days => t.recording_retention_days) <= $1
		ORDER BY r.started_at LIMIT $2`, now, limit)
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
