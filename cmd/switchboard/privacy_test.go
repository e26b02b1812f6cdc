package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
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

// A tenant's retention and minimisation settings are set from the command
// line, and `retention run` counts (dry run) and then anonymises a call
// record past its period, leaving a recent one.
func TestRetentionRunFromTheCommandLine(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx := context.Background()
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		if err := run(ctx, append(args, "-database-url", m.Config.DatabaseURL), nil, &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	cli("tenant", "set", "-tenant", f.Tenant.ID.String(), "-call-retention-days", "2", "-quality-retention-days", "3",
		"-trace-retention-days", "1", "-trace-drop-bodies", "-mask-operator-numbers")
	ten, err := metadata.NewTenantService(m.DB).FindTenantByID(ctx, f.Tenant.ID)
	if err != nil || ten.Privacy != (sb.PrivacyPolicy{CallRetentionDays: 2, QualityRetentionDays: 3, MaskOperatorNumbers: true}) ||
		ten.Trace.RetentionDays != 1 || !ten.Trace.DropBodies || ten.Trace.MaskNumbers {
		t.Fatalf("tenant after set: %+v %+v, %v", ten.Privacy, ten.Trace, err)
	}
	calls := metadata.NewCallStore(m.DB)
	for _, age := range []time.Duration{72 * time.Hour, time.Hour} {
		at := time.Now().Add(-age)
		c := &sb.Call{TenantID: f.Tenant.ID, Direction: sb.Inbound, From: "+1555000" + fmt.Sprint(int(age.Hours())), To: "2000",
			Status: sb.CallCompleted, CreatedAt: at, EndedAt: &at}
		if err := calls.CreateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if out := cli("retention", "run", "-dry-run"); !strings.Contains(out, "call records anonymised (would be): 1 ") {
		t.Errorf("dry run said:\n%s", out)
	}
	if tables := tablesHolding(t, m, "+155500072"); len(tables) != 1 {
		t.Errorf("the dry run changed something: the old number is in %v", tables)
	}
	if out := cli("retention", "run"); !strings.Contains(out, "call records anonymised: 1 ") {
		t.Errorf("run said:\n%s", out)
	}
	if tables := tablesHolding(t, m, "+155500072"); len(tables) != 0 {
		t.Errorf("the expired number is still in %v", tables)
	}
	if tables := tablesHolding(t, m, "+15550001"); len(tables) != 1 {
		t.Errorf("the recent number is in %v, want its call record", tables)
	}
}

// maskOperatorNumbers has the tenant show its operators callers' numbers
// masked (-mask-operator-numbers).
func maskOperatorNumbers(t *testing.T, m *Main, tenantID sb.ID) {
	t.Helper()
	if err := metadata.NewTenantService(m.DB).SetPrivacyPolicy(context.Background(), tenantID,
		sb.PrivacyPolicy{CallRetentionDays: 30, QualityRetentionDays: 30, MaskOperatorNumbers: true}); err != nil {
		t.Fatal(err)
	}
}

// With the tenant's minimisation setting, an operator is offered the call
// with the caller's number masked to its last four digits and sees it so
// in their calls; a supervisor still sees it whole.
func TestOperatorsSeeMaskedNumbers(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx := context.Background()
	maskOperatorNumbers(t, m, f.Tenant.ID)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550001234", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	in := waitIncoming(t, op)
	if in.From != "+*******1234" {
		t.Errorf("the operator was offered a call from %q", in.From)
	}
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := call.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	var mine struct{ Calls []sb.Call }
	if code, _ := mustLogin(t, m, f.Operators[0]).do("GET", "/v1/calls", "", &mine); code != 200 || len(mine.Calls) != 1 || mine.Calls[0].From != "+*******1234" {
		t.Errorf("the operator's calls: %d %+v", code, mine.Calls)
	}
	var all struct{ Calls []sb.Call }
	if code := apiGet(t, m, f.APIKey, "/v1/calls", &all); code != 200 || len(all.Calls) != 1 || all.Calls[0].From != "+15550001234" {
		t.Errorf("the supervisor's calls: %d %+v", code, all.Calls)
	}
	// An exact search would confirm a guess of the masked digits: the
	// operator may not search by number; the supervisor may.
	for _, path := range []string{"/v1/calls?number=%2B15550001234", "/v1/calls?number=%2B15550001234&format=csv"} {
		if code, _ := mustLogin(t, m, f.Operators[0]).do("GET", path, "", nil); code != 403 {
			t.Errorf("the operator's %s: %d, want 403", path, code)
		}
	}
	var found struct{ Calls []sb.Call }
	if code := apiGet(t, m, f.APIKey, "/v1/calls?number=%2B15550001234", &found); code != 200 || len(found.Calls) != 1 {
		t.Errorf("the supervisor's search by number: %d %+v", code, found.Calls)
	}
}

// An operator of a tenant that masks callers' numbers reads the timelines
// of calls they transferred to a SIP URI with its number masked, whether
// switchboard placed the transfer or the caller's PBX took it (REFER), and
// no operator's network address: neither the colleague's who answered
// first and handed the call on, nor their own. An admin reads them whole.
func TestTimelineHidesNumbersAndAddressesFromOperators(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	setDialTargets(t, m, f.Tenant.ID, "127.0.0.1")
	first, second := mustOperator(t, m, f.Operators[0]), mustOperator(t, m, f.Operators[1])
	const target = "+4930123456"

	// Switchboard places the transfer: the phone takes no REFER.
	if err := second.SetAway(ctx); err != nil {
		t.Fatal(err)
	}
	vm, vmDone := carrierSIPp(ctx, t, "uas_answer_bye.xml")
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, placed := answeredCall(t, m, phone, first, "+15550001234", "2000")
	defer call.Close()
	if err := first.TransferToURI(ctx, placed.CallID, "sip:"+target+"@"+vm); err != nil {
		t.Fatal(err)
	}
	if err := <-vmDone; err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, placed.CallID)

	// The caller's PBX takes it, from the first operator, to whom the
	// second handed the call.
	if err := first.SetAway(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.SetAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	answer := func(op *opclient.Client, id sb.ID) error {
		if err := op.Accept(ctx, id); err != nil {
			return err
		}
		return op.WaitConnected(ctx, id)
	}
	referred := make(chan sb.ID, 1)
	go func() {
		defer close(referred)
		var in opclient.Incoming
		select {
		case in = <-second.Incoming():
		case <-ctx.Done():
			return
		}
		if err := answer(second, in.CallID); err != nil {
			t.Errorf("the second operator answering: %v", err)
			return
		}
		if err := first.SetAvailable(ctx); err != nil {
			t.Errorf("the first operator back: %v", err)
			return
		}
		if err := second.Transfer(ctx, in.CallID, f.Operators[0].ID); err != nil {
			t.Errorf("transfer to the first operator: %v", err)
			return
		}
		select {
		case <-first.Incoming():
		case <-ctx.Done():
			return
		}
		if err := answer(first, in.CallID); err != nil {
			t.Errorf("the first operator answering: %v", err)
			return
		}
		if err := first.TransferToURI(ctx, in.CallID, "sip:"+target+"@127.0.0.1:5999"); err != nil {
			t.Errorf("transfer by REFER: %v", err)
			return
		}
		referred <- in.CallID
	}()
	if out, err := sipp(ctx, t, "uac_refer.xml", "2000", m.SIPAddr()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	byREFER, ok := <-referred
	if !ok {
		t.Fatal("the call was not transferred by REFER")
	}
	waitCallEnded(t, m, f.APIKey, byREFER)

	maskOperatorNumbers(t, m, f.Tenant.ID)
	operator := mustLogin(t, m, f.Operators[0]) // both calls are theirs: they transferred them last
	admin := mustLogin(t, m, mustUser(t, m, f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))
	for _, c := range []struct {
		id   sb.ID
		uris map[sb.EventType]string // the events that name the target, and the field
	}{
		{placed.CallID, map[sb.EventType]string{sb.EventTransferred: "to_uri", sb.EventAnswered: "transferred_to"}},
		{byREFER, map[sb.EventType]string{sb.EventTransferred: "to_uri", sb.EventReferred: "uri"}},
	} {
		path := "/v1/calls/" + c.id.String() + "/events"
		var theirs, all struct{ Events []sb.CallEvent }
		if code, body := operator.do(http.MethodGet, path, "", &theirs); code != http.StatusOK || strings.Contains(body, "0123456") {
			t.Errorf("the operator's %s: %d %s", path, code, body)
		}
		if code, body := admin.do(http.MethodGet, path, "", &all); code != http.StatusOK {
			t.Fatalf("the admin's %s: %d %s", path, code, body)
		}
		for typ, field := range c.uris {
			if got := detailOf(theirs.Events, typ, field); !strings.HasPrefix(got, "sip:+******3456@127.0.0.1:") {
				t.Errorf("the operator reads %s.%s %q", typ, field, got)
			}
			if got := detailOf(all.Events, typ, field); !strings.HasPrefix(got, "sip:"+target+"@127.0.0.1:") {
				t.Errorf("the admin reads %s.%s %q", typ, field, got)
			}
		}
		located := func(pair string) bool { return strings.Contains(pair, "127.0.0.1") }
		if pairs := pairsOf(theirs.Events); len(pairs) == 0 || slices.ContainsFunc(pairs, located) {
			t.Errorf("the operator reads the operators' candidate pairs %q, want them without addresses", pairs)
		}
		if pairs := pairsOf(all.Events); !slices.ContainsFunc(pairs, located) {
			t.Errorf("the admin reads the operators' candidate pairs %q, want their addresses", pairs)
		}
	}
}

// detailOf is the string field of the first event of type typ whose
// detail has it.
func detailOf(events []sb.CallEvent, typ sb.EventType, field string) string {
	for _, e := range events {
		if s, ok := e.Detail[field].(string); ok && e.Type == typ {
			return s
		}
	}
	return ""
}

// pairsOf are the candidate pairs of the operators' WebRTC links on a
// timeline.
func pairsOf(events []sb.CallEvent) []string {
	var pairs []string
	for _, e := range events {
		if l, ok := e.Detail["webrtc"].(map[string]any); ok {
			if p, ok := l["pair"].(string); ok {
				pairs = append(pairs, p)
			}
		}
	}
	return pairs
}

// An operator of a tenant that masks callers' numbers places calls through
// carriers whose refusals quote the number dialled: the trunk that failed
// over on the timeline, the call's reason in their calls, its export and
// the socket's "ended" say what the carrier said up to the number. An admin
// reads the number.
func TestFailureReasonsHideNumbersFromOperators(t *testing.T) {
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	maskOperatorNumbers(t, m, f.Tenant.ID)
	op := mustOperator(t, m, f.Operators[0]) // the socket reads the setting as it opens
	const number, said, masked = "+4930123456", "No route to +4930123456", "No route to …"

	down, downDone := carrierSIPp(ctx, t, "uas_unavailable_quoting.xml")
	up, upDone := carrierSIPp(ctx, t, "uas_answer_bye.xml")
	outboundTrunk(t, m, f, "down", down, 1)
	outboundTrunk(t, m, f, "up", up, 2)
	failedOver, err := op.Dial(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.WaitEnded(ctx, failedOver); err != nil { // the carrier hangs up
		t.Fatal(err)
	}
	for _, d := range []<-chan error{downDone, upDone} {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dbConn(t, m).Exec(ctx, "UPDATE trunks SET outbound_target = NULL WHERE tenant_id = $1", f.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	only, onlyDone := carrierSIPp(ctx, t, "uas_unavailable_quoting.xml")
	outboundTrunk(t, m, f, "only", only, 3)
	refused, err := op.Dial(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	if reason, err := op.WaitEnded(ctx, refused); err != nil || reason != masked {
		t.Errorf("the operator's page was told %q (%v), want %q", reason, err, masked)
	}
	if err := <-onlyDone; err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, failedOver)
	waitCallEnded(t, m, f.APIKey, refused)

	operator := mustLogin(t, m, f.Operators[0])
	admin := mustLogin(t, m, mustUser(t, m, f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))
	for _, who := range []struct {
		name   string
		p      *person
		reason string
	}{{"operator", operator, masked}, {"admin", admin, said}} {
		var events struct{ Events []sb.CallEvent }
		if code, body := who.p.do(http.MethodGet, "/v1/calls/"+failedOver.String()+"/events", "", &events); code != http.StatusOK {
			t.Fatalf("the %s's timeline: %d %s", who.name, code, body)
		}
		if got := detailOf(events.Events, sb.EventTrunkFailed, "reason"); got != who.reason {
			t.Errorf("the %s reads the trunk's failure as %q, want %q", who.name, got, who.reason)
		}
		var rec sb.Call
		if code, body := who.p.do(http.MethodGet, "/v1/calls/"+refused.String(), "", &rec); code != http.StatusOK || rec.Reason != who.reason {
			t.Errorf("the %s reads the refused call's reason as %q (%d %s), want %q", who.name, rec.Reason, code, body, who.reason)
		}
		code, csv := who.p.do(http.MethodGet, "/v1/calls?format=csv", "", nil)
		if code != http.StatusOK || !strings.Contains(csv, ","+who.reason+",") {
			t.Errorf("the %s's export: %d %s, want the reason %q", who.name, code, csv, who.reason)
		}
		if who.p == operator && strings.Contains(csv, "0123456") {
			t.Errorf("the operator's export holds the number: %s", csv)
		}
	}
}

// digestTrunkCalls places a call through the digest trunk "carrier-in"
// (number 2100) and checks that it rings f's first operator.
func digestTrunkCalls(t *testing.T, m *Main, f *tenantFixture, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	phone := mustPhone(t, siptest.Options{Transport: "udp", LocalIP: "127.0.0.9", Username: "carrier-in", Password: password})
	op := mustOperator(t, m, f.Operators[0])
	call, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550007777", "2100")
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	if in := waitIncoming(t, op); in.From != "+15550007777" {
		t.Errorf("the digest trunk's call came from %q", in.From)
	}
}

// A dump of a populated database holds no secret in a form that can be
// used: operator passwords and API keys are hashes, trunk digest HA1s,
// carrier passwords and webhook secrets are sealed with the keyring,
// browser callers' tokens are hashes. The sealed trunk still
// authenticates.
func TestDatabaseDumpHoldsNoSecret(t *testing.T) {
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		requireDependency(t, "pg_dump (Debian package postgresql-client)")
	}
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx := context.Background()
	var out, errOut strings.Builder
	const digestPassword = "trunk-digest-Secret-1"
	if err := run(ctx, []string{"trunk", "create", "-database-url", m.Config.DatabaseURL, "-keyring", testKeyring, "-tenant", f.Tenant.ID.String(),
		"-name", "carrier-in", "-username", "carrier-in", "-number", "2100"}, strings.NewReader(digestPassword+"\n"), &out, &errOut); err != nil {
		t.Fatalf("trunk create: %v\n%s", err, errOut.String())
	}
	outboundTrunk(t, m, f, "carrier-out", "127.0.0.1:5999", 1) // its password is "s3cret"
	_, adminKey, err := metadata.NewAPIKeyService(m.DB).CreateAPIKey(ctx, f.Tenant.ID, sb.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	var hook struct{ Secret string }
	if code, body := (&person{t: t, m: m, key: adminKey}).do("POST", "/v1/webhooks", `{"url":"https://crm.test/hook","events":["call.ended"]}`, &hook); code != 201 || hook.Secret == "" {
		t.Fatalf("webhook: %d %s", code, body)
	}
	token := issueToken(t, m, f.APIKey, `{"number":"2000","from":"web:dump"}`)
	var invited struct {
		Link string `json:"password_link"`
	}
	if code, body := (&person{t: t, m: m, key: adminKey}).do("POST", "/v1/users", `{"email":"new@acme.test","role":"operator"}`, &invited); code != 201 {
		t.Fatalf("invite: %d %s", code, body)
	}
	_, madeKey := newKey(t, &person{t: t, m: m, key: adminKey}, `{"role":"operator","label":"dump"}`)

	// The sealed HA1 still lets the trunk in.
	digestTrunkCalls(t, m, f, digestPassword)

	cmd := exec.CommandContext(ctx, pgDump, "--data-only", "--dbname", m.Config.DatabaseURL)
	dump, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !strings.Contains(string(dump), "carrier-in") || len(dump) < 10000 {
		t.Fatalf("the dump (%d bytes) does not look like the populated database", len(dump))
	}
	for what, secret := range map[string]string{
		"operator password": testPassword, "supervisor API key": f.APIKey, "admin API key": adminKey,
		"digest password": digestPassword, "digest HA1": metadata.DigestHA1("carrier-in", digestPassword),
		"carrier password": "s3cret", "webhook secret": hook.Secret, "browser call token": token,
		"password link's token": tokenOf(invited.Link), "API key made through the API": madeKey,
	} {
		if strings.Contains(string(dump), secret) {
			t.Errorf("the dump holds the %s", what)
		}
		if strings.Contains(logsOf(m), secret) {
			t.Errorf("the service's log holds the %s", what)
		}
	}
}

// The audit log is never pruned and no erasure reaches it, so no entry may
// carry a number: a click-to-call whose number is written wrongly is
// refused before anything is audited (the refusal quoted the number, and
// went into the entry of the failed action).
func TestRefusedClickToCallAuditsNoNumber(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	crm := &person{t: t, m: m, key: f.APIKey}
	for _, number := range []string{"tel:+4930123456", "+49 30 123456 x"} {
		if code, body := crm.do("POST", "/v1/calls", `{"operator_id":"`+f.Operators[0].ID.String()+`","number":"`+number+`"}`, nil); code != 400 {
			t.Errorf("click-to-call to %q: %d %s, want 400", number, code, body)
		}
	}
	for _, e := range auditOf(t, m, f.Tenant.ID, "call.originate") {
		if strings.Contains(e.Reason+e.Detail, "123456") {
			t.Errorf("an audit entry holds the number: %+v", e)
		}
	}
}
