package pglocal_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-voice/switchboard/internal/pglocal"
)

// mustStart starts a throwaway server or skips (fails under CI=true) when
// PostgreSQL is not installed.
func mustStart(tb testing.TB, dir string, opts ...pglocal.Option) *pglocal.Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := pglocal.Start(ctx, dir, opts...)
	if errors.Is(err, pglocal.ErrNotInstalled) {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// mustDir returns a fresh folder the postgres user can reach even when the
// tests run as root (t.TempDir's parent is private to root).
func mustDir(tb testing.TB) string {
	tb.Helper()
	base := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "pglocal-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func query(tb testing.TB, url, sql string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestStartCreateDatabaseRestart(t *testing.T) {
	dir := mustDir(t)
	s := mustStart(t, dir, pglocal.WithThrowaway())

	if got := query(t, s.URL(), "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q, want off", got)
	}
	if got := query(t, s.URL(), "SHOW listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q", got)
	}
	ctx := context.Background()
	url, err := s.CreateDatabase(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if got := query(t, url, "SELECT current_database()"); got != "app" {
		t.Errorf("current_database = %q, want app", got)
	}
	// Idempotent.
	if _, err := s.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}

	// A second server on the same folder is refused while the first runs.
	if _, err := pglocal.Start(ctx, dir); !errors.Is(err, pglocal.ErrDataDirInUse) {
		t.Fatalf("second Start: err = %v, want ErrDataDirInUse", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Restarting on the existing cluster keeps the data (persistent mode,
	// fast shutdown).
	s2 := mustStart(t, dir)
	if got := query(t, s2.URL(), "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname = 'app'"); got != "app" {
		t.Errorf("database app after restart: %q", got)
	}
	if got := query(t, s2.URL(), "SHOW fsync"); got != "on" {
		t.Errorf("fsync = %q, want on", got)
	}
}

func TestNotInstalled(t *testing.T) {
	_, err := pglocal.Start(context.Background(), mustDir(t), pglocal.WithBinDir(t.TempDir()))
	if !errors.Is(err, pglocal.ErrNotInstalled) {
		t.Fatalf("Start with an empty bin folder: err = %v, want ErrNotInstalled", err)
	}
	_, err = pglocal.FindBinDir()
	if err != nil && !errors.Is(err, pglocal.ErrNotInstalled) {
		t.Fatalf("FindBinDir: %v", err)
	}
}
