package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/apispec"
	"github.com/switchboard-voice/switchboard/webrtc"
)

// Fakes for the services: a tenant with one operator and one call.

// fakeUsers knows some users, all with the password "right password".
type fakeUsers struct{ users []*sb.User }

func (f *fakeUsers) CreateUser(context.Context, *sb.User, string) error     { return nil }
func (f *fakeUsers) FindUsers(context.Context, sb.Page) ([]*sb.User, error) { return f.users, nil }
func (f *fakeUsers) InviteUser(context.Context, *sb.User, string) (string, error) {
	return "", sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (f *fakeUsers) UpdateUser(context.Context, sb.ID, sb.UserChange) (*sb.User, error) {
	return nil, sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (f *fakeUsers) ResetPassword(context.Context, sb.ID, string) (string, error) {
	return "", sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (f *fakeUsers) ChangePassword(context.Context, string, string) error {
	return sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (f *fakeUsers) SetPassword(context.Context, string, string) (*sb.User, error) {
	return nil, sb.Errorf(sb.EUNAUTHORIZED, "not here")
}
func (f *fakeUsers) Authenticate(_ context.Context, email, password string) (*sb.User, error) {
	for _, u := range f.users {
		if email == u.Email && password == "right password" {
			return u, nil
		}
	}
	// Unlike the real service, say what was wrong: the handler must not
	// pass it on.
	return nil, sb.Errorf(sb.EUNAUTHORIZED, "no user %s or wrong password", email)
}
func (f *fakeUsers) FindUserByID(ctx context.Context, id sb.ID) (*sb.User, error) {
	a := sb.ActorFromContext(ctx)
	for _, u := range f.users {
		if a != nil && a.TenantID == u.TenantID && id == u.ID {
			return u, nil
		}
	}
	return nil, sb.Errorf(sb.ENOTFOUND, "user not found")
}

type fakeSessions struct {
	mu sync.Mutex
	m  map[string]*sb.Session
}

func (f *fakeSessions) CreateSession(_ context.Context, u *sb.User, ttl time.Duration) (string, *sb.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	token := sb.NewID().String()
	s := &sb.Session{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, ExpiresAt: time.Now().Add(ttl)}
	f.m[token] = s
	return token, s, nil
}
func (f *fakeSessions) FindSession(_ context.Context, token string) (*sb.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.m[token]; s != nil {
		return s, nil
	}
	return nil, sb.Errorf(sb.EUNAUTHORIZED, "not logged in")
}
func (f *fakeSessions) DeleteSession(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, token)
	return nil
}

type fakeKeys struct{ key *sb.APIKey }

func (f *fakeKeys) CreateAPIKey(context.Context, sb.ID, sb.Role) (*sb.APIKey, string, error) {
	return nil, "", nil
}
func (f *fakeKeys) FindAPIKeys(context.Context, sb.Page) ([]*sb.APIKey, error) {
	return []*sb.APIKey{f.key}, nil
}
func (f *fakeKeys) IssueAPIKey(context.Context, sb.APIKeyRequest) (*sb.APIKey, string, error) {
	return nil, "", sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (f *fakeKeys) RevokeAPIKey(context.Context, sb.ID) error {
	return sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (f *fakeKeys) AuthenticateAPIKey(_ context.Context, secret string) (*sb.APIKey, error) {
	if secret == "sbk_good" {
		return f.key, nil
	}
	return nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid API key")
}

type fakeCalls struct {
	call *sb.Call
	// events is the call's timeline as JSON, read afresh each time as the
	// store reads it; without it the timeline is one received event.
	events  string
	mu      sync.Mutex // guards the fields below
	filter  sb.CallFilter
	actor   *sb.Actor
	failing bool
}

func (f *fakeCalls) FindCalls(ctx context.Context, filter sb.CallFilter) ([]*sb.Call, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter, f.actor = filter, sb.ActorFromContext(ctx)
	if f.failing {
		return nil, context.DeadlineExceeded
	}
	if f.actor == nil || f.actor.TenantID != f.call.TenantID {
		return []*sb.Call{}, nil
	}
	return []*sb.Call{f.call}, nil
}
func (f *fakeCalls) FindCallByID(ctx context.Context, id sb.ID) (*sb.Call, error) {
	if a := sb.ActorFromContext(ctx); a == nil || a.TenantID != f.call.TenantID || id != f.call.ID {
		return nil, sb.Errorf(sb.ENOTFOUND, "call not found")
	}
	return f.call, nil
}
func (f *fakeCalls) FindCallEvents(ctx context.Context, id sb.ID) ([]*sb.CallEvent, error) {
	if _, err := f.FindCallByID(ctx, id); err != nil {
		return nil, err
	}
	if f.events != "" {
		var events []*sb.CallEvent
		err := json.Unmarshal([]byte(f.events), &events)
		return events, err
	}
	return []*sb.CallEvent{{CallID: id, Type: sb.EventReceived}}, nil
}

// fakeMedia records what the socket handler does with the PeerConnection.
type fakeMedia struct {
	mu      sync.Mutex
	onState func(string)
	onCand  func(sb.ICECandidate)
	answer  string
	cands   []sb.ICECandidate
	closed  bool
}

func (m *fakeMedia) OnICECandidate(fn func(sb.ICECandidate)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onCand = fn
}

func (m *fakeMedia) OnConnectionStateChange(fn func(string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onState = fn
}

// setState plays the PeerConnection changing state.
func (m *fakeMedia) setState(st string) {
	m.mu.Lock()
	fn := m.onState
	m.mu.Unlock()
	fn(st)
}

// CreateOffer gathers a candidate before it returns, as pion may: the
// handler must still send the offer first.
func (m *fakeMedia) CreateOffer(context.Context) (string, error) {
	m.mu.Lock()
	fn := m.onCand
	m.mu.Unlock()
	fn(sb.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"})
	return "v=0 offer", nil
}
func (m *fakeMedia) SetAnswer(sdp string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !strings.HasPrefix(sdp, "v=0") {
		return sb.Errorf(sb.EINVALID, "bad answer")
	}
	m.answer = sdp
	return nil
}
func (m *fakeMedia) AddICECandidate(c sb.ICECandidate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cands = append(m.cands, c)
	return nil
}
func (m *fakeMedia) Media() sb.MediaPort { return fakePort{} }

// fakePort is an operator's audio path that carries Opus.
type fakePort struct{}

func (fakePort) Codec() sb.Codec           { return sb.Opus }
func (fakePort) SetSink(func([]byte))      {}
func (fakePort) WriteRTP(pkt []byte) error { return nil }

// Close closes, and says so like a PeerConnection does.
func (m *fakeMedia) Close() error {
	m.mu.Lock()
	was := m.closed
	m.closed = true
	fn := m.onState
	m.mu.Unlock()
	if !was && fn != nil {
		fn("closed")
	}
	return nil
}

func (m *fakeMedia) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

type mediaFactory struct {
	mu       sync.Mutex
	sessions []*fakeMedia
}

func (f *mediaFactory) NewMediaSession() (MediaSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := &fakeMedia{}
	f.sessions = append(f.sessions, m)
	return m, nil
}

func (f *mediaFactory) session(i int) *fakeMedia {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[i]
}

// fakeControl records call control requests and, like the Switch,
// confirms availability changes through the connection.
type fakeControl struct {
	mu           sync.Mutex
	conns        []sb.OperatorConn
	accepted     []sb.ID
	muted        []bool
	disconnected []sb.ID
	stats        []sb.QualitySample
	paused       []bool
}

func (f *fakeControl) Available(op sb.OperatorConn) error {
	f.mu.Lock()
	f.conns = append(f.conns, op)
	f.mu.Unlock()
	op.StateChanged(true, "")
	return nil
}
func (f *fakeControl) Away(id sb.ID) {
	f.mu.Lock()
	var op sb.OperatorConn
	for _, c := range f.conns {
		if c.OperatorID() == id {
			op = c
		}
	}
	f.mu.Unlock()
	if op != nil {
		op.StateChanged(false, "")
	}
}
func (f *fakeControl) Accept(_, callID sb.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accepted = append(f.accepted, callID)
	return nil
}
func (f *fakeControl) Decline(sb.ID, sb.ID) error {
	return sb.Errorf(sb.ENOTFOUND, "no such call ringing")
}
func (f *fakeControl) Hangup(sb.ID, sb.ID) error                          { return errors.New("database on fire") }
func (f *fakeControl) OperatorConsent(_, _ sb.ID, given bool) error       { return nil }
func (f *fakeControl) Hold(_, _ sb.ID, held bool) error                   { return nil }
func (f *fakeControl) TransferCall(_, _ sb.ID, _ sb.TransferTarget) error { return nil }
func (f *fakeControl) Reattach(sb.OperatorConn, func(sb.CallOffer)) bool  { return false }
func (f *fakeControl) Draining() bool                                     { return false }
func (f *fakeControl) OperatorPause(_, _ sb.ID, paused bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = append(f.paused, paused)
	return nil
}
func (f *fakeControl) Presence(sb.ID) map[sb.ID]string { return nil }
func (f *fakeControl) Dial(_ sb.ID, number string) (sb.ID, error) {
	if number == "busy" {
		return sb.ID{}, sb.Errorf(sb.ECONFLICT, "on a call")
	}
	return sb.NewID(), nil
}
func (f *fakeControl) OperatorStats(_, _ sb.ID, q sb.QualitySample) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = append(f.stats, q)
	return nil
}

func (f *fakeControl) Mute(_, _ sb.ID, muted bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.muted = append(f.muted, muted)
	return nil
}
func (f *fakeControl) Disconnected(id sb.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnected = append(f.disconnected, id)
}

func (f *fakeControl) availableConns() []sb.OperatorConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sb.OperatorConn(nil), f.conns...)
}

func (f *fakeControl) disconnects() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.disconnected)
}

var _ CallControl = (*fakeControl)(nil)
var _ MediaSession = (*fakeMedia)(nil)

type fixture struct {
	srv      *httptest.Server
	user     *sb.User // an operator
	support  *sb.User // a role that may not take calls
	calls    *fakeCalls
	media    *mediaFactory
	control  *fakeControl
	audit    *memAudit
	tenantID sb.ID
	healthy  error

	clockMu sync.Mutex
	clock   time.Time // the server's clock for limits
}

func (f *fixture) now() time.Time {
	f.clockMu.Lock()
	defer f.clockMu.Unlock()
	return f.clock
}

func (f *fixture) advance(d time.Duration) {
	f.clockMu.Lock()
	f.clock = f.clock.Add(d)
	f.clockMu.Unlock()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tenant := sb.NewID()
	f := &fixture{
		user:     &sb.User{ID: sb.NewID(), TenantID: tenant, Email: "op@example.test", Name: "Olga", Role: sb.RoleOperator},
		support:  &sb.User{ID: sb.NewID(), TenantID: tenant, Email: "support@example.test", Role: sb.RoleSupport},
		calls:    &fakeCalls{call: &sb.Call{ID: sb.NewID(), TenantID: tenant, Direction: sb.Inbound, From: "3000", Status: sb.CallCompleted}},
		media:    &mediaFactory{},
		control:  &fakeControl{},
		audit:    &memAudit{},
		tenantID: tenant,
	}
	f.clock = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	s := NewServer(Config{RingTimeout: 20 * time.Second, ICEServers: []sb.ICEServer{{URLs: []string{"stun:stun.example.test"}}}, Now: f.now}, Deps{
		Calls:         f.calls,
		Users:         &fakeUsers{users: []*sb.User{f.user, f.support}},
		APIKeys:       &fakeKeys{key: &sb.APIKey{ID: sb.NewID(), TenantID: tenant, Role: sb.RoleSupervisor}},
		Sessions:      &fakeSessions{m: map[string]*sb.Session{}},
		CallControl:   f.control,
		MediaSessions: f.media,
		Audit:         f.audit,
		Health:        func(context.Context) error { return f.healthy },
	})
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	// Every answer the fixture's client gets is held to the description.
	f.srv.Client().Transport = apispec.Load(t, Description()).Transport(t, f.srv.Client().Transport)
	return f
}

// testCtx bounds a test step in time.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// do sends a request with an API key or a cookie and decodes the JSON
// answer.
func (f *fixture) do(t *testing.T, path string, auth func(*http.Request)) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return res.StatusCode, body
}

func bearer(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
}

func (f *fixture) get(t *testing.T, path, key string) (int, map[string]any) {
	t.Helper()
	if key == "" {
		return f.do(t, path, nil)
	}
	return f.do(t, path, bearer(key))
}

func (f *fixture) loginAs(t *testing.T, email, password, contentType string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, f.srv.URL+"/v1/login",
		strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("login: %v", err)
	}
	return res, body
}

func (f *fixture) login(t *testing.T, password, contentType string) *http.Response {
	t.Helper()
	res, _ := f.loginAs(t, f.user.Email, password, contentType)
	return res
}

// mustSession logs the user in and returns the session cookie.
func (f *fixture) mustSession(t *testing.T, email string) *http.Cookie {
	t.Helper()
	res, _ := f.loginAs(t, email, "right password", "application/json")
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("login of %s set no session cookie (%d)", email, res.StatusCode)
	return nil
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	res, body := f.loginAs(t, f.user.Email, "right password", "application/json")
	if res.StatusCode != http.StatusOK || body["user"].(map[string]any)["email"] != f.user.Email {
		t.Fatalf("login: %d %v", res.StatusCode, body)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value == "" || cookie.Path != "/" || cookie.Secure {
		t.Errorf("session cookie %+v, want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", cookie)
	}

	// A wrong password and an unknown email read the same.
	res1, wrong := f.loginAs(t, f.user.Email, "wrong", "application/json")
	res2, unknown := f.loginAs(t, "nobody@example.test", "wrong", "application/json")
	if res1.StatusCode != http.StatusUnauthorized || res2.StatusCode != http.StatusUnauthorized {
		t.Errorf("failed logins: %d, %d, want 401", res1.StatusCode, res2.StatusCode)
	}
	if wrong["code"] != sb.EUNAUTHORIZED || wrong["message"] != unknown["message"] || strings.Contains(unknown["message"].(string), "nobody") {
		t.Errorf("failed login messages %v and %v, want one generic message", wrong, unknown)
	}
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", ""} {
		if res := f.login(t, "right password", ct); res.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("login as %q: %d, want 415", ct, res.StatusCode)
		}
	}

	// The cookie authenticates /v1/me; logout ends it.
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }
	if code, body := f.do(t, "/v1/me", withCookie); code != http.StatusOK || body["user"].(map[string]any)["id"] != f.user.ID.String() {
		t.Errorf("GET /v1/me: %d %v", code, body)
	}
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, f.srv.URL+"/v1/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(cookie)
	out, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if out.StatusCode != http.StatusNoContent {
		t.Errorf("logout: %d", out.StatusCode)
	}
	if code, _ := f.do(t, "/v1/me", withCookie); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/me after logout: %d, want 401", code)
	}
}

func TestLoginBodyLimit(t *testing.T) {
	f := newFixture(t)
	res, body := f.loginAs(t, f.user.Email, strings.Repeat("x", 8<<10), "application/json")
	if res.StatusCode != http.StatusBadRequest || body["code"] != sb.EINVALID {
		t.Errorf("oversized login: %d %v, want 400", res.StatusCode, body)
	}
}

func TestCallsAPI(t *testing.T) {
	f := newFixture(t)
	op := sb.NewID()
	after := sb.NewID()
	code, body := f.get(t, "/v1/calls?status=completed&number=3000&limit=10&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00%2B01:00&operator_id="+op.String()+"&after="+after.String(), "sbk_good")
	if code != http.StatusOK || len(body["calls"].([]any)) != 1 || body["next"] != "" {
		t.Fatalf("GET /v1/calls: %d %v", code, body)
	}
	f.calls.mu.Lock()
	filter, actor := f.calls.filter, f.calls.actor
	f.calls.mu.Unlock()
	if filter.Status != sb.CallCompleted || filter.Number != "3000" || filter.Limit != 10 ||
		filter.Since == nil || !filter.Since.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		filter.Until == nil || !filter.Until.Equal(time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)) ||
		filter.OperatorID == nil || *filter.OperatorID != op || filter.After == nil || *filter.After != after {
		t.Errorf("filter %+v", filter)
	}
	if actor == nil || actor.TenantID != f.tenantID || actor.Role != sb.RoleSupervisor || actor.APIKeyID == (sb.ID{}) || actor.UserID != (sb.ID{}) {
		t.Errorf("actor %+v, want the API key's tenant and role", actor)
	}

	// A full page names the cursor of the next.
	if code, body := f.get(t, "/v1/calls?limit=1", "sbk_good"); code != http.StatusOK || body["next"] != f.calls.call.ID.String() {
		t.Errorf("full page: %d %v, want next = the last call's id", code, body)
	}

	for _, c := range []struct {
		query, param string
	}{
		{"since=yesterday", "since"}, {"until=2026-13-01T00:00:00Z", "until"}, {"status=lost", "status"},
		{"limit=0", "limit"}, {"limit=many", "limit"}, {"limit=100000", "limit"}, {"after=x", "after"}, {"operator_id=1", "operator_id"},
	} {
		code, body := f.get(t, "/v1/calls?"+c.query, "sbk_good")
		if code != http.StatusBadRequest || body["code"] != sb.EINVALID || !strings.HasPrefix(body["message"].(string), c.param+":") {
			t.Errorf("?%s: %d %v, want 400 naming %s", c.query, code, body, c.param)
		}
	}
	id := f.calls.call.ID.String()
	if code, body := f.get(t, "/v1/calls/"+id, "sbk_good"); code != http.StatusOK || body["id"] != id {
		t.Errorf("GET call: %d %v", code, body)
	}
	if code, body := f.get(t, "/v1/calls/"+id+"/events", "sbk_good"); code != http.StatusOK || len(body["events"].([]any)) != 1 {
		t.Errorf("GET events: %d %v", code, body)
	}
	for _, path := range []string{"/v1/calls/" + sb.NewID().String(), "/v1/calls/not-an-id", "/v1/calls/" + sb.NewID().String() + "/events"} {
		if code, body := f.get(t, path, "sbk_good"); code != http.StatusNotFound || body["code"] != sb.ENOTFOUND {
			t.Errorf("GET %s: %d %v", path, code, body)
		}
	}
	if code, body := f.get(t, "/v1/calls", ""); code != http.StatusUnauthorized || body["code"] != sb.EUNAUTHORIZED {
		t.Errorf("no key: %d %v", code, body)
	}
	if code, _ := f.get(t, "/v1/calls", "sbk_bad"); code != http.StatusUnauthorized {
		t.Errorf("bad key: %d", code)
	}
	if code, _ := f.do(t, "/v1/calls", func(r *http.Request) { r.Header.Set("Authorization", "Basic c2JrX2dvb2Q6") }); code != http.StatusUnauthorized {
		t.Errorf("basic auth: %d", code)
	}
	f.calls.mu.Lock()
	f.calls.failing = true
	f.calls.mu.Unlock()
	if code, body := f.get(t, "/v1/calls", "sbk_good"); code != http.StatusInternalServerError || body["code"] != sb.EINTERNAL || body["message"] != "internal error" {
		t.Errorf("internal failure: %d %v, want 500 without detail", code, body)
	}
}

func TestCallsWithSessionCookie(t *testing.T) {
	f := newFixture(t)
	cookie := f.mustSession(t, f.user.Email)
	code, body := f.do(t, "/v1/calls?limit=10", func(r *http.Request) { r.AddCookie(cookie) })
	if code != http.StatusOK || len(body["calls"].([]any)) != 1 {
		t.Fatalf("GET /v1/calls with the cookie: %d %v", code, body)
	}
	f.calls.mu.Lock()
	actor := f.calls.actor
	f.calls.mu.Unlock()
	if actor == nil || actor.TenantID != f.tenantID || actor.UserID != f.user.ID || actor.Role != sb.RoleOperator {
		t.Errorf("actor %+v, want the operator's", actor)
	}
}

func TestPageAndHealth(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	for _, c := range []struct{ path, contains, ctype string }{
		{"/", `id="available"`, "text/html"},
		{"/app.js", "window.switchboard", "text/javascript"},
		{"/style.css", "body", "text/css"},
		{"/healthz", "ok", "text/plain"},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if _, err := io.Copy(&b, res.Body); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(b.String(), c.contains) || !strings.HasPrefix(res.Header.Get("Content-Type"), c.ctype) {
			t.Errorf("GET %s: %d %s", c.path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: CSP %q", c.path, csp)
		}
	}
	if code, body := f.get(t, "/readyz", ""); code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("readyz: %d %v", code, body)
	}
	f.healthy = errors.New("no database")
	if code, body := f.get(t, "/readyz", ""); code != http.StatusServiceUnavailable || body["status"] != "unavailable" {
		t.Errorf("readyz without a database: %d %v", code, body)
	}
	if code, body := f.get(t, "/v1/nothing", ""); code != http.StatusNotFound || body["code"] != sb.ENOTFOUND {
		t.Errorf("unknown route: %d %v", code, body)
	}
}

// dialSocket opens the operator socket with the given headers.
func (f *fixture) dialSocket(t *testing.T, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ws, res, err := websocket.Dial(testCtx(t), "ws://"+u.Host+"/v1/operator/ws", &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, res, err
}

// socket logs the operator in and opens their socket.
func (f *fixture) socket(t *testing.T, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return f.socketAs(t, f.user.Email, origin)
}

func (f *fixture) socketAs(t *testing.T, email, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c := f.mustSession(t, email)
	h := http.Header{}
	h.Add("Cookie", c.Name+"="+c.Value)
	if origin != "" {
		h.Set("Origin", origin)
	}
	return f.dialSocket(t, h)
}

// mustSocket opens the operator's socket and reads through hello and the
// offer.
func (f *fixture) mustSocket(t *testing.T) (*websocket.Conn, *fakeMedia) {
	t.Helper()
	ws, _, err := f.socket(t, "")
	if err != nil {
		t.Fatal(err)
	}
	until(t, ws, "hello")
	until(t, ws, "offer")
	f.media.mu.Lock()
	m := f.media.sessions[len(f.media.sessions)-1]
	f.media.mu.Unlock()
	return ws, m
}

func read(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	_, data, err := ws.Read(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// until reads messages until one of type typ.
func until(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for range 20 {
		if m := read(t, ws); m["type"] == typ {
			return m
		}
	}
	t.Fatalf("no %s message", typ)
	return nil
}

func send(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.Write(testCtx(t), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond, bounded in time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestOperatorSocket(t *testing.T) {
	f := newFixture(t)
	ws, _, err := f.socket(t, "")
	if err != nil {
		t.Fatal(err)
	}
	hello := read(t, ws)
	op := hello["operator"].(map[string]any)
	if hello["type"] != "hello" || op["id"] != f.user.ID.String() || op["email"] != f.user.Email || op["name"] != "Olga" || op["tenant_id"] != f.tenantID.String() {
		t.Fatalf("first message %v", hello)
	}
	if ice := hello["ice_servers"].([]any); len(ice) != 1 {
		t.Errorf("ice_servers %v", ice)
	}
	// The candidate gathered while the offer was made comes after it.
	if m := read(t, ws); m["type"] != "offer" || m["sdp"] != "v=0 offer" {
		t.Errorf("second message %v, want the offer", m)
	}
	if m := read(t, ws); m["type"] != "candidate" || m["candidate"].(map[string]any)["candidate"] == "" {
		t.Errorf("third message %v, want a candidate", m)
	}
	send(t, ws, `{"type":"answer","sdp":"v=0 answer"}`)
	send(t, ws, `{"type":"candidate","candidate":{"candidate":"candidate:2 1 udp 1 127.0.0.1 10 typ host","sdpMid":"0"}}`)
	send(t, ws, `{"type":"ping"}`)
	until(t, ws, "pong")
	m := f.media.session(0)
	m.mu.Lock()
	if m.answer != "v=0 answer" || len(m.cands) != 1 || *m.cands[0].SDPMid != "0" {
		t.Errorf("media got answer %q and candidates %v", m.answer, m.cands)
	}
	m.mu.Unlock()

	send(t, ws, `{"type":"answer","sdp":"garbage"}`)
	if e := until(t, ws, "error"); e["ref"] != "answer" || e["code"] != sb.EINVALID {
		t.Errorf("bad answer: %v", e)
	}
	send(t, ws, `not json`)
	if e := until(t, ws, "error"); e["code"] != sb.EINVALID {
		t.Errorf("malformed message: %v", e)
	}
	send(t, ws, `{"type":"dance"}`)
	if e := until(t, ws, "error"); e["code"] != sb.EINVALID || e["ref"] != "dance" || !strings.Contains(e["message"].(string), "dance") {
		t.Errorf("unknown type: %v", e)
	}
	// The socket still works.
	send(t, ws, `{"type":"ping"}`)
	until(t, ws, "pong")

	// Available before the audio connects is taken once it does (the
	// protocol's rule), and only then reaches call control.
	send(t, ws, `{"type":"available"}`)
	send(t, ws, `{"type":"ping"}`)
	until(t, ws, "pong")
	if n := len(f.control.availableConns()); n != 0 {
		t.Fatalf("Available called %d times before the audio connected", n)
	}
	m.setState("connecting")
	m.setState("connected")
	if st := until(t, ws, "state"); st["available"] != true {
		t.Errorf("state %v", st)
	}
	conns := f.control.availableConns()
	if len(conns) != 1 || conns[0].OperatorID() != f.user.ID || conns[0].TenantID() != f.tenantID {
		t.Fatalf("Available got %v", conns)
	}
	conn := conns[0]

	// Once connected, available goes straight to call control.
	send(t, ws, `{"type":"available"}`)
	if st := until(t, ws, "state"); st["available"] != true || len(f.control.availableConns()) != 2 {
		t.Errorf("second available: %v", st)
	}

	callID := sb.NewID()
	if err := conn.Offer(sb.CallOffer{CallID: callID, From: "+15550001111", To: "2000"}); err != nil {
		t.Fatal(err)
	}
	in := until(t, ws, "incoming")
	if c := in["call"].(map[string]any); c["from"] != "+15550001111" || c["to"] != "2000" || c["call_id"] != callID.String() || in["ring_timeout_ms"] != float64(20000) {
		t.Errorf("incoming %v", in)
	}
	for _, msg := range []string{`{"type":"accept","call_id":"nope"}`, `{"type":"accept"}`, `{"type":"accept","call_id":42}`} {
		send(t, ws, msg)
		if e := until(t, ws, "error"); e["code"] != sb.EINVALID {
			t.Errorf("%s: %v", msg, e)
		}
	}
	send(t, ws, `{"type":"accept","call_id":"`+callID.String()+`"}`)
	send(t, ws, `{"type":"decline","call_id":"`+callID.String()+`"}`)
	if e := until(t, ws, "error"); e["ref"] != "decline" || e["code"] != sb.ENOTFOUND {
		t.Errorf("call control's refusal: %v", e)
	}
	f.control.mu.Lock()
	if len(f.control.accepted) != 1 || f.control.accepted[0] != callID {
		t.Errorf("accepted %v", f.control.accepted)
	}
	f.control.mu.Unlock()
	conn.Connected(callID)
	if e := until(t, ws, "connected"); e["call_id"] != callID.String() || e["codec"] != "opus" {
		t.Errorf("connected %v: want the call and its codec", e)
	}
	send(t, ws, `{"type":"mute","call_id":"`+callID.String()+`","muted":true}`)
	if e := until(t, ws, "muted"); e["muted"] != true {
		t.Errorf("muted %v", e)
	}
	send(t, ws, `{"type":"mute","call_id":"`+callID.String()+`"}`)
	if e := until(t, ws, "error"); e["ref"] != "mute" || e["code"] != sb.EINVALID {
		t.Errorf("mute without muted: %v", e)
	}
	// The browser's own view of the audio it receives reaches call control;
	// numbers out of range do not.
	send(t, ws, `{"type":"stats","call_id":"`+callID.String()+`","stats":{"packets_received":250,"packets_lost":3,"jitter_ms":4.5,"rtt_ms":12}}`)
	for _, bad := range []string{`{"type":"stats","call_id":"` + callID.String() + `"}`,
		`{"type":"stats","call_id":"` + callID.String() + `","stats":{"packets_received":1,"jitter_ms":-1}}`} {
		send(t, ws, bad)
		if e := until(t, ws, "error"); e["ref"] != "stats" || e["code"] != sb.EINVALID {
			t.Errorf("%s: %v", bad, e)
		}
	}
	f.control.mu.Lock()
	if len(f.control.stats) != 1 || f.control.stats[0] != (sb.QualitySample{Packets: 250, Lost: 3, JitterMS: 4.5, RTTMS: 12}) {
		t.Errorf("stats %+v", f.control.stats)
	}
	f.control.mu.Unlock()
	// An internal failure is reported without its detail.
	send(t, ws, `{"type":"hangup","call_id":"`+callID.String()+`"}`)
	if e := until(t, ws, "error"); e["ref"] != "hangup" || e["code"] != sb.EINTERNAL || strings.Contains(e["message"].(string), "fire") {
		t.Errorf("internal failure: %v", e)
	}
	conn.Ended(callID, "caller hung up")
	if e := until(t, ws, "ended"); e["reason"] != "caller hung up" || e["call_id"] != callID.String() {
		t.Errorf("ended %v", e)
	}
	conn.Revoke(callID, "ring timeout")
	if e := until(t, ws, "revoked"); e["reason"] != "ring timeout" {
		t.Errorf("revoked %v", e)
	}
	send(t, ws, `{"type":"away"}`)
	if st := until(t, ws, "state"); st["available"] != false {
		t.Errorf("away: %v", st)
	}
}

func TestOperatorSocketAwayBeforeAvailable(t *testing.T) {
	f := newFixture(t)
	ws, m := f.mustSocket(t)
	// Call control does not know the socket yet; the handler says away.
	send(t, ws, `{"type":"available"}`)
	send(t, ws, `{"type":"away"}`)
	if st := until(t, ws, "state"); st["available"] != false {
		t.Errorf("state %v", st)
	}
	// The pending available was withdrawn.
	m.setState("connected")
	send(t, ws, `{"type":"ping"}`)
	until(t, ws, "pong")
	if n := len(f.control.availableConns()); n != 0 {
		t.Errorf("Available called %d times after away", n)
	}
}

func TestOperatorSocketMediaFailed(t *testing.T) {
	f := newFixture(t)
	ws, m := f.mustSocket(t)
	m.setState("connected")
	send(t, ws, `{"type":"available"}`)
	until(t, ws, "state")
	// A failed PeerConnection ends the socket: the operator is away and
	// the client reconnects with a new one.
	m.setState("failed")
	if e := until(t, ws, "error"); e["code"] != sb.EUNAVAILABLE {
		t.Errorf("failed audio: %v", e)
	}
	_, _, err := ws.Read(testCtx(t))
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("socket closed with %v, want going away", err)
	}
	waitFor(t, "Disconnected", func() bool { return f.control.disconnects() == 1 && m.isClosed() })
}

func TestOperatorSocketAvailableAfterFailure(t *testing.T) {
	// The refusal is decided on the state alone; drive it without the
	// socket closing underneath.
	s := NewServer(Config{}, Deps{CallControl: &fakeControl{}})
	c := &opConn{s: s, user: &sb.User{ID: sb.NewID()}, mediaState: "failed", quit: make(chan struct{}), send: make(chan []byte, 1)}
	if err := c.handle(t.Context(), clientMessage{Type: "available"}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("available on a failed PeerConnection: %v, want invalid", err)
	}
}

func TestOperatorSocketClose(t *testing.T) {
	f := newFixture(t)
	ws, m := f.mustSocket(t)
	m.setState("connected")
	send(t, ws, `{"type":"available"}`)
	until(t, ws, "state")
	conn := f.control.availableConns()
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Disconnected and the PeerConnection closed", func() bool { return f.control.disconnects() == 1 && m.isClosed() })
	f.control.mu.Lock()
	if f.control.disconnected[0] != f.user.ID {
		t.Errorf("Disconnected(%v), want the operator", f.control.disconnected[0])
	}
	f.control.mu.Unlock()
	// Call control's late notifications find the socket gone.
	if err := conn[0].Offer(sb.CallOffer{CallID: sb.NewID()}); err == nil {
		t.Error("Offer on a closed socket succeeded")
	}
	conn[0].StateChanged(false, "")
}

func TestOperatorSocketReplaced(t *testing.T) {
	f := newFixture(t)
	ws, m := f.mustSocket(t)
	m.setState("connected")
	send(t, ws, `{"type":"available"}`)
	until(t, ws, "state")

	// A second socket replaces the first, which is told why; the first is
	// forgotten by call control before the second is greeted.
	ws2, _, err := f.socket(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if e := until(t, ws, "error"); e["code"] != sb.ECONFLICT || e["message"] != "replaced by a newer connection" {
		t.Errorf("replaced socket told %v", e)
	}
	_, _, err = ws.Read(testCtx(t))
	if websocket.CloseStatus(err) != statusReplaced {
		t.Errorf("old socket closed with %v, want %d", err, statusReplaced)
	}
	until(t, ws2, "hello")
	if n := f.control.disconnects(); n != 1 || !m.isClosed() {
		t.Errorf("after the replacement: Disconnected %d times, old PeerConnection closed %v; want once and closed", n, m.isClosed())
	}
	until(t, ws2, "offer")
	m2 := f.media.session(1)
	m2.setState("connected")
	send(t, ws2, `{"type":"available"}`)
	if st := until(t, ws2, "state"); st["available"] != true {
		t.Errorf("new socket state %v", st)
	}
	if err := ws2.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second Disconnected", func() bool { return f.control.disconnects() == 2 })
}

func TestOperatorSocketRefusals(t *testing.T) {
	f := newFixture(t)
	for _, origin := range []string{"http://evil.example", "http://" + strings.TrimPrefix(f.srv.URL, "http://") + ".evil.example", "null"} {
		if _, res, err := f.socket(t, origin); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("socket from %s: %v, want 403", origin, err)
		}
	}
	// The same origin is fine.
	if _, _, err := f.socket(t, f.srv.URL); err != nil {
		t.Errorf("same-origin socket: %v", err)
	}
	if _, res, err := f.dialSocket(t, nil); err == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("socket without login: %v, want 401", err)
	}
	// An API key is not a login.
	if _, res, err := f.dialSocket(t, http.Header{"Authorization": {"Bearer sbk_good"}}); err == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("socket with an API key: %v, want 401", err)
	}
	if _, res, err := f.socketAs(t, f.support.Email, ""); err == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("socket of a support user: %v, want 403", err)
	}
}

func TestDecodeClientMessage(t *testing.T) {
	for _, c := range []struct {
		in   string
		want clientMessage
		ok   bool
	}{
		{`{"type":"ping"}`, clientMessage{Type: "ping"}, true},
		{`{"type":"accept","call_id":"x"}`, clientMessage{Type: "accept", CallID: "x"}, true},
		{`{"type":"answer","sdp":"v=0"}`, clientMessage{Type: "answer", SDP: "v=0"}, true},
		{`{"type":"hangup","extra":1}`, clientMessage{Type: "hangup"}, true},
		{`{}`, clientMessage{}, false},
		{`{"type":7}`, clientMessage{}, false},
		{`{"type":"ping"} trailing`, clientMessage{}, false},
		{`[]`, clientMessage{}, false},
		{``, clientMessage{}, false},
	} {
		got, err := decodeClientMessage([]byte(c.in))
		if (err == nil) != c.ok || (c.ok && (got.Type != c.want.Type || got.CallID != c.want.CallID || got.SDP != c.want.SDP)) {
			t.Errorf("decode %s: %+v, %v", c.in, got, err)
		}
		if err != nil && sb.ErrorCode(err) != sb.EINVALID {
			t.Errorf("decode %s: code %s, want invalid", c.in, sb.ErrorCode(err))
		}
	}
}

func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"accept","call_id":"01a20e2e-9a03-7191-b1a0-4d9e045898b5"}`,
		`{"type":"candidate","candidate":{"candidate":"x","sdpMLineIndex":0}}`,
		`{"type":"mute","muted":true}`, `[]`, `{"type":""}`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeClientMessage(b)
		if err == nil && m.Type == "" {
			t.Fatal("accepted a message without a type")
		}
		if err != nil && sb.ErrorCode(err) != sb.EINVALID {
			t.Fatalf("error code %s", sb.ErrorCode(err))
		}
		if err == nil {
			// What is accepted survives a round trip.
			b2, jerr := json.Marshal(m)
			if jerr != nil {
				t.Fatal(jerr)
			}
			if m2, err := decodeClientMessage(b2); err != nil || m2.Type != m.Type || m2.CallID != m.CallID || m2.SDP != m.SDP {
				t.Fatalf("round trip of %q: %+v, %v", b2, m2, err)
			}
		}
	})
}

// A state-changing request a browser sends from another site is refused,
// whatever cookie it carries; the same request from the page, or from a
// client with an API key (no browser headers), goes through.
func TestCrossOriginRequestsRefused(t *testing.T) {
	f := newFixture(t)
	cookie := f.mustSession(t, f.user.Email)
	post := func(h map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/logout", nil)
		req.AddCookie(cookie)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
	if code := post(map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("POST from another origin: %d, want 403", code)
	}
	if code, _ := f.do(t, "/v1/me", func(r *http.Request) { r.AddCookie(cookie) }); code != http.StatusOK {
		t.Fatalf("the refused logouts ended the session: %d", code)
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "same-origin"}); code != http.StatusNoContent {
		t.Errorf("same-origin logout: %d, want 204", code)
	}
}

// Five wrong passwords lock the account for a while, even for the right
// one; twenty from one address lock that address out for every account.
func TestLoginLockout(t *testing.T) {
	f := newFixture(t)
	for i := range accountFailures {
		if res := f.login(t, "wrong", "application/json"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, res.StatusCode)
		}
	}
	res, body := f.loginAs(t, f.user.Email, "right password", "application/json")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body["message"].(string), "try again in 15 minutes") {
		t.Errorf("the right password during the lockout: %d %v", res.StatusCode, body)
	}
	if res := f.login(t, "right password", "Application/JSON"); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("still locked: %d", res.StatusCode)
	}
	if res, _ := f.loginAs(t, f.support.Email, "right password", "application/json"); res.StatusCode != http.StatusOK {
		t.Errorf("another account from the same address: %d", res.StatusCode)
	}
	f.advance(lockFor + time.Second)
	if res := f.login(t, "right password", "application/json"); res.StatusCode != http.StatusOK {
		t.Errorf("after the lockout: %d", res.StatusCode)
	}
	for i := range addrFailures {
		f.loginAs(t, "nobody"+strconv.Itoa(i)+"@example.test", "guess", "application/json")
	}
	if res, _ := f.loginAs(t, f.support.Email, "right password", "application/json"); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("an address that guessed twenty times: %d", res.StatusCode)
	}
}

// An API key gets its bursts, then 429 with Retry-After, then its rate.
func TestAPIRateLimit(t *testing.T) {
	f := newFixture(t)
	limited := 0
	for range apiBurst + 10 {
		if code, _ := f.do(t, "/v1/me", bearer("sbk_good")); code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 10 {
		t.Errorf("%d of %d requests refused, want the 10 past the burst", limited, apiBurst+10)
	}
	f.advance(time.Second)
	if code, _ := f.do(t, "/v1/me", bearer("sbk_good")); code != http.StatusOK {
		t.Errorf("a second later: %d", code)
	}
}

// offeredSocket is an operator's socket, available, offered a call.
func offeredSocket(t *testing.T) (*fixture, *websocket.Conn, sb.ID) {
	t.Helper()
	f := newFixture(t)
	ws, m := f.mustSocket(t)
	send(t, ws, `{"type":"available"}`)
	m.setState("connecting")
	m.setState("connected")
	until(t, ws, "state")
	conns := f.control.availableConns()
	if len(conns) == 0 {
		t.Fatal("not available")
	}
	offered := sb.NewID()
	if err := conns[0].Offer(sb.CallOffer{CallID: offered, From: "+15550001111", To: "2000"}); err != nil {
		t.Fatal(err)
	}
	until(t, ws, "incoming")
	return f, ws, offered
}

// Consent over the operator's socket is audited for a call the socket
// was offered; a call it was not offered (another operator's, another
// tenant's) is refused before anything is written.
func TestSocketConsentOnlyForOffered(t *testing.T) {
	f, ws, offered := offeredSocket(t)
	for range 3 {
		send(t, ws, `{"type":"consent","call_id":"`+sb.NewID().String()+`","given":false}`)
		if e := until(t, ws, "error"); e["code"] != sb.ENOTFOUND || e["ref"] != "consent" {
			t.Errorf("consent for a call not offered: %v", e)
		}
	}
	if got := f.audit.ips("consent.withdraw", "ok"); len(got) != 0 {
		t.Errorf("%d consent entries for calls the operator was not offered", len(got))
	}
	send(t, ws, `{"type":"consent","call_id":"`+offered.String()+`","given":false}`)
	send(t, ws, `{"type":"ping"}`)
	until(t, ws, "pong")
	if got := f.audit.ips("consent.withdraw", "ok"); len(got) != 1 {
		t.Errorf("%d consent entries for the offered call, want 1", len(got))
	}
}

// Pausing and resuming over the operator's socket is audited, as the API's
// pause and the socket's consent are, for a call the socket was offered;
// a call it was not offered is refused before anything is written or
// done.
func TestSocketPauseAuditedForOffered(t *testing.T) {
	f, ws, offered := offeredSocket(t)
	send(t, ws, `{"type":"recording","call_id":"`+sb.NewID().String()+`","paused":true}`)
	if e := until(t, ws, "error"); e["code"] != sb.ENOTFOUND || e["ref"] != "recording" {
		t.Errorf("a pause for a call not offered: %v", e)
	}
	send(t, ws, `{"type":"recording","call_id":"`+offered.String()+`","paused":true}`)
	send(t, ws, `{"type":"recording","call_id":"`+offered.String()+`","paused":false}`)
	send(t, ws, `{"type":"ping"}`)
	until(t, ws, "pong")
	if got := f.audit.ips("recording.pause", "ok"); len(got) != 1 {
		t.Errorf("%d pause entries, want 1, for the offered call only", len(got))
	}
	if got := f.audit.ips("recording.resume", "ok"); len(got) != 1 {
		t.Errorf("%d resume entries, want 1", len(got))
	}
	f.control.mu.Lock()
	defer f.control.mu.Unlock()
	if len(f.control.paused) != 2 || !f.control.paused[0] || f.control.paused[1] {
		t.Errorf("pauses done: %v, want the offered call's pause and resume", f.control.paused)
	}
}

// The socket is held to the API's rate: past its burst, messages are
// dropped unread and the client is told, at most once a second.
func TestSocketRateLimited(t *testing.T) {
	f := newFixture(t)
	ws, _ := f.mustSocket(t)
	const sent = 3 * socketBurst
	start := time.Now() // the budget refills from the first message on
	for range sent {
		send(t, ws, `{"type":"ping"}`)
	}
	send(t, ws, `{"type":"nonsense"}`)
	pongs, limited := 0, 0
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			break
		}
		var msg map[string]any
		json.Unmarshal(data, &msg)
		switch {
		case msg["type"] == "pong":
			pongs++
		case msg["type"] == "error" && msg["code"] == "rate_limited":
			limited++
		}
	}
	if most := 1 + int(time.Since(start)/time.Second); pongs >= sent || pongs < socketBurst || limited < 1 || limited > most {
		t.Errorf("%d pings answered of %d sent (burst %d), told %d times it was limited, want 1 to %d", pongs, sent, socketBurst, limited, most)
	}
}

// oneToken is the ingress of one visitor's token, which places one call.
type oneToken struct {
	secret string
	mu     sync.Mutex
	spent  bool
}

func (o *oneToken) IssueToken(context.Context, *sb.WebRTCToken) (string, error) {
	return "", sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (o *oneToken) RedeemToken(_ context.Context, secret string) (*sb.WebRTCToken, *sb.Trunk, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if secret != o.secret || o.spent {
		return nil, nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid or expired token")
	}
	o.spent = true
	return &sb.WebRTCToken{ID: sb.NewID(), Number: "2000", From: "web:chat-42"}, &sb.Trunk{}, nil
}
func (o *oneToken) RestoreToken(context.Context, sb.ID) (bool, error) { return false, nil }

// waitingVisitor is a browser caller's leg nobody has answered yet.
type waitingVisitor struct{ VisitorLeg }

func (waitingVisitor) State() (string, string) { return "waiting", "" }

// A visitor's token is spent only on an offer worth answering: one that
// does not parse is refused and leaves the token, which then places one
// call, and only one.
func TestWHIPTokenSpentOnlyOnAGoodOffer(t *testing.T) {
	const good = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
	var answered, dispatched atomic.Int64
	srv := httptest.NewServer(NewServer(Config{}, Deps{
		Calls:    &fakeCalls{},
		Users:    &fakeUsers{},
		APIKeys:  &fakeKeys{},
		Sessions: &fakeSessions{m: map[string]*sb.Session{}},
		Ingress: &Ingress{
			Tokens: &oneToken{secret: "sbw_visitor"},
			Check:  webrtc.CheckVisitorOffer,
			Answer: func(_ context.Context, offer string) (VisitorLeg, string, error) {
				if err := webrtc.CheckVisitorOffer(offer); err != nil {
					return nil, "", err // as the engine's answer refuses it
				}
				answered.Add(1)
				return waitingVisitor{}, "v=0\r\n", nil
			},
			Dispatch: func(*sb.InboundCall) { dispatched.Add(1) },
		},
	}).Handler())
	t.Cleanup(srv.Close)
	client := apispec.Load(t, Description()).Client(t, nil)
	post := func(offer string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, srv.URL+"/v1/whip", strings.NewReader(offer))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer sbw_visitor")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(body)
	}
	if code, body := post("v=0 garbage"); code != http.StatusBadRequest || !strings.Contains(body, "does not parse") {
		t.Errorf("an offer that does not parse: %d %s", code, body)
	}
	if code, body := post(good); code != http.StatusCreated {
		t.Fatalf("the same token with a good offer: %d %s", code, body)
	}
	if code, body := post(good); code != http.StatusUnauthorized {
		t.Errorf("the token again: %d %s, want 401", code, body)
	}
	if answered.Load() != 1 || dispatched.Load() != 1 {
		t.Errorf("%d offers answered, %d calls placed, want 1 of each", answered.Load(), dispatched.Load())
	}
}
