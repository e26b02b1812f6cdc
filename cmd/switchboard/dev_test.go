package main

import (
	"flag"
	"io"
	"testing"
)

// `switchboard dev` keeps its journal in its data folder unless one is
// named: isSet tells a journal given (flag or environment) from the
// default.
func TestDevJournalOnlyWhenNotNamed(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "", false},
		{[]string{"-journal", "/var/lib/sb/journal"}, "", true},
		{nil, "/var/lib/sb/journal", true},
		{[]string{"-log-level", "debug"}, "", false},
	} {
		t.Setenv("SWITCHBOARD_JOURNAL", c.env)
		fs := flag.NewFlagSet("dev", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		configFlags(fs, nil)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if got := isSet(fs, "journal", "SWITCHBOARD_JOURNAL"); got != c.want {
			t.Errorf("%v, SWITCHBOARD_JOURNAL=%q: set %v, want %v", c.args, c.env, got, c.want)
		}
	}
}
