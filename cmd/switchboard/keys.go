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
// re-wrapped with the keyring's active key-encryption key. Audio is never
// touched. Run it after adding a version to SWITCHBOARD_KEYRING; once it
// is done, older versions can leave the keyring.
func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys rotate", "Re-wraps every recording's data key with the keyring's active version.", stderr)
	dbURL := databaseFlag(fs)
	keyring := secretFlag(fs, "keyring", "SWITCHBOARD_KEYRING", "the keyring, with the new version active")
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
	store := metadata.NewRecordingStore(db)
	active := ring.Active()
	total, err := store.CountStaleKeys(ctx, active)
	if err != nil {
		return err
	}
	done, failed := 0, 0
	for {
		batch, err := store.StaleKeys(ctx, active, 500)
		if err != nil {
			return err
		}
		if len(batch) == 0 || done+failed >= total {
			break
		}
		for _, k := range batch {
			version, wrapped, err := ring.Rewrap(k.Version, k.Wrapped, k.RecordingID[:])
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "\nrecording %s (key version %d): %v\n", k.RecordingID, k.Version, err)
				continue
			}
			if err := store.ReplaceKey(ctx, k, version, wrapped); err != nil {
				return err
			}
			done++
		}
		progress(stderr, done+failed, total)
	}
	progress(stderr, done+failed, total)
	fmt.Fprintln(stderr)
	outcome := "ok"
	if failed > 0 {
		outcome = "failed"
	}
	if err := metadata.NewAuditLog(db).Append(ctx, &sb.AuditEntry{Action: "keys.rotate", ResourceType: "keyring",
		ResourceID: fmt.Sprint(active), Detail: fmt.Sprintf("%d data keys re-wrapped, %d failed", done, failed), Outcome: outcome}); err != nil {
		return fmt.Errorf("keys rotate: audit: %w", err)
	}
	fmt.Fprintf(stdout, "%d data keys re-wrapped with key version %d\n", done, active)
	if failed > 0 {
		return fmt.Errorf("keys rotate: %d keys could not be unwrapped (is their key version still in the keyring?)", failed)
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
