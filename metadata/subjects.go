package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
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

// subjectPlace is one table holding a person's data besides their calls'
// records and recordings, and how to find their rows in it. Named
// arguments: @tenant, @calls (the IDs of the calls about them), @number
// and @ref (the subject's; one of the two is empty).
type subjectPlace struct {
	table string
	where string
	order string
	// omit are columns an export leaves out: secrets, never the person's.
	omit []string
	// rectify are the columns that can hold the number (cast back to
	// their type after the text is corrected: "detail::jsonb").
	rectify []string
	// erased is where the receipt counts the rows deleted; exported
	// adds a row to the export.
	erased   func(*sb.ErasureReceipt) *int64
	exported func(*sb.SubjectExport, json.RawMessage) error
}

// subjectPlaces is every place besides calls and recordings that holds a
// person's data: erasure deletes from each, export reads each, and
// rectification corrects the number in each. One list, so that the three
// reach the same places; a table added for personal data belongs here.
var subjectPlaces = []subjectPlace{
	{table: "call_events", where: "call_id = ANY(@calls)", order: "at, id", rectify: []string{"detail::jsonb"},
		erased: func(r *sb.ErasureReceipt) *int64 { return &r.Events },
		exported: func(x *sb.SubjectExport, row json.RawMessage) error {
			e := &sb.CallEvent{}
			x.Events = append(x.Events, e)
			return json.Unmarshal(row, e)
		}},
	{table: "call_sip_messages", where: "call_id = ANY(@calls)", order: "call_id, seq", rectify: []string{"message::text"},
		erased:   func(r *sb.ErasureReceipt) *int64 { return &r.SIPMessages },
		exported: appendRaw(func(x *sb.SubjectExport) *[]json.RawMessage { return &x.SIPMessages })},
	{table: "call_quality_samples", where: "call_id = ANY(@calls)", order: "call_id, at",
		erased:   func(r *sb.ErasureReceipt) *int64 { return &r.QualitySamples },
		exported: appendRaw(func(x *sb.SubjectExport) *[]json.RawMessage { return &x.QualitySamples })},
	// A payload names its call by ID (and holds its record).
	{table: "webhook_deliveries", where: "EXISTS (SELECT 1 FROM unnest(@calls::uuid[]) c WHERE strpos(payload::text, c::text) > 0)",
		order: "created_at, id", rectify: []string{"payload::jsonb"},
		erased:   func(r *sb.ErasureReceipt) *int64 { return &r.WebhookDeliveries },
		exported: appendRaw(func(x *sb.SubjectExport) *[]json.RawMessage { return &x.WebhookDeliveries })},
	// A browser caller's token holds the name and reference the tenant
	// gave the visitor (a number or the messenger ID the call came from).
	{table: "webrtc_tokens", where: "((@ref <> '' AND (external_ref = @ref OR caller = @ref)) OR (@number <> '' AND caller = @number))",
		order: "created_at, id", omit: []string{"hash"}, rectify: []string{"caller::text"},
		erased:   func(r *sb.ErasureReceipt) *int64 { return &r.BrowserCallerTokens },
		exported: appendRaw(func(x *sb.SubjectExport) *[]json.RawMessage { return &x.BrowserCallerTokens })},
}

func appendRaw(field func(*sb.SubjectExport) *[]json.RawMessage) func(*sb.SubjectExport, json.RawMessage) error {
	return func(x *sb.SubjectExport, row json.RawMessage) error {
		f := field(x)
		*f = append(*f, row)
		return nil
	}
}

// placeArgs are the named arguments of subjectPlaces' conditions.
func placeArgs(tenantID sb.ID, ids []sb.ID, subj sb.Subject) pgx.NamedArgs {
	return pgx.NamedArgs{"tenant": tenantID, "calls": ids, "number": subj.Number, "ref": subj.ExternalRef}
}

// exportPlaces adds every row of subjectPlaces about the person to x.
func exportPlaces(ctx context.Context, tx pgx.Tx, args pgx.NamedArgs, x *sb.SubjectExport) error {
	for _, p := range subjectPlaces {
		rows, err := tx.Query(ctx, "SELECT to_jsonb(t) - @omit::text[] FROM "+p.table+" t WHERE tenant_id = @tenant AND "+p.where+" ORDER BY "+p.order,
			withArg(args, "omit", append([]string{}, p.omit...)))
		if err != nil {
			return fmt.Errorf("metadata: subject %s: %w", p.table, err)
		}
		raws, err := pgx.CollectRows(rows, pgx.RowTo[json.RawMessage])
		if err != nil {
			return fmt.Errorf("metadata: subject %s: %w", p.table, err)
		}
		for _, raw := range raws {
			if err := p.exported(x, raw); err != nil {
				return fmt.Errorf("metadata: subject %s: %w", p.table, err)
			}
		}
	}
	return nil
}

func withArg(args pgx.NamedArgs, name string, v any) pgx.NamedArgs {
	out := pgx.NamedArgs{name: v}
	for k, a := range args {
		out[k] = a
	}
	return out
}

// numberPattern matches number where SIP text and JSON carry a party's
// number: a whole string value, a URI's user part ("sip:", "tel:") or a
// header's value; not inside a longer number, nor glued to other text
// (a Call-ID such as "abc-+1555...").
func numberPattern(number string) string {
	return `(^|[\s"<:,;=])` + regexp.QuoteMeta(number) + `(?![0-9])`
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
	rows, err := q.Query(ctx, "SELECT "+selectColumns+" FROM calls WHERE "+where+" ORDER BY created_at, id", args...)
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
	out := &sb.SubjectExport{Subject: subj, TenantID: a.TenantID, ExportedAt: s.db.now(), Events: []*sb.CallEvent{},
		SIPMessages: []json.RawMessage{}, QualitySamples: []json.RawMessage{}, WebhookDeliveries: []json.RawMessage{}, BrowserCallerTokens: []json.RawMessage{}}
	err = pgx.BeginTxFunc(ctx, s.db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if out.Calls, err = s.calls(ctx, tx, a.TenantID, subj); err != nil {
			return err
		}
		ids := callIDs(out.Calls)
		if err := exportPlaces(ctx, tx, placeArgs(a.TenantID, ids, subj), out); err != nil {
			return err
		}
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
		args := placeArgs(a.TenantID, ids, subj)
		for _, p := range subjectPlaces {
			tag, err := tx.Exec(ctx, "DELETE FROM "+p.table+" WHERE tenant_id = @tenant AND "+p.where, args)
			if err != nil {
				return fmt.Errorf("metadata: erase %s: %w", p.table, err)
			}
			*p.erased(r) = tag.RowsAffected()
		}
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

// RectifyNumber replaces a wrong number with the right one wherever the
// actor's tenant holds it about the person: the call records, and the
// rows of subjectPlaces about those calls (timelines, SIP traces, webhook
// payloads) and their browser callers' tokens.
func (s *SubjectStore) RectifyNumber(ctx context.Context, wrong, right, reason string) (int64, error) {
	subj := sb.Subject{Number: wrong}
	a, err := s.request(ctx, subj, reason)
	if err != nil {
		return 0, err
	}
	if right, err = sb.NormalizeNumber(right); err != nil {
		return 0, err
	}
	var calls, others int64
	err = pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE calls SET
			from_number = CASE WHEN from_number = $2 THEN $3 ELSE from_number END,
			to_number   = CASE WHEN to_number = $2 THEN $3 ELSE to_number END
			WHERE tenant_id = $1 AND (from_number = $2 OR to_number = $2) RETURNING id`, a.TenantID, wrong, right)
		if err != nil {
			return fmt.Errorf("metadata: rectify: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[sb.ID])
		if err != nil {
			return fmt.Errorf("metadata: rectify: %w", err)
		}
		calls = int64(len(ids))
		args := withArg(withArg(placeArgs(a.TenantID, ids, subj), "pattern", numberPattern(wrong)), "right", `\1`+right)
		for _, p := range subjectPlaces {
			for _, col := range p.rectify {
				name, typ, _ := strings.Cut(col, "::")
				tag, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = regexp_replace(%s::text, @pattern, @right, 'g')::%s
					WHERE tenant_id = @tenant AND %s AND %s::text ~ @pattern`, p.table, name, name, typ, p.where, name), args)
				if err != nil {
					return fmt.Errorf("metadata: rectify %s: %w", p.table, err)
				}
				others += tag.RowsAffected()
			}
		}
		e := actorEntry(a, "subject.rectify", "subject", sb.NewID())
		e.Reason, e.Detail = reason, fmt.Sprintf("a number corrected on %d calls and %d other rows", calls, others)
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	return calls, err
}
