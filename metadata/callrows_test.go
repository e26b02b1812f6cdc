package metadata

import (
	"net/netip"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// mustCallWithRows stores a call of tenant with an event, a SIP message
// and a quality sample.
func mustCallWithRows(t *testing.T, db *DB, tenant sb.ID) *sb.Call {
	t.Helper()
	ctx := mustCtx(t)
	store := NewCallStore(db)
	c := &sb.Call{TenantID: tenant, Direction: sb.Inbound, To: "2000", Status: sb.CallCompleted}
	if err := store.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := store.AddCallEvents(ctx, &sb.CallEvent{CallID: c.ID, TenantID: tenant, Type: sb.EventHungUp}); err != nil {
		t.Fatal(err)
	}
	at := netip.MustParseAddrPort("192.0.2.1:5060")
	if err := store.AddCallTrace(ctx, &sb.CallTrace{TenantID: tenant, CallID: c.ID,
		SIP:     []sb.SIPMessage{{Inbound: true, Transport: "udp", Src: at, Dst: at, Message: "BYE sip:x SIP/2.0\r\n\r\n"}},
		Quality: []sb.QualitySample{{Leg: "trunk", Source: "switchboard", Packets: 50}}}); err != nil {
		t.Fatal(err)
	}
	return c
}

// rowsOf counts the call's rows in each of the tables that hang off it.
func rowsOf(t *testing.T, db *DB, callID sb.ID) (events, sip, quality int) {
	t.Helper()
	if err := db.pool.QueryRow(mustCtx(t), `SELECT
		(SELECT count(*) FROM call_events WHERE call_id = $1),
		(SELECT count(*) FROM call_sip_messages WHERE call_id = $1),
		(SELECT count(*) FROM call_quality_samples WHERE call_id = $1)`, callID).Scan(&events, &sip, &quality); err != nil {
		t.Fatal(err)
	}
	return events, sip, quality
}

// A timeline entry, SIP message or quality sample must name a call of
// its own tenant, written straight or through the writer: anything else
// is ENOTFOUND and stores nothing.
func TestCallRowsNeedTheirCall(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	a, b := mustTenant(t, db, "A"), mustTenant(t, db, "B")
	theirs := mustCallWithRows(t, db, a.ID)
	store := NewCallStore(db)
	writer := NewCallWriter(store, 1)
	defer writer.Close()
	at := netip.MustParseAddrPort("192.0.2.1:5060")
	for _, c := range []struct {
		name           string
		tenant, callID sb.ID
	}{
		{"a call that does not exist", a.ID, sb.NewID()},
		{"another tenant's call", b.ID, theirs.ID},
	} {
		for _, rec := range []struct {
			name string
			rec  sb.CallRecorder
		}{{"store", store}, {"writer", writer}} {
			events := rec.rec.AddCallEvents(ctx, &sb.CallEvent{CallID: c.callID, TenantID: c.tenant, Type: sb.EventHungUp})
			sip := rec.rec.AddCallTrace(ctx, &sb.CallTrace{TenantID: c.tenant, CallID: c.callID,
				SIP: []sb.SIPMessage{{Inbound: true, Transport: "udp", Src: at, Dst: at, Message: "BYE sip:x SIP/2.0\r\n\r\n"}}})
			quality := rec.rec.AddCallTrace(ctx, &sb.CallTrace{TenantID: c.tenant, CallID: c.callID,
				Quality: []sb.QualitySample{{Leg: "trunk", Source: "switchboard", Packets: 50}}})
			for what, err := range map[string]error{"events": events, "SIP messages": sip, "quality samples": quality} {
				if sb.ErrorCode(err) != sb.ENOTFOUND {
					t.Errorf("%s for %s through the %s: %v, want ENOTFOUND", what, c.name, rec.name, err)
				}
			}
		}
		var n int
		if err := db.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM call_events WHERE tenant_id = $1 AND call_id = $2)
			+ (SELECT count(*) FROM call_sip_messages WHERE tenant_id = $1 AND call_id = $2)
			+ (SELECT count(*) FROM call_quality_samples WHERE tenant_id = $1 AND call_id = $2)`, c.tenant, c.callID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows stored", c.name, n)
		}
	}
}

// Rows go with their call when it is deleted — by hand, or with its
// tenant — and a call's identity cannot change under them. The app
// deletes no call (retention anonymises calls and deletes their rows
// itself; a deleted tenant is only marked), so this is what the schema
// promises whoever does: a change that replaces the calls' foreign keys
// must keep it.
func TestDeletedCallTakesItsRows(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	a, b := mustTenant(t, db, "A"), mustTenant(t, db, "B")
	one, kept := mustCallWithRows(t, db, a.ID), mustCallWithRows(t, db, a.ID)
	other := mustCallWithRows(t, db, b.ID)
	if _, err := db.pool.Exec(ctx, "UPDATE calls SET id = $2 WHERE id = $1", one.ID, sb.NewID()); sb.ErrorCode(mapError(err, "call")) != sb.ENOTFOUND {
		t.Errorf("changing a call's id: %v, want it refused", err)
	}
	if _, err := db.pool.Exec(ctx, "UPDATE calls SET tenant_id = $2 WHERE id = $1", one.ID, b.ID); sb.ErrorCode(mapError(err, "call")) != sb.ENOTFOUND {
		t.Errorf("moving a call to another tenant: %v, want it refused", err)
	}
	if _, err := db.pool.Exec(ctx, "DELETE FROM calls WHERE id = $1", one.ID); err != nil {
		t.Fatal(err)
	}
	if e, s, q := rowsOf(t, db, one.ID); e+s+q != 0 {
		t.Errorf("a deleted call left %d events, %d SIP messages, %d quality samples", e, s, q)
	}
	if e, s, q := rowsOf(t, db, kept.ID); e != 1 || s != 1 || q != 1 {
		t.Errorf("another call of the tenant kept %d events, %d SIP messages, %d quality samples; want one of each", e, s, q)
	}
	if _, err := db.pool.Exec(ctx, "DELETE FROM tenants WHERE id = $1", b.ID); err != nil {
		t.Fatal(err)
	}
	if e, s, q := rowsOf(t, db, other.ID); e+s+q != 0 {
		t.Errorf("a deleted tenant's call left %d events, %d SIP messages, %d quality samples", e, s, q)
	}
}
