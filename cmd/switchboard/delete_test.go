package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// The service's operator deletes a trunk, a queue and a tenant through
// the built binary. Each is refused (exit 1, saying why, nothing changed
// or audited) while a call on it is in progress, and done once the call
// has ended; each done is audited with who ran it. The calls stay
// readable: the trunk's call names the deleted trunk, and the deleted
// tenant's call records stay while nothing of it can log in or use a key.
func TestOperatorDeletes(t *testing.T) {
	r := mustCLI(t)
	ctx := context.Background()
	tenant := r.ok(t, "", "tenant", "create", "-name", "Deleted")
	r.ok(t, testPassword+"\n", "user", "create", "-tenant", tenant, "-email", "op@deleted.test", "-role", "operator")
	trunk := r.ok(t, "", "trunk", "create", "-tenant", tenant, "-name", "old-pbx", "-allow", "198.51.100.7", "-number", "2000")
	keep := r.ok(t, "", "trunk", "create", "-tenant", tenant, "-name", "pbx", "-allow", "198.51.100.8", "-number", "2001", "-number", "2002")
	sales := r.ok(t, "", "queue", "create", "-tenant", tenant, "-name", "sales", "-number", "2001")
	r.ok(t, "", "queue", "create", "-tenant", tenant, "-name", "front", "-number", "2002", "-overflow", "queue:sales")
	key := r.ok(t, "", "apikey", "create", "-tenant", tenant, "-role", "supervisor")
	_, before := r.audit(t, tenant)

	t.Run("trunk", func(t *testing.T) {
		callID, end := r.mustCall(t, tenant, trunk, "2000")
		r.fails(t, `trunk "old-pbx" has 1 call(s) in progress`, "trunk", "delete", "-tenant", tenant, "-trunk", "old-pbx")
		end()
		if out := r.ok(t, "", "trunk", "delete", "-tenant", tenant, "-trunk", trunk); out != "trunk "+trunk+" (old-pbx) deleted" {
			t.Errorf("trunk delete: %q", out)
		}
		var trunks []struct{ ID string }
		r.json(t, &trunks, "trunk", "list", "-tenant", tenant)
		if len(trunks) != 1 || trunks[0].ID != keep {
			t.Errorf("trunks after the delete: %+v", trunks)
		}
		c := findCall(t, r, tenant, callID)
		if c.TrunkID == nil || c.TrunkID.String() != trunk || c.TrunkName != "old-pbx" {
			t.Errorf("the deleted trunk's call names trunk %v %q, want %s old-pbx", c.TrunkID, c.TrunkName, trunk)
		}
		r.fails(t, `the tenant has no trunk "old-pbx"`, "trunk", "delete", "-tenant", tenant, "-trunk", "old-pbx")
	})
	t.Run("queue", func(t *testing.T) {
		_, end := r.mustCall(t, tenant, keep, "2001")
		r.fails(t, `queue "sales" has 1 call(s) in progress`, "queue", "delete", "-tenant", tenant, "-queue", "sales")
		end()
		out := r.ok(t, "", "queue", "delete", "-tenant", tenant, "-queue", sales)
		if out != "queue "+sales+" (sales) deleted\nqueue front overflowed to it: it now refuses callers after its wait" {
			t.Errorf("queue delete: %q", out)
		}
		var queues []struct {
			Name     string
			Overflow struct{ Kind string }
		}
		r.json(t, &queues, "queue", "list", "-tenant", tenant)
		if len(queues) != 1 || queues[0].Name != "front" || queues[0].Overflow.Kind != "reject" {
			t.Errorf("queues after the delete: %+v", queues)
		}
	})
	t.Run("tenant", func(t *testing.T) {
		callID, end := r.mustCall(t, tenant, keep, "2001")
		r.fails(t, "has 1 call(s) in progress", "tenant", "delete", "-tenant", tenant)
		end()
		p := mustLogin(t, r.m, &sb.User{Email: "op@deleted.test"})
		if out := r.ok(t, "", "tenant", "delete", "-tenant", tenant); out != "tenant "+tenant+" deleted" {
			t.Errorf("tenant delete: %q", out)
		}
		var active, all []struct {
			ID        string
			DeletedAt *string `json:"deleted_at"`
		}
		r.json(t, &active, "tenant", "list")
		r.json(t, &all, "tenant", "list", "-deleted")
		if len(active) != 0 || len(all) != 1 || all[0].ID != tenant || all[0].DeletedAt == nil {
			t.Errorf("tenant list: %+v; with -deleted: %+v", active, all)
		}
		var got struct {
			Name      string
			DeletedAt *string `json:"deleted_at"`
		}
		r.json(t, &got, "tenant", "get", "-tenant", tenant)
		if got.Name != "Deleted" || got.DeletedAt == nil {
			t.Errorf("tenant get of a deleted tenant: %+v", got)
		}
		for _, list := range []string{"trunk", "queue", "apikey"} {
			if out := r.ok(t, "", list, "list", "-tenant", tenant, "-o", "json"); out != "[]" {
				t.Errorf("%s list of the deleted tenant: %s", list, out)
			}
		}
		var users []struct{ Disabled bool }
		r.json(t, &users, "user", "list", "-tenant", tenant)
		if len(users) != 1 || !users[0].Disabled {
			t.Errorf("the deleted tenant's people: %+v", users)
		}
		if c := findCall(t, r, tenant, callID); c.TrunkName != "pbx" {
			t.Errorf("the deleted tenant's call names trunk %q, want pbx", c.TrunkName)
		}
		// Disabled: refused, and said so only to whoever knows the password.
		if code := postLogin(t, r.m, "op@deleted.test", testPassword, "198.51.100.1"); code != http.StatusForbidden {
			t.Errorf("login to the deleted tenant: %d, want 403", code)
		}
		if code, _ := p.do(http.MethodGet, "/v1/calls", "", nil); code != http.StatusUnauthorized {
			t.Errorf("a session of the deleted tenant: %d", code)
		}
		if code, _ := (&person{t: t, m: r.m, key: key}).do(http.MethodGet, "/v1/calls", "", nil); code != http.StatusUnauthorized {
			t.Errorf("an API key of the deleted tenant: %d", code)
		}
		r.fails(t, "belongs to a deleted tenant", "user", "enable", "-email", "op@deleted.test")
		for _, args := range [][]string{
			{"user", "create", "-tenant", tenant, "-email", "new@deleted.test"},
			{"apikey", "create", "-tenant", tenant},
			{"trunk", "create", "-tenant", tenant, "-name", "again", "-allow", "198.51.100.9", "-number", "2009"},
			{"queue", "create", "-tenant", tenant, "-name", "again"},
			{"tenant", "set", "-tenant", tenant, "-support-access"},
		} {
			if _, errOut, code := r.exec(t, testPassword+"\n", args...); code != exitFailure || !strings.Contains(errOut, "tenant "+tenant+" was deleted at") {
				t.Errorf("switchboard %s on the deleted tenant: exit %d, %q", strings.Join(args[:2], " "), code, errOut)
			}
		}
		r.fails(t, "was deleted at", "tenant", "delete", "-tenant", tenant)
	})

	all, allEntries := r.audit(t, tenant)
	var lines []string
	var entries []*sb.AuditEntry
	for i, e := range allEntries[len(before):] {
		if strings.HasPrefix(e.Action, "cli.") {
			lines, entries = append(lines, all[len(before)+i]), append(entries, e)
		}
	}
	want := []string{
		"cli.trunk_delete trunk " + trunk + " tenant,trunk",
		"cli.queue_delete queue " + sales + " queue,tenant;overflow_rerouted=1",
		"cli.tenant_delete tenant " + tenant + " tenant",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries:\n%s\nwant (the refused deletes not among them):\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.UserAgent, "cli os-user=") || !strings.Contains(e.UserAgent, " host=") {
			t.Errorf("%s names %q as who ran it", e.Action, e.UserAgent)
		}
	}
	if n, err := metadata.NewAuditLog(r.m.DB).Verify(ctx); err != nil || n != 0 {
		t.Errorf("audit chain: broken at %d, %v", n, err)
	}
}

// findCall reads a call's record as the tenant's admin would.
func findCall(t *testing.T, r *cliRig, tenant string, id sb.ID) *sb.Call {
	t.Helper()
	ctx := sb.NewContextWithActor(context.Background(), &sb.Actor{TenantID: mustID(t, tenant), Role: sb.RoleAdmin})
	c, err := metadata.NewCallStore(r.m.DB).FindCallByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
