package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	sb "github.com/switchboard-voice/switchboard"
)

// Exit statuses: a command that did what it was asked exits 0, one that
// failed 1, and a command line that is wrong (an unknown command or flag,
// a stray argument, a missing or malformed flag) 2.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a command line that is wrong. Its message and the
// command's usage have been printed already.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitCode is the status a command's error ends the process with.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	}
	return exitFailure
}

// usagef reports a wrong command line: the message, then the command's
// usage, on the command's error output.
func usagef(fs *flag.FlagSet, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(fs.Output(), "switchboard %s: %s\n", fs.Name(), msg)
	fs.Usage()
	return &usageError{msg: fs.Name() + ": " + msg}
}

// parseArgs parses a command's flags and refuses positional arguments,
// which no command takes: a mistyped flag value ("-enabled no") must not
// pass silently.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		// The flag package has printed the problem and the usage.
		return &usageError{msg: fs.Name() + ": " + err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q: the command takes flags only", fs.Arg(0))
	}
	return nil
}

// requireID reads the ID a required flag names.
func requireID(fs *flag.FlagSet, name, v string) (sb.ID, error) {
	if strings.TrimSpace(v) == "" {
		return sb.ID{}, usagef(fs, "-%s is required", name)
	}
	id, err := sb.ParseID(strings.TrimSpace(v))
	if err != nil {
		return sb.ID{}, usagef(fs, "-%s: %q is not an ID", name, v)
	}
	return id, nil
}

// optBool is a boolean flag that knows whether it was given: -flag sets it,
// -flag=false clears it, and leaving it out changes nothing.
type optBool struct{ set, v bool }

func (b *optBool) IsBoolFlag() bool { return true }

func (b *optBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	b.set, b.v = true, v
	return nil
}

// apply writes the value to dst if the flag was given, and reports
// whether it was.
func (b *optBool) apply(dst *bool) bool {
	if b.set {
		*dst = b.v
	}
	return b.set
}

// optBoolFlag registers an optBool.
func optBoolFlag(fs *flag.FlagSet, name, usage string) *optBool {
	b := &optBool{}
	fs.Var(b, name, usage)
	return b
}
