// Package pglocal runs a private PostgreSQL server from the system's
// binaries: for `switchboard dev` on a persistent data folder, and for tests
// on a throwaway one.
//
// The server is a child process of the caller, not a pg_ctl daemon: it
// listens on 127.0.0.1 only, on a free port, with its unix socket in a
// private directory, and on Linux the kernel sends it SIGQUIT (immediate
// shutdown) if the process that started it dies, so a killed `go test` or
// `switchboard dev` never leaves a server behind (other systems have no such
// call). Stop shuts it down on purpose (fast, or immediate for a throwaway
// cluster; on Windows, which has no signals, it kills the server).
//
// A data folder whose postmaster.pid names a live process is in use by
// someone else; Start refuses it with ErrDataDirInUse rather than stopping a
// server it does not own. A stale postmaster.pid (dead process) is cleaned
// up by PostgreSQL itself.
//
// initdb and postgres refuse to run as root. When the caller is root, they
// run as the "postgres" system user (set as the child's credentials, the
// equivalent of `runuser -u postgres --`), and Start hands the data folder
// to that user; its parent folders must let that user through.
package pglocal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-voice/switchboard/internal/osproc"
)

// ErrNotInstalled is returned by Start when the PostgreSQL server binaries
// cannot be found.
var ErrNotInstalled = errors.New("pglocal: PostgreSQL server binaries (initdb, postgres) not found; install them with: apt-get install -y postgresql")

// ErrDataDirInUse is returned by Start when another live server already
// runs on the data folder.
var ErrDataDirInUse = errors.New("pglocal: data folder is in use by another running PostgreSQL server")

// bindRetries is how many ports Start tries before giving up: between
// choosing a free port and the server binding it, another process may take it.
const bindRetries = 5

// Option tunes Start.
type Option func(*config)

type config struct {
	binDir    string
	throwaway bool
	port      int
	settings  map[string]string
}

// WithThrowaway marks the cluster as disposable, for tests: initdb skips
// fsync, the server runs with fsync, synchronous_commit and
// full_page_writes off, and Stop uses immediate shutdown. A crash may lose
// or corrupt its data.
func WithThrowaway() Option { return func(c *config) { c.throwaway = true } }

// WithPort listens on port instead of a free one the system picks: a
// server started again on the same folder and port is the same database
// to its clients (fault tests).
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithBinDir uses the PostgreSQL binaries in dir instead of looking for them.
func WithBinDir(dir string) Option { return func(c *config) { c.binDir = dir } }

// WithSetting passes a server setting, as `postgres -c name=value`.
func WithSetting(name, value string) Option {
	return func(c *config) { c.settings[name] = value }
}

// Server is a running private PostgreSQL server.
type Server struct {
	dataDir   string
	sockDir   string
	port      int
	throwaway bool

	cmd      *exec.Cmd
	exited   chan struct{} // closed when the postmaster has exited
	waitErr  error         // set before exited is closed
	stopOnce sync.Once
	stopErr  error
}

// Start runs a server on dataDir, creating the cluster first if the folder
// holds none. It returns once the server accepts connections, or ctx ends.
func Start(ctx context.Context, dataDir string, opts ...Option) (*Server, error) {
	cfg := config{settings: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: data folder: %w", err)
	}
	binDir := cfg.binDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if !hasServerBinaries(binDir) {
		return nil, fmt.Errorf("%w (looked in %s)", ErrNotInstalled, binDir)
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dataDir, cred); err != nil {
		return nil, err
	}
	if pid, ok := livePostmaster(dataDir); ok {
		return nil, fmt.Errorf("%w: %s (pid %d); stop it or use another folder", ErrDataDirInUse, dataDir, pid)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initdb(ctx, binDir, dataDir, cfg.throwaway, cred); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}

	sockDir, err := os.MkdirTemp("", "pglocal-sock-")
	if err != nil {
		return nil, fmt.Errorf("pglocal: socket folder: %w", err)
	}
	if err := chown(sockDir, cred); err != nil {
		return nil, errors.Join(err, os.RemoveAll(sockDir))
	}

	var lastErr error
	for range bindRetries {
		port, err := freePort()
		if cfg.port != 0 {
			port, err = cfg.port, nil
		}
		if err != nil {
			lastErr = err
			break
		}
		s := &Server{dataDir: dataDir, sockDir: sockDir, port: port, throwaway: cfg.throwaway}
		err = s.start(ctx, binDir, cfg, cred)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, errors.Join(lastErr, os.RemoveAll(sockDir))
}

var errAddrInUse = errors.New("port already in use")

func (s *Server) start(ctx context.Context, binDir string, cfg config, cred *account) error {
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(s.port),
		"unix_socket_directories": s.sockDir,
	}
	if cfg.throwaway {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range cfg.settings {
		settings[k] = v
	}
	args := []string{"-D", s.dataDir}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}

	logPath := filepath.Join(s.dataDir, "pglocal.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("pglocal: server log: %w", err)
	}
	defer logFile.Close() // the child has its own copy

	cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = serverAttr(cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pglocal: start postgres: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitReady(ctx); err != nil {
		log := tail(logPath)
		if strings.Contains(log, "could not bind") || strings.Contains(log, "Address already in use") {
			return fmt.Errorf("pglocal: %w: %s", errAddrInUse, log)
		}
		return fmt.Errorf("%w; server log:\n%s", err, log)
	}
	return nil
}

// waitReady polls postmaster.pid until the server reports "ready", as
// `pg_ctl start -w` does.
func (s *Server) waitReady(ctx context.Context) error {
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	pidFile := filepath.Join(s.dataDir, "postmaster.pid")
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(s.cmd.Process.Pid) &&
				strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pglocal: postgres exited during startup: %v", s.waitErr)
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("pglocal: waiting for postgres: %w", ctx.Err()), s.Stop())
		case <-ticker.C:
		}
	}
}

// URL returns the address of the server's "postgres" database as the
// superuser "postgres".
func (s *Server) URL() string { return s.databaseURL("postgres") }

// Port returns the TCP port the server listens on at 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DataDir returns the server's data folder.
func (s *Server) DataDir() string { return s.dataDir }

func (s *Server) databaseURL(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates database name, if it does not exist yet, and
// returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		return "", fmt.Errorf("pglocal: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("pglocal: look up database %q: %w", name, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("pglocal: create database %q: %w", name, err)
		}
	}
	return s.databaseURL(name), nil
}

// Stop shuts the server down: a fast shutdown (clients disconnected,
// checkpoint written), or an immediate one for a throwaway cluster. It
// waits for the server to exit and is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if err := stopServer(s.cmd.Process, s.throwaway); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.stopErr = fmt.Errorf("pglocal: stop: %w", err)
		}
		select {
		case <-s.exited:
		case <-time.After(60 * time.Second):
			if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				s.stopErr = errors.Join(s.stopErr, fmt.Errorf("pglocal: kill: %w", err))
			}
			<-s.exited
		}
		if err := os.RemoveAll(s.sockDir); err != nil {
			s.stopErr = errors.Join(s.stopErr, fmt.Errorf("pglocal: remove socket folder: %w", err))
		}
	})
	return s.stopErr
}

// FindBinDir returns the folder of the newest installed PostgreSQL server
// binaries: `pg_config --bindir` if it has them, else the newest
// /usr/lib/postgresql/<version>/bin. It returns ErrNotInstalled if there
// are none.
func FindBinDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	dirs, err := filepath.Glob("/usr/lib/postgresql/*/bin")
	if err != nil {
		return "", fmt.Errorf("pglocal: %w", err)
	}
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	candidates = append(candidates, dirs...)
	for _, d := range candidates {
		if hasServerBinaries(d) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// pgVersion returns the major version in /usr/lib/postgresql/<v>/bin.
func pgVersion(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

func hasServerBinaries(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// credential returns the identity to run PostgreSQL as: nil (ourselves)
// unless we are root, then the "postgres" system user.
func credential() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pglocal: running as root, PostgreSQL must run as the \"postgres\" user, which does not exist (apt-get install -y postgresql creates it): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pglocal: postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pglocal: postgres gid %q: %w", u.Gid, err)
	}
	return &account{uid: uint32(uid), gid: uint32(gid)}, nil
}

// account is a user to run PostgreSQL as.
type account struct{ uid, gid uint32 }

func chown(path string, cred *account) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(path, int(cred.uid), int(cred.gid)); err != nil {
		return fmt.Errorf("pglocal: hand %s to the postgres user: %w", path, err)
	}
	return nil
}

func prepareDir(dataDir string, cred *account) error {
	if cred != nil {
		if err := reachable(filepath.Dir(dataDir), cred); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("pglocal: create data folder: %w", err)
	}
	if err := chown(dataDir, cred); err != nil {
		return err
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return fmt.Errorf("pglocal: data folder: %w", err)
	}
	return nil
}

// livePostmaster reports the pid in dataDir's postmaster.pid if that process
// is alive.
func livePostmaster(dataDir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, osproc.Alive(pid)
}

func initdb(ctx context.Context, binDir, dataDir string, throwaway bool, cred *account) error {
	args := []string{"-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N"}
	if throwaway {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = dataDir // initdb as postgres may not be able to enter our cwd
	cmd.SysProcAttr = childAttr(cred)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pglocal: initdb %s: %w: %s", dataDir, err, strings.TrimSpace(out.String()))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pglocal: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("pglocal: find a free port: %w", err)
	}
	return port, nil
}

// tail returns the last lines of the server log, for error messages.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
