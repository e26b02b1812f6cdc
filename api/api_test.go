package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	sb "github.com/switchboard-voice/switchboard"
)

// Fakes for the services: a tenant with one operator and one call.

type fakeUsers struct{ u *sb.User }

func (f *fakeUsers) CreateUser(context.Context, *sb.User, string) error { return nil }
func (f *fakeUsers) Authenticate(_ context.Context, email, password string) (*sb.User, error) {
	if email == f.u.Email && password == "right password" {
		return f.u, nil
	}
	return nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid email or password")
}
func (f *fakeUsers) FindUserByID(ctx context.Context, id sb.ID) (*sb.User, error) {
	if a := sb.ActorFromContext(ctx); a == nil || a.TenantID != f.u.TenantID || id != f.u.ID {
		return nil, sb.Errorf(sb.ENOTFOUND, "user not found")
	}
	return f.u, nil
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
func (f *fakeKeys) AuthenticateAPIKey(_ context.Context, secret string) (*sb.APIKey, error) {
	if secret == "sbk_good" {
		return f.key, nil
	}
	return nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid API key")
}

type fakeCalls struct {
	call    *sb.Call
	mu      sync.Mutex
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
	if f.actor.TenantID != f.call.TenantID {
		return []*sb.Call{}, nil
	}
	return []*sb.Call{f.call}, nil
}
func (f *fakeCalls) FindCallByID(ctx context.Context, id sb.ID) (*sb.Call, error) {
	if a := sb.ActorFromContext(ctx); a.TenantID != f.call.TenantID || id != f.call.ID {
		return nil, sb.Errorf(sb.ENOTFOUND, "call not found")
	}
	return f.call, nil
}
func (f *fakeCalls) FindCallEvents(ctx context.Context, id sb.ID) ([]*sb.CallEvent, error) {
	if _, err := f.FindCallByID(ctx, id); err != nil {
		return nil, err
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

func (m *fakeMedia) CreateOffer(context.Context) (string, error) {
	m.mu.Lock()
	fn := m.onCand
	m.mu.Unlock()
	go fn(sb.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"})
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
func (m *fakeMedia) Media() sb.MediaPort { return nil }
func (m *fakeMedia) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
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

func (f *mediaFactory) last() *fakeMedia {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[len(f.sessions)-1]
}

// fakeControl records call control requests.
type fakeControl struct {
	mu           sync.Mutex
	conns        []sb.OperatorConn
	accepted     []sb.ID
	disconnected int
}

func (f *fakeControl) Available(op sb.OperatorConn) error {
	f.mu.Lock()
	f.conns = append(f.conns, op)
	f.mu.Unlock()
	op.StateChanged(true, "")
	return nil
}
func (f *fakeControl) Away(sb.ID) {}
func (f *fakeControl) Accept(_, callID sb.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accepted = append(f.accepted, callID)
	return nil
}
func (f *fakeControl) Decline(sb.ID, sb.ID) error {
	return sb.Errorf(sb.ENOTFOUND, "no such call ringing")
}
func (f *fakeControl) Hangup(sb.ID, sb.ID) error { return nil }
func (f *fakeControl) Mute(sb.ID, sb.ID, bool) error {
	return nil
}
func (f *fakeControl) Disconnected(sb.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnected++
}

type fixture struct {
	srv      *httptest.Server
	user     *sb.User
	calls    *fakeCalls
	media    *mediaFactory
	control  *fakeControl
	tenantID sb.ID
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tenant := sb.NewID()
	f := &fixture{
		user:     &sb.User{ID: sb.NewID(), TenantID: tenant, Email: "op@example.test", Role: sb.RoleOperator},
		calls:    &fakeCalls{call: &sb.Call{ID: sb.NewID(), TenantID: tenant, From: "3000", Status: sb.CallCompleted}},
		media:    &mediaFactory{},
		control:  &fakeControl{},
		tenantID: tenant,
	}
	s := NewServer(Config{RingTimeout: 20 * time.Second}, Deps{
		Calls:         f.calls,
		Users:         &fakeUsers{u: f.user},
		APIKeys:       &fakeKeys{key: &sb.APIKey{ID: sb.NewID(), TenantID: tenant, Role: sb.RoleSupervisor}},
		Sessions:      &fakeSessions{m: map[string]*sb.Session{}},
		CallControl:   f.control,
		MediaSessions: f.media,
		Health:        func(context.Context) error { return nil },
	})
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

func (f *fixture) login(t *testing.T, password, contentType string) *http.Response {
	t.Helper()
	res, err := http.Post(f.srv.URL+"/v1/login", contentType, strings.NewReader(`{"email":"op@example.test","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	res := f.login(t, "right password", "application/json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", res.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value == "" {
		t.Errorf("session cookie %+v, want HttpOnly, SameSite=Strict", cookie)
	}
	if res := f.login(t, "wrong", "application/json"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", res.StatusCode)
	}
	if res := f.login(t, "right password", "application/x-www-form-urlencoded"); res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form login: %d, want 415", res.StatusCode)
	}
}

func TestCallsAPI(t *testing.T) {
	f := newFixture(t)
	code, body := f.get(t, "/v1/calls?status=completed&number=3000&limit=10&since=2026-01-01T00:00:00Z", "sbk_good")
	if code != http.StatusOK || len(body["calls"].([]any)) != 1 {
		t.Fatalf("GET /v1/calls: %d %v", code, body)
	}
	f.calls.mu.Lock()
	filter, actor := f.calls.filter, f.calls.actor
	f.calls.mu.Unlock()
	if filter.Status != sb.CallCompleted || filter.Number != "3000" || filter.Limit != 10 || filter.Since == nil || filter.Since.Year() != 2026 {
		t.Errorf("filter %+v", filter)
	}
	if actor.TenantID != f.tenantID || actor.Role != sb.RoleSupervisor {
		t.Errorf("actor %+v", actor)
	}
	for _, c := range []struct {
		query, param string
	}{{"since=yesterday", "since"}, {"status=lost", "status"}, {"limit=0", "limit"}, {"after=x", "after"}, {"operator_id=1", "operator_id"}} {
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
	for _, path := range []string{"/v1/calls/" + sb.NewID().String(), "/v1/calls/not-an-id"} {
		if code, body := f.get(t, path, "sbk_good"); code != http.StatusNotFound || body["code"] != sb.ENOTFOUND {
			t.Errorf("GET %s: %d %v", path, code, body)
		}
	}
	if code, _ := f.get(t, "/v1/calls", ""); code != http.StatusUnauthorized {
		t.Errorf("no key: %d", code)
	}
	if code, _ := f.get(t, "/v1/calls", "sbk_bad"); code != http.StatusUnauthorized {
		t.Errorf("bad key: %d", code)
	}
	f.calls.failing = true
	if code, body := f.get(t, "/v1/calls", "sbk_good"); code != http.StatusInternalServerError || body["message"] != "internal error" {
		t.Errorf("internal failure: %d %v, want 500 without detail", code, body)
	}
	if code, _ := f.get(t, "/healthz", ""); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
}

// socket logs in and opens the operator socket.
func (f *fixture) socket(t *testing.T, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	res := f.login(t, "right password", "application/json")
	u, _ := url.Parse(f.srv.URL)
	h := http.Header{}
	for _, c := range res.Cookies() {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws://"+u.Host+"/v1/operator/ws", &websocket.DialOptions{HTTPHeader: h})
}

func read(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := ws.Read(ctx)
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
	for i := 0; i < 20; i++ {
		if m := read(t, ws); m["type"] == typ {
			return m
		}
	}
	t.Fatalf("no %s message", typ)
	return nil
}

func send(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestOperatorSocket(t *testing.T) {
	f := newFixture(t)
	ws, _, err := f.socket(t, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	hello := read(t, ws)
	if hello["type"] != "hello" || hello["operator"].(map[string]any)["id"] != f.user.ID.String() {
		t.Fatalf("first message %v", hello)
	}
	if m := until(t, ws, "offer"); m["sdp"] != "v=0 offer" {
		t.Errorf("offer %v", m)
	}
	send(t, ws, `{"type":"answer","sdp":"v=0 answer"}`)
	send(t, ws, `{"type":"candidate","candidate":{"candidate":"candidate:2 1 udp 1 127.0.0.1 10 typ host"}}`)
	send(t, ws, `{"type":"ping"}`)
	until(t, ws, "pong")
	m := f.media.last()
	m.mu.Lock()
	if m.answer != "v=0 answer" || len(m.cands) != 1 {
		t.Errorf("media got answer %q and %d candidates", m.answer, len(m.cands))
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
	if e := until(t, ws, "error"); !strings.Contains(e["message"].(string), "dance") {
		t.Errorf("unknown type: %v", e)
	}

	// Available before the audio connects takes effect once it does.
	send(t, ws, `{"type":"available"}`)
	m.setState("connected")
	if st := until(t, ws, "state"); st["available"] != true {
		t.Errorf("state %v", st)
	}
	f.control.mu.Lock()
	conn := f.control.conns[0]
	f.control.mu.Unlock()
	callID := sb.NewID()
	conn.Offer(sb.CallOffer{CallID: callID, From: "+15550001111", To: "2000"})
	in := until(t, ws, "incoming")
	if in["call"].(map[string]any)["from"] != "+15550001111" || in["ring_timeout_ms"] != float64(20000) {
		t.Errorf("incoming %v", in)
	}
	send(t, ws, `{"type":"accept","call_id":"nope"}`)
	if e := until(t, ws, "error"); e["ref"] != "accept" {
		t.Errorf("bad call id: %v", e)
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
	conn.Ended(callID, "caller hung up")
	if e := until(t, ws, "ended"); e["reason"] != "caller hung up" {
		t.Errorf("ended %v", e)
	}

	// A second socket replaces the first, which is told why.
	ws2, _, err := f.socket(t, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.CloseNow()
	until(t, ws2, "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != 4000 {
				t.Errorf("old socket closed with %v, want 4000", err)
			}
			break
		}
	}
	first := f.media.sessions[0]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f.control.mu.Lock()
		n := f.control.disconnected
		f.control.mu.Unlock()
		first.mu.Lock()
		closed := first.closed
		first.mu.Unlock()
		if n == 1 && closed {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("Disconnected called %d times (want once for the replaced socket); its PeerConnection closed: %v", n, closed)
		}
	}
}

func TestOperatorSocketRefusals(t *testing.T) {
	f := newFixture(t)
	if _, res, err := f.socket(t, "http://evil.example"); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site socket: %v, want 403", err)
	}
	u, _ := url.Parse(f.srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, res, err := websocket.Dial(ctx, "ws://"+u.Host+"/v1/operator/ws", nil); err == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("socket without login: %v, want 401", err)
	}
}

func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{`{"type":"accept","call_id":"01a20e2e-9a03-7191-b1a0-4d9e045898b5"}`, `{"type":"candidate","candidate":{"candidate":"x","sdpMLineIndex":0}}`,
		`{"type":"mute","muted":true}`, `[]`, `{"type":""}`, `null`} {
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
	})
}
