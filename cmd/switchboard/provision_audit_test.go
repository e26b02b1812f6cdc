package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// Every provisioning command is on the audit log before it changes
// anything: which command, the tenant, what it made, and which settings
// it was given by name, never their values (a password, a number, a
// dial target).
func TestProvisioningIsAudited(t *testing.T) {
	m := mustStartService(t, nil)
	ctx := context.Background()
	cli := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append(args[:2:2], append([]string{"-database-url", m.Config.DatabaseURL}, args[2:]...)...)
		if err := run(ctx, args, strings.NewReader(stdin), &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args[:2], " "), err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	tenant := cli("", "tenant", "create", "-name", "Audited")
	user := cli("s3cret-passw0rd\n", "user", "create", "-tenant", tenant, "-email", "op@audited.test", "-role", "operator")
	cli("", "trunk", "create", "-tenant", tenant, "-name", "pbx", "-allow", "198.51.100.7", "-number", "+4930123456")
	cli("", "apikey", "create", "-tenant", tenant, "-role", "supervisor")
	cli("", "tenant", "set", "-tenant", tenant, "-recording-policy", "consent", "-dial-targets", "pbx.secret-partner.example")
	cli("", "queue", "create", "-tenant", tenant, "-name", "sales", "-number", "+4930123456")

	id, err := sb.ParseID(tenant)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := metadata.NewAuditLog(m.DB).Recent(ctx, &id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		got = append(got, e.Action+" "+e.ResourceType+" "+e.ResourceID+" "+e.Detail)
	}
	want := []string{
		"cli.tenant_create tenant " + tenant + " name",
		"cli.user_create user " + user + " email,role,tenant",
		"cli.trunk_create trunk  allow,name,number,tenant",
		"cli.apikey_create api_key  role,tenant",
		"cli.tenant_set tenant " + tenant + " dial-targets,recording-policy,tenant",
		"cli.queue_create queue  name,number,tenant",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range entries {
		for _, secret := range []string{"s3cret", "4930123456", "secret-partner", "op@audited"} {
			if strings.Contains(e.Detail+e.ResourceID+e.Reason, secret) {
				t.Errorf("entry %s holds %q", e.Action, secret)
			}
		}
	}
}
