package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
)

// peopleFixture is tenant Acme with its admin, a supervisor and an
// operator logged in, an admin API key, and tenant Other with its admin.
type peopleFixture struct {
	m                                *Main
	f, other                         *tenantFixture
	adminUser                        *sb.User
	admin, supervisor, operator, key *person
	otherAdmin                       *person
	names                            map[*person]string
}

func mustPeopleFixture(t *testing.T, m *Main) *peopleFixture {
	t.Helper()
	x := &peopleFixture{m: m, f: mustProvision(t, m, "Acme", "2000", 2), other: mustProvision(t, m, "Other", "2001", 0)}
	x.adminUser = mustUser(t, m, x.f.Tenant.ID, "admin@acme.test", sb.RoleAdmin)
	x.admin = mustLogin(t, m, x.adminUser)
	x.supervisor = mustLogin(t, m, mustUser(t, m, x.f.Tenant.ID, "supervisor@acme.test", sb.RoleSupervisor))
	x.operator = mustLogin(t, m, x.f.Operators[0])
	x.otherAdmin = mustLogin(t, m, mustUser(t, m, x.other.Tenant.ID, "admin@other.test", sb.RoleAdmin))
	_, secret, err := metadata.NewAPIKeyService(m.DB).CreateAPIKey(context.Background(), x.f.Tenant.ID, sb.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	x.key = &person{t: t, m: m, key: secret}
	x.names = map[*person]string{x.admin: "admin", x.supervisor: "supervisor", x.operator: "operator", x.key: "admin API key",
		x.otherAdmin: "other tenant's admin"}
	return x
}

// audit returns Acme's audit entries with action, oldest first.
func (x *peopleFixture) audit(t *testing.T, action string) []*sb.AuditEntry {
	t.Helper()
	return auditOf(t, x.m, x.f.Tenant.ID, action)
}

// newKey makes an API key through the API as p, and returns it with its
// secret.
func newKey(t *testing.T, p *person, body string) (sb.APIKey, string) {
	t.Helper()
	var made struct {
		APIKey sb.APIKey `json:"api_key"`
		Secret string    `json:"secret"`
	}
	if code, raw := p.do("POST", "/v1/apikeys", body, &made); code != 201 {
		t.Fatalf("making a key: %d %s", code, raw)
	}
	return made.APIKey, made.Secret
}

// as sends the request as each person and checks the status each gets.
func (x *peopleFixture) as(t *testing.T, method, path, body string, want map[*person]int) {
	t.Helper()
	for p, code := range want {
		if got, raw := p.do(method, path, body, nil); got != code {
			t.Errorf("%s %s as %s: %d, want %d: %s", method, path, x.names[p], got, code, raw)
		}
	}
}

// The people and API key endpoints: an admin (person or key) may, a
// supervisor or operator may not, another tenant's admin finds nothing;
// every change is audited with who and from where; lists page.
func TestPeopleAndKeysByRole(t *testing.T) {
	m := mustStartService(t, nil)
	x := mustPeopleFixture(t, m)
	refused := map[*person]int{x.supervisor: 403, x.operator: 403}

	// API keys.
	x.as(t, "POST", "/v1/apikeys", `{"role":"operator","label":"CRM"}`, refused)
	made, secret := newKey(t, x.admin, `{"role":"operator","label":"CRM","expires_at":"2099-01-01T00:00:00Z"}`)
	if !strings.HasPrefix(secret, made.Prefix) || made.Label != "CRM" || made.ExpiresAt == nil {
		t.Fatalf("admin made %+v", made)
	}
	if code, raw := x.key.do("POST", "/v1/apikeys", `{"role":"supervisor"}`, nil); code != 201 {
		t.Errorf("an admin API key makes a key: %d %s", code, raw)
	}
	x.as(t, "POST", "/v1/apikeys", `{"role":"root"}`, map[*person]int{x.admin: 400})
	x.as(t, "POST", "/v1/apikeys", `{"role":"operator","expires_at":"2001-01-01T00:00:00Z"}`, map[*person]int{x.admin: 400})
	x.as(t, "GET", "/v1/apikeys", "", map[*person]int{x.supervisor: 403, x.operator: 403, x.admin: 200, x.key: 200})
	var keys struct {
		APIKeys []sb.APIKey `json:"api_keys"`
		Next    string      `json:"next"`
	}
	if code, raw := x.otherAdmin.do("GET", "/v1/apikeys", "", &keys); code != 200 || len(keys.APIKeys) != 1 || keys.APIKeys[0].TenantID != x.other.Tenant.ID {
		t.Errorf("another tenant's keys: %d %s, want its own one", code, raw)
	}
	if code, raw := x.admin.do("GET", "/v1/apikeys", "", &keys); code != 200 || len(keys.APIKeys) != 4 || strings.Contains(raw, secret) ||
		strings.Contains(raw, `"hash"`) || keys.Next != "" {
		t.Errorf("the admin's key list: %d %s", code, raw)
	}
	keyPath := "/v1/apikeys/" + made.ID.String()
	x.as(t, "DELETE", keyPath, "", map[*person]int{x.supervisor: 403, x.operator: 403, x.otherAdmin: 404})
	x.as(t, "DELETE", keyPath, "", map[*person]int{x.admin: 204})
	x.as(t, "DELETE", keyPath, "", map[*person]int{x.admin: 404})
	x.as(t, "DELETE", "/v1/apikeys/not-an-id", "", map[*person]int{x.admin: 404})

	// People.
	x.as(t, "POST", "/v1/users", `{"email":"new@acme.test","role":"operator"}`, refused)
	var invited struct {
		User sb.User `json:"user"`
		Link string  `json:"password_link"`
	}
	if code, raw := x.admin.do("POST", "/v1/users", `{"email":"New@Acme.test","name":"Nina","role":"operator"}`, &invited); code != 201 ||
		invited.User.Email != "new@acme.test" || invited.User.TenantID != x.f.Tenant.ID || !strings.HasPrefix(invited.Link, "/password#token=") {
		t.Fatalf("admin invites: %d %s", code, raw)
	}
	x.as(t, "POST", "/v1/users", `{"email":"new@acme.test","role":"operator","password":"long enough"}`, map[*person]int{x.admin: 409})
	x.as(t, "POST", "/v1/users", `{"email":"withpw@acme.test","role":"operator","password":"short"}`, map[*person]int{x.admin: 400})
	if code, raw := x.key.do("POST", "/v1/users", `{"email":"bykey@acme.test","role":"supervisor","password":"long enough"}`, nil); code != 201 ||
		strings.Contains(raw, "password_link") {
		t.Errorf("an admin API key invites with a password: %d %s", code, raw)
	}
	userPath := "/v1/users/" + invited.User.ID.String()
	x.as(t, "PATCH", userPath, `{"role":"supervisor"}`, map[*person]int{x.supervisor: 403, x.operator: 403, x.otherAdmin: 404})
	x.as(t, "PATCH", "/v1/users/"+sb.NewID().String(), `{"name":"x"}`, map[*person]int{x.admin: 404})
	x.as(t, "PATCH", userPath, `{}`, map[*person]int{x.admin: 400})
	var changed sb.User
	if code, raw := x.admin.do("PATCH", userPath, `{"role":"supervisor","name":"Nina B."}`, &changed); code != 200 ||
		changed.Role != sb.RoleSupervisor || changed.Name != "Nina B." || changed.Disabled {
		t.Errorf("admin changes role and name: %d %s", code, raw)
	}
	if code, raw := x.admin.do("PATCH", userPath, `{"disabled":true}`, &changed); code != 200 || !changed.Disabled {
		t.Errorf("admin disables: %d %s", code, raw)
	}
	x.as(t, "PATCH", "/v1/users/"+x.adminUser.ID.String(), `{"disabled":true}`, map[*person]int{x.admin: 403})
	x.as(t, "POST", userPath+"/password", `{}`, map[*person]int{x.supervisor: 403, x.operator: 403, x.otherAdmin: 404})
	var reset struct {
		Link string `json:"password_link"`
	}
	if code, raw := x.admin.do("POST", userPath+"/password", `{}`, &reset); code != 200 || !strings.HasPrefix(reset.Link, "/password#token=") {
		t.Errorf("admin's reset: %d %s", code, raw)
	}
	x.as(t, "POST", userPath+"/password", `{"password":"another long one"}`, map[*person]int{x.admin: 204})

	// The answers hold what the API's description says, and nothing else.
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if code, raw := x.admin.do("GET", "/v1/openapi.json", "", &doc); code != 200 {
		t.Fatalf("the API's description: %d %s", code, raw)
	}
	for path, schema := range map[string]string{"/v1/users": "User", "/v1/apikeys": "APIKey"} {
		var list map[string]json.RawMessage
		if code, raw := x.admin.do("GET", path, "", &list); code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, raw)
		}
		s := doc.Components.Schemas[schema]
		for name, raw := range list {
			var items []map[string]any
			if name == "next" {
				continue
			} else if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
				t.Fatalf("GET %s: %s: %s %v", path, name, raw, err)
			}
			for _, item := range items {
				for _, r := range s.Required {
					if _, ok := item[r]; !ok {
						t.Errorf("%s lacks %s's required %q", path, schema, r)
					}
				}
				for k := range item {
					if _, ok := s.Properties[k]; !ok {
						t.Errorf("%s has %q, which %s does not describe", path, k, schema)
					}
				}
			}
		}
	}

	// Each change once on the log, as the admin, from loopback; the
	// refused attempts wrote nothing.
	for action, n := range map[string]int{"apikey.create": 2, "apikey.revoke": 1, "user.invite": 2, "user.role": 1, "user.name": 1,
		"user.disable": 1, "user.password_reset": 2} {
		entries := x.audit(t, action)
		if len(entries) != n {
			t.Errorf("%s: %d audit entries, want %d", action, len(entries), n)
			continue
		}
		e := entries[0]
		if e.ActorRole != sb.RoleAdmin || e.IP != "127.0.0.1" || e.Outcome != "ok" || (e.ActorUserID == nil && e.ActorKeyID == nil) || e.ResourceID == "" {
			t.Errorf("%s audited as %+v", action, e)
		}
		if e.ActorUserID == nil || *e.ActorUserID != x.adminUser.ID {
			t.Errorf("%s: actor %v, want the admin", action, e.ActorUserID)
		}
	}
	if e := x.audit(t, "user.role"); len(e) == 1 && e[0].Detail != "operator → supervisor" {
		t.Errorf("role change detail %q", e[0].Detail)
	}

	// Lists page one way: a page of two at a time, following next.
	x.as(t, "GET", "/v1/users?limit=0", "", map[*person]int{x.admin: 400})
	x.as(t, "GET", "/v1/users?after=x", "", map[*person]int{x.admin: 400})
	seen := map[string]bool{}
	next := ""
	for pages := 0; ; pages++ {
		var page struct {
			Users []sb.User `json:"users"`
			Next  string    `json:"next"`
		}
		path := "/v1/users?limit=2"
		if next != "" {
			path += "&after=" + next
		}
		if code, raw := x.admin.do("GET", path, "", &page); code != 200 || len(page.Users) > 2 {
			t.Fatalf("GET %s: %d %s", path, code, raw)
		}
		for _, u := range page.Users {
			if seen[u.Email] || u.TenantID != x.f.Tenant.ID {
				t.Errorf("page %d lists %s again, or another tenant's", pages, u.Email)
			}
			seen[u.Email] = true
		}
		if next = page.Next; next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("the pages do not end")
		}
	}
	// Two operators, admin, supervisor, the invited one and the key's.
	if len(seen) != 6 {
		t.Errorf("the pages list %d people: %v, want 6", len(seen), seen)
	}
}

// tokenOf takes the token out of a one-time link.
func tokenOf(link string) string { return strings.TrimPrefix(link, "/password#token=") }

// An invitation's link sets the first password once; a person changes
// their own with the old one; an admin's reset link ends their sessions.
func TestPasswordLinksAndChanges(t *testing.T) {
	m := mustStartService(t, nil)
	x := mustPeopleFixture(t, m)
	var invited struct {
		User sb.User `json:"user"`
		Link string  `json:"password_link"`
	}
	if code, raw := x.admin.do("POST", "/v1/users", `{"email":"nina@acme.test","role":"operator"}`, &invited); code != 201 {
		t.Fatalf("invite: %d %s", code, raw)
	}
	anon := &person{t: t, m: m, client: http.DefaultClient}
	login := func(password string) (int, *person) {
		t.Helper()
		p := mustLoginClient(t, m)
		body, _ := json.Marshal(map[string]string{"email": "nina@acme.test", "password": password})
		code, _ := p.do("POST", "/v1/login", string(body), nil)
		return code, p
	}
	if code, _ := login(""); code != 401 {
		t.Errorf("login before the password is set: %d, want 401", code)
	}
	set := func(token, password string) int {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"token": token, "password": password})
		code, _ := anon.do("POST", "/v1/password", string(body), nil)
		return code
	}
	if code := set(tokenOf(invited.Link), "short"); code != 400 {
		t.Errorf("a short password: %d, want 400", code)
	}
	if code := set(tokenOf(invited.Link)+"x", "first password"); code != 401 {
		t.Errorf("a made-up token: %d, want 401", code)
	}
	if code := set(tokenOf(invited.Link), "first password"); code != 204 {
		t.Fatalf("setting the first password: %d", code)
	}
	if code := set(tokenOf(invited.Link), "second password"); code != 401 {
		t.Errorf("the link used twice: %d, want 401", code)
	}
	code, nina := login("first password")
	if code != 200 {
		t.Fatalf("login with the password set: %d", code)
	}
	if e := x.audit(t, "user.password_set"); len(e) != 1 || *e[0].ActorUserID != invited.User.ID || e[0].IP != "127.0.0.1" {
		t.Errorf("the link's use audited as %+v", e)
	}

	// Their own change: the old password is needed.
	if code, _ := nina.do("POST", "/v1/me/password", `{"old_password":"wrong one","new_password":"second password"}`, nil); code != 403 {
		t.Errorf("a change with a wrong old password: %d, want 403", code)
	}
	if code, _ := nina.do("POST", "/v1/me/password", `{"old_password":"first password","new_password":"second password"}`, nil); code != 204 {
		t.Fatalf("own change: %d", code)
	}
	if code, _ := nina.do("GET", "/v1/me", "", nil); code != 200 {
		t.Errorf("this browser after its own change: %d, want 200 (a new session)", code)
	}
	if code, _ := login("first password"); code != 401 {
		t.Errorf("the old password after the change: %d, want 401", code)
	}
	if code, _ := x.key.do("POST", "/v1/me/password", `{"old_password":"a","new_password":"bbbbbbbbbb"}`, nil); code != 403 {
		t.Errorf("an API key changing a password: %d, want 403", code)
	}
	if e := x.audit(t, "user.password_change"); len(e) != 1 || *e[0].ActorUserID != invited.User.ID {
		t.Errorf("own change audited as %+v", e)
	}

	// An admin's reset by link: the sessions end at once; the link sets
	// the next password.
	var reset struct {
		Link string `json:"password_link"`
	}
	if code, _ := x.admin.do("POST", "/v1/users/"+invited.User.ID.String()+"/password", `{}`, &reset); code != 200 {
		t.Fatalf("reset: %d", code)
	}
	if code, _ := nina.do("GET", "/v1/me", "", nil); code != 401 {
		t.Errorf("a session after the admin's reset: %d, want 401", code)
	}
	if code := set(tokenOf(reset.Link), "third password"); code != 204 {
		t.Errorf("the reset link: %d", code)
	}
	if code, _ := login("third password"); code != 200 {
		t.Errorf("login after the reset: %d", code)
	}
}

// mustLoginClient is a person not logged in yet, with a cookie jar.
func mustLoginClient(t *testing.T, m *Main) *person {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &person{t: t, m: m, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// A key revoked on one instance gets 401 at its next request there and on
// the other: no instance keeps keys.
func TestRevokedKeyIsRefusedOnEveryInstance(t *testing.T) {
	a, b := mustStartInstances(t)
	x := mustPeopleFixture(t, a)
	made, secret := newKey(t, x.admin, `{"role":"supervisor","label":"leaked"}`)
	onA, onB := &person{t: t, m: a, key: secret}, &person{t: t, m: b, key: secret}
	for name, p := range map[string]*person{"a": onA, "b": onB} {
		if code, raw := p.do("GET", "/v1/calls", "", nil); code != 200 {
			t.Fatalf("the new key on instance %s: %d %s", name, code, raw)
		}
	}
	if code, _ := x.admin.do("DELETE", "/v1/apikeys/"+made.ID.String(), "", nil); code != 204 {
		t.Fatalf("revoke on a: %d", code)
	}
	for name, p := range map[string]*person{"b": onB, "a": onA} {
		if code, raw := p.do("GET", "/v1/calls", "", nil); code != 401 {
			t.Errorf("the revoked key's next request on instance %s: %d, want 401: %s", name, code, raw)
		}
	}
}

// A key made to expire shows its expiry and its use in the list. That it
// is refused from its expiry on is TestAPIKeyExpiresOnTheClock (metadata),
// on an injected clock: here the service runs on the wall clock, so the
// expiry is far enough off that no machine reaches it.
func TestKeyListShowsExpiryAndLastUse(t *testing.T) {
	m := mustStartService(t, nil)
	x := mustPeopleFixture(t, m)
	expires := time.Now().Add(time.Hour).UTC()
	made, secret := newKey(t, x.admin, `{"role":"supervisor","label":"CRM","expires_at":"`+expires.Format(time.RFC3339Nano)+`"}`)
	k := &person{t: t, m: m, key: secret}
	if code, raw := k.do("GET", "/v1/calls", "", nil); code != 200 {
		t.Fatalf("the key before it expires: %d %s", code, raw)
	}
	var keys struct {
		APIKeys []sb.APIKey `json:"api_keys"`
	}
	if code, _ := x.admin.do("GET", "/v1/apikeys", "", &keys); code != 200 {
		t.Fatal(code)
	}
	found := false
	for _, l := range keys.APIKeys {
		if l.ID != made.ID {
			continue
		}
		found = true
		if l.Label != "CRM" || l.LastUsedAt == nil || l.ExpiresAt == nil || !l.ExpiresAt.Equal(expires.Truncate(time.Microsecond)) {
			t.Errorf("listed as %+v, want its label, last use and expiry", l)
		}
	}
	if !found {
		t.Errorf("the key %s is not listed", made.ID)
	}
}

// Disabling operators, from one instance, closes their open sockets on
// both instances at once (well before the next ping's check), ends their
// sessions, and refuses their next logins.
func TestDisabledOperatorIsSignedOutEverywhere(t *testing.T) {
	a, b := mustStartInstances(t)
	x := mustPeopleFixture(t, a)
	opA := mustOperator(t, a, x.f.Operators[0])
	opB := mustOperator(t, b, x.f.Operators[1])
	for _, op := range []*opclient.Client{opA, opB} {
		select {
		case <-op.Done():
			t.Fatal("a socket closed before anyone was disabled")
		default:
		}
	}
	for _, u := range x.f.Operators {
		if code, raw := x.admin.do("PATCH", "/v1/users/"+u.ID.String(), `{"disabled":true}`, nil); code != 200 {
			t.Fatalf("disable %s: %d %s", u.Email, code, raw)
		}
	}
	for name, op := range map[string]*opclient.Client{"a (where the admin is)": opA, "b": opB} {
		select {
		case <-op.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("the disabled operator's socket on instance %s is still open", name)
		}
	}
	if code, _ := x.operator.do("GET", "/v1/me", "", nil); code != 401 {
		t.Errorf("the disabled operator's session: %d, want 401", code)
	}
	for _, m := range []*Main{a, b} {
		p := mustLoginClient(t, m)
		body, _ := json.Marshal(map[string]string{"email": x.f.Operators[1].Email, "password": testPassword})
		if code, raw := p.do("POST", "/v1/login", string(body), nil); code != 403 || !strings.Contains(raw, "disabled") {
			t.Errorf("the disabled operator's login on %s: %d %s, want 403", m.Config.Instance, code, raw)
		}
	}
	if e := x.audit(t, "user.disable"); len(e) != 2 {
		t.Errorf("%d disablings audited, want 2", len(e))
	}
}
