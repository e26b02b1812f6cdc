package main

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/metadata"
)

// logWriter sends the service's log to the test's log until the test ends,
// so a failure shows what the service saw.
type logWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
	all  strings.Builder // what the service logged, for tests that check it
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	w.all.Write(p)
	return len(p), nil
}

// serviceLogs holds each test service's log writer.
var serviceLogs sync.Map // *Main → *logWriter

// logsOf returns what the service has logged so far.
func logsOf(m *Main) string {
	w, _ := serviceLogs.Load(m)
	lw := w.(*logWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.all.String()
}

// mustStartService runs the whole service in-process on loopback, on ports
// the system chooses, against a fresh database. settings override the test
// defaults by flag name.
func mustStartService(tb testing.TB, settings map[string]string) *Main {
	tb.Helper()
	return mustStartServiceWith(tb, settings, nil)
}

// mustStartServiceWith is mustStartService with prepare given the service
// before it runs.
func mustStartServiceWith(tb testing.TB, settings map[string]string, prepare func(*Main)) *Main {
	tb.Helper()
	values := map[string]string{
		"database-url":    testenv.DatabaseURL(tb),
		"http-addr":       "127.0.0.1:0",
		"metrics-addr":    "127.0.0.1:0",
		"sip-addr":        "127.0.0.1:0",
		"sip-transports":  "udp,tcp",
		"rtp-ports":       "",
		"ring-timeout":    "3s",
		"media-timeout":   "5s",
		"drain-timeout":   "5s",
		"log-level":       "info",
		"webrtc-loopback": "true",
		"retention-sweep": "1h",
		"recording-spool": tb.TempDir(),
		"journal":         filepath.Join(tb.TempDir(), "journal"),
		// Webhook receivers in tests listen on loopback.
		"webhook-private-targets": "true",
		// Many services share the test machine with everything else the
		// suite runs: a moment's wait there is no overload, and a call a
		// test places must not be shed for it. The tests of shedding
		// (overload_test.go, TestOverloadDelays) set their own.
		"overload-sip-delay": "0",
		"overload-db-delay":  "0",
	}
	for k, v := range settings {
		values[k] = v
	}
	c, err := parseConfig(func(name string) string { return values[name] })
	if err != nil {
		tb.Fatal(err)
	}
	lw := &logWriter{t: tb}
	m := NewMain(c, slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo})))
	serviceLogs.Store(m, lw)
	if prepare != nil {
		prepare(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("closing service: %v", err)
		}
		lw.mu.Lock()
		lw.done = true
		lw.mu.Unlock()
	})
	return m
}

// tenantFixture is one provisioned tenant: an operator, a trunk for
// 127.0.0.1 and a supervisor API key.
type tenantFixture struct {
	Tenant     *sb.Tenant
	Operators  []*sb.User
	Password   string
	Trunk      *sb.Trunk
	Number     string
	APIKey     string
	Supervisor *sb.User
}

const testPassword = "correct horse battery"

// mustProvision creates a tenant with n operators and a trunk that accepts
// calls to number from the given sources.
func mustProvision(tb testing.TB, m *Main, name, number string, operators int, allow ...string) *tenantFixture {
	tb.Helper()
	ctx := context.Background()
	f := &tenantFixture{Tenant: &sb.Tenant{Name: name}, Password: testPassword, Number: number}
	if err := metadata.NewTenantService(m.DB).CreateTenant(ctx, f.Tenant); err != nil {
		tb.Fatal(err)
	}
	users := metadata.NewUserService(m.DB)
	for i := 0; i < operators; i++ {
		u := &sb.User{TenantID: f.Tenant.ID, Email: strings.ToLower(name) + "-op" + string(rune('a'+i)) + "@example.test", Name: "Operator", Role: sb.RoleOperator}
		if err := users.CreateUser(ctx, u, testPassword); err != nil {
			tb.Fatal(err)
		}
		f.Operators = append(f.Operators, u)
	}
	if len(allow) == 0 {
		allow = []string{"127.0.0.1/32"}
	}
	f.Trunk = &sb.Trunk{TenantID: f.Tenant.ID, Name: name + " pbx", Numbers: []string{number}}
	for _, a := range allow {
		f.Trunk.Allow = append(f.Trunk.Allow, netip.MustParsePrefix(a))
	}
	if err := metadata.NewTrunkService(m.DB).CreateTrunk(ctx, f.Trunk, ""); err != nil {
		tb.Fatal(err)
	}
	var err error
	if _, f.APIKey, err = metadata.NewAPIKeyService(m.DB).CreateAPIKey(ctx, f.Tenant.ID, sb.RoleSupervisor); err != nil {
		tb.Fatal(err)
	}
	return f
}
