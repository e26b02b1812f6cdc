package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// A cell a spreadsheet would run as a formula is defused; others are
// left as they are (OWASP's CSV injection).
func TestCSVSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"2000", "2000"},
		{"Ann Lee", "Ann Lee"},
		{"+4930123", "'+4930123"},
		{"=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=1", "a=1"},
		{"'quoted", "'quoted"},
	} {
		if got := csvSafe(tc.in); got != tc.want {
			t.Errorf("csvSafe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The search is asked as CSV by ?format=csv or an Accept header naming
// text/csv; JSON otherwise.
func TestWantsCSV(t *testing.T) {
	for _, tc := range []struct {
		url, accept string
		want        bool
	}{
		{"/v1/calls", "", false},
		{"/v1/calls", "application/json", false},
		{"/v1/calls?format=csv", "", true},
		{"/v1/calls?format=json", "", false},
		{"/v1/calls", "text/csv", true},
		{"/v1/calls", "application/json;q=0.9, text/csv; charset=utf-8", true},
		{"/v1/calls", "text/csvx", false},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		if got := wantsCSV(r); got != tc.want {
			t.Errorf("wantsCSV(%s, Accept %q) = %v, want %v", tc.url, tc.accept, got, tc.want)
		}
	}
}

// An export is audited with the names of the filters it applied, never
// with a key of the query that is not one: that is the client's own text,
// and could be the number searched for.
func TestExportAuditsOnlyFilterNames(t *testing.T) {
	tenant := sb.NewID()
	kept := &keptEntries{}
	srv := httptest.NewServer(NewServer(Config{}, Deps{
		Calls:    &fakeCalls{call: &sb.Call{ID: sb.NewID(), TenantID: tenant, Status: sb.CallCompleted}},
		APIKeys:  &fakeKeys{key: &sb.APIKey{ID: sb.NewID(), TenantID: tenant, Role: sb.RoleSupervisor}},
		Sessions: &fakeSessions{m: map[string]*sb.Session{}},
		Users:    &fakeUsers{},
		Audit:    kept,
	}).Handler())
	defer srv.Close()
	code := asKey(t, srv, http.MethodGet, "/v1/calls?format=csv&label=vip&%2B4930123456=&number:%2B4930123456", "")
	kept.mu.Lock()
	defer kept.mu.Unlock()
	if code != http.StatusOK || len(kept.entries) != 1 || kept.entries[0].Detail != "filters: label" {
		t.Errorf("export: %d, audited %+v; want one entry naming the label filter only", code, kept.entries)
	}
}
