package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-voice/switchboard/internal/apispec"
)

// Every route the server serves is described, and every described
// operation is served: the description cannot drift from the handlers.
// (cmd/switchboard's TestEveryRouteAnswersAsDescribed checks the real
// answers of every route against it.)
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	spec := apispec.Load(t, Description())
	f := newFixture(t)
	served, err := apispec.Routes(NewServer(Config{MetricsToken: "t"}, Deps{Calls: f.calls, Users: &fakeUsers{}, APIKeys: &fakeKeys{},
		Sessions: &fakeSessions{}, Metrics: http.NotFoundHandler()}).Handler())
	if err != nil {
		t.Fatal(err)
	}
	if len(served) < 70 {
		t.Fatalf("walked only %d routes: %v", len(served), served)
	}
	undescribed, unserved := spec.CompareRoutes(served)
	if len(undescribed) > 0 {
		t.Errorf("served but not in api/openapi.json (describe each with an operationId, its request and response schemas and its errors):\n  %s",
			strings.Join(undescribed, "\n  "))
	}
	if len(unserved) > 0 {
		t.Errorf("in api/openapi.json but not served:\n  %s", strings.Join(unserved, "\n  "))
	}
}

// The handlers' answers match the description: the fixture's client
// checks every answer (apispec), here a list, a call, its events and an
// error.
func TestOpenAPIMatchesResponses(t *testing.T) {
	f := newFixture(t)
	for path, want := range map[string]int{
		"/v1/calls": 200, "/v1/calls/" + f.calls.call.ID.String(): 200, "/v1/calls/" + f.calls.call.ID.String() + "/events": 200,
		"/v1/calls/nope": 404,
	} {
		if code, body := f.do(t, path, bearer("sbk_good")); code != want {
			t.Errorf("GET %s: %d %v, want %d", path, code, body, want)
		}
	}
}

// A schema is held strictly: an answer with a field the description
// does not name, or without one it requires, fails the check.
func TestOpenAPICheckIsStrict(t *testing.T) {
	spec := apispec.Load(t, Description())
	req, err := http.NewRequest(http.MethodGet, "http://x/v1/calls/nope", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if err := spec.Check(req, 404, h, []byte(`{"code":"not_found","message":"no such call"}`)); err != nil {
		t.Fatalf("a good error: %v", err)
	}
	for _, bad := range []struct {
		status int
		body   string
	}{
		{404, `{"code":"not_found","message":"no such call","extra":1}`},
		{404, `{"code":"not_found"}`},
		{418, `{"code":"not_found","message":"no such call"}`},
		{200, `{"id":"not a uuid"}`},
	} {
		if err := spec.Check(req, bad.status, h, []byte(bad.body)); err == nil {
			t.Errorf("%d %s passed the check", bad.status, bad.body)
		}
	}
}
