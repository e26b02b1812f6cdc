package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// TestChromiumPeopleConsole is a tenant admin in a real browser: they
// invite a person (who sets their password on the link's page), change
// their role, make an API key with a label and an expiry and revoke it,
// and disable the person, who can then no longer log in; the audit page
// shows each step.
func TestChromiumPeopleConsole(t *testing.T) {
	m := mustStartService(t, nil)
	x := mustPeopleFixture(t, m)
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	const email = "nina@acme.test"
	row := `#users tr[data-email="` + email + `"]`
	read := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}

	run("log in as the admin",
		chromedp.Navigate(m.HTTPURL()+"/console"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), x.adminUser.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login`)),
		chromedp.WaitVisible(chromedp.CSS(`#calls-view`)))

	// Invite: the link is shown once.
	run("open People", chromedp.Click(chromedp.CSS(`[data-view="admin-view"]`)), chromedp.WaitVisible(chromedp.CSS(`#invite-form`)))
	run("invite a person",
		chromedp.SendKeys(chromedp.CSS(`#invite-email`), email),
		chromedp.SendKeys(chromedp.CSS(`#invite-name`), "Nina"),
		chromedp.SetValue(chromedp.CSS(`#invite-role`), "operator"),
		chromedp.Click(chromedp.CSS(`#invite`)))
	poll("the invitation's link is shown", `document.querySelector("#invite-link").textContent.includes("/password#token=")`)
	poll("the person is listed", `document.querySelector('`+row+` .status')?.textContent === "active"`)
	link := read("read the link", chromedp.TextContent(chromedp.CSS(`#invite-link`)))

	// Role: operator → supervisor.
	run("choose a role", chromedp.SetValue(chromedp.CSS(row+` select.role`), "supervisor"), chromedp.Click(chromedp.CSS(row+` .save-role`)))
	poll("the role is saved", `document.querySelector('`+row+` select.role')?.value === "supervisor"`)

	// API keys: make one with a label and an expiry, then revoke it.
	run("open API keys", chromedp.Click(chromedp.CSS(`[data-view="keys-view"]`)), chromedp.WaitVisible(chromedp.CSS(`#key-form`)))
	run("make a key",
		chromedp.SetValue(chromedp.CSS(`#key-role`), "operator"),
		chromedp.SendKeys(chromedp.CSS(`#key-label`), "wallboard"),
		chromedp.SetValue(chromedp.CSS(`#key-expires`), "2099-01-01T12:00"),
		chromedp.Click(chromedp.CSS(`#create-key`)))
	poll("the secret is shown once", `document.querySelector("#key-secret").textContent.startsWith("sbk_")`)
	poll("the key is listed", `document.querySelector('#keys tr[data-label="wallboard"]') !== null`)
	secret := read("read the secret", chromedp.TextContent(chromedp.CSS(`#key-secret`)))
	k := &person{t: t, m: m, key: secret}
	if code, raw := k.do("GET", "/v1/calls", "", nil); code != 200 {
		t.Fatalf("the new key: %d %s", code, raw)
	}
	run("reload the keys", chromedp.Click(chromedp.CSS(`[data-view="keys-view"]`)))
	poll("its last use is shown", `document.querySelector('#keys tr[data-label="wallboard"] .last-used')?.textContent !== "never"`)
	run("revoke it", chromedp.Click(chromedp.CSS(`#keys tr[data-label="wallboard"] .revoke`)))
	poll("the key is gone", `document.querySelector('#keys tr[data-label="wallboard"]') === null`)
	if code, _ := k.do("GET", "/v1/calls", "", nil); code != 401 {
		t.Errorf("the revoked key: %d, want 401", code)
	}

	// The person sets their password on the link's page, in the same
	// browser (the admin stays logged in: the page needs no login).
	run("set the password",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`#new-password`)),
		chromedp.SendKeys(chromedp.CSS(`#new-password`), "ninas password"),
		chromedp.SendKeys(chromedp.CSS(`#again`), "ninas password"),
		chromedp.Click(chromedp.CSS(`#set-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#password-done`)))
	if where := read("the address", chromedp.Location()); strings.Contains(where, "token") {
		t.Errorf("the address still holds the token: %s", where)
	}

	// Disable.
	run("back to People", chromedp.Navigate(m.HTTPURL()+"/console"), chromedp.WaitVisible(chromedp.CSS(`#calls-view`)),
		chromedp.Click(chromedp.CSS(`[data-view="admin-view"]`)))
	poll("the person is listed", `document.querySelector('`+row+` .disable') !== null`)
	run("disable the person", chromedp.Click(chromedp.CSS(row+` .disable`)))
	poll("the person is disabled", `document.querySelector('`+row+` .status')?.textContent === "disabled"`)

	// The audit page shows each step.
	run("open the audit log", chromedp.Click(chromedp.CSS(`[data-view="audit-view"]`)))
	for _, action := range []string{"user.invite", "user.role", "apikey.create", "apikey.revoke", "user.password_set", "user.disable"} {
		poll("the audit page shows "+action, `document.querySelector('#audit tr[data-action="`+action+`"]') !== null`)
	}

	// The person, disabled, cannot log in with the password they set.
	run("log out", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login-view`)))
	run("the disabled person tries to log in",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), "ninas password"),
		chromedp.Click(chromedp.CSS(`#login`)))
	poll("the login is refused", `document.querySelector("#login-error").textContent.includes("disabled")`)

	users := metadata.NewUserService(m.DB)
	admin := sb.NewContextWithActor(context.Background(), &sb.Actor{TenantID: x.f.Tenant.ID, UserID: x.adminUser.ID, Role: sb.RoleAdmin})
	list, err := users.FindUsers(admin, sb.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range list {
		if u.Email == email && (u.Role != sb.RoleSupervisor || !u.Disabled || u.Name != "Nina") {
			t.Errorf("the person is stored as %+v, want a disabled supervisor", u)
		}
	}
}
