package main

import (
	"os"
	"strings"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
)

// mustCLIBinary builds the binary to run against a database of its own,
// without a service.
func mustCLIBinary(t *testing.T) *cliRig {
	t.Helper()
	r := &cliRig{bin: mustBuildBinary(t)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, "SWITCHBOARD_DATABASE_URL="+testenv.DatabaseURL(t))
	return r
}

// A wrong command line exits 2, saying on stderr what was wrong and then
// how the command is used, and prints nothing on stdout: a stray argument
// (the old "-flag yes" spelling included), an unknown flag, a missing or
// malformed required flag, an unknown output format or command. Asking
// for help exits 0; a command that fails exits 1.
func TestWrongUsageExitsTwo(t *testing.T) {
	r := mustCLIBinary(t)
	id := sb.NewID().String()
	for _, c := range []struct {
		args       []string
		want, used string
	}{
		{[]string{"tenant", "list", "extra"}, `unexpected argument "extra"`, "tenant list"},
		{[]string{"user", "list", "-tenant", id, "extra"}, `unexpected argument "extra"`, "user list"},
		{[]string{"tenant", "set", "-tenant", id, "-support-access", "yes"}, `unexpected argument "yes"`, "tenant set"},
		{[]string{"version", "now"}, `unexpected argument "now"`, "version"},
		{[]string{"serve", "now"}, `unexpected argument "now"`, "serve"},
		{[]string{"tenant", "create", "-name", "Acme", "Corp"}, `unexpected argument "Corp"`, "tenant create"},
		{[]string{"tenant", "list", "-bogus"}, "flag provided but not defined: -bogus", "tenant list"},
		{[]string{"trunk", "delete", "-force"}, "flag provided but not defined: -force", "trunk delete"},
		{[]string{"tenant", "get", "-tenant"}, "flag needs an argument: -tenant", "tenant get"},
		{[]string{"tenant", "set", "-tenant", id, "-grant-download=maybe"}, `invalid boolean value "maybe" for -grant-download`, "tenant set"},
		{[]string{"trunk", "list"}, "-tenant is required", "trunk list"},
		{[]string{"tenant", "get"}, "-tenant is required", "tenant get"},
		{[]string{"tenant", "delete"}, "-tenant is required", "tenant delete"},
		{[]string{"tenant", "create"}, "-name is required", "tenant create"},
		{[]string{"user", "create", "-tenant", id}, "-email is required", "user create"},
		{[]string{"trunk", "create", "-tenant", id, "-name", "pbx"}, "-number is required", "trunk create"},
		{[]string{"trunk", "outbound", "-trunk", id}, "-target is required", "trunk outbound"},
		{[]string{"queue", "create", "-tenant", id}, "-name is required", "queue create"},
		{[]string{"recording", "export", "-grant", id}, "-email and -o are required", "recording export"},
		{[]string{"queue", "delete", "-tenant", id}, "-queue is required", "queue delete"},
		{[]string{"trunk", "delete", "-trunk", "pbx"}, "-tenant is required", "trunk delete"},
		{[]string{"apikey", "revoke"}, "-key is required", "apikey revoke"},
		{[]string{"apikey", "revoke", "-key", "nope"}, `-key: "nope" is not an ID`, "apikey revoke"},
		{[]string{"apikey", "list", "-tenant", "acme"}, `-tenant: "acme" is not an ID`, "apikey list"},
		{[]string{"user", "disable"}, "give the person by -user ID or by -email", "user disable"},
		{[]string{"user", "enable", "-user", id, "-email", "a@b.test"}, "give the person by -user ID or by -email", "user enable"},
		{[]string{"user", "set-password", "-user", "x"}, `-user: "x" is not an ID`, "user set-password"},
		{[]string{"tenant", "set", "-tenant", id}, "nothing to change", "tenant set"},
		{[]string{"queue", "list", "-tenant", id, "-o", "yaml"}, `-o "yaml": the output format is table or json`, "queue list"},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			out, errOut, code := r.exec(t, "", c.args...)
			if code != exitUsage || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			msg := strings.Index(errOut, c.want)
			usage := strings.Index(errOut, "Usage: switchboard "+c.used+" [flags]")
			if msg < 0 || usage < msg {
				t.Errorf("stderr does not say %q, then the usage of %s:\n%s", c.want, c.used, errOut)
			}
		})
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"tenant"}, `unknown command "tenant"`},
		{[]string{"tenant", "rename"}, `unknown command "tenant rename"`},
	} {
		out, errOut, code := r.exec(t, "", c.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "Commands:") {
			t.Errorf("switchboard %s: exit %d, stdout %q, stderr:\n%s\nwant 2, the message %q and the commands", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	if out, _, code := r.exec(t, "", "help"); code != exitOK || !strings.Contains(out, "Exit status: 0 done, 1 failed, 2 wrong usage") {
		t.Errorf("switchboard help: exit %d\n%s", code, out)
	}
	if _, errOut, code := r.exec(t, "", "trunk", "list", "-h"); code != exitOK || !strings.Contains(errOut, "Usage: switchboard trunk list") {
		t.Errorf("switchboard trunk list -h: exit %d\n%s", code, errOut)
	}
	r.fails(t, "tenant not found", "tenant", "get", "-tenant", id)
	r.fails(t, "tenant not found", "user", "list", "-tenant", id)
	r.fails(t, "tenant not found", "tenant", "delete", "-tenant", id)
}
