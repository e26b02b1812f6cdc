package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/api"
	"github.com/switchboard-voice/switchboard/internal/apispec"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
)

// person is someone logged in to the service's API with a session cookie.
type person struct {
	t      *testing.T
	m      *Main
	client *http.Client
	tenant string // sent as X-Switchboard-Tenant when set
	key    string // an API key instead of a login
}

func mustUser(t *testing.T, m *Main, tenantID sb.ID, email string, role sb.Role) *sb.User {
	t.Helper()
	u := &sb.User{TenantID: tenantID, Email: email, Name: string(role), Role: role}
	if err := metadata.NewUserService(m.DB).CreateUser(context.Background(), u, testPassword); err != nil {
		t.Fatal(err)
	}
	return u
}

func mustLogin(t *testing.T, m *Main, u *sb.User) *person {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	p := &person{t: t, m: m, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	if code, _ := p.do(http.MethodPost, "/v1/login", `{"email":"`+u.Email+`","password":"`+testPassword+`"}`, nil); code != 200 {
		t.Fatalf("login %s: %d", u.Email, code)
	}
	return p
}

// do sends a request and decodes a JSON answer into v (when not nil).
func (p *person) do(method, path, body string, v any) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.m.HTTPURL()+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.tenant != "" {
		req.Header.Set("X-Switchboard-Tenant", p.tenant)
	}
	// Every answer is checked against the API's description.
	client := apispec.Load(p.t, api.Description()).Client(p.t, nil)
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	} else {
		client.Jar, client.Timeout = p.client.Jar, p.client.Timeout
	}
	res, err := client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if v != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(raw, v); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return res.StatusCode, string(raw)
}

// grantFixture is a recording service with a recorded call in tenant Acme,
// Acme's people of every role, a support engineer of the service's own
// desk, and a second tenant, Other, that lets no support engineer in.
type grantFixture struct {
	*recordingFixture
	callID                        sb.ID
	support, admin, supervisor    *person
	operator, otherAdmin, visitor *person
	adminUser                     *sb.User
	other                         *tenantFixture
	deskID                        sb.ID // the service's own support desk
}

func mustGrantFixture(t *testing.T, policy sb.SupportPolicy) *grantFixture {
	t.Helper()
	return mustGrantFixtureWith(t, policy, nil)
}

// mustGrantFixtureWith is mustGrantFixture with settings of its own.
func mustGrantFixtureWith(t *testing.T, policy sb.SupportPolicy, settings map[string]string) *grantFixture {
	t.Helper()
	x := mustRecordingFixtureWith(t, settings)
	ctx := context.Background()
	tenants := metadata.NewTenantService(x.m.DB)
	if err := tenants.SetSupportPolicy(ctx, x.f.Tenant.ID, policy); err != nil {
		t.Fatal(err)
	}
	desk := &sb.Tenant{Name: "Switchboard support desk"}
	if err := tenants.CreateTenant(ctx, desk); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"tenant", "set", "-database-url", x.m.Config.DatabaseURL, "-tenant", desk.ID.String(), "-service-desk"},
		nil, &out, &errOut); err != nil {
		t.Fatalf("tenant set -service-desk: %v\n%s", err, errOut.String())
	}
	g := &grantFixture{recordingFixture: x, other: mustProvision(t, x.m, "Other", "2001", 1), deskID: desk.ID}
	g.callID = x.call(t, "yes")
	acme := x.f.Tenant.ID
	g.adminUser = mustUser(t, x.m, acme, "admin@acme.test", sb.RoleAdmin)
	g.admin = mustLogin(t, x.m, g.adminUser)
	g.supervisor = mustLogin(t, x.m, mustUser(t, x.m, acme, "supervisor@acme.test", sb.RoleSupervisor))
	g.operator = mustLogin(t, x.m, x.f.Operators[0])
	g.support = mustLogin(t, x.m, mustUser(t, x.m, desk.ID, "engineer@desk.test", sb.RoleSupport))
	g.support.tenant = acme.String()
	g.otherAdmin = mustLogin(t, x.m, mustUser(t, x.m, g.other.Tenant.ID, "admin@other.test", sb.RoleAdmin))
	g.visitor = mustLogin(t, x.m, mustUser(t, x.m, desk.ID, "visitor@desk.test", sb.RoleSupport))
	g.visitor.tenant = g.other.Tenant.ID.String()
	return g
}

func (g *grantFixture) request(t *testing.T, p *person, body string) (int, *sb.AccessGrant) {
	t.Helper()
	var gr sb.AccessGrant
	code, _ := p.do(http.MethodPost, "/v1/calls/"+g.callID.String()+"/grants", body, &gr)
	return code, &gr
}

// audit returns the tenant's audit entries with action, oldest first.
func (g *grantFixture) audit(t *testing.T, action string) []*sb.AuditEntry {
	t.Helper()
	return auditOf(t, g.m, g.f.Tenant.ID, action)
}

// auditOf returns the tenant's audit entries with action, oldest first.
func auditOf(t *testing.T, m *Main, tenantID sb.ID, action string) []*sb.AuditEntry {
	t.Helper()
	all, err := metadata.NewAuditLog(m.DB).Recent(context.Background(), &tenantID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sb.AuditEntry
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Action == action {
			out = append(out, all[i])
		}
	}
	return out
}

// Each role against each endpoint: what it may do, what it is refused,
// and another tenant's call, which is simply not there.
func TestRolesAgainstEndpoints(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	call := "/v1/calls/" + g.callID.String()
	key := &person{t: t, m: g.m, key: g.f.APIKey} // a supervisor's API key
	const grantBody = `{"reason":"caller says audio dropped","ticket":"SUP-1"}`
	cases := []struct {
		method, path, body string
		want               map[*person]int
	}{
		{"GET", "/v1/calls", "", map[*person]int{g.operator: 200, g.supervisor: 200, g.admin: 200, g.support: 200, key: 200, g.visitor: 404}},
		{"GET", call, "", map[*person]int{g.operator: 200, g.supervisor: 200, g.admin: 200, g.support: 200, key: 200, g.otherAdmin: 404, g.visitor: 404}},
		{"GET", call + "/events", "", map[*person]int{g.operator: 200, g.supervisor: 200, g.support: 200, g.otherAdmin: 404, g.visitor: 404}},
		{"GET", call + "/recording", "", map[*person]int{g.operator: 200, g.supervisor: 200, g.support: 200, g.otherAdmin: 404, g.visitor: 404}},
		{"POST", call + "/consent", `{"given":false}`, map[*person]int{g.support: 403, g.otherAdmin: 404}},
		{"GET", "/v1/audit", "", map[*person]int{g.admin: 200, g.supervisor: 403, g.operator: 403, g.support: 403, key: 403}},
		{"POST", call + "/grants", grantBody, map[*person]int{g.operator: 403, g.supervisor: 403, key: 403, g.otherAdmin: 404, g.visitor: 404, g.support: 201}},
		{"GET", "/v1/grants", "", map[*person]int{g.operator: 403, g.supervisor: 200, g.admin: 200, g.support: 200, key: 403}},
		{"GET", "/v1/users", "", map[*person]int{g.operator: 403, g.supervisor: 200, g.admin: 200, g.support: 403}},
		{"GET", "/v1/apikeys", "", map[*person]int{g.operator: 403, g.supervisor: 403, g.admin: 200, g.support: 403, key: 403}},
		{"GET", "/v1/trunks", "", map[*person]int{g.operator: 403, g.supervisor: 403, g.admin: 200, g.support: 403}},
		{"POST", "/v1/audit/verify", "", map[*person]int{g.operator: 403, g.supervisor: 403, g.admin: 200, g.support: 403, key: 403}},
		{"PATCH", "/v1/users/" + g.f.Operators[0].ID.String(), `{"role":"admin"}`, map[*person]int{g.operator: 403, g.supervisor: 403, g.support: 403, key: 403, g.otherAdmin: 404}},
	}
	for _, c := range cases {
		for p, want := range c.want {
			if code, body := p.do(c.method, c.path, c.body, nil); code != want {
				t.Errorf("%s %s as %s: %d, want %d: %s", c.method, c.path, describe(g, p), code, want, body)
			}
		}
	}
	// An admin changes the operator's role: audited, and the operator's
	// session ends so the new role applies at once.
	var changed sb.User
	if code, body := g.admin.do("PATCH", "/v1/users/"+g.f.Operators[0].ID.String(), `{"role":"supervisor"}`, &changed); code != 200 || changed.Role != sb.RoleSupervisor {
		t.Fatalf("admin changes a role: %d %s", code, body)
	}
	if code, _ := g.operator.do("GET", "/v1/calls", "", nil); code != 401 {
		t.Errorf("the old session after a role change: %d, want 401", code)
	}
	if code, _ := g.admin.do("PATCH", "/v1/users/"+g.adminUser.ID.String(), `{"role":"operator"}`, nil); code != 403 {
		t.Errorf("an admin changing their own role: %d, want 403", code)
	}
	if code, _ := g.admin.do("PATCH", "/v1/users/"+g.f.Operators[0].ID.String(), `{"role":"king"}`, nil); code != 400 {
		t.Errorf("an unknown role: %d, want 400", code)
	}
	if e := g.audit(t, "user.role"); len(e) != 1 || e[0].Detail != "operator → supervisor" || *e[0].ActorUserID != g.adminUser.ID {
		t.Errorf("role change audit %+v", e)
	}
	var keys struct {
		APIKeys []map[string]any `json:"api_keys"`
	}
	if code, body := g.admin.do("GET", "/v1/apikeys", "", &keys); code != 200 || len(keys.APIKeys) != 1 || strings.Contains(body, "hash") {
		t.Errorf("admin's key list: %d %s", code, body)
	}

	// Other does not let support in, so it looked missing above; the
	// support desk's own tenant is open to its engineers.
	g.visitor.tenant = ""
	var calls struct{ Calls []*sb.Call }
	if code, _ := g.visitor.do("GET", "/v1/calls", "", &calls); code != 200 || len(calls.Calls) != 0 {
		t.Errorf("a support engineer in their own tenant: %d, %d calls", code, len(calls.Calls))
	}
	// Only a person of another tenant's support desk may visit: an admin
	// naming another tenant gets nothing.
	g.otherAdmin.tenant = g.f.Tenant.ID.String()
	if code, _ := g.otherAdmin.do("GET", call, "", nil); code != 404 {
		t.Errorf("an admin visiting another tenant: %d, want 404", code)
	}
}

func describe(g *grantFixture, p *person) string {
	switch p {
	case g.operator:
		return "operator"
	case g.supervisor:
		return "supervisor"
	case g.admin:
		return "admin"
	case g.support:
		return "visiting support engineer"
	case g.otherAdmin:
		return "other tenant's admin"
	case g.visitor:
		return "support engineer in a closed tenant"
	}
	return "supervisor API key"
}

// A support engineer asks, an admin approves, the engineer plays a range
// of the recording; each step is audited with the reason and ticket, a
// download the grant does not allow is refused, and nobody else hears it.
func TestGrantApprovedPlayedAndAudited(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, Approval: true, MaxTTLSeconds: 3600})
	if code, _ := g.request(t, g.support, `{"reason":"one-way audio reported","ticket":"SUP-42","ttl_seconds":7200}`); code != 400 {
		t.Errorf("a grant longer than the tenant allows: %d, want 400", code)
	}
	if code, _ := g.request(t, g.support, `{"reason":"","ticket":"SUP-42"}`); code != 400 {
		t.Errorf("a grant without a reason: %d, want 400", code)
	}
	code, gr := g.request(t, g.support, `{"reason":"one-way audio reported","ticket":"SUP-42"}`)
	if code != 201 || gr.Status != sb.GrantPending {
		t.Fatalf("request: %d %+v", code, gr)
	}
	audio := "/v1/grants/" + gr.ID.String() + "/audio"
	if code, _ := g.support.do("GET", audio, "", nil); code != 403 {
		t.Errorf("playing before approval: %d, want 403", code)
	}
	if code, _ := g.support.do("POST", "/v1/grants/"+gr.ID.String()+"/approve", "", nil); code != 403 {
		t.Errorf("the requester approving: %d, want 403", code)
	}
	var approved sb.AccessGrant
	if code, body := g.admin.do("POST", "/v1/grants/"+gr.ID.String()+"/approve", "", &approved); code != 200 || approved.Status != sb.GrantApproved {
		t.Fatalf("admin approves: %d %s", code, body)
	}
	if code, _ := g.admin.do("POST", "/v1/grants/"+gr.ID.String()+"/approve", "", nil); code != 409 {
		t.Errorf("approving twice: %d, want 409", code)
	}

	// A range read: what the service sends is the recording decrypted.
	req, _ := http.NewRequest("GET", g.m.HTTPURL()+audio, nil)
	req.Header.Set("X-Switchboard-Tenant", g.support.tenant)
	req.Header.Set("Range", "bytes=0-4043")
	res, err := g.support.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 206 || res.Header.Get("Content-Type") != "audio/wav" || len(got) != 4044 ||
		!strings.HasPrefix(res.Header.Get("Content-Range"), "bytes 0-4043/") {
		t.Fatalf("range read: %d %v, %d bytes", res.StatusCode, res.Header, len(got))
	}
	want := g.render(t, gr.RecordingID)
	if !bytes.Equal(got, want[:4044]) {
		t.Error("the range read is not the recording's audio")
	}

	// Anyone else of the tenant is refused as for a grant that does not
	// exist, and audited; another tenant's admin is not found, and not on
	// either log.
	key := &person{t: t, m: g.m, key: g.f.APIKey} // a supervisor's API key
	others := []*person{g.admin, g.supervisor, g.operator, key}
	for _, p := range append(others, g.otherAdmin) {
		code, body := p.do("GET", audio, "", nil)
		missingCode, missing := p.do("GET", "/v1/grants/"+sb.NewID().String()+"/audio", "", nil)
		if code != 404 && code != 403 || code != missingCode || errorMessage(body) != errorMessage(missing) {
			t.Errorf("%s plays another's grant: %d %s; a grant that does not exist: %d %s", describe(g, p), code, body, missingCode, missing)
		}
	}
	if code, _ := g.support.do("GET", audio+"?download=1", "", nil); code != 403 {
		t.Errorf("download without the permission: %d, want 403", code)
	}

	if e := g.audit(t, "grant.request"); len(e) != 1 || e[0].Reason != "one-way audio reported" || e[0].Ticket != "SUP-42" ||
		e[0].ActorRole != sb.RoleSupport || e[0].IP != "127.0.0.1" {
		t.Errorf("request audit %+v", e)
	}
	if e := g.audit(t, "grant.approve"); len(e) != 1 || e[0].Outcome != "ok" || *e[0].ActorUserID != g.adminUser.ID {
		t.Errorf("approval audit %+v", e)
	}
	plays := g.audit(t, "recording.play")
	if len(plays) != 2+len(others) || plays[0].Outcome != "denied" || plays[1].Outcome != "ok" ||
		!strings.Contains(plays[1].Detail, "bytes=0-4043") || plays[1].ResourceID != gr.RecordingID.String() || plays[1].Ticket != "SUP-42" {
		t.Fatalf("play audit: the try before approval, the range, then each of the %d others: %+v", len(others), plays)
	}
	for i, want := range []sb.Role{sb.RoleAdmin, sb.RoleSupervisor, sb.RoleOperator, sb.RoleSupervisor} {
		e := plays[2+i]
		if e.Outcome != "denied" || e.ActorRole != want || e.ResourceID != gr.RecordingID.String() || e.Ticket != "" || e.IP != "127.0.0.1" {
			t.Errorf("%s's refused play: %+v", describe(g, others[i]), e)
		}
	}
	if *plays[2].ActorUserID != g.adminUser.ID || plays[5].ActorKeyID == nil {
		t.Errorf("the refused plays name %v and %v", plays[2].ActorUserID, plays[5].ActorKeyID)
	}
	if e := auditOf(t, g.m, g.other.Tenant.ID, "recording.play"); len(e) != 0 {
		t.Errorf("the other tenant's log has %d plays", len(e))
	}
	if e := g.audit(t, "recording.download"); len(e) != 1 || e[0].Outcome != "denied" {
		t.Errorf("download audit %+v", e)
	}
	if broken, err := metadata.NewAuditLog(g.m.DB).Verify(context.Background()); err != nil || broken != 0 {
		t.Errorf("audit chain broken at %d: %v", broken, err)
	}
}

// render is the recording as the player must give it, made here from the
// store and the keyring directly.
func (g *grantFixture) render(t *testing.T, recID sb.ID) []byte {
	t.Helper()
	ctx := context.Background()
	rec, err := metadata.NewRecordingStore(g.m.DB).FindRecordingByID(ctx, g.f.Tenant.ID, recID)
	if err != nil {
		t.Fatal(err)
	}
	key, err := g.ring.Unwrap(rec.KeyVersion, rec.WrappedKey, rec.ID[:])
	if err != nil {
		t.Fatal(err)
	}
	obj, err := g.store.Open(ctx, rec.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	r, err := recordings.NewReader(obj, obj.Size(), key, recordings.Meta{TenantID: rec.TenantID, CallID: rec.CallID, RecordingID: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	a, err := recordings.NewAudio(r, time.Duration(rec.DurationMS)*time.Millisecond, rec.SegmentStarts, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := a.WriteRange(&b, 0, a.Size()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// longRecording stores a recorded call of minutes of audio in Acme, made
// without waiting for it: a recording service with its own clock taps
// audio dated minutes apart.
func (g *grantFixture) longRecording(t *testing.T, minutes int) sb.ID {
	t.Helper()
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Millisecond)
	now := start
	svc := recordings.NewService(g.store, g.ring, metadata.NewRecordingStore(g.m.DB), recordings.WithServiceClock(func() time.Time { return now }))
	c := &sb.Call{ID: sb.NewID(), TenantID: g.f.Tenant.ID, Direction: sb.Inbound, Status: sb.CallCompleted, CreatedAt: start}
	if err := metadata.NewCallStore(g.m.DB).CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	rec, err := svc.Begin(ctx, c, &sb.Consent{Given: true, Mechanism: sb.ConsentAPI, At: start}, sb.PCMU, sb.PCMU)
	if err != nil || rec == nil {
		t.Fatalf("begin: %v", err)
	}
	payload := make([]byte, 160)
	for i := 0; i < minutes*60*50; i++ {
		at := start.Add(time.Duration(i) * 20 * time.Millisecond)
		payload[0] = byte(i)
		rec.Tap(true, payload, at)
		rec.Tap(false, payload, at)
		if i%50 == 49 {
			time.Sleep(100 * time.Microsecond) // the recorder's queue drains, as 20 ms pacing lets it
		}
	}
	now = start.Add(time.Duration(minutes) * time.Minute)
	if _, err := rec.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// Revoking a grant stops a stream in progress: the rest of the recording
// is never decrypted.
func TestRevokedGrantStopsStream(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	g.callID = g.longRecording(t, 10)
	code, gr := g.request(t, g.support, `{"reason":"echo on long call","ticket":"SUP-7"}`)
	if code != 201 || gr.Status != sb.GrantApproved {
		t.Fatalf("request: %d %+v", code, gr)
	}
	req, _ := http.NewRequest("GET", g.m.HTTPURL()+"/v1/grants/"+gr.ID.String()+"/audio", nil)
	req.Header.Set("X-Switchboard-Tenant", g.support.tenant)
	res, err := g.support.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	size := res.ContentLength
	if res.StatusCode != 200 || size != 44+10*60*8000*4 {
		t.Fatalf("stream: %d, %d bytes", res.StatusCode, size)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if code, body := g.admin.do("POST", "/v1/grants/"+gr.ID.String()+"/revoke", "", nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err == nil || 64<<10+n >= size {
		t.Errorf("the stream went on after revocation: %d of %d bytes, %v", 64<<10+n, size, err)
	}
	t.Logf("revoked after 64 KiB; %d more bytes were already on their way, of %d", n, size)
	if code, _ := g.support.do("GET", "/v1/grants/"+gr.ID.String()+"/audio", "", nil); code != 403 {
		t.Errorf("playing a revoked grant: %d, want 403", code)
	}
	if e := g.audit(t, "grant.revoke"); len(e) != 1 || *e[0].ActorUserID != g.adminUser.ID {
		t.Errorf("revocation audit %+v", e)
	}
}

// An admin exports a recording from the command line through a grant of
// theirs that allows download; the export is audited like a download in
// the browser, and a grant without download exports nothing.
func TestRecordingExportThroughGrant(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600, Download: true})
	_, playOnly := g.request(t, g.admin, `{"reason":"listen only","ticket":"OPS-1"}`)
	code, gr := g.request(t, g.admin, `{"reason":"evidence for the carrier's fault ticket","ticket":"OPS-9","download":true}`)
	if code != 201 || gr.Status != sb.GrantApproved || !gr.Download {
		t.Fatalf("request: %d %+v", code, gr)
	}
	c := g.m.Config
	export := func(grant sb.ID, out string) error {
		args := []string{"recording", "export", "-database-url", c.DatabaseURL, "-recordings", "s3", "-recording-spool", c.RecordingSpool,
			"-keyring", "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32)),
			"-s3-endpoint", g.s3.Endpoint, "-s3-bucket", g.s3.Bucket, "-s3-access-key", g.s3.AccessKey, "-s3-secret-key", g.s3.SecretKey,
			"-grant", grant.String(), "-email", g.adminUser.Email, "-o", out}
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(testPassword+"\n"), &stdout, &stderr)
		if err != nil {
			t.Logf("export: %v\n%s", err, stderr.String())
		}
		return err
	}
	out := filepath.Join(t.TempDir(), "call.wav")
	if err := export(gr.ID, out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, g.render(t, gr.RecordingID)) {
		t.Error("the exported file is not the recording")
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("exported file mode %v, want 0600", fi.Mode().Perm())
	}
	denied := filepath.Join(t.TempDir(), "denied.wav")
	if err := export(playOnly.ID, denied); err == nil || !strings.Contains(err.Error(), "allows playing, not downloading") {
		t.Errorf("export through a play-only grant: %v", err)
	}
	if _, err := os.Stat(denied); !os.IsNotExist(err) {
		t.Errorf("a refused export left a file: %v", err)
	}
	downloads := g.audit(t, "recording.download")
	if len(downloads) != 2 || downloads[0].Outcome != "ok" || !strings.Contains(downloads[0].Detail, "command-line export") ||
		downloads[0].Ticket != "OPS-9" || downloads[1].Outcome != "denied" {
		t.Errorf("export audit %+v", downloads)
	}
}

// `switchboard tenant set` opens a tenant to support engineers and sets
// its grant rules; a bad value changes nothing.
func TestTenantSetSupportPolicy(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx := context.Background()
	set := func(flags ...string) error {
		args := append([]string{"tenant", "set", "-database-url", m.Config.DatabaseURL, "-tenant", f.Tenant.ID.String()}, flags...)
		var out, errOut bytes.Buffer
		return run(ctx, args, nil, &out, &errOut)
	}
	if err := set("-support-access", "-grant-approval=true", "-grant-max-ttl", "30m"); err != nil {
		t.Fatal(err)
	}
	if err := set("-grant-download=maybe", "-support-access=false"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "invalid boolean value") {
		t.Errorf("a bad value: %v", err)
	}
	// The old spelling, a value after a boolean flag, is a stray argument.
	if err := set("-support-access", "no"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), `unexpected argument "no"`) {
		t.Errorf("-support-access no: %v", err)
	}
	got, err := metadata.NewTenantService(m.DB).FindTenantByID(ctx, f.Tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (sb.SupportPolicy{Access: true, Approval: true, MaxTTLSeconds: 1800}); got.Support != want {
		t.Errorf("support policy %+v, want %+v", got.Support, want)
	}
}

// The service desk is a tenant the service's operator marks as such (the
// CLI), and only its support engineers may visit the tenants that let the
// service desk in; each of their requests there is on the visited
// tenant's audit log before it is answered. A support engineer of any
// other tenant, one that let support in included, stays in their own: an
// ordinary tenant's admin could otherwise make anyone a "support
// engineer" of every open tenant.
func TestServiceDeskAcrossTenants(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	ctx := context.Background()
	tenants := metadata.NewTenantService(g.m.DB)
	if err := tenants.SetSupportPolicy(ctx, g.other.Tenant.ID, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600}); err != nil {
		t.Fatal(err)
	}
	// Other's own support engineer, in a tenant that is not the desk.
	stranger := mustLogin(t, g.m, mustUser(t, g.m, g.other.Tenant.ID, "support@other.test", sb.RoleSupport))
	stranger.tenant = g.f.Tenant.ID.String()
	call := "/v1/calls/" + g.callID.String()
	reads := []string{"/v1/calls", call, call + "/events", call + "/trace", call + "/quality", call + "/pcap", call + "/recording"}
	for _, path := range reads {
		if code, body := stranger.do("GET", path, "", nil); code != 404 {
			t.Errorf("GET %s by another tenant's support engineer: %d, want 404: %s", path, code, body)
		}
	}
	if e := g.audit(t, "service_desk.visit"); len(e) != 0 {
		t.Errorf("%d visits audited before the desk visited", len(e))
	}
	for _, path := range reads {
		if code, body := g.support.do("GET", path, "", nil); code != 200 {
			t.Errorf("GET %s by the service desk: %d, want 200: %s", path, code, body)
		}
	}
	visits := g.audit(t, "service_desk.visit")
	if len(visits) != len(reads) {
		t.Fatalf("%d visits audited, want %d", len(visits), len(reads))
	}
	for i, e := range visits {
		if want := "GET " + reads[i]; e.ResourceID != want || e.ActorRole != sb.RoleSupport || e.ActorUserID == nil {
			t.Errorf("visit %d audited as %+v, want %q by the desk's engineer", i, e, want)
		}
	}
	// Taken off the desk, its engineers are ordinary again.
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"tenant", "set", "-database-url", g.m.Config.DatabaseURL, "-tenant", g.deskID.String(), "-service-desk=false"},
		nil, &out, &errOut); err != nil {
		t.Fatalf("tenant set -service-desk=false: %v\n%s", err, errOut.String())
	}
	if code, _ := g.support.do("GET", "/v1/calls", "", nil); code != 404 {
		t.Errorf("GET /v1/calls by a former desk's engineer: %d, want 404", code)
	}
}

// errorMessage is the message of an error answer's body.
func errorMessage(body string) string {
	var e struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return "not an error body: " + body
	}
	return e.Message
}
