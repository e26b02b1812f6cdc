package main

import (
	"net/http"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
)

// The service's operator disables, enables and resets the password of a
// person, and revokes an API key, through the built binary: a disabled
// person's session ends and their login is refused until they are
// enabled; a new password replaces the old one and ends their sessions; a
// revoked key gets 401 on its next request. Each change is audited with
// who ran it; what fails changes nothing.
func TestOperatorChangesPeopleAndKeys(t *testing.T) {
	r := mustCLI(t)
	tenant := r.ok(t, "", "tenant", "create", "-name", "People")
	user := r.ok(t, testPassword+"\n", "user", "create", "-tenant", tenant, "-email", "ada@people.test", "-role", "admin")
	u := &sb.User{Email: "ada@people.test"}
	login := func(password string) int { return postLogin(t, r.m, u.Email, password, "198.51.100.1") }

	p := mustLogin(t, r.m, u)
	if out := r.ok(t, "", "user", "disable", "-email", "ADA@people.test"); out != "user "+user+" (ada@people.test) disabled" {
		t.Errorf("user disable: %q", out)
	}
	if code, _ := p.do(http.MethodGet, "/v1/calls", "", nil); code != http.StatusUnauthorized {
		t.Errorf("the disabled person's session: %d, want 401", code)
	}
	if code := login(testPassword); code != http.StatusForbidden { // said only after the right password
		t.Errorf("the disabled person's login: %d, want 403", code)
	}
	var users []struct{ Disabled bool }
	r.json(t, &users, "user", "list", "-tenant", tenant)
	if len(users) != 1 || !users[0].Disabled {
		t.Errorf("user list: %+v", users)
	}
	r.ok(t, "", "user", "enable", "-user", user)
	if code := login(testPassword); code != http.StatusOK {
		t.Errorf("the enabled person's login: %d, want 200", code)
	}

	p = mustLogin(t, r.m, u)
	if _, errOut, code := r.exec(t, "short\n", "user", "set-password", "-user", user); code != exitFailure || !strings.Contains(errOut, "a password needs at least") {
		t.Errorf("a short password: exit %d, %q", code, errOut)
	}
	const newPassword = "a whole new password"
	if out := r.ok(t, newPassword+"\n", "user", "set-password", "-email", u.Email); !strings.Contains(out, "password set, sessions ended") {
		t.Errorf("user set-password: %q", out)
	}
	if code, _ := p.do(http.MethodGet, "/v1/calls", "", nil); code != http.StatusUnauthorized {
		t.Errorf("a session from before the new password: %d, want 401", code)
	}
	if old, new := login(testPassword), login(newPassword); old != http.StatusUnauthorized || new != http.StatusOK {
		t.Errorf("login with the old password %d (want 401), the new %d (want 200)", old, new)
	}
	r.fails(t, "user not found", "user", "disable", "-email", "nobody@people.test")

	secret := r.ok(t, "", "apikey", "create", "-tenant", tenant, "-role", "admin")
	k := &person{t: t, m: r.m, key: secret}
	if code, _ := k.do(http.MethodGet, "/v1/calls", "", nil); code != http.StatusOK {
		t.Fatalf("the key before it is revoked: %d", code)
	}
	var keys []struct{ ID string }
	r.json(t, &keys, "apikey", "list", "-tenant", tenant)
	if len(keys) != 1 {
		t.Fatalf("apikey list: %+v", keys)
	}
	if out := r.ok(t, "", "apikey", "revoke", "-key", keys[0].ID); out != "API key "+keys[0].ID+" revoked" {
		t.Errorf("apikey revoke: %q", out)
	}
	if code, _ := k.do(http.MethodGet, "/v1/calls", "", nil); code != http.StatusUnauthorized {
		t.Errorf("the revoked key: %d, want 401", code)
	}
	r.fails(t, "api key not found", "apikey", "revoke", "-key", keys[0].ID)

	var cli []string
	_, entries := r.audit(t, tenant)
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "cli.") && !strings.HasSuffix(e.Action, "_create") {
			cli = append(cli, e.Action+" "+e.ResourceID+" "+e.Detail)
			if !strings.HasPrefix(e.UserAgent, "cli os-user=") {
				t.Errorf("%s names %q as who ran it", e.Action, e.UserAgent)
			}
		}
	}
	want := []string{
		"cli.user_disable " + user + " email",
		"cli.user_enable " + user + " user",
		"cli.user_set_password " + user + " email",
		"cli.apikey_revoke " + keys[0].ID + " key",
	}
	if strings.Join(cli, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries:\n%s\nwant:\n%s", strings.Join(cli, "\n"), strings.Join(want, "\n"))
	}
}
