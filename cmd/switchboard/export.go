package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
)

// runRecordingExport is `switchboard recording export`: an admin saves a
// recording as a WAV file through a grant of theirs that allows download,
// the same grant and audit as in the browser. Nothing else decrypts audio.
func runRecordingExport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("recording export", "Saves a recording as a WAV file through an approved grant that allows download.\n"+
		"The admin's password comes from SWITCHBOARD_PASSWORD or stdin.", stderr)
	config := configFlags(fs, nil)
	grant := fs.String("grant", "", "the grant's ID (required): ask for one in the console, with download")
	email := fs.String("email", "", "the admin who holds the grant (required)")
	out := fs.String("o", "", "the WAV file to write (required; not overwritten)")
	from := fs.Duration("from", 0, "start of the window to export, e.g. 1m30s")
	to := fs.Duration("to", 0, "end of the window (0: the end)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	grantID, err := requireID(fs, "grant", *grant)
	switch {
	case err != nil:
		return err
	case *email == "" || *out == "":
		return usagef(fs, "-email and -o are required")
	}
	c, err := config()
	if err != nil {
		return fmt.Errorf("recording export: %w", err)
	}
	if c.Recordings == "" {
		return errors.New("recording export: -recordings names no store (a folder, or s3 with its settings)")
	}
	password, err := readPassword(stdin, "password")
	if err != nil {
		return fmt.Errorf("recording export: %w", err)
	}
	db, err := openDB(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := metadata.NewUserService(db).Authenticate(ctx, *email, password)
	if err != nil {
		return fmt.Errorf("recording export: %w", explain(err))
	}
	if u.Role != sb.RoleAdmin {
		return errors.New("recording export: only a tenant's admin exports recordings")
	}
	store, err := openRecordingStore(ctx, c)
	if err != nil {
		return err
	}
	a := &sb.Actor{TenantID: u.TenantID, UserID: u.ID, Role: u.Role, IP: "local", UserAgent: "switchboard recording export"}
	ctx = sb.NewContextWithActor(ctx, a)
	player := recordings.NewPlayer(metadata.NewGrantStore(db), store, c.Keyring)
	audio, err := player.OpenAudio(ctx, grantID, sb.AccessDownload, *from, *to, "command-line export to "+filepath.Base(*out))
	if err != nil {
		return fmt.Errorf("recording export: %w", explain(err))
	}
	defer audio.Close()
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("recording export: %w", err)
	}
	start := time.Now()
	_, err = io.Copy(f, io.NewSectionReader(audio, 0, audio.Size()))
	if err = errors.Join(err, f.Close()); err != nil {
		return errors.Join(fmt.Errorf("recording export: %w", err), os.Remove(*out))
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes of %s in %s\n", *out, audio.Size(), audio.ContentType(), time.Since(start).Round(time.Millisecond))
	return nil
}
