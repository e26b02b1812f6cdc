package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// mustKamailio runs deploy/kamailio/dispatcher.cfg on a free loopback port
// in front of the given SIP addresses and returns its address once it
// answers.
func mustKamailio(t *testing.T, instances ...string) string {
	t.Helper()
	if _, err := exec.LookPath("kamailio"); err != nil {
		requireDependency(t, "kamailio (Debian package kamailio)")
	}
	dir := t.TempDir()
	var list strings.Builder
	for _, addr := range instances {
		fmt.Fprintf(&list, "1 sip:%s\n", addr)
	}
	if err := os.WriteFile(filepath.Join(dir, "dispatcher.list"), []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := filepath.Abs(filepath.Join("..", "..", "deploy", "kamailio", "dispatcher.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	var logs bytes.Buffer
	cmd := exec.Command("kamailio", "-f", cfg, "-DD", "-E", "-m", "64", "-M", "8", "-Y", dir,
		"-A", "LISTEN=udp:"+addr, "-A", fmt.Sprintf("DISPATCHER_LIST=%q", filepath.Join(dir, "dispatcher.list")), "-A", "CHILDREN=2")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	inOwnGroup(cmd) // its workers go with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killGroup(cmd)
		cmd.Wait()
		if t.Failed() {
			t.Logf("kamailio:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasPrefix(sipOptions(t, addr), "SIP/2.0 200") {
		if time.Now().After(deadline) {
			t.Fatalf("kamailio did not answer OPTIONS on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return addr
}

// sipOptions sends one OPTIONS to addr and returns the answer, or "".
func sipOptions(t *testing.T, addr string) string {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local, id := conn.LocalAddr().String(), sb.NewID().String()
	fmt.Fprintf(conn, "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nFrom: <sip:probe@%s>;tag=1\r\n"+
		"To: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", addr, local, id, local, addr, id)
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	return string(buf[:n])
}

// sippCalls places n calls (testdata/sipp/uac_short.xml, held 300 ms) to
// number through target, at most limit at once, and fails the test unless
// all succeed.
func sippCalls(t *testing.T, target, number string, n, limit int) {
	t.Helper()
	scenario, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", "uac_short.xml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, "sipp", "-sf", scenario, "-s", number, "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-m", fmt.Sprint(n), "-r", "10", "-l", fmt.Sprint(limit), "-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"), target)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Fatalf("sipp: %v: not every call succeeded\n%s\n%s", err, lastLines(string(out), 30), errs)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// completedByInstance counts the tenant's completed calls by the instance
// that took them, once there are total (records are written just after
// the BYE is answered), or after a few seconds.
func completedByInstance(t *testing.T, m *Main, tenantID sb.ID, total int) map[string]int {
	t.Helper()
	conn := dbConn(t, m)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := completedNow(t, conn, tenantID)
		n := 0
		for _, c := range got {
			n += c
		}
		if n >= total || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func completedNow(t *testing.T, conn *pgx.Conn, tenantID sb.ID) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT instance, count(*) FROM calls WHERE tenant_id = $1 AND status = 'completed' GROUP BY instance`, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var inst string
		var n int
		if err := rows.Scan(&inst, &n); err != nil {
			t.Fatal(err)
		}
		out[inst] = n
	}
	return out
}

// Kamailio, from Debian's packages, with deploy/kamailio/dispatcher.cfg in
// front of two instances: SIPp's calls are spread over both, and once one
// is down (its OPTIONS go unanswered) it gets no more INVITEs while the
// other takes every call.
func TestKamailioDispatchesOverInstances(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	a, b := mustStartInstances(t)
	f := mustProvision(t, a, "Acme", "2000", 4)
	for i, m := range []*Main{a, a, b, b} {
		autoAnswer(t, mustOperator(t, m, f.Operators[i]))
	}
	proxy := mustKamailio(t, a.SIPAddr(), b.SIPAddr())

	sippCalls(t, proxy, "2000", 12, 3) // four operators, two on each
	got := completedByInstance(t, a, f.Tenant.ID, 12)
	if got["a"]+got["b"] != 12 || got["a"] < 3 || got["b"] < 3 {
		t.Fatalf("completed calls by instance %v: want 12 spread over a and b", got)
	}

	// b goes down; something silent holds its port and counts what comes.
	bAddr := b.SIPAddr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	dead, err := net.ListenPacket("udp", bAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	var options, invites atomic.Int64
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := dead.ReadFrom(buf)
			if err != nil {
				return
			}
			switch {
			case bytes.HasPrefix(buf[:n], []byte("OPTIONS ")):
				options.Add(1)
			case bytes.HasPrefix(buf[:n], []byte("INVITE ")):
				invites.Add(1)
			}
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for options.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("kamailio did not ping the stopped instance")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // the ping's transaction times out (2 s): b is marked down

	sippCalls(t, proxy, "2000", 8, 1) // a's two operators
	if n := invites.Load(); n != 0 {
		t.Errorf("%d INVITEs sent to the instance that is down", n)
	}
	after := completedByInstance(t, a, f.Tenant.ID, 20)
	if after["a"]-got["a"] != 8 || after["b"] != got["b"] {
		t.Errorf("completed calls by instance %v after b stopped (before %v): want the 8 new ones on a", after, got)
	}
}
