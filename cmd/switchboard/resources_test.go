package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/api"
	"github.com/switchboard-voice/switchboard/internal/apispec"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// apiCall sends method path with the key and body (nil: none) and decodes
// a 2xx answer into out; it returns the status and the body. The answer is
// checked against the API's description.
func apiCall(tb testing.TB, m *Main, key, method, path string, body any, out any) (int, string) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, m.HTTPURL()+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apispec.Load(tb, api.Description()).Client(tb, nil).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// roleKey makes an API key of the role in the tenant.
func roleKey(tb testing.TB, m *Main, tenantID sb.ID, role sb.Role) string {
	tb.Helper()
	_, key, err := metadata.NewAPIKeyService(m.DB).CreateAPIKey(context.Background(), tenantID, role)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// TestAdminsManageTrunksRoutesAndQueues: a tenant's admin creates,
// reads, changes and deletes trunks, outbound routes, queues and webhooks
// through the API; supervisors and operators are refused each change,
// another tenant's admin finds none of them, and every change is audited.
func TestAdminsManageTrunksRoutesAndQueues(t *testing.T) {
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Acme", "2000", 1)
	other := mustProvision(t, m, "Other", "3000", 0)
	admin := roleKey(t, m, f.Tenant.ID, sb.RoleAdmin)
	otherAdmin := roleKey(t, m, other.Tenant.ID, sb.RoleAdmin)
	refused := map[string]string{"supervisor": f.APIKey, "operator": roleKey(t, m, f.Tenant.ID, sb.RoleOperator)}

	// expect checks one request's status for each key.
	expect := func(method, path string, body any, want int, keys ...string) {
		t.Helper()
		for _, key := range keys {
			if code, raw := apiCall(t, m, key, method, path, body, nil); code != want {
				t.Errorf("%s %s: %d %s, want %d", method, path, code, raw, want)
			}
		}
	}

	var trunk sb.Trunk
	newTrunk := map[string]any{"name": "Carrier", "allow": []string{"192.0.2.0/24"}, "numbers": []string{"5000", "5001"}}
	for role, key := range refused {
		if code, _ := apiCall(t, m, key, "POST", "/v1/trunks", newTrunk, nil); code != http.StatusForbidden {
			t.Errorf("%s creating a trunk: %d, want 403", role, code)
		}
	}
	if code, raw := apiCall(t, m, admin, "POST", "/v1/trunks", newTrunk, &trunk); code != http.StatusCreated {
		t.Fatalf("admin creating a trunk: %d %s", code, raw)
	}
	tp := "/v1/trunks/" + trunk.ID.String()
	expect("GET", tp, nil, http.StatusNotFound, otherAdmin)
	expect("PATCH", tp, map[string]any{"name": "stolen"}, http.StatusNotFound, otherAdmin)
	expect("DELETE", tp, nil, http.StatusNotFound, otherAdmin)
	expect("PATCH", tp, map[string]any{"name": "x"}, http.StatusForbidden, refused["supervisor"], refused["operator"])
	expect("PATCH", tp, map[string]any{"nmae": "typo"}, http.StatusBadRequest, admin)
	expect("PATCH", tp, map[string]any{"username": "pbx"}, http.StatusBadRequest, admin) // without its password

	var changed sb.Trunk
	if code, raw := apiCall(t, m, admin, "PATCH", tp, map[string]any{"name": "Carrier B", "numbers": []string{"5001", "5002"},
		"username": "carrierb", "password": "s3cret-enough"}, &changed); code != http.StatusOK {
		t.Fatalf("admin changing the trunk: %d %s", code, raw)
	}
	if changed.Name != "Carrier B" || !slices.Equal(changed.Numbers, []string{"5001", "5002"}) || changed.Username != "carrierb" {
		t.Errorf("changed trunk %q numbers %v username %q", changed.Name, changed.Numbers, changed.Username)
	}

	// Trunks page as every list does: one at a time, by next, each once.
	var seen []sb.ID
	for after, pages := "", 0; ; pages++ {
		var page struct {
			Trunks []sb.Trunk
			Next   string
		}
		if code, raw := apiCall(t, m, admin, "GET", "/v1/trunks?limit=1&after="+after, nil, &page); code != http.StatusOK || pages > 5 {
			t.Fatalf("GET /v1/trunks page %d: %d %s", pages, code, raw)
		}
		for _, tr := range page.Trunks {
			seen = append(seen, tr.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(seen) != 2 || seen[0] != f.Trunk.ID || seen[1] != trunk.ID {
		t.Errorf("trunks page by page: %v, want the provisioned one, then the new one", seen)
	}
	expect("GET", "/v1/trunks?after=nonsense", nil, http.StatusBadRequest, admin)

	// The trunk's outbound route: set, changed, listed, removed.
	var route sb.Route
	expect("PUT", "/v1/routes/"+trunk.ID.String(), map[string]any{"target": "192.0.2.9:5060"}, http.StatusForbidden, refused["supervisor"])
	if code, raw := apiCall(t, m, admin, "PUT", "/v1/routes/"+trunk.ID.String(), map[string]any{"target": "192.0.2.9:5060", "password": "carrier-pw", "username": "u"}, &route); code != http.StatusOK {
		t.Fatalf("admin setting a route: %d %s", code, raw)
	}
	if route.Media != sb.MediaRTP {
		t.Errorf("a new route's media is %q, want rtp", route.Media)
	}
	if code, raw := apiCall(t, m, admin, "PATCH", "/v1/routes/"+trunk.ID.String(), map[string]any{"priority": 5, "media": "dtls"}, &route); code != http.StatusOK || !route.HasPassword || route.Priority != 5 || route.Target != "192.0.2.9:5060" || route.Media != sb.MediaDTLS {
		t.Errorf("route after a change of priority and media: %d %s: %+v, want the password kept, media dtls", code, raw, route)
	}
	expect("PATCH", "/v1/routes/"+trunk.ID.String(), map[string]any{"target": "no port"}, http.StatusBadRequest, admin)
	expect("PATCH", "/v1/routes/"+trunk.ID.String(), map[string]any{"media": "sdes"}, http.StatusBadRequest, admin)
	var routes struct{ Routes []sb.Route }
	apiCall(t, m, otherAdmin, "GET", "/v1/routes", nil, &routes)
	if len(routes.Routes) != 0 {
		t.Errorf("another tenant's admin sees %d routes", len(routes.Routes))
	}

	// A queue on one of the trunk's numbers.
	var q sb.Queue
	newQueue := map[string]any{"name": "Sales", "max_wait_seconds": 30, "members": []sb.ID{f.Operators[0].ID}, "numbers": []string{"5002"}}
	expect("POST", "/v1/queues", newQueue, http.StatusForbidden, refused["supervisor"], refused["operator"])
	if code, raw := apiCall(t, m, admin, "POST", "/v1/queues", newQueue, &q); code != http.StatusCreated {
		t.Fatalf("admin creating a queue: %d %s", code, raw)
	}
	qp := "/v1/queues/" + q.ID.String()
	expect("GET", qp, nil, http.StatusNotFound, otherAdmin)
	if code, raw := apiCall(t, m, admin, "PATCH", qp, map[string]any{"members": []sb.ID{}, "name": "Sales EU"}, &q); code != http.StatusOK || q.Name != "Sales EU" || len(q.Members) != 0 {
		t.Errorf("queue after a change: %d %s: %q members %v", code, raw, q.Name, q.Members)
	}
	var numbers struct{ Numbers []sb.Number }
	apiCall(t, m, admin, "GET", "/v1/numbers", nil, &numbers)
	i := slices.IndexFunc(numbers.Numbers, func(n sb.Number) bool { return n.Number == "5002" })
	if i < 0 || numbers.Numbers[i].QueueName != "Sales EU" || numbers.Numbers[i].TrunkName != "Carrier B" {
		t.Errorf("numbers: %+v, want 5002 on Carrier B leading to Sales EU", numbers.Numbers)
	}

	expect("DELETE", qp, nil, http.StatusForbidden, refused["supervisor"])
	expect("DELETE", qp, nil, http.StatusNoContent, admin)
	expect("GET", qp, nil, http.StatusNotFound, admin)
	expect("DELETE", "/v1/routes/"+trunk.ID.String(), nil, http.StatusNoContent, admin)
	expect("DELETE", tp, nil, http.StatusForbidden, refused["operator"])
	expect("DELETE", tp, nil, http.StatusNoContent, admin)
	expect("GET", tp, nil, http.StatusNotFound, admin)

	// The audit log pages too: next is the before of the next page.
	var first, second struct {
		Entries []sb.AuditEntry
		Next    string
	}
	apiCall(t, m, admin, "GET", "/v1/audit?limit=2", nil, &first)
	apiCall(t, m, admin, "GET", "/v1/audit?limit=2&before="+first.Next, nil, &second)
	if len(first.Entries) != 2 || first.Next == "" || len(second.Entries) == 0 || second.Entries[0].Seq >= first.Entries[1].Seq {
		t.Errorf("audit pages: %d entries, next %q, then %d entries; want the second page older than the first", len(first.Entries), first.Next, len(second.Entries))
	}
	var audit struct{ Entries []sb.AuditEntry }
	apiCall(t, m, admin, "GET", "/v1/audit?limit=200", nil, &audit)
	var actions []string
	for _, e := range audit.Entries {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"trunk.create", "trunk.update", "route.set", "route.delete", "queue.create", "queue.update", "queue.delete", "trunk.delete"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit has no %s among %v", want, actions)
		}
	}
	// Each change done has one entry, in its transaction; one refused
	// (403, 400 from the service) or not found has none.
	done := map[string]int{"trunk.create": 1, "trunk.update": 1, "route.set": 2, "route.delete": 1,
		"queue.create": 1, "queue.update": 1, "queue.delete": 1, "trunk.delete": 1}
	for action, n := range done {
		e := auditOf(t, m, f.Tenant.ID, action)
		if len(e) != n {
			t.Errorf("%d %s entries, want %d (the changes done)", len(e), action, n)
		}
		for _, x := range e {
			if x.Outcome != "ok" || x.ActorRole != sb.RoleAdmin || x.IP == "" {
				t.Errorf("%s entry by %s, outcome %q (%s), from %q: want an admin's, done, with the client's address", action, x.ActorRole, x.Outcome, x.Reason, x.IP)
			}
		}
	}
	for action := range done {
		if e := auditOf(t, m, other.Tenant.ID, action); len(e) != 0 {
			t.Errorf("the other tenant's admin, whose changes were not found: %d %s entries", len(e), action)
		}
	}
}

// TestTrunkWithACallInProgressIsNotDeleted: deleting a trunk while one of
// its calls is up is refused with 409; once the call ended, the trunk is
// deleted and the call's record still names it.
func TestTrunkWithACallInProgressIsNotDeleted(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	admin := roleKey(t, m, f.Tenant.ID, sb.RoleAdmin)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "15550001234", "2000")
	tp := "/v1/trunks/" + f.Trunk.ID.String()
	if code, raw := apiCall(t, m, admin, "DELETE", tp, nil, nil); code != http.StatusConflict {
		t.Errorf("deleting the trunk of a call in progress: %d %s, want 409", code, raw)
	}
	if e := auditOf(t, m, f.Tenant.ID, "trunk.delete"); len(e) != 0 {
		t.Errorf("the refused delete left %d entries, want none", len(e))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	if code, raw := apiCall(t, m, admin, "DELETE", tp, nil, nil); code != http.StatusNoContent {
		t.Fatalf("deleting the trunk once the call ended: %d %s", code, raw)
	}
	if e := auditOf(t, m, f.Tenant.ID, "trunk.delete"); len(e) != 1 {
		t.Errorf("the delete left %d entries, want one", len(e))
	}
	c := waitCallEnded(t, m, f.APIKey, in.CallID)
	if c.TrunkName != f.Trunk.Name || c.TrunkID == nil || *c.TrunkID != f.Trunk.ID {
		t.Errorf("the record names trunk %q (%v), want %q", c.TrunkName, c.TrunkID, f.Trunk.Name)
	}
}
