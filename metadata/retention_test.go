package metadata

import (
	"net/netip"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The retention sweep removes exactly what has expired, class by class
// and tenant by tenant, by the injected clock; the dry run counts the same.
func TestRetentionSweepsEachClass(t *testing.T) {
	w := newSubjectWorld(t) // Alice's and Bob's calls, traces, samples, payloads, at w.now
	ctx := mustCtx(t)
	tenants := NewTenantService(w.db)
	if err := tenants.SetPrivacyPolicy(ctx, w.tenant.ID, sb.PrivacyPolicy{CallRetentionDays: 10, QualityRetentionDays: 5}); err != nil {
		t.Fatal(err)
	}
	if err := tenants.SetTracePolicy(ctx, w.tenant.ID, sb.TracePolicy{RetentionDays: 3}); err != nil {
		t.Fatal(err)
	}
	if err := tenants.SetPrivacyPolicy(ctx, w.tenant.ID, sb.PrivacyPolicy{CallRetentionDays: 0, QualityRetentionDays: 5}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("a zero-day retention: %v", err)
	}
	// A call of a day later, whose trace outlives the others'.
	calls := NewCallStore(w.db)
	later := w.now.Add(24 * time.Hour)
	late := &sb.Call{ID: sb.NewID(), TenantID: w.tenant.ID, Direction: sb.Inbound, From: "+15550009999", To: "2000", Status: sb.CallCompleted, CreatedAt: later, EndedAt: &later}
	if err := calls.CreateCall(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := calls.AddCallTrace(ctx, &sb.CallTrace{TenantID: w.tenant.ID, CallID: late.ID,
		SIP:     []sb.SIPMessage{{At: later, Inbound: true, Transport: "udp", Src: netip.MustParseAddrPort("203.0.113.5:5060"), Dst: netip.MustParseAddrPort("192.0.2.1:5060"), Message: "INVITE"}},
		Quality: []sb.QualitySample{{At: later, Leg: "trunk", Source: "switchboard"}}}); err != nil {
		t.Fatal(err)
	}
	// Another tenant keeps everything a year.
	other := mustTenant(t, w.db, "Other")
	old := &sb.Call{ID: sb.NewID(), TenantID: other.ID, Direction: sb.Inbound, From: "+15550008888", To: "3000", Status: sb.CallCompleted, CreatedAt: w.now, EndedAt: &w.now}
	if err := calls.CreateCall(ctx, old); err != nil {
		t.Fatal(err)
	}

	start := w.now
	step := func(days int, want RetentionReport) {
		t.Helper()
		w.now = start.Add(time.Duration(days)*24*time.Hour + time.Hour)
		dry, err := calls.ExpiredData(ctx)
		if err != nil || dry != want {
			t.Errorf("day %d dry run: %+v, %v; want %+v", days, dry, err, want)
		}
		var seen int64
		got, err := calls.SweepData(ctx, func(n int64) { seen = n })
		if err != nil || got != want || seen != want.Calls {
			t.Errorf("day %d sweep: %+v (progress %d), %v; want %+v", days, got, seen, err, want)
		}
	}
	step(2, RetentionReport{})                                           // nothing is old enough
	step(3, RetentionReport{SIPMessages: 4})                             // the day's traces; not the later call's
	step(4, RetentionReport{SIPMessages: 1})                             // the later call's trace
	step(5, RetentionReport{QualitySamples: 4})                          // the day's samples
	step(6, RetentionReport{QualitySamples: 1})                          // the later call's
	step(10, RetentionReport{Calls: 4, Events: 4, WebhookDeliveries: 4}) // the day's ended calls
	step(11, RetentionReport{Calls: 1})                                  // the later call
	step(30, RetentionReport{})                                          // the other tenant keeps its call

	if found := w.rowsHolding(t, alice); len(found) != 0 {
		t.Errorf("after the call retention Alice's number is in %v", found)
	}
	var sweeps int
	w.db.pool.QueryRow(ctx, "SELECT count(*) FROM audit_log WHERE action = 'retention.sweep'").Scan(&sweeps)
	if sweeps != 6 {
		t.Errorf("%d sweeps audited, want the 6 that removed something", sweeps)
	}
	var anonymised, total int
	w.db.pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE anonymised_at IS NOT NULL), count(*) FROM calls").Scan(&anonymised, &total)
	// Records stay and who called goes; a call still in progress (the
	// grant world's, never ended) and the other tenant's are left alone.
	if anonymised != 5 || total != 7 {
		t.Errorf("%d of %d calls anonymised, want 5 of 7", anonymised, total)
	}
}
