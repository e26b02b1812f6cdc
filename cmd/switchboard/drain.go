package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-voice/switchboard/internal/osproc"
)

// runDrain is `switchboard drain`: it tells the serve process named by its
// pid file to drain (SIGTERM: new calls refused, OPTIONS and /readyz
// answer 503) and returns once that process has ended its calls and
// removed the file, so that a Kubernetes preStop hook or a systemd
// ExecStop holds the stop until the calls are over.
func runDrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("drain", "Drains the running service: it refuses new calls, and this returns once its calls are over.", stderr)
	pidFile := fs.String("pid-file", os.Getenv("SWITCHBOARD_PID_FILE"), "the pid file serve was started with [SWITCHBOARD_PID_FILE]")
	timeout := fs.Duration("timeout", 0, "give up waiting after this long (0: wait until the service is done; it ends its calls at its own -drain-timeout)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *pidFile == "" {
		return errors.New("no pid file: set -pid-file or SWITCHBOARD_PID_FILE to the one serve writes")
	}
	pid, err := readPID(*pidFile)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(stdout, "not running")
		return nil
	}
	if err != nil {
		return err
	}
	if err := osproc.Terminate(pid); errors.Is(err, osproc.ErrNotRunning) {
		fmt.Fprintln(stdout, "not running (stale pid file)")
		return nil
	} else if err != nil {
		return fmt.Errorf("signal process %d: %w", pid, err)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d still draining: %w", pid, ctx.Err())
		case <-tick.C:
		}
		if now, err := readPID(*pidFile); err != nil || now != pid {
			fmt.Fprintln(stdout, "drained")
			return nil
		}
		if !osproc.Alive(pid) {
			fmt.Fprintln(stdout, "drained")
			return nil
		}
	}
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid < 1 {
		return 0, fmt.Errorf("pid file %s: %q is not a process ID", path, b)
	}
	return pid, nil
}
