package main

import (
	"encoding/base64"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// helpSecrets are values of secret settings, as an operator would export
// them; none may appear in any help output.
var helpSecrets = map[string]string{
	"SWITCHBOARD_DATABASE_URL":   "postgres://sb:db-pass-4f1c9e@127.0.0.1:5432/sb",
	"SWITCHBOARD_S3_ACCESS_KEY":  "s3-access-61d0aa",
	"SWITCHBOARD_S3_SECRET_KEY":  "s3-secret-9a7e3b",
	"SWITCHBOARD_CLUSTER_SECRET": "cluster-secret-2b8d0c77",
	"SWITCHBOARD_KEYRING":        "1:" + base64.StdEncoding.EncodeToString([]byte("keyring-key-0123456789abcdef0123")),
	"SWITCHBOARD_TURN_PASSWORD":  "turn-pass-77e1f0",
	"SWITCHBOARD_HEP_PASSWORD":   "hep-pass-5d2a19",
	"SWITCHBOARD_AUDIT_KEY":      base64.StdEncoding.EncodeToString([]byte("audit-seed-0123456789abcdef01234")),
	"SWITCHBOARD_METRICS_TOKEN":  "metrics-token-c3f8e2",
}

// helpEnv is the process environment without any SWITCHBOARD_* variable of
// the test's own, plus the secrets.
func helpEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			env = append(env, kv)
		}
	}
	for k, v := range helpSecrets {
		env = append(env, k+"="+v)
	}
	return env
}

// commandRE picks the commands out of the usage text.
var commandRE = regexp.MustCompile(`(?m)^  ([a-z]+(?: [a-z-]+)?)\s{2,}`)

// Every command's -h, run through the built binary with every secret
// setting in its variable, shows "(set)" for the secrets it takes and
// never their values.
func TestHelpShowsNoSecret(t *testing.T) {
	bin := mustBuildBinary(t)
	cmds := commandRE.FindAllStringSubmatch(usage, -1)
	if len(cmds) < 15 {
		t.Fatalf("found %d commands in the usage text, want every one", len(cmds))
	}
	run := func(t *testing.T, bin string, args ...string) string {
		cmd := exec.Command(bin, append(args, "-h")...)
		cmd.Env = helpEnv()
		out, err := cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return string(out)
	}
	check := func(t *testing.T, out string) {
		t.Helper()
		for name, v := range helpSecrets {
			if strings.Contains(out, v) || (name == "SWITCHBOARD_DATABASE_URL" && strings.Contains(out, "db-pass-4f1c9e")) {
				t.Errorf("help shows the value of %s:\n%s", name, out)
			}
		}
		for name := range helpSecrets {
			if strings.Contains(out, "["+name+"]") && !strings.Contains(out, "(set)") {
				t.Errorf("help names %s but does not say it is (set):\n%s", name, out)
			}
		}
	}
	for _, c := range cmds {
		name := c[1]
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			out := run(t, bin, strings.Fields(name)...)
			if !strings.Contains(out, "Usage: switchboard "+name) {
				t.Fatalf("switchboard %s -h printed no usage:\n%s", name, out)
			}
			check(t, out)
		})
	}
	t.Run("switchboard-load", func(t *testing.T) {
		check(t, run(t, buildLoadTool(t)))
	})
}
