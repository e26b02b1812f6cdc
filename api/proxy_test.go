package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// gatedUsers is fakeUsers whose password check waits at a gate, as the
// real one's argon2 takes its time: logins sent together are checked
// together.
type gatedUsers struct {
	fakeUsers
	checked atomic.Int32
	gate    chan struct{}
	fail    atomic.Bool // the store fails
}

func (g *gatedUsers) Authenticate(ctx context.Context, email, password string) (*sb.User, error) {
	g.checked.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.fail.Load() {
		return nil, errors.New("database on fire")
	}
	return g.fakeUsers.Authenticate(ctx, email, password)
}

// memAudit keeps audit entries in memory.
type memAudit struct {
	mu      sync.Mutex
	entries []*sb.AuditEntry
}

func (a *memAudit) Append(_ context.Context, entries ...*sb.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range entries {
		if e.Outcome == "" {
			e.Outcome = "ok" // as the real log stamps it
		}
		a.entries = append(a.entries, e)
	}
	return nil
}

// ips returns the addresses of the entries for an action and outcome.
func (a *memAudit) ips(action, outcome string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ips []string
	for _, e := range a.entries {
		if e.Action == action && e.Outcome == outcome {
			ips = append(ips, e.IP)
		}
	}
	return ips
}

// proxyFixture is a server reached through a reverse proxy on loopback:
// the test's requests come from 127.0.0.1 and say whom they forward.
type proxyFixture struct {
	srv   *httptest.Server
	users *gatedUsers
	audit *memAudit
	user  *sb.User
}

func newProxyFixture(t *testing.T, trusted ...string) *proxyFixture {
	t.Helper()
	tenant := sb.NewID()
	f := &proxyFixture{
		user:  &sb.User{ID: sb.NewID(), TenantID: tenant, Email: "op@example.test", Role: sb.RoleOperator},
		audit: &memAudit{},
	}
	f.users = &gatedUsers{fakeUsers: fakeUsers{users: []*sb.User{f.user}}, gate: make(chan struct{})}
	var c Config
	for _, p := range trusted {
		c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix(p))
	}
	s := NewServer(c, Deps{Users: f.users, APIKeys: &fakeKeys{}, Sessions: &fakeSessions{m: map[string]*sb.Session{}}, Audit: f.audit})
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// login posts a login with the given headers and returns the status.
func (f *proxyFixture) login(t *testing.T, email, password string, header ...string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, f.srv.URL+"/v1/login",
		strings.NewReader(`{"email":"`+email+`","password":"`+password+`"}`))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// Behind a trusted proxy, failed logins from one client lock that client
// out, not the others behind the same proxy; the audit names the client;
// an address the client puts in front of the chain changes nothing.
func TestLoginBehindTrustedProxy(t *testing.T) {
	f := newProxyFixture(t, "127.0.0.0/8", "10.0.0.0/8")
	close(f.users.gate)
	for i := range addrFailures {
		if code := f.login(t, "nobody"+strconv.Itoa(i)+"@example.test", "guess", "X-Forwarded-For", "198.51.100.7, 10.1.2.3"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code := f.login(t, f.user.Email, "right password", "X-Forwarded-For", "198.51.100.7"); code != http.StatusTooManyRequests {
		t.Errorf("the client that guessed twenty times: %d, want 429", code)
	}
	if code := f.login(t, f.user.Email, "right password", "X-Forwarded-For", "203.0.113.99", "X-Forwarded-For", "198.51.100.7"); code != http.StatusTooManyRequests {
		t.Errorf("the same client naming another address before its own: %d, want 429", code)
	}
	if code := f.login(t, f.user.Email, "right password", "X-Forwarded-For", "198.51.100.8"); code != http.StatusOK {
		t.Errorf("another client behind the same proxy: %d, want 200", code)
	}
	if code := f.login(t, f.user.Email, "right password", "Forwarded", `for="[2001:db8::7]:4711";proto=https`); code != http.StatusOK {
		t.Errorf("a client named by Forwarded: %d, want 200", code)
	}
	denied := f.audit.ips("login", "denied")
	if len(denied) != addrFailures || denied[0] != "198.51.100.7" || denied[len(denied)-1] != "198.51.100.7" {
		t.Errorf("failed logins audited from %v, want the forwarded client 198.51.100.7", denied)
	}
	if ok := f.audit.ips("login", "ok"); len(ok) != 2 || ok[0] != "198.51.100.8" || ok[1] != "2001:db8::7" {
		t.Errorf("logins audited from %v, want [198.51.100.8 2001:db8::7]", ok)
	}
}

// From a peer that is no trusted proxy, X-Forwarded-For and Forwarded
// are ignored: a guesser cannot take a fresh address for each guess.
func TestLoginForwardedFromUntrustedPeerIgnored(t *testing.T) {
	f := newProxyFixture(t, "10.0.0.0/8")
	close(f.users.gate)
	for i := range addrFailures {
		f.login(t, "nobody"+strconv.Itoa(i)+"@example.test", "guess",
			"X-Forwarded-For", "198.51.100."+strconv.Itoa(i), "Forwarded", "for=203.0.113."+strconv.Itoa(i))
	}
	if code := f.login(t, f.user.Email, "right password", "X-Forwarded-For", "198.51.100.200"); code != http.StatusTooManyRequests {
		t.Errorf("a fresh forwarded address from the same peer: %d, want 429", code)
	}
	for _, ip := range f.audit.ips("login", "denied") {
		if ip != "127.0.0.1" {
			t.Fatalf("a failed login audited from %s, want the peer 127.0.0.1", ip)
		}
	}
}

// Attempts refused during a lockout cost the sender nothing, and the
// audit log can never be trimmed: the lock's first refusal is audited,
// the hundred after it are not, and a lock of another client is audited
// in its turn.
func TestLockedOutLoginsAuditedOnce(t *testing.T) {
	f := newProxyFixture(t, "127.0.0.0/8")
	close(f.users.gate)
	for range accountFailures {
		f.login(t, f.user.Email, "wrong", "X-Forwarded-For", "198.51.100.1")
	}
	for i := range 100 {
		if code := f.login(t, f.user.Email, "wrong", "X-Forwarded-For", "198.51.100.1"); code != http.StatusTooManyRequests {
			t.Fatalf("attempt %d during the lockout: %d, want 429", i, code)
		}
	}
	if got := f.audit.ips("login", "throttled"); len(got) != 1 || got[0] != "198.51.100.1" {
		t.Errorf("throttled logins audited from %v, want once from 198.51.100.1", got)
	}
	for i := range addrFailures {
		f.login(t, "nobody"+strconv.Itoa(i)+"@example.test", "guess", "X-Forwarded-For", "198.51.100.2")
	}
	for range 10 {
		f.login(t, "nobody@example.test", "guess", "X-Forwarded-For", "198.51.100.2")
	}
	if got := f.audit.ips("login", "throttled"); len(got) != 2 || got[1] != "198.51.100.2" {
		t.Errorf("throttled logins audited from %v, want one more from 198.51.100.2", got)
	}
}

// Twenty wrong passwords for one account sent at once: each attempt
// counts before its password is checked, so no more than five are
// checked, the rest are refused as locked, and so is the right password.
func TestParallelLoginGuessesHitTheLock(t *testing.T) {
	f := newProxyFixture(t)
	const n = 20
	var refused atomic.Int32
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := f.login(t, f.user.Email, "wrong")
			if code == http.StatusTooManyRequests {
				refused.Add(1)
			}
			codes <- code
		}()
	}
	// Every guess is either being checked or already refused before any
	// check ends.
	deadline := time.Now().Add(10 * time.Second)
	for int(f.users.checked.Load()+refused.Load()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(f.users.gate)
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for c := range codes {
		counts[c]++
	}
	if checked := int(f.users.checked.Load()); checked > accountFailures || counts[http.StatusUnauthorized] != checked ||
		counts[http.StatusTooManyRequests] != n-checked {
		t.Errorf("%d of %d parallel guesses checked (answers %v), want at most %d, the rest 429", checked, n, counts, accountFailures)
	}
	if code := f.login(t, f.user.Email, "right password"); code != http.StatusTooManyRequests {
		t.Errorf("the right password after the parallel guesses: %d, want 429", code)
	}
}

// A password check that fails in the store is no guess: an outage does
// not lock anyone out.
func TestLoginStoreFailuresDoNotLock(t *testing.T) {
	f := newProxyFixture(t)
	close(f.users.gate)
	f.users.fail.Store(true)
	for i := range addrFailures + 1 {
		if code := f.login(t, f.user.Email, "right password"); code != http.StatusInternalServerError {
			t.Fatalf("login %d with the store failing: %d, want 500", i, code)
		}
	}
	f.users.fail.Store(false)
	if code := f.login(t, f.user.Email, "right password"); code != http.StatusOK {
		t.Errorf("once the store is back: %d, want 200", code)
	}
}
