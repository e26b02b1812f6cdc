package metadata

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	sb "github.com/switchboard-voice/switchboard"
)

// CallStore writes call records for call control and reads them for
// actors.
type CallStore struct {
	db       *DB
	instance string // stamped on the calls this store creates
}

var (
	_ sb.CallService  = (*CallStore)(nil)
	_ sb.CallRecorder = (*CallStore)(nil)
)

// NewCallStore returns a CallStore on db.
func NewCallStore(db *DB) *CallStore { return &CallStore{db: db} }

// ForInstance returns the store stamping the calls it creates with the
// instance's name, so that the instance can close them after a crash.
func (s *CallStore) ForInstance(name string) *CallStore { return &CallStore{db: s.db, instance: name} }

const (
	defaultCallLimit = 50
	maxCallLimit     = 500
)

// callColumns are a call record's columns: the identity, set once, then
// mutableColumns, which UpdateCall writes (a call we place learns its
// trunk, caller ID and SIP Call-ID as trunks are tried).
const (
	callColumns    = "id, tenant_id, direction, to_number, created_at, channel, " + mutableColumns + ", " + referenceColumns
	mutableColumns = `trunk_id, from_number, source, sip_call_id, operator_id, status, hangup_by, sip_code, reason, codec, answered_at, ended_at, duration_ms,
	from_caller_packets, from_caller_bytes, from_caller_lost, from_caller_jitter_ms, from_caller_mos,
	to_caller_packets, to_caller_bytes, to_caller_lost, to_caller_jitter_ms, to_caller_mos,
	failure_leg, failure_stage, q850_cause, post_dial_delay_ms, time_to_answer_ms, tags, api_error_code`
	// Written by integrations, and at the start of a call whose caller
	// brought a reference (a browser caller's token).
	referenceColumns = "external_ref, labels"
	// selectColumns are what a record is read with: callColumns and the
	// name of its trunk, written when the trunk is deleted.
	selectColumns = callColumns + ", trunk_name"
	// namedColumns are what actors read: selectColumns with the trunk's
	// (or WhatsApp connection's) name (its live one, or the one written when
	// it was deleted) and the
	// operator's (their name, else their email), both of the call's own
	// tenant.
	namedColumns = callColumns + `, COALESCE(NULLIF(trunk_name, ''),
		(SELECT t.name FROM trunks t WHERE t.tenant_id = calls.tenant_id AND t.id = calls.trunk_id),
		(SELECT w.name FROM whatsapp_connections w WHERE w.tenant_id = calls.tenant_id AND w.id = calls.trunk_id), ''),
	COALESCE((SELECT COALESCE(NULLIF(u.name, ''), u.email) FROM users u WHERE u.tenant_id = calls.tenant_id AND u.id = calls.operator_id), '')`
)

// identityArgs is how many of callColumns come before mutableColumns.
const identityArgs = 6

// appendMutableArgs appends mutableColumns' values to args.
func appendMutableArgs(args []any, c *sb.Call) []any {
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	return append(args, c.TrunkID, c.From, c.Source, c.SIPCallID, c.OperatorID, c.Status, c.HangupBy, c.SIPCode, c.Reason, c.Codec, c.AnsweredAt, c.EndedAt, c.DurationMS,
		int64(c.FromCaller.Packets), int64(c.FromCaller.Bytes), c.FromCaller.Lost, c.FromCaller.JitterMS, c.FromCaller.MOS,
		int64(c.ToCaller.Packets), int64(c.ToCaller.Bytes), c.ToCaller.Lost, c.ToCaller.JitterMS, c.ToCaller.MOS,
		c.FailureLeg, c.FailureStage, c.Q850Cause, c.PostDialDelayMS, c.TimeToAnswerMS, tags, c.APIErrorCode)
}

// mutableArgCount is how many values mutableColumns take, counted from
// appendMutableArgs itself so the statements below cannot drift from it.
var mutableArgCount = len(appendMutableArgs(nil, &sb.Call{}))

// scanCall reads a record of selectColumns.
func scanCall(row pgx.Row) (*sb.Call, error) { return scanCallWith(row) }

// scanNamedCall reads a record of namedColumns.
func scanNamedCall(row pgx.Row) (*sb.Call, error) {
	var operator string
	c, err := scanCallWith(row, &operator)
	if c != nil {
		c.OperatorName = operator
	}
	return c, err
}

func scanCallWith(row pgx.Row, extra ...any) (*sb.Call, error) {
	c := &sb.Call{}
	var fp, fb, tp, tb int64
	err := row.Scan(append([]any{&c.ID, &c.TenantID, &c.Direction, &c.To, &c.CreatedAt, &c.Channel,
		&c.TrunkID, &c.From, &c.Source, &c.SIPCallID, &c.OperatorID, &c.Status, &c.HangupBy, &c.SIPCode, &c.Reason, &c.Codec, &c.AnsweredAt, &c.EndedAt, &c.DurationMS,
		&fp, &fb, &c.FromCaller.Lost, &c.FromCaller.JitterMS, &c.FromCaller.MOS,
		&tp, &tb, &c.ToCaller.Lost, &c.ToCaller.JitterMS, &c.ToCaller.MOS,
		&c.FailureLeg, &c.FailureStage, &c.Q850Cause, &c.PostDialDelayMS, &c.TimeToAnswerMS, &c.Tags, &c.APIErrorCode, &c.ExternalRef, &c.Labels, &c.TrunkName}, extra...)...)
	c.FromCaller.Packets, c.FromCaller.Bytes = uint64(fp), uint64(fb)
	c.ToCaller.Packets, c.ToCaller.Bytes = uint64(tp), uint64(tb)
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	return c, err
}

// placeholders returns "$from, ..., $to".
func placeholders(from, to int) string {
	p := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		p = append(p, "$"+strconv.Itoa(i))
	}
	return strings.Join(p, ", ")
}

// The statements of CreateCall and UpdateCall, built once: they are the
// same for every call, and building them for each cost a call a dozen
// allocations.
var (
	// createCallSQL takes callColumns' values and the instance.
	createCallSQL = "INSERT INTO calls (" + callColumns + ", instance) VALUES (" +
		placeholders(1, identityArgs+mutableArgCount+3) + ")"
	// updateCallSQL takes the tenant and call ID, mutableColumns' values
	// and the external reference.
	updateCallSQL = "UPDATE calls SET (" + mutableColumns + ") = ROW(" + placeholders(3, 2+mutableArgCount) +
		"), external_ref = CASE WHEN external_ref = '' THEN $" + strconv.Itoa(3+mutableArgCount) +
		" ELSE external_ref END WHERE tenant_id = $1 AND id = $2"
)

// CreateCall inserts a new call record, setting its ID and creation time
// when zero.
func (s *CallStore) CreateCall(ctx context.Context, c *sb.Call) error {
	sql, args := s.createCallStmt(s.prepareCall(c))
	_, err := s.db.q(ctx).Exec(ctx, sql, args...)
	return mapError(err, "call")
}

// prepareCall gives a new call its ID and creation time if it has none.
func (s *CallStore) prepareCall(c *sb.Call) *sb.Call {
	if c.ID == (sb.ID{}) {
		c.ID = sb.NewID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.db.now()
	}
	return c
}

// createCallStmt is CreateCall's statement, once the call has its ID and
// creation time.
func (s *CallStore) createCallStmt(c *sb.Call) (string, []any) {
	labels := c.Labels
	if labels == nil {
		labels = []string{}
	}
	args := make([]any, 0, identityArgs+mutableArgCount+3)
	args = append(args, c.ID, c.TenantID, c.Direction, c.To, c.CreatedAt, c.Channel)
	return createCallSQL, append(appendMutableArgs(args, c), c.ExternalRef, labels, s.instance)
}

// UpdateCall writes the call's mutable state. A reference the call
// learnt after it began (the messenger's call ID of a call we placed) is
// written only where the record has none: one an integration set stays.
func (s *CallStore) UpdateCall(ctx context.Context, c *sb.Call) error {
	sql, args := updateCallStmt(c)
	tag, err := s.db.q(ctx).Exec(ctx, sql, args...)
	return updatedCall(tag, err)
}

// WriteCallStep writes the step's parts one after the other, the state
// last (CallWriter writes many steps in one transaction).
func (s *CallStore) WriteCallStep(ctx context.Context, step *sb.CallStep) error {
	return step.WriteApart(ctx, s)
}

// updateCallStmt is UpdateCall's statement.
func updateCallStmt(c *sb.Call) (string, []any) {
	args := make([]any, 0, 2+mutableArgCount+1)
	args = append(args, c.TenantID, c.ID)
	return updateCallSQL, append(appendMutableArgs(args, c), c.ExternalRef)
}

// updatedCall is UpdateCall's answer from its statement's.
func updatedCall(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return mapError(err, "call")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "call not found")
	}
	return nil
}

// eventRows appends events' rows to rows, giving each its ID and time if
// it has none. A call's events share its tenant and call, boxed once, and
// the rows' cells come from one array.
func (s *CallStore) eventRows(rows [][]any, events []*sb.CallEvent) [][]any {
	now := s.db.now()
	var call, tenant lastBox[sb.ID]
	cells := make([]any, eventColumns*len(events))
	for i, e := range events {
		if e.ID == (sb.ID{}) {
			e.ID = sb.NewID()
		}
		if e.At.IsZero() {
			e.At = now
		}
		var detail any
		if len(e.Detail) > 0 {
			detail = e.Detail
		}
		row := cells[i*eventColumns : (i+1)*eventColumns : (i+1)*eventColumns]
		row[0], row[1], row[2], row[3], row[4], row[5] = e.ID, call.get(e.CallID, boxID), tenant.get(e.TenantID, boxID), e.At, string(e.Type), detail
		rows = append(rows, row)
	}
	return rows
}

// eventColumns are call_events' columns, in the order of its rows' cells.
var (
	eventColumns     = len(eventColumnNames)
	eventColumnNames = []string{"id", "call_id", "tenant_id", "at", "type", "detail"}
)

func boxID(id sb.ID) any { return id }

// copyEvents stores event rows in one COPY.
func copyEvents(ctx context.Context, q querier, rows [][]any) error {
	_, err := q.CopyFrom(ctx, pgx.Identifier{"call_events"}, eventColumnNames, pgx.CopyFromRows(rows))
	if err != nil {
		return mapError(fmt.Errorf("metadata: add call events: %w", err), "call")
	}
	return nil
}

// AddCallEvents appends events in one round trip.
func (s *CallStore) AddCallEvents(ctx context.Context, events ...*sb.CallEvent) error {
	if len(events) == 0 {
		return nil
	}
	rows := s.eventRows(nil, events)
	err := copyEvents(ctx, s.db.q(ctx), rows)
	if sb.ErrorCode(err) != sb.ECONFLICT {
		return err
	}
	// Some are stored already (a journal replaying them): add the rest,
	// and make sure the stored ones are these, not others with their IDs.
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		for i, r := range rows {
			tag, err := tx.Exec(ctx, `INSERT INTO call_events (id, call_id, tenant_id, at, type, detail) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (id) DO NOTHING`, r...)
			if err != nil {
				return mapError(fmt.Errorf("metadata: add call events: %w", err), "call")
			}
			if tag.RowsAffected() == 1 {
				continue
			}
			var same bool
			if err := tx.QueryRow(ctx, "SELECT call_id = $2 AND tenant_id = $3 AND type = $4 FROM call_events WHERE id = $1",
				events[i].ID, events[i].CallID, events[i].TenantID, string(events[i].Type)).Scan(&same); err != nil {
				return fmt.Errorf("metadata: add call events: %w", err)
			}
			if !same {
				return sb.Errorf(sb.ECONFLICT, "event %s exists already", events[i].ID)
			}
		}
		return nil
	})
}

// scope returns the WHERE clause that limits reads to what the actor may
// see, and its arguments: the tenant always, and an operator's own calls.
func scope(a *sb.Actor) (string, []any) {
	if a.Role == sb.RoleOperator {
		return "tenant_id = $1 AND operator_id = $2", []any{a.TenantID, a.UserID}
	}
	return "tenant_id = $1", []any{a.TenantID}
}

// FindCalls returns the calls matching f that the actor may see, newest
// first.
func (s *CallStore) FindCalls(ctx context.Context, f sb.CallFilter) ([]*sb.Call, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	where, args := scope(a)
	conds := []string{where}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Since != nil {
		add("created_at >= ?", *f.Since)
	}
	if f.Until != nil {
		add("created_at < ?", *f.Until)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
		if f.Status == sb.CallRinging || f.Status == sb.CallAnswered {
			// A call in progress: the index of live calls serves it
			// (status is in no index: the answer's update is HOT).
			conds = append(conds, "ended_at IS NULL")
		}
	}
	if f.Number != "" {
		add("(from_number = ? OR to_number = ?)", f.Number)
	}
	if f.OperatorID != nil {
		add("operator_id = ?", *f.OperatorID)
	}
	if f.Tag != "" {
		// The first condition is the tag index's predicate: untagged
		// calls, most of them, are not in it.
		add("tags <> '{}' AND tags @> ARRAY[?::text]", f.Tag)
	}
	if f.Failed {
		conds = append(conds, "failure_stage <> ''")
	}
	if f.ExternalRef != "" {
		add("external_ref = ?", f.ExternalRef)
	}
	if f.Label != "" {
		add("labels @> ARRAY[?::text]", f.Label)
	}
	if f.InProgress {
		// A call not ended is ringing or answered: the first condition
		// is the index of live calls'.
		conds = append(conds, "ended_at IS NULL AND status IN ('ringing', 'answered')")
	}
	if f.After != nil {
		add("(created_at, id) < (SELECT created_at, id FROM calls WHERE tenant_id = $1 AND id = ?)", *f.After)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultCallLimit
	}
	limit = min(limit, maxCallLimit)
	rows, err := s.db.pool.Query(ctx, "SELECT "+namedColumns+" FROM calls WHERE "+strings.Join(conds, " AND ")+
		" ORDER BY created_at DESC, id DESC LIMIT "+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("metadata: find calls: %w", err)
	}
	defer rows.Close()
	calls := []*sb.Call{}
	for rows.Next() {
		c, err := scanNamedCall(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: find calls: %w", err)
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metadata: find calls: %w", err)
	}
	return calls, nil
}

// FindCallByID returns the call, or ENOTFOUND if the actor may not see it.
func (s *CallStore) FindCallByID(ctx context.Context, id sb.ID) (*sb.Call, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	where, args := scope(a)
	args = append(args, id)
	c, err := scanNamedCall(s.db.pool.QueryRow(ctx, "SELECT "+namedColumns+" FROM calls WHERE "+where+" AND id = $"+strconv.Itoa(len(args)), args...))
	if err != nil {
		return nil, mapError(err, "call")
	}
	return c, nil
}

// FindCallEvents returns the call's timeline in order, or ENOTFOUND.
func (s *CallStore) FindCallEvents(ctx context.Context, id sb.ID) ([]*sb.CallEvent, error) {
	c, err := s.FindCallByID(ctx, id)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, "SELECT id, call_id, tenant_id, at, type, detail FROM call_events WHERE tenant_id = $1 AND call_id = $2 ORDER BY at, id",
		c.TenantID, c.ID)
	if err != nil {
		return nil, fmt.Errorf("metadata: call events: %w", err)
	}
	defer rows.Close()
	events := []*sb.CallEvent{}
	for rows.Next() {
		e := &sb.CallEvent{}
		if err := rows.Scan(&e.ID, &e.CallID, &e.TenantID, &e.At, &e.Type, &e.Detail); err != nil {
			return nil, fmt.Errorf("metadata: call events: %w", err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metadata: call events: %w", err)
	}
	return events, nil
}

// SetCallReference attaches a call's reference in another system and its
// labels: for API keys (integrations), supervisors and admins of the
// call's tenant.
func (s *CallStore) SetCallReference(ctx context.Context, callID sb.ID, externalRef string, labels []string) (*sb.Call, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role != sb.RoleSupervisor && a.Role != sb.RoleAdmin || visiting(a) {
		return nil, sb.Errorf(sb.EFORBIDDEN, "references are set by integrations, supervisors and admins")
	}
	if len(externalRef) > 200 || len(labels) > 20 {
		return nil, sb.Errorf(sb.EINVALID, "external_ref: at most 200 characters; labels: at most 20")
	}
	for _, l := range labels {
		if l == "" || len(l) > 50 {
			return nil, sb.Errorf(sb.EINVALID, "labels: each from 1 to 50 characters")
		}
	}
	if labels == nil {
		labels = []string{}
	}
	tag, err := s.db.pool.Exec(ctx, "UPDATE calls SET external_ref = $3, labels = $4 WHERE tenant_id = $1 AND id = $2",
		a.TenantID, callID, externalRef, labels)
	if err != nil {
		return nil, mapError(err, "call")
	}
	if tag.RowsAffected() == 0 {
		return nil, sb.Errorf(sb.ENOTFOUND, "call not found")
	}
	return s.FindCallByID(ctx, callID)
}

// RecoverCalls closes the records of the calls this instance was running
// when it stopped without ending them (a crash, SIGKILL): failed in
// switchboard, ended at their last known moment, at the stage they had
// reached. It returns how many.
func (s *CallStore) RecoverCalls(ctx context.Context) (int64, error) {
	tag, err := s.db.pool.Exec(ctx, `WITH last AS (
			SELECT c.id, greatest(c.created_at, c.answered_at,
				(SELECT max(e.at) FROM call_events e WHERE e.tenant_id = c.tenant_id AND e.call_id = c.id)) AS at
			FROM calls c WHERE c.instance = $1 AND c.ended_at IS NULL)
		UPDATE calls c SET status = 'failed', hangup_by = 'system',
			reason = 'the service stopped unexpectedly during the call',
			ended_at = last.at,
			duration_ms = CASE WHEN c.answered_at IS NULL THEN 0 ELSE (extract(epoch FROM last.at - c.answered_at) * 1000)::bigint END,
			failure_leg = CASE WHEN c.failure_leg = '' THEN 'switchboard' ELSE c.failure_leg END,
			failure_stage = CASE WHEN c.failure_stage <> '' THEN c.failure_stage WHEN c.answered_at IS NULL THEN 'ringing' ELSE 'media' END
		FROM last WHERE c.id = last.id`, s.instance)
	if err != nil {
		return 0, fmt.Errorf("metadata: recover calls: %w", err)
	}
	return tag.RowsAffected(), nil
}
