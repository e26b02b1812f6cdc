package main

import (
	"context"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// The service's operator lists what was created, through the built
// binary: each read command prints an aligned table by default and, with
// -o json, records that parse back to what was created; an API key's
// secret is never shown, only its first characters.
func TestOperatorLists(t *testing.T) {
	r := mustCLI(t)
	tenant := r.ok(t, "", "tenant", "create", "-name", "Listed")
	other := r.ok(t, "", "tenant", "create", "-name", "Another")
	user := r.ok(t, testPassword+"\n", "user", "create", "-tenant", tenant, "-email", "op@listed.test", "-name", "Olga", "-role", "operator")
	trunk := r.ok(t, "", "trunk", "create", "-tenant", tenant, "-name", "pbx", "-allow", "198.51.100.7", "-number", "+4930123456", "-number", "2000")
	queue := r.ok(t, "", "queue", "create", "-tenant", tenant, "-name", "sales", "-number", "2000", "-member", "op@listed.test", "-max-wait", "45s")
	secret := r.ok(t, "", "apikey", "create", "-tenant", tenant, "-role", "supervisor")

	t.Run("tenant list", func(t *testing.T) {
		var got []struct {
			ID, Name              string
			Users, Trunks, Queues int
			APIKeys               int     `json:"api_keys"`
			DeletedAt             *string `json:"deleted_at"`
		}
		r.json(t, &got, "tenant", "list")
		if len(got) != 2 || got[0].Name != "Another" || got[0].ID != other || got[1].ID != tenant ||
			got[1].Users != 1 || got[1].Trunks != 1 || got[1].Queues != 1 || got[1].APIKeys != 1 || got[1].DeletedAt != nil {
			t.Errorf("tenant list -o json: %+v", got)
		}
		checkTable(t, r.ok(t, "", "tenant", "list"), []string{"ID", "NAME", "USERS", "TRUNKS", "QUEUES", "API KEYS", "CREATED", "STATE"},
			map[string][]string{tenant: {tenant, "Listed", "1", "1", "1", "1"}})
	})
	t.Run("tenant get", func(t *testing.T) {
		var got struct {
			ID, Name        string
			RecordingPolicy string `json:"recording_policy"`
			Users, Queues   int
		}
		r.json(t, &got, "tenant", "get", "-tenant", tenant)
		if got.ID != tenant || got.Name != "Listed" || got.RecordingPolicy != "never" || got.Users != 1 || got.Queues != 1 {
			t.Errorf("tenant get -o json: %+v", got)
		}
		out := r.ok(t, "", "tenant", "get", "-tenant", tenant)
		checkTable(t, out, []string{"SETTING", "VALUE"}, map[string][]string{"name": {"name", "Listed"}, "recording policy": {"recording policy", "never"}})
	})
	t.Run("user list", func(t *testing.T) {
		var got []struct {
			ID, Email, Name, Role string
			Disabled              bool
		}
		r.json(t, &got, "user", "list", "-tenant", tenant)
		if len(got) != 1 || got[0].ID != user || got[0].Email != "op@listed.test" || got[0].Name != "Olga" || got[0].Role != "operator" || got[0].Disabled {
			t.Errorf("user list -o json: %+v", got)
		}
		checkTable(t, r.ok(t, "", "user", "list", "-tenant", tenant), []string{"ID", "EMAIL", "NAME", "ROLE", "STATE", "CREATED"},
			map[string][]string{user: {user, "op@listed.test", "Olga", "operator", "active"}})
	})
	t.Run("apikey list", func(t *testing.T) {
		// A key an admin made with a label and an expiry, used once.
		tenantID, err := sb.ParseID(tenant)
		if err != nil {
			t.Fatal(err)
		}
		keys := metadata.NewAPIKeyService(r.m.DB)
		expires := time.Date(2099, 1, 1, 12, 0, 0, 0, time.UTC)
		admin := sb.NewContextWithActor(context.Background(), &sb.Actor{TenantID: tenantID, UserID: sb.NewID(), Role: sb.RoleAdmin})
		labelled, labelledSecret, err := keys.IssueAPIKey(admin, sb.APIKeyRequest{Role: sb.RoleOperator, Label: "wallboard", ExpiresAt: &expires})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.AuthenticateAPIKey(context.Background(), labelledSecret); err != nil {
			t.Fatal(err)
		}
		var got []struct {
			ID, Prefix, Role, Label string
			ExpiresAt               *time.Time `json:"expires_at"`
			LastUsedAt              *time.Time `json:"last_used_at"`
		}
		r.json(t, &got, "apikey", "list", "-tenant", tenant)
		if len(got) != 2 || got[0].Role != "supervisor" || got[0].Prefix == "" || !strings.HasPrefix(secret, got[0].Prefix) || len(got[0].Prefix) >= len(secret) {
			t.Fatalf("apikey list -o json: %+v", got)
		}
		if got[1].ID != labelled.ID.String() || got[1].Label != "wallboard" || got[1].ExpiresAt == nil || !got[1].ExpiresAt.Equal(expires) || got[1].LastUsedAt == nil {
			t.Errorf("apikey list -o json, the labelled key: %+v, want its label, expiry and last use", got[1])
		}
		out := r.ok(t, "", "apikey", "list", "-tenant", tenant)
		checkTable(t, out, []string{"ID", "PREFIX", "LABEL", "ROLE", "CREATED", "EXPIRES", "LAST USED"}, map[string][]string{
			got[0].ID: {got[0].ID, got[0].Prefix, "-", "supervisor"},
			got[1].ID: {got[1].ID, got[1].Prefix, "wallboard", "operator"},
		})
		if !strings.Contains(out, "2099-01-01 12:00:00") {
			t.Errorf("apikey list shows no expiry:\n%s", out)
		}
		if strings.Contains(out, secret) || strings.Contains(out, labelledSecret) {
			t.Error("apikey list shows the secret")
		}
	})
	t.Run("trunk list", func(t *testing.T) {
		var got []struct {
			ID, Name       string
			Allow, Numbers []string
		}
		r.json(t, &got, "trunk", "list", "-tenant", tenant)
		if len(got) != 1 || got[0].ID != trunk || got[0].Name != "pbx" || strings.Join(got[0].Allow, ",") != "198.51.100.7/32" ||
			strings.Join(got[0].Numbers, ",") != "+4930123456,2000" {
			t.Errorf("trunk list -o json: %+v", got)
		}
		checkTable(t, r.ok(t, "", "trunk", "list", "-tenant", tenant), []string{"ID", "NAME", "NUMBERS", "ALLOW", "USERNAME", "OUTBOUND", "CREATED"},
			map[string][]string{trunk: {trunk, "pbx", "+4930123456,2000", "198.51.100.7/32", "-", "-"}})
	})
	t.Run("queue list", func(t *testing.T) {
		var got []struct {
			ID, Name       string
			Members        []string
			Numbers        []string
			MaxWaitSeconds float64 `json:"max_wait_seconds"`
			Overflow       struct{ Kind string }
		}
		r.json(t, &got, "queue", "list", "-tenant", tenant)
		if len(got) != 1 || got[0].ID != queue || got[0].Name != "sales" || strings.Join(got[0].Members, ",") != user ||
			strings.Join(got[0].Numbers, ",") != "2000" || got[0].MaxWaitSeconds != 45 || got[0].Overflow.Kind != "reject" {
			t.Errorf("queue list -o json: %+v", got)
		}
		checkTable(t, r.ok(t, "", "queue", "list", "-tenant", tenant), []string{"ID", "NAME", "NUMBERS", "MEMBERS", "MAX WAIT", "OVERFLOW", "CREATED"},
			map[string][]string{queue: {queue, "sales", "2000", "1", "45s", "reject"}})
	})
	t.Run("empty lists", func(t *testing.T) {
		for _, cmd := range []string{"user", "apikey", "trunk", "queue"} {
			if out := r.ok(t, "", cmd, "list", "-tenant", other, "-o", "json"); out != "[]" {
				t.Errorf("%s list of a tenant without any: %q, want []", cmd, out)
			}
		}
	})
}

// checkTable checks a table's header and that each row, found by its
// key, starts with the cells given, each beginning in its header's
// column.
func checkTable(t *testing.T, out string, header []string, rows map[string][]string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	cols := make([]int, len(header))
	for i, h := range header {
		if cols[i] = strings.Index(lines[0], h); cols[i] < 0 || (i > 0 && cols[i] <= cols[i-1]) {
			t.Fatalf("table header %q, want the columns %q", lines[0], header)
		}
	}
	for key, cells := range rows {
		var line string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, key) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("no row %q in\n%s", key, out)
			continue
		}
		for i, c := range cells {
			if !strings.HasPrefix(line[cols[i]:], c+" ") && line[cols[i]:] != c {
				t.Errorf("row %q column %s: %q, want %q\n%s", key, header[i], line[cols[i]:], c, out)
			}
		}
	}
}
