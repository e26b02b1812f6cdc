package metadata

import (
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// A key made with an expiry works until the store's clock reaches it, and
// not from then on; its use is noted to the minute.
func TestAPIKeyExpiresOnTheClock(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	set(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	db.Now = func() time.Time { return *now.Load() }
	tenant := mustTenant(t, db, "Acme")
	admin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, UserID: sb.NewID(), Role: sb.RoleAdmin, IP: "192.0.2.7"})
	keys := NewAPIKeyService(db)

	past := now.Load().Add(-time.Second)
	if _, _, err := keys.IssueAPIKey(admin, sb.APIKeyRequest{Role: sb.RoleOperator, ExpiresAt: &past}); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("a key expired at birth: %v, want invalid", err)
	}
	expires := now.Load().Add(time.Hour)
	k, secret, err := keys.IssueAPIKey(admin, sb.APIKeyRequest{Role: sb.RoleOperator, Label: " CRM ", ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}
	if k.Label != "CRM" || k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) || k.LastUsedAt != nil {
		t.Errorf("issued %+v", k)
	}
	got, err := keys.AuthenticateAPIKey(ctx, secret)
	if err != nil || got.ID != k.ID || got.LastUsedAt == nil || !got.LastUsedAt.Equal(*now.Load()) {
		t.Fatalf("before expiry: %+v %v", got, err)
	}
	set(expires.Add(-time.Microsecond))
	if _, err := keys.AuthenticateAPIKey(ctx, secret); err != nil {
		t.Errorf("a microsecond before expiry: %v", err)
	}
	set(expires)
	if _, err := keys.AuthenticateAPIKey(ctx, secret); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("at expiry: %v, want unauthorized", err)
	}
	list, err := keys.FindAPIKeys(admin, sb.Page{Limit: 10})
	if err != nil || len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(expires.Add(-time.Microsecond)) {
		t.Errorf("listed %+v %v, want the last use a minute-grain write: the second use was %s", list, err, expires.Add(-time.Microsecond))
	}
}

// A disabled person cannot log in, and a session they still hold (made by
// a login racing the disabling) is refused.
func TestDisabledPersonHasNoSession(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	users, sessions := NewUserService(db), NewSessionService(db)
	adminUser := &sb.User{TenantID: tenant.ID, Email: "admin@acme.test", Role: sb.RoleAdmin}
	if err := users.CreateUser(ctx, adminUser, "long enough"); err != nil {
		t.Fatal(err)
	}
	admin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, UserID: adminUser.ID, Role: sb.RoleAdmin})
	op := &sb.User{Email: "op@acme.test", Role: sb.RoleOperator}
	if _, err := users.InviteUser(admin, op, "long enough"); err != nil {
		t.Fatal(err)
	}
	token, _, err := sessions.CreateSession(ctx, op, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := users.UpdateUser(admin, adminUser.ID, sb.UserChange{Disabled: &yes}); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("an admin disabling themselves: %v, want forbidden", err)
	}
	// The disabling commits; then a session made meanwhile is written.
	if _, err := users.UpdateUser(admin, op.ID, sb.UserChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	late, _, err := sessions.CreateSession(ctx, op, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{token, late} {
		if _, err := sessions.FindSession(ctx, tok); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
			t.Errorf("a disabled person's session: %v, want unauthorized", err)
		}
	}
	if _, err := users.Authenticate(ctx, op.Email, "long enough"); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a disabled person's login: %v, want forbidden", err)
	}
	if _, err := users.Authenticate(ctx, op.Email, "wrong password"); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("a wrong password for a disabled person: %v, want unauthorized (nothing said)", err)
	}
	no := false
	if _, err := users.UpdateUser(admin, op.ID, sb.UserChange{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Authenticate(ctx, op.Email, "long enough"); err != nil {
		t.Errorf("enabled again: %v", err)
	}
}

// Pages of people follow one another without gaps or repeats.
func TestUsersPageByPage(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	users := NewUserService(db)
	admin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, UserID: sb.NewID(), Role: sb.RoleAdmin})
	want := map[sb.ID]bool{}
	for _, e := range []string{"a@acme.test", "b@acme.test", "c@acme.test", "d@acme.test", "e@acme.test"} {
		u := &sb.User{Email: e, Role: sb.RoleOperator}
		if _, err := users.InviteUser(admin, u, ""); err != nil {
			t.Fatal(err)
		}
		want[u.ID] = true
	}
	var p sb.Page
	p.Limit = 2
	seen := 0
	for pages := 0; ; pages++ {
		page, err := users.FindUsers(admin, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page {
			if !want[u.ID] {
				t.Fatalf("%s listed twice, or not ours", u.Email)
			}
			delete(want, u.ID)
			seen++
		}
		if len(page) < p.Limit {
			break
		}
		p.After = page[len(page)-1].ID
		if pages > 5 {
			t.Fatal("pages do not end")
		}
	}
	if seen != 5 || len(want) != 0 {
		t.Errorf("saw %d people, missed %d", seen, len(want))
	}
}

// Disabling a person revokes their one-time password links, from the API
// and from the CLI (a person disabled, a tenant deleted); a link made for
// a disabled person since (an admin's reset) sets nothing until they are
// enabled.
func TestDisabledPersonsLinkSetsNothing(t *testing.T) {
	db := mustOpen(t)
	ctx := mustCtx(t)
	tenant := mustTenant(t, db, "Acme")
	users := NewUserService(db)
	admin := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenant.ID, UserID: sb.NewID(), Role: sb.RoleAdmin})
	invite := func(email string) (*sb.User, string) {
		t.Helper()
		u := &sb.User{Email: email, Role: sb.RoleOperator}
		token, err := users.InviteUser(admin, u, "")
		if err != nil || token == "" {
			t.Fatalf("invite %s: %q %v", email, token, err)
		}
		return u, token
	}
	yes, no := true, false
	p := NewProvisioning(db)
	cli := func(action string) *sb.AuditEntry { return &sb.AuditEntry{TenantID: &tenant.ID, Action: action} }

	byAPI, byAPIToken := invite("api@acme.test")
	if _, err := users.UpdateUser(admin, byAPI.ID, sb.UserChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	byCLI, byCLIToken := invite("cli@acme.test")
	if err := p.SetUserDisabled(ctx, byCLI.ID, true, cli("cli.user_disable")); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"disabled by the API": byAPIToken, "disabled by the CLI": byCLIToken} {
		if _, err := users.SetPassword(ctx, token, "long enough"); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
			t.Errorf("the link of a person %s: %v, want unauthorized", name, err)
		}
	}

	// A reset link made while disabled: refused, and kept for when they
	// are enabled again.
	reset, err := users.ResetPassword(admin, byAPI.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.SetPassword(ctx, reset, "long enough"); sb.ErrorCode(err) != sb.EFORBIDDEN {
		t.Errorf("a reset link of a disabled person: %v, want forbidden", err)
	}
	if _, err := users.UpdateUser(admin, byAPI.ID, sb.UserChange{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.SetPassword(ctx, reset, "long enough"); err != nil {
		t.Errorf("the reset link once enabled: %v", err)
	}
	if _, err := users.SetPassword(ctx, byAPIToken, "long enough"); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("the invitation revoked at the disabling, once enabled: %v, want unauthorized", err)
	}

	// A new role signs the person out but keeps their invitation.
	promoted, promotedToken := invite("promoted@acme.test")
	supervisor := sb.RoleSupervisor
	if _, err := users.UpdateUser(admin, promoted.ID, sb.UserChange{Role: &supervisor}); err != nil {
		t.Fatal(err)
	}
	if u, err := users.SetPassword(ctx, promotedToken, "long enough"); err != nil || u.Role != sb.RoleSupervisor {
		t.Errorf("the invitation after a new role: %+v %v, want it to work, for a supervisor", u, err)
	}

	_, lastToken := invite("last@acme.test")
	if err := p.DeleteTenant(ctx, tenant.ID, cli("cli.tenant_delete")); err != nil {
		t.Fatal(err)
	}
	if _, err := users.SetPassword(ctx, lastToken, "long enough"); sb.ErrorCode(err) != sb.EUNAUTHORIZED {
		t.Errorf("a link of a deleted tenant's person: %v, want unauthorized", err)
	}
	var left int
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM password_tokens WHERE tenant_id = $1", tenant.ID).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d links left of a deleted tenant (%v)", left, err)
	}
}
