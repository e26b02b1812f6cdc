package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// `switchboard drain`, as a Kubernetes preStop hook or systemd ExecStop
// runs it: the service stops taking calls at once (503 to INVITEs, 503
// from /readyz) and the command holds until the call in progress is over,
// which ends as its caller ends it; then the pid file is gone and the
// process has exited cleanly.
func TestDrainWaitsForCallsInProgress(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "switchboard.pid")
	dbURL := testenv.DatabaseURL(t)
	s := mustStartBinary(t, "SWITCHBOARD_DATABASE_URL="+dbURL, "SWITCHBOARD_PID_FILE="+pidFile, "SWITCHBOARD_DRAIN_TIMEOUT=1m")
	// Written just after the service says it listens.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pid, err := readPID(pidFile)
		if err == nil && pid > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid file once listening: %d, %v", pid, err)
		}
	}
	_, call, in := binaryCall(t, s, "drain")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	phone := mustPhone(t, siptest.Options{Transport: "udp"})

	drain := exec.Command(s.bin, "drain", "-pid-file", pidFile)
	var out bytes.Buffer
	drain.Stdout, drain.Stderr = &out, &out
	if err := drain.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- drain.Wait() }()

	deadline := time.Now().Add(10 * time.Second)
	for readyz(t, s.httpURL) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still ready after drain began")
		}
		time.Sleep(50 * time.Millisecond)
	}
	late, err := phone.Invite(ctx, s.sipAddr, "+15550002222", "2000")
	var refused *siptest.StatusError
	if !errors.As(err, &refused) || refused.Code != 503 {
		if late != nil {
			late.Close()
		}
		t.Fatalf("INVITE while draining: %v, want 503", err)
	}
	select {
	case err := <-drained:
		t.Fatalf("drain returned with a call in progress: %v\n%s", err, out.String())
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("pid file gone with a call in progress: %v", err)
	}

	sendPattern(t, 10, func(p []byte) error { return call.SendRTP(p, false) })
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-drained:
		if err != nil || !strings.Contains(out.String(), "drained") {
			t.Fatalf("drain: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("drain did not return once the call was over\n%s", out.String())
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after drain: %v, want it removed", err)
	}
	// The service is gone; its record is in the database.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var status, by string
	if err := conn.QueryRow(ctx, `SELECT status, hangup_by FROM calls WHERE id = $1`, in.CallID).Scan(&status, &by); err != nil {
		t.Fatal(err)
	}
	if status != string(sb.CallCompleted) || by != string(sb.PartyCaller) {
		t.Errorf("drained call's record: %q hung up by %q, want completed by the caller", status, by)
	}
}

func readyz(t *testing.T, base string) int {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
