package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/switchboard-voice/switchboard/metadata"
)

// parseAuditKey reads an Ed25519 signing key: a base64 32-byte seed, or
// "@PATH" for the same text in a file.
func parseAuditKey(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if path, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("audit key file: %w", err)
		}
		s = strings.TrimSpace(string(b))
	}
	seed, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("the audit key must be a 32-byte Ed25519 seed in base64 (or @file)")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// runAuditVerify is `switchboard audit verify`: the chain and its signed
// checkpoints. It names the first entry or checkpoint that does not hold.
func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit verify", "Checks the audit log's hash chain and its signed checkpoints.", stderr)
	dbURL := databaseFlag(fs)
	key := secretFlag(fs, "audit-key", "SWITCHBOARD_AUDIT_KEY", "the checkpoint signing key (its public half checks them)")
	pubFlag := fs.String("audit-public-key", "", "the checkpoints' Ed25519 public key in base64, instead of the signing key")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	var pub ed25519.PublicKey
	switch {
	case *pubFlag != "":
		b, err := base64.StdEncoding.DecodeString(*pubFlag)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return errors.New("audit verify: -audit-public-key must be a 32-byte Ed25519 public key in base64")
		}
		pub = b
	case *key != "":
		k, err := parseAuditKey(*key)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		pub = k.Public().(ed25519.PublicKey)
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	log := metadata.NewAuditLog(db)
	broken, err := log.Verify(ctx)
	if err != nil {
		return err
	}
	if broken != 0 {
		return fmt.Errorf("audit verify: the chain is broken at entry %d", broken)
	}
	checked := 0
	if pub != nil {
		var bad int64
		if bad, checked, err = log.VerifyCheckpoints(ctx, pub); err != nil {
			return err
		}
		if bad != 0 {
			return fmt.Errorf("audit verify: the checkpoint at entry %d does not hold (rewritten log or wrong key)", bad)
		}
	}
	fmt.Fprintf(stdout, "audit log whole; %d signed checkpoints hold\n", checked)
	// Checkpoints only protect what they sign: say when there are none, or
	// the last is older than two of the service's intervals (the service
	// stopped signing, or its key was taken away).
	at, ok, err := log.LastCheckpoint(ctx)
	switch {
	case err != nil:
		return err
	case !ok:
		fmt.Fprintln(stdout, "warning: no signed checkpoint: entries can be rewritten with their hashes recomputed unnoticed (set SWITCHBOARD_AUDIT_KEY on the service)")
	case time.Since(at) > 2*checkpointEvery:
		fmt.Fprintf(stdout, "warning: the last signed checkpoint is from %s, %s ago (the service signs every %s): entries since are not covered\n",
			at.UTC().Format(time.RFC3339), time.Since(at).Round(time.Second), checkpointEvery)
	}
	return nil
}

// checkpointEvery is how often the service signs the audit chain's head.
const checkpointEvery = 10 * time.Minute

// checkpointAudit signs the audit chain's head every interval until the
// service closes, and once more at the end.
func (m *Main) checkpointAudit(ctx context.Context, key ed25519.PrivateKey, interval time.Duration) {
	log := metadata.NewAuditLog(m.DB)
	m.every(ctx, interval, func(ctx context.Context) {
		if _, err := log.Checkpoint(ctx, key); err != nil && ctx.Err() == nil {
			m.Logger.Error("audit checkpoint", "err", err)
		}
	}, func() {
		// The head at shutdown is signed too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := log.Checkpoint(ctx, key); err != nil {
			m.Logger.Error("audit checkpoint", "err", err)
		}
	})
}
