package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// Every route the server serves is described, and every described
// operation is served: the description cannot drift from the handlers.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFixture(t)
	routes, ok := NewServer(Config{MetricsToken: "t"}, Deps{Calls: f.calls, Users: &fakeUsers{}, APIKeys: &fakeKeys{}, Sessions: &fakeSessions{},
		Metrics: http.NotFoundHandler()}).Handler().(chi.Routes)
	if !ok {
		t.Fatal("the handler is not a chi router")
	}
	served := map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if route == "" || strings.HasSuffix(route, ".js") || strings.HasSuffix(route, ".css") || strings.HasPrefix(route, "/favicon.") || route == "/console" || route == "/widget" || route == "/password" {
			return nil // the pages
		}
		served[strings.ToLower(method)+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(served) < 35 {
		t.Fatalf("walked only %d routes: %v", len(served), served)
	}
	described := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			described[method+" "+path] = true
		}
	}
	var missing, extra []string
	for r := range served {
		if !described[r] {
			missing = append(missing, r)
		}
	}
	for r := range described {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("served but not described: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("described but not served: %v", extra)
	}
}

// The handlers' answers carry what the description says they must: the
// required properties, and no property it does not name.
func TestOpenAPIMatchesResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFixture(t)
	check := func(schema string, obj map[string]any) {
		t.Helper()
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Fatalf("no schema %s", schema)
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				t.Errorf("%s lacks required %q: %v", schema, r, obj)
			}
		}
		for k := range obj {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s has %q, which the description does not name", schema, k)
			}
		}
	}
	code, body := f.do(t, "/v1/calls", bearer("sbk_good"))
	if code != 200 {
		t.Fatalf("GET /v1/calls: %d", code)
	}
	calls := body["calls"].([]any)
	if len(calls) == 0 {
		t.Fatal("no call to check")
	}
	for _, c := range calls {
		check("Call", c.(map[string]any))
		check("MediaStats", c.(map[string]any)["from_caller"].(map[string]any))
	}
	code, body = f.do(t, "/v1/calls/"+f.calls.call.ID.String(), bearer("sbk_good"))
	if code != 200 {
		t.Fatalf("GET call: %d", code)
	}
	check("Call", body)
	code, body = f.do(t, "/v1/calls/"+f.calls.call.ID.String()+"/events", bearer("sbk_good"))
	if code != 200 {
		t.Fatalf("GET events: %d", code)
	}
	for _, e := range body["events"].([]any) {
		check("CallEvent", e.(map[string]any))
	}
	code, body = f.do(t, "/v1/calls/nope", bearer("sbk_good"))
	if code != 404 {
		t.Fatalf("GET a bad id: %d", code)
	}
	check("Error", body)
}
