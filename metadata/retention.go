package metadata

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// SetPrivacyPolicy changes how long a tenant keeps call records and
// quality samples, and whether operators see numbers whole. It runs as the
// system (provisioning).
func (s *TenantService) SetPrivacyPolicy(ctx context.Context, tenantID sb.ID, p sb.PrivacyPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE tenants SET call_retention_days = $2, quality_retention_days = $3, mask_operator_numbers = $4
		WHERE id = $1`, tenantID, p.CallRetentionDays, p.QualityRetentionDays, p.MaskOperatorNumbers)
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}

// RetentionReport counts what a retention sweep removed, or in a dry run
// would remove, in each data class but recordings (their own sweep).
type RetentionReport struct {
	SIPMessages       int64 `json:"sip_messages"`       // deleted after the trace retention
	QualitySamples    int64 `json:"quality_samples"`    // deleted after the quality retention
	Calls             int64 `json:"calls"`              // anonymised after the call retention
	Events            int64 `json:"events"`             // the anonymised calls' timelines, deleted
	WebhookDeliveries int64 `json:"webhook_deliveries"` // stored payloads past the call retention, deleted
}

// expiry is one class's expired rows at $1: its table (aliased x, joined
// with its tenant t) and the condition.
type expiry struct{ table, cond string }

func (e expiry) count() string {
	return "SELECT count(*) FROM " + e.table + " x JOIN tenants t ON t.id = x.tenant_id WHERE " + e.cond
}

func (e expiry) delete() string {
	return "DELETE FROM " + e.table + " x USING tenants t WHERE t.id = x.tenant_id AND " + e.cond
}

var (
	expiredSIP        = expiry{"call_sip_messages", "x.at < $1::timestamptz - make_interval(days => t.trace_retention_days)"}
	expiredQuality    = expiry{"call_quality_samples", "x.at < $1::timestamptz - make_interval(days => t.quality_retention_days)"}
	expiredDeliveries = expiry{"webhook_deliveries", "x.status <> 'pending' AND x.created_at < $1::timestamptz - make_interval(days => t.call_retention_days)"}
	expiredCalls      = expiry{"calls", "x.anonymised_at IS NULL AND x.ended_at IS NOT NULL AND x.created_at < $1::timestamptz - make_interval(days => t.call_retention_days)"}
)

// ExpiredData counts what a sweep would remove now: the dry run.
func (s *CallStore) ExpiredData(ctx context.Context) (RetentionReport, error) {
	var r RetentionReport
	now := s.db.now()
	for _, c := range []struct {
		n     *int64
		query string
	}{
		{&r.SIPMessages, expiredSIP.count()},
		{&r.QualitySamples, expiredQuality.count()},
		{&r.Calls, expiredCalls.count()},
		{&r.Events, "SELECT count(*) FROM call_events e WHERE e.call_id IN (SELECT x.id FROM calls x JOIN tenants t ON t.id = x.tenant_id WHERE " + expiredCalls.cond + ")"},
		{&r.WebhookDeliveries, expiredDeliveries.count()},
	} {
		if err := s.db.pool.QueryRow(ctx, c.query, now).Scan(c.n); err != nil {
			return r, fmt.Errorf("metadata: retention count: %w", err)
		}
	}
	return r, nil
}

// SweepData removes what has expired in every class but recordings:
// traces and samples deleted, call records anonymised (a thousand at a
// time, each batch with its timelines) and old webhook payloads deleted.
// progress, if set, hears the calls anonymised so far.
func (s *CallStore) SweepData(ctx context.Context, progress func(calls int64)) (RetentionReport, error) {
	var r RetentionReport
	now := s.db.now()
	for _, c := range []struct {
		n     *int64
		query string
	}{
		{&r.SIPMessages, expiredSIP.delete()},
		{&r.QualitySamples, expiredQuality.delete()},
		{&r.WebhookDeliveries, expiredDeliveries.delete()},
	} {
		tag, err := s.db.pool.Exec(ctx, c.query, now)
		if err != nil {
			return r, fmt.Errorf("metadata: retention: %w", err)
		}
		*c.n = tag.RowsAffected()
	}
	for {
		var calls, events int64
		err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT x.id FROM calls x JOIN tenants t ON t.id = x.tenant_id WHERE "+expiredCalls.cond+
				" ORDER BY x.created_at LIMIT 1000 FOR UPDATE OF x SKIP LOCKED", now)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[sb.ID])
			if err != nil || len(ids) == 0 {
				return err
			}
			tag, err := tx.Exec(ctx, `UPDATE calls SET from_number = CASE WHEN direction = 'inbound' THEN '' ELSE from_number END,
				to_number = CASE WHEN direction = 'outbound' THEN '' ELSE to_number END,
				external_ref = '', labels = '{}', source = '', sip_call_id = '', anonymised_at = $2 WHERE id = ANY($1)`, ids, now)
			if err != nil {
				return err
			}
			calls = tag.RowsAffected()
			tag, err = tx.Exec(ctx, "DELETE FROM call_events WHERE call_id = ANY($1)", ids)
			if err != nil {
				return err
			}
			events = tag.RowsAffected()
			// A trace kept longer than its call's record would keep the
			// numbers the record gave up.
			tag, err = tx.Exec(ctx, "DELETE FROM call_sip_messages WHERE call_id = ANY($1)", ids)
			r.SIPMessages += tag.RowsAffected()
			return err
		})
		if err != nil {
			return r, fmt.Errorf("metadata: call retention: %w", err)
		}
		if calls == 0 {
			return r, s.auditSweep(ctx, r)
		}
		r.Calls += calls
		r.Events += events
		if progress != nil {
			progress(r.Calls)
		}
	}
}

// auditSweep records what a sweep removed, when it removed anything.
func (s *CallStore) auditSweep(ctx context.Context, r RetentionReport) error {
	if r == (RetentionReport{}) {
		return nil
	}
	e := &sb.AuditEntry{Action: "retention.sweep", ResourceType: "data",
		Detail: fmt.Sprintf("%d SIP messages, %d quality samples, %d webhook payloads deleted; %d call records anonymised, %d timeline entries deleted",
			r.SIPMessages, r.QualitySamples, r.WebhookDeliveries, r.Calls, r.Events)}
	return s.db.inTx(ctx, func(tx pgx.Tx) error { return appendAudit(ctx, tx, s.db.now(), e) })
}
