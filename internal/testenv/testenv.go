// Package testenv gives tests a real PostgreSQL database.
//
// DatabaseURL returns a fresh, empty database for one test, dropped when the
// test ends. The server is the one named by SWITCHBOARD_TEST_DATABASE_URL
// (a superuser URL; each test gets its own database on it), or else one
// private throwaway server per test binary, started on first use by
// internal/pglocal in /dev/shm (or the temp folder).
//
// Stopping that server: a package that calls testenv.Main from its TestMain
// gets it stopped and its folder removed when its tests end. Without Main
// the server still dies with the test binary (pglocal ties it to its
// parent), and the folder it leaves is removed by the next test binary that
// starts a server, once its owner is gone.
//
// When PostgreSQL is not installed, tests are skipped with the reason —
// except under CI=true, where they fail: a skip must never hide a missing
// dependency in CI.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-voice/switchboard/internal/osproc"
	"github.com/switchboard-voice/switchboard/internal/pglocal"
)

// EnvDatabaseURL names the environment variable holding an existing
// server's URL, to use instead of a private server.
const EnvDatabaseURL = "SWITCHBOARD_TEST_DATABASE_URL"

const (
	dirPrefix = "switchboard-testpg-"
	ownerFile = "owner.pid"
)

var (
	once    sync.Once
	server  *pglocal.Server
	baseURL string
	dataDir string
	initErr error
)

// Main runs the package's tests and then stops the private server, if one
// was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if server != nil {
		if err := server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			code = 1
		}
		if err := os.RemoveAll(dataDir); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// DatabaseURL returns the URL of a new, empty database for this test. The
// database is dropped when the test ends.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	once.Do(setup)
	if initErr != nil {
		if errors.Is(initErr, pglocal.ErrNotInstalled) && os.Getenv("CI") != "true" {
			tb.Skip("testenv: PostgreSQL unavailable, skipping: ", initErr)
		}
		tb.Fatal("testenv: ", initErr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "sbtest_" + randomHex(8)
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		tb.Fatalf("testenv: connect to %s: %v", redact(baseURL), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("testenv: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, baseURL)
		if err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		// FORCE: a pool the test forgot to close must not keep it alive.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(baseURL)
	if err != nil {
		tb.Fatalf("testenv: %s: %v", EnvDatabaseURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

func setup() {
	if env := os.Getenv(EnvDatabaseURL); env != "" {
		baseURL = env
		return
	}
	base := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	sweep(base)
	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		initErr = fmt.Errorf("data folder: %w", err)
		return
	}
	// The data folder is a subfolder, so initdb finds it empty; the marker
	// beside it tells a later sweep whose it is.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		initErr = fmt.Errorf("data folder: %w", err)
		return
	}
	if err := os.Chmod(dir, 0o755); err != nil { // let the postgres user through when we are root
		initErr = fmt.Errorf("data folder: %w", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := pglocal.Start(ctx, filepath.Join(dir, "data"), pglocal.WithThrowaway(),
		pglocal.WithSetting("max_connections", "300"))
	if err != nil {
		initErr = errors.Join(err, os.RemoveAll(dir))
		return
	}
	server, dataDir, baseURL = s, dir, s.URL()
}

// sweep removes the folders of private servers whose test binary is gone.
func sweep(base string) {
	dirs, err := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	if err != nil {
		return
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			// Just created by a binary that has not written its marker
			// yet, or not ours: leave young folders alone.
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
				_ = os.RemoveAll(d) // best effort
			}
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if !osproc.Alive(pid) {
			_ = os.RemoveAll(d) // best effort: a leftover is only disk space
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// redact hides a password in a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
