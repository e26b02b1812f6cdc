package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// cliRig runs the built binary's commands against a service's database,
// as the service's operator would from a shell.
type cliRig struct {
	bin string
	env []string
	m   *Main
}

// mustCLI starts a service (for its database and HTTP API) and builds the
// binary whose commands the test runs.
func mustCLI(t *testing.T) *cliRig {
	t.Helper()
	m := mustStartService(t, nil)
	r := &cliRig{bin: mustBuildBinary(t), m: m}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, "SWITCHBOARD_DATABASE_URL="+m.Config.DatabaseURL)
	return r
}

// exec runs a command with stdin and returns its output and exit status.
func (r *cliRig) exec(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("switchboard %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// ok runs a command that must succeed and returns its trimmed output.
func (r *cliRig) ok(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := r.exec(t, stdin, args...)
	if code != 0 {
		t.Fatalf("switchboard %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return strings.TrimSpace(out)
}

// fails runs a command that must fail with status 1 and a message
// holding want.
func (r *cliRig) fails(t *testing.T, want string, args ...string) {
	t.Helper()
	_, errOut, code := r.exec(t, "", args...)
	if code != exitFailure || !strings.Contains(errOut, want) {
		t.Errorf("switchboard %s: exit %d, stderr %q; want exit 1 saying %q", strings.Join(args, " "), code, errOut, want)
	}
}

// json runs a command with -o json and decodes its output into v.
func (r *cliRig) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out := r.ok(t, "", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("switchboard %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// audit returns the audit entries of a tenant, oldest first, as
// "action resource_type resource_id detail".
func (r *cliRig) audit(t *testing.T, tenant string) ([]string, []*sb.AuditEntry) {
	t.Helper()
	id, err := sb.ParseID(tenant)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := metadata.NewAuditLog(r.m.DB).Recent(context.Background(), &id, 500)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var out []*sb.AuditEntry
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		lines = append(lines, strings.TrimSpace(e.Action+" "+e.ResourceType+" "+e.ResourceID+" "+e.Detail))
		out = append(out, e)
	}
	return lines, out
}

// mustCall records a call in progress on a trunk to a number, and returns
// a function that ends it.
func (r *cliRig) mustCall(t *testing.T, tenant, trunk, to string) (sb.ID, func()) {
	t.Helper()
	ctx := context.Background()
	tenantID, trunkID := mustID(t, tenant), mustID(t, trunk)
	calls := metadata.NewCallStore(r.m.DB)
	c := &sb.Call{TenantID: tenantID, Direction: sb.Inbound, TrunkID: &trunkID, From: "+15550001111", To: to, Status: sb.CallRinging}
	if err := calls.CreateCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c.ID, func() {
		t.Helper()
		now := time.Now().UTC()
		c.Status, c.EndedAt = sb.CallCanceled, &now
		if err := calls.UpdateCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

func mustID(t *testing.T, s string) sb.ID {
	t.Helper()
	id, err := sb.ParseID(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return id
}
