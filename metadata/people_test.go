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
