// Command switchboard bridges SIP trunks and browser operators.
//
// Usage: switchboard <command> [flags]; see usage below.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `switchboard bridges SIP trunks and PBXs to operators in the browser.

Usage:
  switchboard <command> [flags]

Commands:
  serve              run the service (applies migrations first)
  drain              make the running service refuse new calls; returns once its calls are over
  dev                run the service on a private PostgreSQL with a demo tenant,
                     operator and trunk; prints how to log in and what to call
  migrate            apply database migrations and exit
  tenant create      create a tenant; prints its ID
  tenant set         change a tenant's recording policy, retention, consent key and support access
  tenant list        list the tenants (-deleted: also the deleted ones)
  tenant get         show one tenant
  tenant delete      delete a tenant: it loses every way in; its call records stay
  user create        create a user; password from SWITCHBOARD_PASSWORD or stdin
  user list          list a tenant's people
  user disable       refuse a person's logins and end their sessions
  user enable        let a disabled person log in again
  user set-password  replace a person's password (SWITCHBOARD_PASSWORD or stdin); ends their sessions
  trunk create       create a SIP trunk; digest password from SWITCHBOARD_PASSWORD or stdin
  trunk outbound     make a trunk take the calls operators place; password sealed with the keyring
  trunk list         list a tenant's trunks
  trunk delete       delete a trunk (refused while it has calls in progress)
  queue create       create a queue: its numbers, members, longest wait and overflow
  queue list         list a tenant's queues
  queue delete       delete a queue (refused while it has calls in progress)
  apikey create      create an API key; prints it once
  apikey list        list a tenant's API keys (never their secrets)
  apikey revoke      revoke an API key
  keys rotate        re-wrap data keys and re-seal secrets with the active keyring version (-check lists what is left)
  retention run      remove what has passed each tenant's retention now (-dry-run counts it)
  audit verify       check the audit log's hash chain and signed checkpoints
  recording export   an admin saves a recording through their grant (audited)
  version            print the version, the revision it was built from and the Go version

Every command takes -database-url (or SWITCHBOARD_DATABASE_URL), except dev,
which runs its own database, and version. The list commands and tenant get
print a table, or JSON with -o json. Boolean flags are given as -flag or
-flag=false. Run "switchboard <command> -h" for its flags.

Exit status: 0 done, 1 failed, 2 wrong usage (unknown command or flag, an
argument no command takes, a missing or malformed flag).
`

func main() {
	// serve and dev handle SIGTERM and SIGINT themselves (drain or end
	// now); the other commands die with the default disposition.
	tuneGC()
	err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	code := exitCode(err)
	if code == exitFailure {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
	}
	os.Exit(code)
}

// run dispatches a command line. It is main without the process: tests call
// it with their own arguments and streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(stderr, "switchboard: no command given\n\n"+usage)
			return &usageError{msg: "no command given"}
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && (cmd == "tenant" || cmd == "user" || cmd == "trunk" || cmd == "queue" || cmd == "apikey" || cmd == "keys" || cmd == "retention" || cmd == "audit" || cmd == "recording") {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stderr)
	case "drain":
		return runDrain(ctx, rest, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "tenant create":
		return runTenantCreate(ctx, rest, stdout, stderr)
	case "tenant set":
		return runTenantSet(ctx, rest, stdout, stderr)
	case "user create":
		return runUserCreate(ctx, rest, stdin, stdout, stderr)
	case "trunk create":
		return runTrunkCreate(ctx, rest, stdin, stdout, stderr)
	case "trunk outbound":
		return runTrunkOutbound(ctx, rest, stdin, stdout, stderr)
	case "queue create":
		return runQueueCreate(ctx, rest, stdout, stderr)
	case "apikey create":
		return runAPIKeyCreate(ctx, rest, stdout, stderr)
	case "tenant list":
		return runTenantList(ctx, rest, stdout, stderr)
	case "tenant get":
		return runTenantGet(ctx, rest, stdout, stderr)
	case "tenant delete":
		return runTenantDelete(ctx, rest, stdout, stderr)
	case "user list":
		return runUserList(ctx, rest, stdout, stderr)
	case "user disable":
		return runUserDisable(ctx, rest, stdout, stderr, true)
	case "user enable":
		return runUserDisable(ctx, rest, stdout, stderr, false)
	case "user set-password":
		return runUserSetPassword(ctx, rest, stdin, stdout, stderr)
	case "apikey list":
		return runAPIKeyList(ctx, rest, stdout, stderr)
	case "apikey revoke":
		return runAPIKeyRevoke(ctx, rest, stdout, stderr)
	case "trunk list":
		return runTrunkList(ctx, rest, stdout, stderr)
	case "trunk delete":
		return runTrunkDelete(ctx, rest, stdout, stderr)
	case "queue list":
		return runQueueList(ctx, rest, stdout, stderr)
	case "queue delete":
		return runQueueDelete(ctx, rest, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "retention run":
		return runRetentionRun(ctx, rest, stdout, stderr)
	case "keys rotate":
		return runKeysRotate(ctx, rest, stdout, stderr)
	case "audit verify":
		return runAuditVerify(ctx, rest, stdout, stderr)
	case "recording export":
		return runRecordingExport(ctx, rest, stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", cmd, usage)
	return &usageError{msg: fmt.Sprintf("unknown command %q", cmd)}
}

// newFlagSet returns a flag set for a command, with its help on stderr.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: switchboard %s [flags]\n\n%s\n\nFlags (each also from its SWITCHBOARD_* variable):\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}
