package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// steps is what happened, in order: audit entries written ("audit
// <action> <outcome>") and actions taken ("do <action>").
type steps struct {
	mu        sync.Mutex
	log       []string
	auditDown bool // the audit log refuses every entry
	actFails  bool // every action fails
}

func (s *steps) add(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, step)
}

func (s *steps) taken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *steps) Append(_ context.Context, entries ...*sb.AuditEntry) error {
	if s.auditDown {
		return errors.New("audit log unreachable")
	}
	for _, e := range entries {
		s.add("audit " + e.Action + " " + e.Outcome)
	}
	return nil
}

func (s *steps) act(what string) error {
	s.add("do " + what)
	if s.actFails {
		return sb.Errorf(sb.ECONFLICT, "the call is not in progress")
	}
	return nil
}

func (s *steps) EndCall(sb.ID, sb.ID) error                          { return s.act("hangup") }
func (s *steps) TransferByAPI(sb.ID, sb.ID, sb.TransferTarget) error { return s.act("transfer") }
func (s *steps) SetConsent(sb.ID, sb.ID, sb.Consent) error           { return s.act("consent") }
func (s *steps) PauseRecording(_, _ sb.ID, paused bool, by string) error {
	if !paused {
		return s.act("resume by " + by)
	}
	return s.act("pause by " + by)
}
func (s *steps) Originate(sb.ID, sb.ID, string) (sb.ID, error) { return sb.NewID(), s.act("originate") }

// Consent given, a recording resumed, hang-up, transfer and click-to-call
// are audited before they happen: when the audit log cannot take the
// entry, nothing happens; when the action fails after its entry was
// written, a second entry says so. What only lessens what is kept of a
// caller (consent withdrawn, a recording paused) happens whatever the
// audit log's state, and is audited after, as done or failed: a database
// that cannot take the entry must not keep recording someone who asked
// not to be.
func TestActionsAuditedFirst(t *testing.T) {
	tenant := sb.NewID()
	call := &sb.Call{ID: sb.NewID(), TenantID: tenant, Status: sb.CallAnswered}
	key := &sb.APIKey{ID: sb.NewID(), TenantID: tenant, Role: sb.RoleSupervisor}
	requests := []struct{ action, path, body string }{
		{"consent.give", "/v1/calls/" + call.ID.String() + "/consent", `{"given":true}`},
		{"consent.withdraw", "/v1/calls/" + call.ID.String() + "/consent", `{"given":false}`},
		{"recording.pause", "/v1/calls/" + call.ID.String() + "/recording/pause", ``},
		{"recording.resume", "/v1/calls/" + call.ID.String() + "/recording/resume", ``},
		{"call.hangup", "/v1/calls/" + call.ID.String() + "/hangup", ``},
		{"call.transfer", "/v1/calls/" + call.ID.String() + "/transfer", `{"uri":"sip:desk@example.test"}`},
		{"call.originate", "/v1/calls", `{"operator_id":"` + sb.NewID().String() + `","number":"+4930123456"}`},
	}
	lessens := func(action string) bool { return action == "consent.withdraw" || action == "recording.pause" }
	// verb is the fake's name for what an audited action does.
	verb := func(action string) string {
		return map[string]string{"consent.give": "consent", "consent.withdraw": "consent", "call.hangup": "hangup", "call.transfer": "transfer", "call.originate": "originate",
			"recording.pause": "pause by api key " + key.ID.String(), "recording.resume": "resume by api key " + key.ID.String()}[action]
	}
	for _, c := range []struct {
		name                string
		auditDown, actFails bool
		want                func(action string) []string
		codeOK              func(action string) bool
	}{
		{"audited, then done", false, false, func(a string) []string {
			if lessens(a) {
				return []string{"do " + verb(a), "audit " + a + " "}
			}
			return []string{"audit " + a + " ", "do " + verb(a)}
		}, func(string) bool { return true }},
		{"audit log down: not done, unless it lessens", true, false, func(a string) []string {
			if lessens(a) {
				return []string{"do " + verb(a)}
			}
			return nil
		}, lessens},
		{"done, and failed", false, true, func(a string) []string {
			if lessens(a) {
				return []string{"do " + verb(a), "audit " + a + " failed"}
			}
			return []string{"audit " + a + " ", "do " + verb(a), "audit " + a + " failed"}
		}, func(string) bool { return false }},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, req := range requests {
				st := &steps{auditDown: c.auditDown, actFails: c.actFails}
				srv := httptest.NewServer(NewServer(Config{}, Deps{
					Calls:      &fakeCalls{call: call},
					APIKeys:    &fakeKeys{key: key},
					Sessions:   &fakeSessions{m: map[string]*sb.Session{}},
					Users:      &fakeUsers{},
					Audit:      st,
					Ender:      st,
					Consents:   st,
					Originator: st,
				}).Handler())
				code := asKey(t, srv, http.MethodPost, req.path, req.body)
				srv.Close()
				if ok := code < 300; ok != c.codeOK(req.action) {
					t.Errorf("%s: %d", req.action, code)
				}
				if got, want := st.taken(), c.want(req.action); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s: steps %q, want %q", req.action, got, want)
				}
			}
		})
	}
}

// queuesOf are queues by ID, with their tenant, as the queue admin reads
// them: only the actor's tenant's are found.
type queuesOf map[sb.ID]sb.ID

func (q queuesOf) QueueByID(ctx context.Context, id sb.ID) (*sb.Queue, error) {
	a := sb.ActorFromContext(ctx)
	if tenant, ok := q[id]; !ok || a == nil || tenant != a.TenantID {
		return nil, sb.Errorf(sb.ENOTFOUND, "queue not found")
	}
	return &sb.Queue{ID: id, TenantID: q[id]}, nil
}
func (queuesOf) CreateQueue(context.Context, *sb.Queue) error {
	return sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (queuesOf) UpdateQueue(context.Context, sb.ID, sb.QueueChange) (*sb.Queue, error) {
	return nil, sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (queuesOf) DeleteQueue(context.Context, sb.ID) (*sb.Queue, error) {
	return nil, sb.Errorf(sb.EFORBIDDEN, "not here")
}

// A transfer to a queue names one of the tenant's: another tenant's, or
// none, is not found before anything is audited or done. Call control
// would take it, not find it, and hand the call to any operator.
func TestTransferToTenantsQueueOnly(t *testing.T) {
	tenant := sb.NewID()
	ours, theirs := sb.NewID(), sb.NewID()
	call := &sb.Call{ID: sb.NewID(), TenantID: tenant, Status: sb.CallAnswered}
	for _, c := range []struct {
		name  string
		queue sb.ID
		code  int
		want  []string
	}{
		{"another tenant's", theirs, http.StatusNotFound, nil},
		{"no queue", sb.NewID(), http.StatusNotFound, nil},
		{"the tenant's", ours, http.StatusAccepted, []string{"audit call.transfer ", "do transfer"}},
	} {
		st := &steps{}
		srv := httptest.NewServer(NewServer(Config{}, Deps{
			Calls:     &fakeCalls{call: call},
			APIKeys:   &fakeKeys{key: &sb.APIKey{ID: sb.NewID(), TenantID: tenant, Role: sb.RoleSupervisor}},
			Sessions:  &fakeSessions{m: map[string]*sb.Session{}},
			Users:     &fakeUsers{},
			Audit:     st,
			Ender:     st,
			Resources: &Resources{Queues: queuesOf{ours: tenant, theirs: sb.NewID()}},
		}).Handler())
		r, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, srv.URL+"/v1/calls/"+call.ID.String()+"/transfer",
			strings.NewReader(`{"queue_id":"`+c.queue.String()+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer sbk_good")
		r.Header.Set("Content-Type", "application/json")
		res, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		var body errorBody
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		srv.Close()
		if res.StatusCode != c.code || (c.code == http.StatusNotFound && body.Message != "queue not found") {
			t.Errorf("%s: %d %q, want %d", c.name, res.StatusCode, body.Message, c.code)
		}
		if got := st.taken(); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: steps %q, want %q", c.name, got, c.want)
		}
	}
}

// A pause names who asked, as the timeline will say it.
func TestPauseNamesWhoAsked(t *testing.T) {
	tenant := sb.NewID()
	call := &sb.Call{ID: sb.NewID(), TenantID: tenant, Status: sb.CallAnswered}
	key := &sb.APIKey{ID: sb.NewID(), TenantID: tenant, Role: sb.RoleSupervisor}
	st := &steps{}
	srv := httptest.NewServer(NewServer(Config{}, Deps{Calls: &fakeCalls{call: call}, APIKeys: &fakeKeys{key: key},
		Sessions: &fakeSessions{m: map[string]*sb.Session{}}, Users: &fakeUsers{}, Consents: st}).Handler())
	defer srv.Close()
	code := asKey(t, srv, http.MethodPost, "/v1/calls/"+call.ID.String()+"/recording/pause", "")
	if got := st.taken(); code != http.StatusAccepted || len(got) != 1 || got[0] != "do pause by api key "+key.ID.String() {
		t.Errorf("pause: %d, steps %q", code, got)
	}
}

// asKey sends a request to srv with the supervisor's API key (the fakes'
// "sbk_good"), a JSON body when body is not empty, and returns its status.
func asKey(t *testing.T, srv *httptest.Server, method, path, body string) int {
	t.Helper()
	r, err := http.NewRequestWithContext(testCtx(t), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer sbk_good")
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	res, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// failingEnder fails every action with an internal error.
type failingEnder struct{ err error }

func (f failingEnder) EndCall(sb.ID, sb.ID) error                          { return f.err }
func (f failingEnder) TransferByAPI(sb.ID, sb.ID, sb.TransferTarget) error { return f.err }

// keptEntries keeps the audit entries written.
type keptEntries struct {
	mu      sync.Mutex
	entries []*sb.AuditEntry
}

func (k *keptEntries) Append(_ context.Context, entries ...*sb.AuditEntry) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.entries = append(k.entries, entries...)
	return nil
}

// The entry of an action that failed says what its caller was told, never
// the internal detail: the tenant's admins read it through the API.
func TestFailedActionAuditsNoInternalDetail(t *testing.T) {
	tenant := sb.NewID()
	call := &sb.Call{ID: sb.NewID(), TenantID: tenant, Status: sb.CallAnswered}
	kept := &keptEntries{}
	srv := httptest.NewServer(NewServer(Config{}, Deps{
		Calls:    &fakeCalls{call: call},
		APIKeys:  &fakeKeys{key: &sb.APIKey{ID: sb.NewID(), TenantID: tenant, Role: sb.RoleSupervisor}},
		Sessions: &fakeSessions{m: map[string]*sb.Session{}},
		Users:    &fakeUsers{},
		Audit:    kept,
		Ender:    failingEnder{err: errors.New("callctl: database at 10.20.30.40:5432: connection reset")},
	}).Handler())
	defer srv.Close()
	code := asKey(t, srv, http.MethodPost, "/v1/calls/"+call.ID.String()+"/hangup", "")
	kept.mu.Lock()
	defer kept.mu.Unlock()
	if code != http.StatusInternalServerError || len(kept.entries) != 2 {
		t.Fatalf("hangup: %d, %d entries", code, len(kept.entries))
	}
	if e := kept.entries[1]; e.Outcome != "failed" || e.Reason != "internal error" {
		t.Errorf("the failure's entry: %q, %q; want failed, internal error", e.Outcome, e.Reason)
	}
}

// deskTenants are a service desk and a tenant that lets it in.
type deskTenants struct{ desk, open sb.ID }

func (d deskTenants) CreateTenant(context.Context, *sb.Tenant) error { return nil }
func (d deskTenants) FindTenantByID(_ context.Context, id sb.ID) (*sb.Tenant, error) {
	switch id {
	case d.desk:
		return &sb.Tenant{ID: id, ServiceDesk: true}, nil
	case d.open:
		return &sb.Tenant{ID: id, Support: sb.SupportPolicy{Access: true}}, nil
	}
	return nil, sb.Errorf(sb.ENOTFOUND, "tenant not found")
}

// A visit's request refused for the rate is not on the visited tenant's
// audit log: the log cannot be trimmed, and a visitor's requests past
// their budget read nothing there.
func TestVisitsOverTheRateAreNotAudited(t *testing.T) {
	tenants := deskTenants{desk: sb.NewID(), open: sb.NewID()}
	engineer := &sb.User{ID: sb.NewID(), TenantID: tenants.desk, Email: "engineer@desk.test", Role: sb.RoleSupport}
	sessions := &fakeSessions{m: map[string]*sb.Session{}}
	token, _, _ := sessions.CreateSession(context.Background(), engineer, time.Hour)
	kept := &keptEntries{}
	now := time.Now()
	srv := httptest.NewServer(NewServer(Config{Now: func() time.Time { return now }}, Deps{
		Calls:    &fakeCalls{call: &sb.Call{ID: sb.NewID(), TenantID: tenants.open}},
		APIKeys:  &fakeKeys{},
		Sessions: sessions,
		Users:    &fakeUsers{users: []*sb.User{engineer}},
		Tenants:  tenants,
		Audit:    kept,
	}).Handler())
	defer srv.Close()
	limited := 0
	for range 3 * apiBurst {
		r, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, srv.URL+"/v1/calls", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set(tenantHeader, tenants.open.String())
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
		res, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	kept.mu.Lock()
	defer kept.mu.Unlock()
	if limited != 2*apiBurst || len(kept.entries) != apiBurst {
		t.Errorf("%d requests refused for the rate, %d visits audited; want %d and %d", limited, len(kept.entries), 2*apiBurst, apiBurst)
	}
}
