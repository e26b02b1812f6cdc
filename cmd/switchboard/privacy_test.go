package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// tablesHolding lists the tables of the service's database with a row
// whose text holds s, as a dump of it would show them.
func tablesHolding(t *testing.T, m *Main, s string) []string {
	t.Helper()
	ctx := context.Background()
	conn := dbConn(t, m)
	rows, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
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
	var found []string
	for _, table := range tables {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM "`+table+`" t WHERE strpos(to_jsonb(t)::text, $1) > 0`, s).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			found = append(found, table)
		}
	}
	return found
}

// Two people call a recording tenant the same day. An admin exports one
// person's data, then erases it: afterwards no table, no log line the
// service wrote and no stored object holds their number or their audio,
// the other person's data is whole, and the audit chain verifies.
func TestSubjectErasureThroughTheAPI(t *testing.T) {
	x := mustRecordingFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const alice, bob = "+15550001111", "+15550002222"
	call := func(from string) sb.ID {
		phone := mustPhone(t, siptest.Options{Transport: "udp", Headers: map[string]string{"X-Recording-Consent": "yes"}})
		c, in := answeredCall(t, x.m, phone, x.op, from, "2000")
		sendPattern(t, 25, func(p []byte) error { return c.SendRTP(p, false) })
		if err := c.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		waitCallEnded(t, x.m, x.f.APIKey, in.CallID)
		return in.CallID
	}
	aliceCall, bobCall := call(alice), call(bob)
	var aliceRec, bobRec sb.Recording
	for id, rec := range map[sb.ID]*sb.Recording{aliceCall: &aliceRec, bobCall: &bobRec} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if apiGet(t, x.m, x.f.APIKey, "/v1/calls/"+id.String()+"/recording", rec) == http.StatusOK && rec.Status == sb.RecordingComplete {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("call %s has no complete recording", id)
			}
		}
	}
	_, adminKey, err := metadata.NewAPIKeyService(x.m.DB).CreateAPIKey(ctx, x.f.Tenant.ID, sb.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	admin := &person{t: t, m: x.m, key: adminKey}
	supervisor := &person{t: t, m: x.m, key: x.f.APIKey}

	if code, _ := supervisor.do("POST", "/v1/subjects/export", `{"number":"`+alice+`","reason":"DSR-1"}`, nil); code != http.StatusForbidden {
		t.Errorf("a supervisor's export: %d, want 403", code)
	}
	var export sb.SubjectExport
	if code, body := admin.do("POST", "/v1/subjects/export", `{"number":"`+alice+`","reason":"access request DSR-1"}`, &export); code != 200 {
		t.Fatalf("export: %d %s", code, body)
	}
	raw, _ := json.Marshal(export)
	if len(export.Calls) != 1 || export.Calls[0].ID != aliceCall || len(export.Recordings) != 1 || len(export.Events) < 5 || strings.Contains(string(raw), bob) {
		t.Errorf("export: %d calls, %d events, %d recordings; Bob in it: %v", len(export.Calls), len(export.Events), len(export.Recordings), strings.Contains(string(raw), bob))
	}

	if tables := tablesHolding(t, x.m, alice); len(tables) == 0 {
		t.Fatal("before erasure Alice's number is nowhere: the check below would prove nothing")
	}
	var receipt sb.ErasureReceipt
	if code, body := admin.do("POST", "/v1/subjects/erase", `{"number":"`+alice+`","reason":"erasure request DSR-2"}`, &receipt); code != 200 {
		t.Fatalf("erase: %d %s", code, body)
	}
	if receipt.Calls != 1 || receipt.Recordings != 1 || receipt.SIPMessages < 3 || receipt.Events < 5 {
		t.Errorf("receipt %+v", receipt)
	}
	if tables := tablesHolding(t, x.m, alice); len(tables) != 0 {
		t.Errorf("after erasure Alice's number is in %v", tables)
	}
	if tables := tablesHolding(t, x.m, "5550001111"); len(tables) != 0 {
		t.Errorf("after erasure Alice's digits are in %v", tables)
	}
	if strings.Contains(logsOf(x.m), "5550001111") {
		t.Error("the service logged Alice's number")
	}
	if _, err := x.store.Open(ctx, recordings.ObjectKey(x.f.Tenant.ID, aliceRec.ID)); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("Alice's recording object after erasure: %v, want gone", err)
	}
	if _, err := x.store.Open(ctx, recordings.ObjectKey(x.f.Tenant.ID, bobRec.ID)); err != nil {
		t.Errorf("Bob's recording after Alice's erasure: %v", err)
	}
	if tables := tablesHolding(t, x.m, bob); len(tables) == 0 {
		t.Error("Bob's records went with Alice's")
	}
	if seq, err := metadata.NewAuditLog(x.m.DB).Verify(ctx); err != nil || seq != 0 {
		t.Errorf("audit chain after erasure: broken at %d, %v", seq, err)
	}
	if got := auditActions(t, x.m, x.f.Tenant.ID); !containsInOrder(got, "subject.export access request DSR-1", "subject.erase erasure request DSR-2") {
		t.Errorf("audit %v lacks the requests", got)
	}
}
