package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/apispec"
)

// A tenant's WhatsApp call permission requests, each a message the
// business pays for, are limited to a burst of ten and then ten a minute,
// whoever of the tenant sends them; another tenant has its own budget.
func TestPermissionRequestsRateLimited(t *testing.T) {
	f := newFixture(t)
	var sent atomic.Int64
	keys := map[string]*sb.APIKey{
		"sbk_one":   {ID: sb.NewID(), TenantID: f.tenantID, Role: sb.RoleSupervisor},
		"sbk_two":   {ID: sb.NewID(), TenantID: f.tenantID, Role: sb.RoleAdmin},
		"sbk_other": {ID: sb.NewID(), TenantID: sb.NewID(), Role: sb.RoleAdmin},
	}
	s := NewServer(Config{Now: f.now}, Deps{
		Calls:    f.calls,
		Users:    &fakeUsers{users: []*sb.User{f.user}},
		APIKeys:  keysByToken(keys),
		Sessions: &fakeSessions{m: map[string]*sb.Session{}},
		WhatsApp: &WhatsApp{RequestPermission: func(_ context.Context, _, _ string, budget func() error) error {
			if err := budget(); err != nil {
				return err
			}
			sent.Add(1)
			return nil
		}},
	})
	ask := permissionAsker(t, s)
	for i := range permissionBurst {
		key := []string{"sbk_one", "sbk_two"}[i%2]
		if code := ask(key); code != http.StatusAccepted {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if code := ask("sbk_two"); code != http.StatusTooManyRequests {
		t.Errorf("past the tenant's burst: %d, want 429", code)
	}
	if code := ask("sbk_other"); code != http.StatusAccepted {
		t.Errorf("another tenant: %d", code)
	}
	f.advance(6 * time.Second)
	if code := ask("sbk_one"); code != http.StatusAccepted {
		t.Errorf("six seconds later: %d", code)
	}
	if code := ask("sbk_one"); code != http.StatusTooManyRequests {
		t.Errorf("a second one then: %d, want 429", code)
	}
	if n := sent.Load(); n != permissionBurst+2 {
		t.Errorf("%d requests went to WhatsApp, want %d", n, permissionBurst+2)
	}
}

// permissionAsker serves s and asks for a call permission with an API
// key, returning the status.
func permissionAsker(t *testing.T, s *Server) func(key string) int {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	client := apispec.Load(t, Description()).Client(t, nil)
	return func(key string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, srv.URL+"/v1/whatsapp/permission-requests",
			strings.NewReader(`{"to":"+4915112345678","text":"May we call you?"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return res.StatusCode
	}
}

// A permission request refused before it would be sent (here: the
// tenant has no connection yet) costs the tenant's budget nothing: an
// operator's refused requests leave the admin's ten.
func TestRefusedPermissionRequestsCostNothing(t *testing.T) {
	f := newFixture(t)
	var connected atomic.Bool
	var sent atomic.Int64
	keys := map[string]*sb.APIKey{
		"sbk_operator": {ID: sb.NewID(), TenantID: f.tenantID, Role: sb.RoleOperator},
		"sbk_admin":    {ID: sb.NewID(), TenantID: f.tenantID, Role: sb.RoleAdmin},
	}
	s := NewServer(Config{Now: f.now}, Deps{
		Calls:    f.calls,
		Users:    &fakeUsers{users: []*sb.User{f.user}},
		APIKeys:  keysByToken(keys),
		Sessions: &fakeSessions{m: map[string]*sb.Session{}},
		// As *whatsapp.Service checks: the connection, then the budget.
		WhatsApp: &WhatsApp{RequestPermission: func(_ context.Context, _, _ string, budget func() error) error {
			if !connected.Load() {
				return sb.Errorf(sb.ENOTFOUND, "the tenant has no WhatsApp connection")
			}
			if err := budget(); err != nil {
				return err
			}
			sent.Add(1)
			return nil
		}},
	})
	ask := permissionAsker(t, s)
	for i := range permissionBurst + 2 {
		if code := ask("sbk_operator"); code != http.StatusNotFound {
			t.Fatalf("request %d without a connection: %d, want 404", i, code)
		}
	}
	connected.Store(true)
	for i := range permissionBurst {
		if code := ask("sbk_admin"); code != http.StatusAccepted {
			t.Fatalf("the admin's request %d: %d", i, code)
		}
	}
	if code := ask("sbk_admin"); code != http.StatusTooManyRequests {
		t.Errorf("past the tenant's burst: %d, want 429", code)
	}
	if n := sent.Load(); n != permissionBurst {
		t.Errorf("%d requests went to WhatsApp, want %d", n, permissionBurst)
	}
}

// keysByToken authenticates each of its API keys by its token.
type keysByToken map[string]*sb.APIKey

func (k keysByToken) CreateAPIKey(context.Context, sb.ID, sb.Role) (*sb.APIKey, string, error) {
	return nil, "", sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (k keysByToken) FindAPIKeys(context.Context, sb.Page) ([]*sb.APIKey, error) { return nil, nil }
func (k keysByToken) IssueAPIKey(context.Context, sb.APIKeyRequest) (*sb.APIKey, string, error) {
	return nil, "", sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (k keysByToken) RevokeAPIKey(context.Context, sb.ID) error {
	return sb.Errorf(sb.EFORBIDDEN, "not here")
}
func (k keysByToken) AuthenticateAPIKey(_ context.Context, secret string) (*sb.APIKey, error) {
	if key := k[secret]; key != nil {
		return key, nil
	}
	return nil, sb.Errorf(sb.EUNAUTHORIZED, "invalid API key")
}
