// Command switchboard bridges SIP trunks and browser operators.
//
// Usage: switchboard <command> [flags]; see usage below.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `switchboard bridges SIP trunks and PBXs to operators in the browser.

Usage:
  switchboard <command> [flags]

Commands:
  serve             run the service (applies migrations first)
  drain             make the running service refuse new calls; returns once its calls are over
  dev               run the service on a private PostgreSQL with a demo tenant,
                    operator and trunk; prints how to log in and what to call
  migrate           apply database migrations and exit
  tenant create     create a tenant; prints its ID
  tenant set        change a tenant's recording policy, retention, consent key and support access
  user create       create a user; password from SWITCHBOARD_PASSWORD or stdin
  trunk create      create a SIP trunk; digest password from SWITCHBOARD_PASSWORD or stdin
  trunk outbound    make a trunk take the calls operators place; password sealed with the keyring
  queue create      create a queue: its numbers, members, longest wait and overflow
  apikey create     create an API key; prints it once
  keys rotate       re-wrap data keys and re-seal secrets with the active keyring version (-check lists what is left)
  retention run     remove what has passed each tenant's retention now (-dry-run counts it)
  audit verify      check the audit log's hash chain and signed checkpoints
  recording export  an admin saves a recording through their grant (audited)

Every command takes -database-url (or SWITCHBOARD_DATABASE_URL), except dev,
which runs its own database. Run "switchboard <command> -h" for its flags.
`

func main() {
	// serve and dev handle SIGTERM and SIGINT themselves (drain or end
	// now); the other commands die with the default disposition.
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "switchboard:", err)
		}
		os.Exit(2)
	}
}

// run dispatches a command line. It is main without the process: tests call
// it with their own arguments and streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return errors.New("no command given")
		}
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
	case "retention run":
		return runRetentionRun(ctx, rest, stdout, stderr)
	case "keys rotate":
		return runKeysRotate(ctx, rest, stdout, stderr)
	case "audit verify":
		return runAuditVerify(ctx, rest, stdout, stderr)
	case "recording export":
		return runRecordingExport(ctx, rest, stdin, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
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
