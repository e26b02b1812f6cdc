package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// panickyCalls panics when a call is looked up: a handler's bug.
type panickyCalls struct{ sb.CallService }

func (panickyCalls) FindCallByID(context.Context, sb.ID) (*sb.Call, error) {
	panic("a bug in the call store")
}

// syncBuffer is a log destination handlers write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("a log line that is not JSON: %q", sc.Text())
		}
		out = append(out, l)
	}
	return out
}

type observed struct {
	route, method string
	status        int
}

// requestLogServer is an API whose log is JSON in a buffer and whose
// requests are observed.
func requestLogServer(t *testing.T) (*httptest.Server, *syncBuffer, func() []observed) {
	t.Helper()
	logs := &syncBuffer{}
	var mu sync.Mutex
	var seen []observed
	s := NewServer(Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Observe: func(route, method string, status int, _ time.Duration) {
			mu.Lock()
			seen = append(seen, observed{route, method, status})
			mu.Unlock()
		}}, Deps{
		Calls:    panickyCalls{},
		Users:    &fakeUsers{},
		APIKeys:  &fakeKeys{key: &sb.APIKey{ID: sb.NewID(), TenantID: sb.NewID(), Role: sb.RoleSupervisor}},
		Sessions: &fakeSessions{m: map[string]*sb.Session{}},
		Health:   func(context.Context) error { return nil },
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, logs, func() []observed {
		mu.Lock()
		defer mu.Unlock()
		return append([]observed(nil), seen...)
	}
}

func request(t *testing.T, srv *httptest.Server, method, path string, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body) // not every answer is JSON
	return res, body
}

// Every answer carries a request ID: a sane one the client or proxy sent,
// otherwise a new one; a JSON error carries the same ID.
func TestRequestIDs(t *testing.T) {
	srv, _, _ := requestLogServer(t)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	res, body := request(t, srv, http.MethodGet, "/v1/calls")
	id := res.Header.Get("X-Request-Id")
	if !generated.MatchString(id) || body["request_id"] != id || body["code"] != sb.EUNAUTHORIZED {
		t.Errorf("without an incoming ID: header %q, body %v", id, body)
	}
	if res2, _ := request(t, srv, http.MethodGet, "/healthz"); res2.Header.Get("X-Request-Id") == id || !generated.MatchString(res2.Header.Get("X-Request-Id")) {
		t.Errorf("a second request's ID %q (the first's %q)", res2.Header.Get("X-Request-Id"), id)
	}
	res, body = request(t, srv, http.MethodGet, "/v1/nothing", "X-Request-Id", "lb-7f3a.01:2")
	if res.Header.Get("X-Request-Id") != "lb-7f3a.01:2" || body["request_id"] != "lb-7f3a.01:2" {
		t.Errorf("a sane incoming ID: header %q, body %v", res.Header.Get("X-Request-Id"), body)
	}
	for _, bad := range []string{strings.Repeat("a", 65), "two words", `x" level="error`, "x\ty", "ünïcode"} {
		res, body := request(t, srv, http.MethodGet, "/v1/nothing", "X-Request-Id", bad)
		if got := res.Header.Get("X-Request-Id"); !generated.MatchString(got) || body["request_id"] != got {
			t.Errorf("incoming ID %q: answered %q, body %v; want a new one", bad, got, body)
		}
	}
}

// Each request is logged once, as JSON: method, route pattern, status,
// duration and request ID; never the query string (a token may be in it)
// nor the Authorization header. The metrics see the route pattern, not
// the path.
func TestAccessLog(t *testing.T) {
	srv, logs, seen := requestLogServer(t)
	const secret = "sk_live_0123456789abcdef"
	id := sb.NewID().String()
	res, _ := request(t, srv, http.MethodGet, "/v1/calls/"+id+"/events?token="+secret, "Authorization", "Bearer "+secret, "X-Request-Id", "req-1")
	if res.StatusCode == 0 {
		t.Fatal("no answer")
	}
	request(t, srv, http.MethodPost, "/nowhere/"+id)
	var access []map[string]any
	for _, l := range logs.lines(t) {
		if l["msg"] == "request" {
			access = append(access, l)
		}
	}
	if len(access) != 2 {
		t.Fatalf("%d access log lines, want 2: %v", len(access), access)
	}
	a := access[0]
	if a["method"] != "GET" || a["route"] != "/v1/calls/{id}/events" || a["status"] != float64(res.StatusCode) ||
		a["request_id"] != "req-1" || a["duration_ms"] == nil {
		t.Errorf("access log line %v", a)
	}
	if b := access[1]; b["route"] != "" || b["status"] != float64(http.StatusNotFound) || b["method"] != "POST" {
		t.Errorf("an unmatched request's line %v", b)
	}
	logs.mu.Lock()
	all := logs.b.String()
	logs.mu.Unlock()
	if strings.Contains(all, secret) || strings.Contains(all, id) || strings.Contains(all, "token=") {
		t.Errorf("the log holds a secret, a query string or a raw path:\n%s", all)
	}
	want := []observed{{"/v1/calls/{id}/events", "GET", res.StatusCode}, {"", "POST", http.StatusNotFound}}
	if got := seen(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("observed %v, want %v", got, want)
	}
}

// A handler that panics is answered with a JSON 500 carrying the request
// ID, and the panic is logged as one JSON line with its stack; the server
// goes on serving.
func TestPanicIsLoggedAndAnsweredAsJSON(t *testing.T) {
	srv, logs, seen := requestLogServer(t)
	res, body := request(t, srv, http.MethodGet, "/v1/calls/"+sb.NewID().String(), "Authorization", "Bearer sbk_good", "X-Request-Id", "boom-1")
	if res.StatusCode != http.StatusInternalServerError || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
		body["code"] != sb.EINTERNAL || body["message"] != "internal error" || body["request_id"] != "boom-1" {
		t.Fatalf("a panicking handler answered %d %q %v", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var panicked map[string]any
	for _, l := range logs.lines(t) {
		if l["msg"] == "handler panicked" {
			panicked = l
		}
	}
	if panicked == nil || panicked["level"] != "ERROR" || panicked["request_id"] != "boom-1" || panicked["route"] != "/v1/calls/{id}" ||
		panicked["panic"] != "a bug in the call store" || !strings.Contains(panicked["stack"].(string), "FindCallByID") {
		t.Errorf("the panic's log line: %v", panicked)
	}
	if got := seen(); len(got) != 1 || got[0].status != http.StatusInternalServerError {
		t.Errorf("observed %v, want the 500", got)
	}
	if res, _ := request(t, srv, http.MethodGet, "/healthz"); res.StatusCode != http.StatusOK {
		t.Errorf("after the panic: /healthz %d", res.StatusCode)
	}
}

// A handler that panics after its answer began has its connection cut:
// the client sees a broken answer, not a short one that looks whole.
func TestPanicAfterTheAnswerBeganCutsTheConnection(t *testing.T) {
	logs := &syncBuffer{}
	s := NewServer(Config{Logger: slog.New(slog.NewJSONHandler(logs, nil))}, Deps{})
	srv := httptest.NewServer(s.observeRequests(s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("the first part"))
		panic("half way")
	}))))
	defer srv.Close()
	// The cut comes before or after the headers reach the client: either
	// way the answer does not read as whole.
	if res, err := srv.Client().Get(srv.URL); err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Errorf("the cut answer read as whole: %d", res.StatusCode)
		}
	}
	found := false
	for _, l := range logs.lines(t) {
		found = found || l["msg"] == "handler panicked" && l["panic"] == "half way"
	}
	if !found {
		t.Error("the panic was not logged")
	}
}
