package main

import (
	"context"
	"fmt"
	"io"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
)

// runKeysRotate is `switchboard keys rotate`: every recording's data key is
// re-wrapped, and every secret sealed with the keyring (trunk digest HA1s,
// carrier passwords, webhook secrets) re-sealed, with the keyring's active
// key-encryption key. Audio is never touched. Run it after adding a
// version to SWITCHBOARD_KEYRING; once it is done (-check says so), older
// versions can leave the keyring.
func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys rotate", "Re-wraps every recording's data key and re-seals every secret with the keyring's active version.", stderr)
	dbURL := databaseFlag(fs)
	keyring := secretFlag(fs, "keyring", "SWITCHBOARD_KEYRING", "the keyring, with the new version active")
	check := fs.Bool("check", false, "change nothing: list the rows still under another version than the active one, and fail if there are any")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	ring, err := recordings.ParseKeyring(*keyring)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	keys := metadata.NewKeyStore(db)
	active := ring.Active()
	if *check {
		old, err := keys.OldKeys(ctx, active)
		if err != nil {
			return err
		}
		for _, u := range old {
			fmt.Fprintln(stdout, u)
		}
		if len(old) > 0 {
			return fmt.Errorf("keys rotate -check: %d rows are still under another key version than %d: run keys rotate", len(old), active)
		}
		fmt.Fprintf(stdout, "every data key and sealed secret is under key version %d\n", active)
		return nil
	}
	r, err := keys.Rotate(ctx, ring, func(done, total int) { progress(stderr, done, total) }, func(u metadata.KeyUse, err error) {
		fmt.Fprintf(stderr, "\n%s: %v\n", u, err)
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	outcome := "ok"
	if r.Failed > 0 {
		outcome = "failed"
	}
	if err := metadata.NewAuditLog(db).Append(ctx, &sb.AuditEntry{Action: "keys.rotate", ResourceType: "keyring", ResourceID: fmt.Sprint(active),
		Detail: fmt.Sprintf("%d data keys re-wrapped, %d secrets re-sealed, %d failed", r.DataKeys, r.Secrets, r.Failed), Outcome: outcome}); err != nil {
		return fmt.Errorf("keys rotate: audit: %w", err)
	}
	fmt.Fprintf(stdout, "%d data keys re-wrapped and %d secrets re-sealed with key version %d\n", r.DataKeys, r.Secrets, active)
	if r.Failed > 0 {
		return fmt.Errorf("keys rotate: %d keys or secrets could not be opened (is their key version still in the keyring?)", r.Failed)
	}
	return nil
}

// progress draws a one-line progress bar.
func progress(w io.Writer, done, total int) {
	const width = 40
	filled := width
	if total > 0 {
		filled = width * done / total
	}
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < filled {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(w, "\r[%s] %d/%d", bar, done, total)
}
