package metadata

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// SubjectStore answers data-subject requests: a person's export, erasure
// and rectification, for the tenant's admins, audited.
type SubjectStore struct {
	db      *DB
	destroy func(ctx context.Context, rec *sb.Recording, reason string) error
}

var _ sb.SubjectService = (*SubjectStore)(nil)

// NewSubjectStore returns a SubjectStore on db. destroy deletes a
// recording's audio and shreds its key (recordings.Service.Destroy); nil
// when the service keeps no recordings.
func NewSubjectStore(db *DB, destroy func(ctx context.Context, rec *sb.Recording, reason string) error) *SubjectStore {
	return &SubjectStore{db: db, destroy: destroy}
}

// subjectWhere selects the tenant's calls about s: by number on either
// side (the caller of an inbound call, the called of one we placed), or by
// reference.
func subjectWhere(tenantID sb.ID, s sb.Subject) (string, []any) {
	if s.Number != "" {
		return "tenant_id = $1 AND (from_number = $2 OR to_number = $2)", []any{tenantID, s.Number}
	}
	return "tenant_id = $1 AND external_ref = $2", []any{tenantID, s.ExternalRef}
}

func (s *SubjectStore) request(ctx context.Context, subj sb.Subject, reason string) (*sb.Actor, error) {
	a, err := staff(ctx, "requests about a person's data", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := subj.Validate(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 500 {
		return nil, sb.Errorf(sb.EINVALID, "a request says why: reason, 1 to 500 characters")
	}
	return a, nil
}

func (s *SubjectStore) calls(ctx context.Context, q pgx.Tx, tenantID sb.ID, subj sb.Subject) ([]*sb.Call, error) {
	where, args := subjectWhere(tenantID, subj)
	rows, err := q.Query(ctx, "SELECT "+callReadColumns+" FROM calls WHERE "+where+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: subject calls: %w", err)
	}
	defer rows.Close()
	calls := []*sb.Call{}
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: subject calls: %w", err)
		}
		calls = append(calls, c)
	}
	return calls, rows.Err()
}

func callIDs(calls []*sb.Call) []sb.ID {
	ids := make([]sb.ID, len(calls))
	for i, c := range calls {
		ids[i] = c.ID
	}
	return ids
}

func (s *SubjectStore) recordings(ctx context.Context, q pgx.Tx, tenantID sb.ID, ids []sb.ID) ([]*sb.Recording, error) {
	rows, err := q.Query(ctx, "SELECT "+recordingColumns+" FROM recordings WHERE tenant_id = $1 AND call_id = ANY($2) ORDER BY started_at", tenantID, ids)
	if err != nil {
		return nil, fmt.Errorf("metadata: subject recordings: %w", err)
	}
	defer rows.Close()
	recs := []*sb.Recording{}
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

// ExportSubject returns everything held about the person in the actor's
// tenant, and audits the export.
func (s *SubjectStore) ExportSubject(ctx context.Context, subj sb.Subject, reason string) (*sb.SubjectExport, error) {
	a, err := s.request(ctx, subj, reason)
	if err != nil {
		return nil, err
	}
	out := &sb.SubjectExport{Subject: subj, TenantID: a.TenantID, ExportedAt: s.db.now(), Events: []*sb.CallEvent{}}
	err = pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if out.Calls, err = s.calls(ctx, tx, a.TenantID, subj); err != nil {
			return err
		}
		ids := callIDs(out.Calls)
		rows, err := tx.Query(ctx, "SELECT id, call_id, tenant_id, at, type, detail FROM call_events WHERE tenant_id = $1 AND call_id = ANY($2) ORDER BY at, id",
			a.TenantID, ids)
		if err != nil {
			return fmt.Errorf("metadata: subject events: %w", err)
		}
		for rows.Next() {
			e := &sb.CallEvent{}
			if err := rows.Scan(&e.ID, &e.CallID, &e.TenantID, &e.At, &e.Type, &e.Detail); err != nil {
				rows.Close()
				return fmt.Errorf("metadata: subject events: %w", err)
			}
			out.Events = append(out.Events, e)
		}
		rows.Close()
		if out.Recordings, err = s.recordings(ctx, tx, a.TenantID, ids); err != nil {
			return err
		}
		for _, r := range out.Recordings {
			r.WrappedKey = nil // the export says what exists, never how to open it
		}
		e := actorEntry(a, "subject.export", "subject", sb.NewID())
		e.Reason, e.Detail = reason, fmt.Sprintf("by %s; %d calls, %d recordings", subjectKind(subj), len(out.Calls), len(out.Recordings))
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func subjectKind(s sb.Subject) string {
	if s.Number != "" {
		return "number"
	}
	return "external_ref"
}

// EraseSubject destroys the person's recordings, anonymises their calls'
// records (the numbers that were theirs, references, labels, sources and
// Call-IDs) and deletes the calls' timelines, SIP traces, quality samples,
// stored webhook payloads and browser-call tokens. What is left counts
// calls without saying whose they were.
func (s *SubjectStore) EraseSubject(ctx context.Context, subj sb.Subject, reason string) (*sb.ErasureReceipt, error) {
	a, err := s.request(ctx, subj, reason)
	if err != nil {
		return nil, err
	}
	r := &sb.ErasureReceipt{ID: sb.NewID(), TenantID: a.TenantID}
	// Recordings first, outside the transaction: their objects live in
	// the store. A failure leaves the records for a retry to find.
	var calls []*sb.Call
	var recs []*sb.Recording
	err = pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if calls, err = s.calls(ctx, tx, a.TenantID, subj); err != nil {
			return err
		}
		for _, c := range calls {
			if !c.Status.Ended() {
				return sb.Errorf(sb.ECONFLICT, "call %s is in progress; erase once it has ended", c.ID)
			}
		}
		recs, err = s.recordings(ctx, tx, a.TenantID, callIDs(calls))
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if rec.Status == sb.RecordingDestroyed {
			continue
		}
		if s.destroy == nil {
			return nil, sb.Errorf(sb.EUNAVAILABLE, "recordings cannot be destroyed here: the recording store is not configured")
		}
		if err := s.destroy(ctx, rec, "erasure request "+r.ID.String()); err != nil {
			return nil, err
		}
		r.Recordings++
	}
	ids := callIDs(calls)
	err = pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE calls SET
			from_number = CASE WHEN from_number = $3 OR direction = 'inbound' THEN '' ELSE from_number END,
			to_number   = CASE WHEN to_number = $3 OR direction = 'outbound' THEN '' ELSE to_number END,
			external_ref = '', labels = '{}', source = '', sip_call_id = ''
			WHERE tenant_id = $1 AND id = ANY($2)`, a.TenantID, ids, subj.Number)
		if err != nil {
			return fmt.Errorf("metadata: erase calls: %w", err)
		}
		r.Calls = int(tag.RowsAffected())
		for _, d := range []struct {
			n     *int64
			query string
		}{
			{&r.Events, "DELETE FROM call_events WHERE tenant_id = $1 AND call_id = ANY($2)"},
			{&r.SIPMessages, "DELETE FROM call_sip_messages WHERE tenant_id = $1 AND call_id = ANY($2)"},
			{&r.QualitySamples, "DELETE FROM call_quality_samples WHERE tenant_id = $1 AND call_id = ANY($2)"},
			{&r.WebhookDeliveries, `DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND EXISTS (
				SELECT 1 FROM unnest($2::uuid[]) c WHERE strpos(payload::text, c::text) > 0)`},
		} {
			tag, err := tx.Exec(ctx, d.query, a.TenantID, ids)
			if err != nil {
				return fmt.Errorf("metadata: erase: %w", err)
			}
			*d.n = tag.RowsAffected()
		}
		tag, err = tx.Exec(ctx, `DELETE FROM webrtc_tokens WHERE tenant_id = $1
			AND (($2 <> '' AND (external_ref = $2 OR caller = $2)) OR ($3 <> '' AND caller = $3))`,
			a.TenantID, subj.ExternalRef, subj.Number)
		if err != nil {
			return fmt.Errorf("metadata: erase tokens: %w", err)
		}
		r.BrowserCallerTokens = tag.RowsAffected()
		r.ErasedAt = s.db.now()
		e := actorEntry(a, "subject.erase", "subject", r.ID)
		e.Reason = reason
		e.Detail = fmt.Sprintf("by %s; %d calls anonymised, %d recordings destroyed, %d events, %d SIP messages, %d quality samples, %d webhook payloads, %d tokens deleted",
			subjectKind(subj), r.Calls, r.Recordings, r.Events, r.SIPMessages, r.QualitySamples, r.WebhookDeliveries, r.BrowserCallerTokens)
		return appendAudit(ctx, tx, r.ErasedAt, e)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// RectifyNumber replaces a wrong number with the right one on the actor's
// tenant's call records.
func (s *SubjectStore) RectifyNumber(ctx context.Context, wrong, right, reason string) (int64, error) {
	a, err := s.request(ctx, sb.Subject{Number: wrong}, reason)
	if err != nil {
		return 0, err
	}
	if right, err = sb.NormalizeNumber(right); err != nil {
		return 0, err
	}
	var n int64
	err = pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE calls SET
			from_number = CASE WHEN from_number = $2 THEN $3 ELSE from_number END,
			to_number   = CASE WHEN to_number = $2 THEN $3 ELSE to_number END
			WHERE tenant_id = $1 AND (from_number = $2 OR to_number = $2)`, a.TenantID, wrong, right)
		if err != nil {
			return fmt.Errorf("metadata: rectify: %w", err)
		}
		n = tag.RowsAffected()
		e := actorEntry(a, "subject.rectify", "subject", sb.NewID())
		e.Reason, e.Detail = reason, fmt.Sprintf("a number corrected on %d calls", n)
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	return n, err
}
