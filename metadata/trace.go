package metadata

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// AddCallTrace stores a call's SIP messages, redacted by its tenant's
// trace policy first, and its quality samples, in one transaction.
func (s *CallStore) AddCallTrace(ctx context.Context, t *sb.CallTrace) error {
	if len(t.SIP) == 0 && len(t.Quality) == 0 {
		return nil
	}
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		var p sb.TracePolicy
		var stored bool
		if err := tx.QueryRow(ctx, tracePolicySQL, t.TenantID, t.CallID).Scan(&p.DropBodies, &p.MaskNumbers, &stored); err != nil {
			return mapError(err, "tenant")
		}
		if stored {
			return nil
		}
		sip, quality := traceRows(nil, nil, t, p)
		return copyTrace(ctx, tx, sip, quality)
	})
}

// tracePolicySQL reads the tenant's trace policy ($1), and whether the
// call's ($2) trace is stored already: a call's trace is stored once, when
// it ends, so one already there is this one, replayed by a journal.
const tracePolicySQL = `SELECT trace_drop_bodies, trace_mask_numbers,
	EXISTS (SELECT 1 FROM call_sip_messages WHERE tenant_id = $1 AND call_id = $2)
	OR EXISTS (SELECT 1 FROM call_quality_samples WHERE tenant_id = $1 AND call_id = $2)
	FROM tenants WHERE id = $1`

// traceRows appends t's SIP messages, redacted by p, and its quality
// samples to the rows of their tables. What a trace's rows share (its
// tenant and call, mostly two addresses and one transport) is boxed once,
// and each table's cells come from one array: a row was ten allocations.
func traceRows(sip, quality [][]any, t *sb.CallTrace, p sb.TracePolicy) ([][]any, [][]any) {
	tenant, call := any(t.TenantID), any(t.CallID)
	var src, dst lastBox[netip.AddrPort]
	var transport lastBox[string]
	cells := make([]any, sipColumns*len(t.SIP))
	for i, m := range t.SIP {
		m = m.Redact(p)
		row := cells[i*sipColumns : (i+1)*sipColumns : (i+1)*sipColumns]
		row[0], row[1], row[2], row[3], row[4] = tenant, call, i+1, m.At, m.Inbound
		row[5], row[6], row[7], row[8] = transport.get(m.Transport, boxString), src.get(m.Src, addrText), dst.get(m.Dst, addrText), m.Message
		sip = append(sip, row)
	}
	cells = make([]any, qualityColumns*len(t.Quality))
	for i, q := range t.Quality {
		row := cells[i*qualityColumns : (i+1)*qualityColumns : (i+1)*qualityColumns]
		row[0], row[1], row[2], row[3], row[4] = tenant, call, q.At, q.Leg, q.Source
		row[5], row[6], row[7], row[8] = int64(q.Packets), q.Lost, q.JitterMS, q.RTTMS
		quality = append(quality, row)
	}
	return sip, quality
}

// The columns of a trace's tables, in the order of their rows' cells.
var (
	sipColumns     = len(sipColumnNames)
	sipColumnNames = []string{"tenant_id", "call_id", "seq", "at", "inbound", "transport", "src", "dst", "message"}

	qualityColumns     = len(qualityColumnNames)
	qualityColumnNames = []string{"tenant_id", "call_id", "at", "leg", "source", "packets", "lost", "jitter_ms", "rtt_ms"}
)

// lastBox boxes a value once for the rows that repeat it one after
// another.
type lastBox[K comparable] struct {
	k K
	v any
}

func (l *lastBox[K]) get(k K, box func(K) any) any {
	if l.v == nil || k != l.k {
		l.k, l.v = k, box(k)
	}
	return l.v
}

func boxString(s string) any        { return s }
func addrText(a netip.AddrPort) any { return a.String() }

// copyTrace stores trace rows, a COPY for each table that has any: a COPY
// of nothing is still a round trip.
func copyTrace(ctx context.Context, q querier, sip, quality [][]any) error {
	if len(sip) > 0 {
		if _, err := q.CopyFrom(ctx, pgx.Identifier{"call_sip_messages"}, sipColumnNames, pgx.CopyFromRows(sip)); err != nil {
			return mapError(fmt.Errorf("metadata: trace: %w", err), "call")
		}
	}
	if len(quality) > 0 {
		if _, err := q.CopyFrom(ctx, pgx.Identifier{"call_quality_samples"}, qualityColumnNames, pgx.CopyFromRows(quality)); err != nil {
			return mapError(fmt.Errorf("metadata: quality samples: %w", err), "call")
		}
	}
	return nil
}

// FindCallTrace returns a call's SIP messages and quality samples, to the
// supervisors, support engineers and admins who may see the call.
func (s *CallStore) FindCallTrace(ctx context.Context, callID sb.ID) (*sb.CallTrace, error) {
	a, err := actor(ctx)
	if err != nil {
		return nil, err
	}
	if a.Role == sb.RoleOperator {
		return nil, sb.Errorf(sb.EFORBIDDEN, "call traces are for supervisors, support engineers and admins")
	}
	c, err := s.FindCallByID(ctx, callID)
	if err != nil {
		return nil, err
	}
	t := &sb.CallTrace{TenantID: c.TenantID, CallID: c.ID, SIP: []sb.SIPMessage{}, Quality: []sb.QualitySample{}}
	rows, err := s.db.pool.Query(ctx, `SELECT at, inbound, transport, src, dst, message FROM call_sip_messages
		WHERE tenant_id = $1 AND call_id = $2 ORDER BY seq`, c.TenantID, c.ID)
	if err != nil {
		return nil, fmt.Errorf("metadata: trace: %w", err)
	}
	for rows.Next() {
		var m sb.SIPMessage
		var src, dst string
		if err := rows.Scan(&m.At, &m.Inbound, &m.Transport, &src, &dst, &m.Message); err != nil {
			rows.Close()
			return nil, fmt.Errorf("metadata: trace: %w", err)
		}
		m.Src, _ = netip.ParseAddrPort(src)
		m.Dst, _ = netip.ParseAddrPort(dst)
		// Traces stored before secrets were redacted on the wire.
		m.Message = sb.RedactSecrets(m.Message)
		t.SIP = append(t.SIP, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metadata: trace: %w", err)
	}
	rows, err = s.db.pool.Query(ctx, `SELECT at, leg, source, packets, lost, jitter_ms, rtt_ms FROM call_quality_samples
		WHERE tenant_id = $1 AND call_id = $2 ORDER BY at, leg, source`, c.TenantID, c.ID)
	if err != nil {
		return nil, fmt.Errorf("metadata: quality samples: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q sb.QualitySample
		var packets int64
		if err := rows.Scan(&q.At, &q.Leg, &q.Source, &packets, &q.Lost, &q.JitterMS, &q.RTTMS); err != nil {
			return nil, fmt.Errorf("metadata: quality samples: %w", err)
		}
		q.Packets = uint64(packets)
		t.Quality = append(t.Quality, q)
	}
	return t, rows.Err()
}

// SetTracePolicy changes what a tenant's call traces keep. It runs as the
// system (provisioning).
func (s *TenantService) SetTracePolicy(ctx context.Context, tenantID sb.ID, p sb.TracePolicy) error {
	if p.RetentionDays < 1 || p.RetentionDays > 3650 {
		return sb.Errorf(sb.EINVALID, "trace retention must be from 1 to 3650 days, not %s", strconv.Itoa(p.RetentionDays))
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE tenants SET trace_retention_days = $2, trace_drop_bodies = $3, trace_mask_numbers = $4
		WHERE id = $1`, tenantID, p.RetentionDays, p.DropBodies, p.MaskNumbers)
	if err != nil {
		return mapError(err, "tenant")
	}
	if tag.RowsAffected() == 0 {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	return nil
}
