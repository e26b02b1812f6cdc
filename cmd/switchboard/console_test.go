package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// seedCalls writes n ended calls of the tenant straight into the records
// (faster than placing them), a second apart, the last the newest; shape
// changes each before it is written.
func seedCalls(t *testing.T, m *Main, tenantID sb.ID, n int, shape func(i int, c *sb.Call)) []*sb.Call {
	t.Helper()
	store := metadata.NewCallStore(m.DB)
	base := time.Now().Add(-time.Duration(n+60) * time.Second).UTC().Truncate(time.Second)
	out := make([]*sb.Call, n)
	for i := range n {
		ended := base.Add(time.Duration(i)*time.Second + 500*time.Millisecond)
		c := &sb.Call{TenantID: tenantID, Direction: sb.Inbound, From: fmt.Sprintf("+4930%07d", i), To: "2000",
			Status: sb.CallCompleted, HangupBy: sb.PartyCaller, CreatedAt: base.Add(time.Duration(i) * time.Second), EndedAt: &ended}
		if shape != nil {
			shape(i, c)
		}
		if err := store.CreateCall(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// mustNamedUser adds a person with a name (mustUser names them by role).
func mustNamedUser(t *testing.T, m *Main, tenantID sb.ID, email, name string, role sb.Role) *sb.User {
	t.Helper()
	u := &sb.User{TenantID: tenantID, Email: email, Name: name, Role: role}
	if err := metadata.NewUserService(m.DB).CreateUser(context.Background(), u, testPassword); err != nil {
		t.Fatal(err)
	}
	return u
}

// csvOf reads a CSV export: its rows by call ID, after checking the header.
func csvOf(t *testing.T, raw string) map[string]map[string]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%.300s", err, raw)
	}
	want := []string{"call_id", "started_at", "direction", "from", "to", "status", "hangup_by", "answered_at", "ended_at",
		"talk_seconds", "operator", "trunk", "external_ref", "labels", "tags", "sip_code", "reason", "failure_leg", "failure_stage", "codec"}
	if len(rows) == 0 || !slices.Equal(rows[0], want) {
		t.Fatalf("header row %q, want %q", rows[0], want)
	}
	out := map[string]map[string]string{}
	for _, r := range rows[1:] {
		row := map[string]string{}
		for i, name := range want {
			row[name] = r[i]
		}
		out[r[0]] = row
	}
	return out
}

// getCSV asks for an export the way given: ?format=csv in path, or the
// Accept header.
func getCSV(t *testing.T, p *person, path string, accept bool) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.m.HTTPURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept {
		req.Header.Set("Accept", "text/csv")
	}
	client := p.client
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the export: %v", err)
	}
	return res.StatusCode, string(raw), res.Header
}

// The CSV export of a search: every page of it (more than the API's
// largest page), a header row, the tenant's calls only, operators and
// trunks by name, cells that a spreadsheet would run as formulas
// defused, an operator's own calls only and masked as the tenant's policy
// says, support engineers refused, and each export audited with the
// filters' names only.
func TestCallsExportCSV(t *testing.T) {
	m := mustStartService(t, nil)
	acme := mustProvision(t, m, "Acme", "2000", 1)
	other := mustProvision(t, m, "Other", "2001", 1)
	ctx := context.Background()
	if err := metadata.NewTenantService(m.DB).SetPrivacyPolicy(ctx, acme.Tenant.ID,
		sb.PrivacyPolicy{CallRetentionDays: 30, QualityRetentionDays: 30, MaskOperatorNumbers: true}); err != nil {
		t.Fatal(err)
	}
	ann, bob := mustNamedUser(t, m, acme.Tenant.ID, "ann@acme.test", "Ann Lee", sb.RoleOperator), acme.Operators[0]
	calls := seedCalls(t, m, acme.Tenant.ID, 503, func(i int, c *sb.Call) {
		c.TrunkID = &acme.Trunk.ID
		c.OperatorID = &bob.ID
		if i%2 == 0 {
			c.OperatorID = &ann.ID
		}
		if i%100 == 0 {
			c.Labels = []string{"sales"}
		}
	})
	evil := seedCalls(t, m, acme.Tenant.ID, 1, func(_ int, c *sb.Call) {
		c.From, c.ExternalRef, c.Labels = `=HYPERLINK("http://evil.example","x")`, "@SUM(A1)", []string{"-vip", "sales"}
		c.Reason = "+1 more"
	})[0]
	theirs := seedCalls(t, m, other.Tenant.ID, 3, func(_ int, c *sb.Call) { c.Labels = []string{"sales"} })

	admin := mustLogin(t, m, mustUser(t, m, acme.Tenant.ID, "admin@acme.test", sb.RoleAdmin))
	code, raw, h := getCSV(t, admin, "/v1/calls?format=csv", false)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %q %q: %.300s", code, h.Get("Content-Type"), h.Get("Content-Disposition"), raw)
	}
	rows := csvOf(t, raw)
	if len(rows) != 504 {
		t.Errorf("the export has %d calls, want all 504 of the tenant's (past the largest page)", len(rows))
	}
	for _, c := range theirs {
		if rows[c.ID.String()] != nil {
			t.Errorf("another tenant's call %s is in the export", c.ID)
		}
	}
	first := rows[calls[0].ID.String()]
	if first == nil || first["operator"] != "Ann Lee" || first["trunk"] != "Acme pbx" || first["from"] != "'+49300000000" ||
		first["status"] != "completed" || first["labels"] != "sales" {
		t.Errorf("a call's row: %v", first)
	}
	if r := rows[calls[1].ID.String()]; r == nil || r["operator"] != "Operator" {
		t.Errorf("the other operator's call: %v", r)
	}
	if r := rows[evil.ID.String()]; r == nil || r["from"] != `'=HYPERLINK("http://evil.example","x")` || r["external_ref"] != "'@SUM(A1)" ||
		r["labels"] != "'-vip;sales" || r["reason"] != "'+1 more" {
		t.Errorf("formulas are not defused: %v", r)
	}

	// The search's filters hold, asked for by Accept.
	code, raw, _ = getCSV(t, admin, "/v1/calls?label=sales&limit=2", true)
	if code != 200 {
		t.Fatalf("export by label: %d %s", code, raw)
	}
	if rows := csvOf(t, raw); len(rows) != 7 || rows[evil.ID.String()] == nil || rows[calls[500].ID.String()] == nil {
		t.Errorf("export of label sales: %d calls, want the tenant's 7 (every page, whatever the limit)", len(rows))
	}

	// An operator exports their own calls, masked as the tenant says.
	op := mustLogin(t, m, ann)
	code, raw, _ = getCSV(t, op, "/v1/calls?format=csv", false)
	if code != 200 {
		t.Fatalf("the operator's export: %d %s", code, raw)
	}
	mine := csvOf(t, raw)
	if len(mine) != 252 {
		t.Errorf("the operator's export has %d calls, want their own 252", len(mine))
	}
	if r := mine[calls[2].ID.String()]; r == nil || r["from"] != "'"+sb.MaskNumber(calls[2].From) || strings.Contains(raw, calls[2].From) {
		t.Errorf("the operator's export shows %v, want the number masked", r)
	}
	if mine[calls[1].ID.String()] != nil {
		t.Error("the operator's export has a colleague's call")
	}

	// Support engineers diagnose calls one at a time: no bulk export.
	support := mustLogin(t, m, mustUser(t, m, acme.Tenant.ID, "support@acme.test", sb.RoleSupport))
	if code, raw, _ := getCSV(t, support, "/v1/calls?format=csv", false); code != 403 || strings.Contains(raw, calls[0].ID.String()) {
		t.Errorf("support's export: %d %.200s, want 403", code, raw)
	}
	if code, _, _ := getCSV(t, mustLoginClient(t, m), "/v1/calls?format=csv", false); code != 401 {
		t.Errorf("an export without a login: %d, want 401", code)
	}
	if code, raw, _ := getCSV(t, admin, "/v1/calls?format=csv&status=nonsense", false); code != 400 || !strings.Contains(raw, "status") {
		t.Errorf("an export with a bad filter: %d %s, want 400 naming it", code, raw)
	}

	exports := auditOf(t, m, acme.Tenant.ID, "calls.export")
	details := make([]string, len(exports))
	for i, e := range exports {
		details[i] = e.Detail
		if e.Outcome != "ok" || e.ActorUserID == nil {
			t.Errorf("export audited as %+v", e)
		}
	}
	if !slices.Equal(details, []string{"filters: none", "filters: label", "filters: none"}) {
		t.Errorf("exports audited with details %q, want three, naming the filters only", details)
	}
	if len(auditOf(t, m, other.Tenant.ID, "calls.export")) != 0 {
		t.Error("another tenant's audit log has the exports")
	}
}

// GET /v1/live is the supervisors' floor: the tenant's calls in progress
// with their operators by name, the operators connected and their state,
// and a caller waiting in a queue with how long; other tenants' are never
// in it, and operators and support engineers are refused. GET
// /v1/session answers without a 401 before a login. The timeline, grants
// and audit log answer the names of whom they mention.
func TestLiveViewAndNames(t *testing.T) {
	m := mustStartService(t, nil)
	acme := mustProvision(t, m, "Acme", "2000", 1)
	other := mustProvision(t, m, "Other", "2001", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ann, bob := mustNamedUser(t, m, acme.Tenant.ID, "ann@acme.test", "Ann Lee", sb.RoleOperator), acme.Operators[0]
	// Bob is the queue's only member and is not connected: a caller waits.
	sales := &sb.Queue{TenantID: acme.Tenant.ID, Name: "Sales", Numbers: []string{"2000"}, Members: []sb.ID{bob.ID},
		MaxWait: 30 * time.Second, Overflow: sb.Overflow{Kind: sb.OverflowReject}}
	if err := metadata.NewQueueStore(m.DB).CreateQueue(ctx, sales); err != nil {
		t.Fatal(err)
	}
	mustOperator(t, m, ann)
	mustOperator(t, m, other.Operators[0])
	talking := seedCalls(t, m, acme.Tenant.ID, 1, func(_ int, c *sb.Call) {
		c.Status, c.EndedAt, c.HangupBy, c.OperatorID, c.TrunkID = sb.CallAnswered, nil, "", &ann.ID, &acme.Trunk.ID
		answered := c.CreatedAt.Add(time.Second)
		c.AnsweredAt = &answered
	})[0]
	ended := seedCalls(t, m, acme.Tenant.ID, 1, nil)[0]
	theirs := seedCalls(t, m, other.Tenant.ID, 1, func(_ int, c *sb.Call) { c.Status, c.EndedAt = sb.CallAnswered, nil })[0]

	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	waiting, err := phone.InviteAsync(ctx, m.SIPAddr(), "+15550001111", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	select {
	case <-waiting.Ringing():
	case <-ctx.Done():
		t.Fatal("the caller in line hears no ringback")
	}

	type live struct {
		Calls     []sb.Call `json:"calls"`
		Operators []struct {
			OperatorID sb.ID  `json:"operator_id"`
			Name       string `json:"name"`
			State      string `json:"state"`
		} `json:"operators"`
		Waiting []struct {
			CallID        sb.ID   `json:"call_id"`
			QueueName     string  `json:"queue_name"`
			WaitedSeconds float64 `json:"waited_seconds"`
		} `json:"waiting"`
	}
	supervisor := mustLogin(t, m, mustUser(t, m, acme.Tenant.ID, "sup@acme.test", sb.RoleSupervisor))
	var floor live
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		floor = live{}
		if code, raw := supervisor.do("GET", "/v1/live", "", &floor); code != 200 {
			t.Fatalf("GET /v1/live as a supervisor: %d %s", code, raw)
		}
		if len(floor.Waiting) == 1 || time.Now().After(deadline) {
			break
		}
	}
	ids := map[sb.ID]sb.Call{}
	for _, c := range floor.Calls {
		ids[c.ID] = c
	}
	if c, ok := ids[talking.ID]; !ok || c.OperatorName != "Ann Lee" || c.TrunkName != "Acme pbx" {
		t.Errorf("the call in progress: %+v", c)
	}
	if _, ok := ids[ended.ID]; ok {
		t.Error("an ended call is live")
	}
	if _, ok := ids[theirs.ID]; ok {
		t.Error("another tenant's call is on the floor")
	}
	if len(floor.Operators) != 1 || floor.Operators[0].OperatorID != ann.ID || floor.Operators[0].Name != "Ann Lee" || floor.Operators[0].State != "available" {
		t.Errorf("operators on the floor: %+v, want Ann Lee available (and nobody of another tenant)", floor.Operators)
	}
	if len(floor.Waiting) != 1 || floor.Waiting[0].QueueName != "Sales" || floor.Waiting[0].WaitedSeconds < 0 {
		t.Fatalf("waiting: %+v, want one caller in Sales", floor.Waiting)
	}
	if c, ok := ids[floor.Waiting[0].CallID]; !ok || c.From != "+15550001111" || c.Status != sb.CallRinging {
		t.Errorf("the waiting caller's call in progress: %+v", c)
	}

	for who, p := range map[string]*person{
		"an operator":               mustLogin(t, m, ann),
		"a support engineer":        mustLogin(t, m, mustUser(t, m, acme.Tenant.ID, "support@acme.test", sb.RoleSupport)),
		"an operator's API key":     {t: t, m: m, key: roleKey(t, m, acme.Tenant.ID, sb.RoleOperator)},
		"a caller without a login":  mustLoginClient(t, m),
		"another tenant's operator": mustLogin(t, m, other.Operators[0]),
	} {
		if code, raw := p.do("GET", "/v1/live", "", nil); code != 403 && code != 401 || strings.Contains(raw, talking.ID.String()) {
			t.Errorf("GET /v1/live as %s: %d %.200s, want refused", who, code, raw)
		}
	}
	var theirFloor live
	if code, _ := (&person{t: t, m: m, key: other.APIKey}).do("GET", "/v1/live", "", &theirFloor); code != 200 ||
		len(theirFloor.Calls) != 1 || theirFloor.Calls[0].ID != theirs.ID || len(theirFloor.Operators) != 1 ||
		theirFloor.Operators[0].OperatorID != other.Operators[0].ID || len(theirFloor.Waiting) != 0 {
		t.Errorf("another tenant's floor: %d %+v", code, theirFloor)
	}

	// The session probe: 200 before and after a login.
	var session struct {
		User *sb.User `json:"user"`
	}
	anon := mustLoginClient(t, m)
	if code, raw := anon.do("GET", "/v1/session", "", &session); code != 200 || session.User != nil {
		t.Errorf("GET /v1/session without a login: %d %s", code, raw)
	}
	if code, raw := supervisor.do("GET", "/v1/session", "", &session); code != 200 || session.User == nil || session.User.Email != "sup@acme.test" {
		t.Errorf("GET /v1/session logged in: %d %s", code, raw)
	}

	// The timeline names the people its events mention, of the tenant
	// only.
	if err := metadata.NewCallStore(m.DB).AddCallEvents(ctx,
		&sb.CallEvent{CallID: ended.ID, TenantID: acme.Tenant.ID, Type: sb.EventOffered, Detail: map[string]any{"operator_id": ann.ID}},
		&sb.CallEvent{CallID: ended.ID, TenantID: acme.Tenant.ID, Type: sb.EventRecordingPaused, Detail: map[string]any{"by": "user " + bob.ID.String()}},
		&sb.CallEvent{CallID: ended.ID, TenantID: acme.Tenant.ID, Type: sb.EventOffered, Detail: map[string]any{"operator_id": other.Operators[0].ID}},
	); err != nil {
		t.Fatal(err)
	}
	var timeline struct {
		Events []sb.CallEvent   `json:"events"`
		Names  map[sb.ID]string `json:"names"`
	}
	if code, raw := supervisor.do("GET", "/v1/calls/"+ended.ID.String()+"/events", "", &timeline); code != 200 || len(timeline.Events) != 3 {
		t.Fatalf("events: %d %s", code, raw)
	}
	if len(timeline.Names) != 2 || timeline.Names[ann.ID] != "Ann Lee" || timeline.Names[bob.ID] != "Operator" {
		t.Errorf("the timeline's names: %v, want Ann and Bob and nobody of another tenant", timeline.Names)
	}

	// Grants and the audit log name the people of the tenant.
	rec := &sb.Recording{ID: sb.NewID(), TenantID: acme.Tenant.ID, CallID: ended.ID, Status: sb.RecordingComplete, Codec: "PCMU",
		ClockRate: 8000, StartedAt: ended.CreatedAt, WrappedKey: []byte("sealed"), ObjectKey: "seeded",
		Consent: sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: ended.CreatedAt, By: "user " + ann.ID.String()}}
	if err := metadata.NewRecordingStore(m.DB).CreateRecording(ctx, rec); err != nil {
		t.Fatal(err)
	}
	admin := mustLogin(t, m, mustNamedUser(t, m, acme.Tenant.ID, "admin@acme.test", "Ada Admin", sb.RoleAdmin))
	if code, raw := admin.do("POST", "/v1/calls/"+ended.ID.String()+"/grants", `{"reason":"one-way audio","ticket":"SUP-1"}`, nil); code != 201 {
		t.Fatalf("grant: %d %s", code, raw)
	}
	var grants struct {
		Grants []struct {
			RequestedByName string `json:"requested_by_name"`
		} `json:"grants"`
	}
	if code, raw := supervisor.do("GET", "/v1/grants", "", &grants); code != 200 || len(grants.Grants) != 1 || grants.Grants[0].RequestedByName != "Ada Admin" {
		t.Errorf("grants: %d %s", code, raw)
	}
	var audit struct {
		Entries []struct {
			Action       string `json:"action"`
			ActorName    string `json:"actor_name"`
			ResourceName string `json:"resource_name"`
		} `json:"entries"`
	}
	if code, raw := admin.do("GET", "/v1/audit", "", &audit); code != 200 {
		t.Fatalf("audit: %d %s", code, raw)
	}
	named := false
	for _, e := range audit.Entries {
		if e.Action == "grant.request" {
			named = e.ActorName == "Ada Admin"
		}
	}
	if !named {
		t.Errorf("the grant's request is not audited under its requester's name: %+v", audit.Entries)
	}
}
