package metadata

import (
	"context"
	"encoding/json"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

const (
	alice = "+15550001111"
	bob   = "+15550002222"
)

// subjectWorld is a tenant's day: three calls about Alice (two she made,
// one an operator made to her), one of Bob's, each with a timeline, a SIP
// trace, quality samples and a webhook payload; one recording of each.
type subjectWorld struct {
	*grantWorld
	aliceCalls []sb.ID
	bobCall    sb.ID
	recs       map[sb.ID]*sb.Recording // by call
	destroyed  []sb.ID                 // recordings the erasure destroyed
	subjects   *SubjectStore
}

func newSubjectWorld(t *testing.T) *subjectWorld {
	t.Helper()
	w := &subjectWorld{grantWorld: newGrantWorld(t, sb.SupportPolicy{MaxTTLSeconds: 3600}), recs: map[sb.ID]*sb.Recording{}}
	ctx := mustCtx(t)
	calls, records := NewCallStore(w.db), NewRecordingStore(w.db)
	hook := sb.NewID()
	if _, err := w.db.pool.Exec(ctx, "INSERT INTO webhooks (id, tenant_id, url, secret, events, created_at) VALUES ($1, $2, 'https://crm.test/h', 'x', '{call.ended}', now())",
		hook, w.tenant.ID); err != nil {
		t.Fatal(err)
	}
	add := func(dir sb.Direction, from, to string, recorded bool) sb.ID {
		c := &sb.Call{ID: sb.NewID(), TenantID: w.tenant.ID, Direction: dir, From: from, To: to, Status: sb.CallCompleted,
			Source: "udp:203.0.113.5:5060", SIPCallID: "abc-" + from, ExternalRef: "chat-" + from, CreatedAt: w.now}
		ended := w.now.Add(time.Minute)
		c.EndedAt = &ended
		if err := calls.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := calls.AddCallEvents(ctx, &sb.CallEvent{ID: sb.NewID(), CallID: c.ID, TenantID: w.tenant.ID, At: w.now, Type: sb.EventReceived,
			Detail: map[string]any{"from": from}}); err != nil {
			t.Fatal(err)
		}
		tr := &sb.CallTrace{TenantID: w.tenant.ID, CallID: c.ID,
			SIP: []sb.SIPMessage{{At: w.now, Inbound: true, Transport: "udp", Src: netip.MustParseAddrPort("203.0.113.5:5060"), Dst: netip.MustParseAddrPort("192.0.2.1:5060"),
				Message: "INVITE sip:" + to + "@192.0.2.1 SIP/2.0\r\nFrom: <sip:" + from + "@203.0.113.5>\r\n\r\n"}},
			Quality: []sb.QualitySample{{At: w.now, Leg: "trunk", Source: "switchboard", Packets: 50}}}
		if err := calls.AddCallTrace(ctx, tr); err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]any{"call": c})
		if _, err := w.db.pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event, payload, status, next_attempt_at, created_at)
			VALUES ($1, $2, $3, 'call.ended', $4, 'delivered', $5, $5)`, sb.NewID(), w.tenant.ID, hook, payload, w.now); err != nil {
			t.Fatal(err)
		}
		if recorded {
			rec := &sb.Recording{ID: sb.NewID(), TenantID: w.tenant.ID, CallID: c.ID, Status: sb.RecordingComplete, Codec: "PCMU", ClockRate: 8000,
				StartedAt: w.now, Consent: sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: w.now, Policy: sb.RecordWithConsent},
				ObjectKey: "tenants/x/recordings/" + c.ID.String(), KeyVersion: 1, WrappedKey: []byte("wrapped key")}
			if err := records.CreateRecording(ctx, rec); err != nil {
				t.Fatal(err)
			}
			w.recs[c.ID] = rec
		}
		return c.ID
	}
	w.aliceCalls = []sb.ID{add(sb.Inbound, alice, "2000", true), add(sb.Inbound, alice, "2000", false), add(sb.Outbound, "+4930123456", alice, false)}
	w.bobCall = add(sb.Inbound, bob, "2000", true)
	w.subjects = NewSubjectStore(w.db, func(ctx context.Context, rec *sb.Recording, _ string) error {
		w.destroyed = append(w.destroyed, rec.ID)
		rec.Status, rec.WrappedKey = sb.RecordingDestroyed, nil
		return records.UpdateRecording(ctx, rec)
	})
	return w
}

// withTokens adds that Alice and Bob each called once from the website
// too: the browser-caller token names them by number, with the reference
// the tenant gave. (Tokens go a day after they expire, not with the
// retention sweep.)
func (w *subjectWorld) withTokens(t *testing.T) *subjectWorld {
	t.Helper()
	ctx := mustCtx(t)
	trunk := &sb.Trunk{TenantID: w.tenant.ID, Name: "web", Numbers: []string{"2000"}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if err := NewTrunkService(w.db).CreateTrunk(ctx, trunk, ""); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{alice, bob} {
		if _, err := w.db.pool.Exec(ctx, `INSERT INTO webrtc_tokens (id, tenant_id, trunk_id, number, caller, external_ref, hash, expires_at, created_at)
			VALUES ($1, $2, $3, '2000', $4, $5, $6, $7, $7)`, sb.NewID(), w.tenant.ID, trunk.ID, who, "chat-"+who, []byte("hash of "+who), w.now); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// rowsHolding counts, in every table of the schema, the rows whose text
// holds s: what a database dump would show.
func (w *subjectWorld) rowsHolding(t *testing.T, s string) map[string]int {
	t.Helper()
	ctx := mustCtx(t)
	rows, err := w.db.pool.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 15 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	found := map[string]int{}
	for _, table := range tables {
		var n int
		if err := w.db.pool.QueryRow(ctx, `SELECT count(*) FROM "`+table+`" t WHERE strpos(to_jsonb(t)::text, $1) > 0`, s).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			found[table] = n
		}
	}
	return found
}

// A person's export holds every record about them and nothing about
// anyone else who called the same day.
func TestSubjectExportIsTheirsAlone(t *testing.T) {
	w := newSubjectWorld(t)
	if _, err := w.subjects.ExportSubject(w.as(t, w.supervisor), sb.Subject{Number: alice}, "request 7"); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a supervisor exported a person: %v", err)
	}
	if _, err := w.subjects.ExportSubject(w.as(t, w.admin), sb.Subject{Number: alice}, ""); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("an export without a reason: %v", err)
	}
	x, err := w.subjects.ExportSubject(w.as(t, w.admin), sb.Subject{Number: alice}, "access request DSR-7")
	if err != nil {
		t.Fatal(err)
	}
	got := map[sb.ID]bool{}
	for _, c := range x.Calls {
		got[c.ID] = true
	}
	for _, id := range w.aliceCalls {
		if !got[id] {
			t.Errorf("Alice's call %s is missing from her export", id)
		}
	}
	if len(x.Calls) != 3 || len(x.Events) != 3 || len(x.Recordings) != 1 || x.Recordings[0].CallID != w.aliceCalls[0] || x.Recordings[0].WrappedKey != nil {
		t.Errorf("export: %d calls, %d events, %d recordings", len(x.Calls), len(x.Events), len(x.Recordings))
	}
	b, _ := json.Marshal(x)
	if strings.Contains(string(b), bob) || strings.Contains(string(b), w.bobCall.String()) {
		t.Error("Alice's export holds Bob's data")
	}
	byRef, err := w.subjects.ExportSubject(w.as(t, w.admin), sb.Subject{ExternalRef: "chat-" + bob}, "messenger user asked")
	if err != nil || len(byRef.Calls) != 1 || byRef.Calls[0].ID != w.bobCall {
		t.Errorf("export by reference: %v, %v", byRef, err)
	}
	other := mustTenant(t, w.db, "Other")
	stranger := &sb.Actor{TenantID: other.ID, Role: sb.RoleAdmin}
	if x, err := w.subjects.ExportSubject(w.as(t, stranger), sb.Subject{Number: alice}, "curious"); err != nil || len(x.Calls) != 0 {
		t.Errorf("another tenant's admin exported Alice: %v, %v", x, err)
	}
}

// After erasure nothing in the database holds the person's number, their
// recordings are destroyed, Bob's data is untouched, and the audit chain
// still verifies. A wrong number is corrected.
func TestSubjectErasureLeavesNothing(t *testing.T) {
	w := newSubjectWorld(t).withTokens(t)
	if found := w.rowsHolding(t, alice); found["calls"] != 3 || found["call_sip_messages"] != 3 || found["webhook_deliveries"] != 3 {
		t.Fatalf("before: Alice's number in %v", found)
	}
	rc, err := w.subjects.EraseSubject(w.as(t, w.admin), sb.Subject{Number: alice}, "erasure request DSR-8")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Calls != 3 || rc.Recordings != 1 || rc.Events != 3 || rc.SIPMessages != 3 || rc.QualitySamples != 3 || rc.WebhookDeliveries != 3 {
		t.Errorf("receipt %+v", rc)
	}
	if found := w.rowsHolding(t, alice); len(found) != 0 {
		t.Errorf("after erasure Alice's number is still in %v", found)
	}
	if found := w.rowsHolding(t, "chat-"+alice); len(found) != 0 {
		t.Errorf("after erasure Alice's reference is still in %v", found)
	}
	if len(w.destroyed) != 1 || w.destroyed[0] != w.recs[w.aliceCalls[0]].ID {
		t.Errorf("recordings destroyed: %v", w.destroyed)
	}
	if found := w.rowsHolding(t, bob); found["calls"] != 1 || found["call_sip_messages"] != 1 {
		t.Errorf("Bob's data after Alice's erasure: %v", found)
	}
	var left int
	if err := w.db.pool.QueryRow(mustCtx(t), "SELECT count(*) FROM calls WHERE tenant_id = $1", w.tenant.ID).Scan(&left); err != nil || left != 5 {
		t.Errorf("%d call records left, want all 5 (the anonymised ones still count calls)", left)
	}
	if seq, err := NewAuditLog(w.db).Verify(mustCtx(t)); err != nil || seq != 0 {
		t.Errorf("audit chain after erasure: broken at %d, %v", seq, err)
	}

	n, err := w.subjects.RectifyNumber(w.as(t, w.admin), bob, "+1 555 000 3333", "the caller gave their right number")
	if err != nil || n != 1 {
		t.Fatalf("rectify: %d, %v", n, err)
	}
	if found := w.rowsHolding(t, "+15550003333"); found["calls"] != 1 {
		t.Errorf("the right number is in %v", found)
	}
	actions := map[string]bool{}
	rows, _ := w.db.pool.Query(mustCtx(t), "SELECT action, detail FROM audit_log")
	for rows.Next() {
		var a, d string
		rows.Scan(&a, &d)
		actions[a] = true
		if strings.Contains(d, "555000") {
			t.Errorf("audit detail holds a number: %q", d)
		}
	}
	rows.Close()
	if !actions["subject.erase"] || !actions["subject.rectify"] {
		t.Errorf("audited: %v", actions)
	}
}

// rowPrints returns, for every table of the schema, a digest of each row:
// what a change to any row, or its deletion, shows in.
func (w *subjectWorld) rowPrints(t *testing.T) map[string]map[string]bool {
	t.Helper()
	ctx := mustCtx(t)
	rows, err := w.db.pool.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	prints := map[string]map[string]bool{}
	for _, table := range tables {
		rows, err := w.db.pool.Query(ctx, `SELECT md5(to_jsonb(t)::text) FROM "`+table+`" t`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		prints[table] = map[string]bool{}
		for _, p := range got {
			prints[table][p] = true
		}
	}
	return prints
}

// A person's export holds every row that their erasure deletes or
// changes, table by table, found by comparing every table of the schema
// before and after the erasure; and nothing of the token's hash.
func TestSubjectExportHoldsAllErasureReaches(t *testing.T) {
	for _, subj := range []sb.Subject{{Number: alice}, {ExternalRef: "chat-" + alice}} {
		t.Run(subjectKind(subj), func(t *testing.T) {
			w := newSubjectWorld(t).withTokens(t)
			x, err := w.subjects.ExportSubject(w.as(t, w.admin), subj, "access request DSR-9")
			if err != nil {
				t.Fatal(err)
			}
			exported := map[string]int{
				"calls": len(x.Calls), "call_events": len(x.Events), "recordings": len(x.Recordings), "call_sip_messages": len(x.SIPMessages),
				"call_quality_samples": len(x.QualitySamples), "webhook_deliveries": len(x.WebhookDeliveries), "webrtc_tokens": len(x.BrowserCallerTokens),
			}
			before := w.rowPrints(t)
			if _, err := w.subjects.EraseSubject(w.as(t, w.admin), subj, "erasure request DSR-9"); err != nil {
				t.Fatal(err)
			}
			after := w.rowPrints(t)
			for table, rows := range before {
				touched := 0
				for p := range rows {
					if !after[table][p] {
						touched++
					}
				}
				if touched != exported[table] {
					t.Errorf("erasure deleted or changed %d rows of %s; the export holds %d", touched, table, exported[table])
				}
			}
			for table, n := range exported {
				if n == 0 {
					t.Errorf("the export holds no %s: the world should have some", table)
				}
			}
			if len(x.BrowserCallerTokens) != 1 {
				t.Fatalf("tokens exported: %d", len(x.BrowserCallerTokens))
			}
			var token map[string]any
			if err := json.Unmarshal(x.BrowserCallerTokens[0], &token); err != nil || token["caller"] != alice || token["external_ref"] != "chat-"+alice || token["hash"] != nil {
				t.Errorf("exported token %s: %v", x.BrowserCallerTokens[0], err)
			}
			b, _ := json.Marshal(x)
			if !strings.Contains(string(b), "sip:"+alice+"@203.0.113.5") {
				t.Error("the export lacks the SIP trace's message")
			}
			if strings.Contains(string(b), bob) || strings.Contains(string(b), w.bobCall.String()) {
				t.Error("Alice's export holds Bob's data")
			}
		})
	}
}

// Rectification reaches every place erasure reaches: the number is
// corrected on the call records, their timelines, SIP traces and webhook
// payloads, and the browser caller's token; nothing else changes.
func TestRectifyReachesEveryPlace(t *testing.T) {
	w := newSubjectWorld(t).withTokens(t)
	const right = "+15550003333"
	before := w.rowsHolding(t, alice)
	n, err := w.subjects.RectifyNumber(w.as(t, w.admin), bob, "+1 555 000 3333", "the caller gave their right number")
	if err != nil || n != 1 {
		t.Fatalf("rectify: %d, %v", n, err)
	}
	want := map[string]int{"calls": 1, "call_events": 1, "call_sip_messages": 1, "webhook_deliveries": 1, "webrtc_tokens": 1}
	if found := w.rowsHolding(t, right); !maps.Equal(found, want) {
		t.Errorf("the right number is in %v, want %v", found, want)
	}
	// Left only inside identifiers: the Call-ID and the reference.
	for _, as := range []string{`"` + bob + `"`, "sip:" + bob, "<sip:" + bob} {
		if found := w.rowsHolding(t, as); len(found) != 0 {
			t.Errorf("%s is still in %v", as, found)
		}
	}
	if found := w.rowsHolding(t, "chat-"+bob); found["calls"] != 1 {
		t.Errorf("the reference holding the number was changed: %v", found)
	}
	if after := w.rowsHolding(t, alice); !maps.Equal(before, after) {
		t.Errorf("Alice's data changed: %v, was %v", after, before)
	}
	var detail string
	if err := w.db.pool.QueryRow(mustCtx(t), "SELECT detail FROM audit_log WHERE action = 'subject.rectify'").Scan(&detail); err != nil ||
		detail != "a number corrected on 1 calls and 4 other rows" {
		t.Errorf("audited as %q, %v", detail, err)
	}
}
