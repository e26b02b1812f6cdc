package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// The service's operator's changes to one person: disable, enable, and a
// new password. Each is audited in the same transaction as the change.

// personFlags is how a person is named on the command line: by ID or by
// login email, exactly one of them.
type personFlags struct {
	fs          *flag.FlagSet
	dbURL       *string
	user, email *string
}

func newPersonFlags(fs *flag.FlagSet) *personFlags {
	return &personFlags{fs: fs, dbURL: databaseFlag(fs),
		user:  fs.String("user", "", "the person's ID (this or -email)"),
		email: fs.String("email", "", "the person's login email (this or -user)")}
}

// check refuses both or neither of -user and -email, after parsing.
func (p *personFlags) check() error {
	if (*p.user == "") == (*p.email == "") {
		return usagef(p.fs, "give the person by -user ID or by -email, one of them")
	}
	if *p.user != "" {
		_, err := requireID(p.fs, "user", *p.user)
		return err
	}
	return nil
}

// find returns the person named.
func (p *personFlags) find(ctx context.Context, db *metadata.DB) (*sb.User, error) {
	prov := metadata.NewProvisioning(db)
	if *p.email != "" {
		return prov.UserByEmail(ctx, *p.email)
	}
	id, err := sb.ParseID(strings.TrimSpace(*p.user))
	if err != nil {
		return nil, err
	}
	return prov.UserByID(ctx, id)
}

// runUserDisable is user disable (disable true) and user enable.
func runUserDisable(ctx context.Context, args []string, stdout, stderr io.Writer, disable bool) error {
	name, summary := "user disable", "Disables a person: their sessions end and their logins are refused. Their record stays."
	if !disable {
		name, summary = "user enable", "Lets a disabled person log in again."
	}
	fs := newFlagSet(name, summary, stderr)
	p := newPersonFlags(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	db, err := openDB(ctx, *p.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := p.find(ctx, db)
	if err != nil {
		return fmt.Errorf("%s: %w", name, explain(err))
	}
	if err := metadata.NewProvisioning(db).SetUserDisabled(ctx, u.ID, disable, commandEntry(fs, &u.TenantID, "user", u.ID)); err != nil {
		return fmt.Errorf("%s: %w", name, explain(err))
	}
	state := "enabled"
	if disable {
		state = "disabled"
	}
	fmt.Fprintf(stdout, "user %s (%s) %s\n", u.ID, u.Email, state)
	return nil
}

func runUserSetPassword(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("user set-password", "Replaces a person's password with the one from SWITCHBOARD_PASSWORD or the first line of stdin,\n"+
		"and ends their sessions.", stderr)
	p := newPersonFlags(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	password, err := readPassword(stdin, "password")
	if err != nil {
		return fmt.Errorf("user set-password: %w", err)
	}
	db, err := openDB(ctx, *p.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := p.find(ctx, db)
	if err != nil {
		return fmt.Errorf("user set-password: %w", explain(err))
	}
	if err := metadata.NewProvisioning(db).SetUserPassword(ctx, u.ID, password, commandEntry(fs, &u.TenantID, "user", u.ID)); err != nil {
		return fmt.Errorf("user set-password: %w", explain(err))
	}
	fmt.Fprintf(stdout, "user %s (%s): password set, sessions ended\n", u.ID, u.Email)
	return nil
}
