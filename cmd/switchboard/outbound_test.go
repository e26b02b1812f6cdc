package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/opclient"
)

// carrierSIPp runs a SIPp UAS scenario from testdata/sipp as a carrier
// and returns its address once it listens, and a channel with its
// outcome.
func carrierSIPp(ctx context.Context, t *testing.T, scenario string) (string, <-chan error) {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	path, err := filepath.Abs(filepath.Join("..", "..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	port, mediaPort := sippPorts(t)
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, "sipp", "-sf", path, "-i", "127.0.0.1", "-p", fmt.Sprint(port),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(mediaPort), "-m", "1", "-timeout", "40s", "-timeout_error", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("sipp %s: %w\n%s", scenario, err, out.String())
		}
		done <- err
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	// SIPp listens once its port shows in the kernel's table. Binding the
	// port to find out would take it from SIPp if it bound at that moment.
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); !udpBound(t, port); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("SIPp %s ended before it listened on %s: %v", scenario, addr, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIPp %s did not listen on %s", scenario, addr)
		}
	}
	return addr, done
}

// udpBound reports whether a UDP socket is bound to port on 127.0.0.1 or
// any address, from /proc/net/udp.
func udpBound(t *testing.T, port int) bool {
	t.Helper()
	table, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range []string{fmt.Sprintf(" 0100007F:%04X ", port), fmt.Sprintf(" 00000000:%04X ", port)} {
		if bytes.Contains(table, []byte(local)) {
			return true
		}
	}
	return false
}

// outboundTrunk makes a trunk of f take outbound calls to target, through
// the command line, with the carrier's password sealed by the keyring.
func outboundTrunk(t *testing.T, m *Main, f *tenantFixture, name, target string, priority int, flags ...string) sb.ID {
	t.Helper()
	ctx := context.Background()
	trunk := &sb.Trunk{TenantID: f.Tenant.ID, Name: name, Numbers: []string{"9" + fmt.Sprint(priority)}, Username: "in-" + name}
	if err := metadata.NewTrunkService(m.DB).CreateTrunk(ctx, trunk, "inbound password"); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args := append([]string{"trunk", "outbound", "-database-url", m.Config.DatabaseURL, "-keyring", testKeyring,
		"-trunk", trunk.ID.String(), "-target", target, "-username", "acme", "-caller-id", "+49 30 123456",
		"-priority", fmt.Sprint(priority)}, flags...)
	if err := run(ctx, args, strings.NewReader("s3cret\n"), &out, &errOut); err != nil {
		t.Fatalf("trunk outbound: %v\n%s", err, errOut.String())
	}
	return trunk.ID
}

// dbConn is a plain connection to the service's database, as someone with
// a dump or a psql prompt would see it.
func dbConn(t *testing.T, m *Main) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, m.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

var testKeyring = "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))

func mustOutboundService(t *testing.T) (*Main, *tenantFixture, *opclient.Client) {
	t.Helper()
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Acme", "2000", 1)
	return m, f, mustOperator(t, m, f.Operators[0])
}

// An operator calls out: the carrier challenges, plays early media the
// operator hears before the answer, answers with A-law; the operator hangs
// up. The record, its timeline and its SIP trace say so; the password is
// sealed in the database.
func TestOutboundCallWithEarlyMedia(t *testing.T) {
	m, f, op := mustOutboundService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	carrier, done := carrierSIPp(ctx, t, "uas_auth_early_media.xml")
	trunkID := outboundTrunk(t, m, f, "carrier", carrier, 1)
	var sealed []byte
	if err := dbConn(t, m).QueryRow(ctx, "SELECT outbound_secret FROM trunks WHERE id = $1", trunkID).Scan(&sealed); err != nil ||
		len(sealed) < 20 || bytes.Contains(sealed, []byte("s3cret")) {
		t.Errorf("the outbound password at rest: %x, %v", sealed, err)
	}

	var heard atomic.Int64
	op.SetAudioSink(func(p *rtp.Packet) {
		if p.PayloadType == 0 {
			heard.Add(1)
		}
	})
	if _, err := op.Dial(ctx, "12"); err == nil {
		t.Error("a two-digit number was dialled")
	}
	id, err := op.Dial(ctx, "+1 (555) 000-1111")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	// The carrier answers two seconds after its 183: what the operator
	// hears in between is early media.
	time.Sleep(1500 * time.Millisecond)
	if n := heard.Load(); n < 40 {
		t.Errorf("the operator heard %d packets of early media in 1.5 s, want ≥ 40", n)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := op.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, id)
	if rec.Direction != sb.Outbound || rec.Status != sb.CallCompleted || rec.HangupBy != sb.PartyOperator || rec.Codec != "PCMA" ||
		rec.To != "+15550001111" || rec.From != "+4930123456" || rec.TrunkID == nil || *rec.TrunkID != trunkID ||
		rec.TimeToAnswerMS < 1900 || rec.FromCaller.Packets < 100 {
		t.Errorf("record %+v", rec)
	}
	if events := callEvents(t, m, f.APIKey, id); !hasInOrder(events, sb.EventDialing, sb.EventEarlyMedia, sb.EventAnswered, sb.EventHungUp, sb.EventEnded) {
		t.Errorf("events %v", events)
	}
	var tr traceBody
	if code := apiGet(t, m, f.APIKey, "/v1/calls/"+id.String()+"/trace", &tr); code != http.StatusOK {
		t.Fatalf("trace: %d", code)
	}
	var lines []string
	for _, msg := range tr.SIP {
		lines = append(lines, firstLine(msg))
	}
	joined := strings.Join(lines, " | ")
	for _, want := range []string{"INVITE sip:+15550001111@", "SIP/2.0 401", "SIP/2.0 183", "SIP/2.0 200", "ACK ", "BYE "} {
		if !strings.Contains(joined, want) {
			t.Errorf("trace %q lacks %q", lines, want)
		}
	}
}

// A trunk that is down (503) gives way to the next; a busy number is not
// tried elsewhere; an operator who gives up while it rings cancels it.
func TestOutboundFailoverBusyAndCancel(t *testing.T) {
	m, f, op := mustOutboundService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	down, downDone := carrierSIPp(ctx, t, "uas_unavailable.xml")
	up, upDone := carrierSIPp(ctx, t, "uas_auth_early_media.xml")
	outboundTrunk(t, m, f, "down", down, 1)
	second := outboundTrunk(t, m, f, "up", up, 2)
	id, err := op.Dial(ctx, "+15550001111")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.WaitConnected(ctx, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past the answer
	if err := op.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, d := range []<-chan error{downDone, upDone} {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	rec := waitCallEnded(t, m, f.APIKey, id)
	if rec.Status != sb.CallCompleted || rec.TrunkID == nil || *rec.TrunkID != second {
		t.Errorf("failover record %+v", rec)
	}
	if events := callEvents(t, m, f.APIKey, id); !hasInOrder(events, sb.EventDialing, sb.EventTrunkFailed, sb.EventAnswered) {
		t.Errorf("failover events %v", events)
	}
	if _, err := dbConn(t, m).Exec(ctx, "UPDATE trunks SET outbound_target = NULL WHERE tenant_id = $1", f.Tenant.ID); err != nil {
		t.Fatal(err)
	}

	busy, busyDone := carrierSIPp(ctx, t, "uas_busy.xml")
	outboundTrunk(t, m, f, "busy", busy, 3)
	id, err = op.Dial(ctx, "+15550002222")
	if err != nil {
		t.Fatal(err)
	}
	if reason, err := op.WaitEnded(ctx, id); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(reason, "Busy") {
		t.Errorf("the operator was told %q", reason)
	}
	if err := <-busyDone; err != nil {
		t.Fatal(err)
	}
	rec = waitCallEnded(t, m, f.APIKey, id)
	if rec.Status != sb.CallBusy || rec.SIPCode != 486 || rec.Q850Cause != 17 || rec.FailureLeg != sb.FailedOnTrunk {
		t.Errorf("busy record %+v", rec)
	}
	if _, err := dbConn(t, m).Exec(ctx, "UPDATE trunks SET outbound_target = NULL WHERE tenant_id = $1", f.Tenant.ID); err != nil {
		t.Fatal(err)
	}

	ringing, ringDone := carrierSIPp(ctx, t, "uas_ringing.xml")
	outboundTrunk(t, m, f, "ringing", ringing, 4)
	id, err = op.Dial(ctx, "+15550003333")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // it rings
	if err := op.Hangup(ctx, id); err != nil && !errors.As(err, new(*opclient.ProtocolError)) {
		t.Fatal(err)
	}
	if err := <-ringDone; err != nil {
		t.Fatal(err)
	}
	rec = waitCallEnded(t, m, f.APIKey, id)
	if rec.Status != sb.CallCanceled || rec.HangupBy != sb.PartyOperator || rec.AnsweredAt != nil {
		t.Errorf("canceled record %+v", rec)
	}
}

// A trunk that registers: the registrar's challenge is answered, its
// short grant refreshed in time, and the trunk list says it is registered.
func TestTrunkRegistersAndRefreshes(t *testing.T) {
	m := mustStartService(t, map[string]string{"keyring": testKeyring, "register-sync": "100ms"})
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	registrar, done := carrierSIPp(ctx, t, "uas_registrar.xml")
	trunkID := outboundTrunk(t, m, f, "registered", registrar, 1, "-register")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	admin := mustLogin(t, m, mustUser(t, m, f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))
	var trunks struct {
		Trunks []struct {
			ID           sb.ID            `json:"id"`
			Registration *sb.Registration `json:"registration"`
		} `json:"trunks"`
	}
	for {
		if code, body := admin.do("GET", "/v1/trunks", "", &trunks); code != 200 {
			t.Fatalf("trunks: %d %s", code, body)
		}
		var reg *sb.Registration
		for _, tr := range trunks.Trunks {
			if tr.ID == trunkID {
				reg = tr.Registration
			}
		}
		if reg != nil && reg.State == sb.RegRegistered && time.Until(reg.Expires) > time.Hour-time.Minute {
			return // the refresh's long grant
		}
		select {
		case <-ctx.Done():
			t.Fatalf("registration %+v", reg)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Click-to-call: an integration asks; the operator is rung first and, once
// they answer, the number is dialled and answered.
func TestClickToCall(t *testing.T) {
	m, f, op := mustOutboundService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	carrier, done := carrierSIPp(ctx, t, "uas_auth_early_media.xml")
	outboundTrunk(t, m, f, "carrier", carrier, 1)
	crm := &person{t: t, m: m, key: f.APIKey}
	if code, _ := crm.do("POST", "/v1/calls", `{"operator_id":"`+sb.NewID().String()+`","number":"+15550001111"}`, nil); code != 404 {
		t.Errorf("click-to-call for nobody: %d, want 404", code)
	}
	var placed struct {
		CallID sb.ID `json:"call_id"`
	}
	if code, body := crm.do("POST", "/v1/calls", `{"operator_id":"`+f.Operators[0].ID.String()+`","number":"+1 555 000 1111"}`, &placed); code != 201 {
		t.Fatalf("click-to-call: %d %s", code, body)
	}
	in := waitIncoming(t, op)
	if in.CallID != placed.CallID || in.From != "+15550001111" {
		t.Fatalf("the operator was offered %+v", in)
	}
	if err := op.Accept(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past the carrier's answer
	if err := op.Hangup(ctx, in.CallID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, placed.CallID)
	if rec.Direction != sb.Outbound || rec.Status != sb.CallCompleted || rec.To != "+15550001111" || rec.AnsweredAt == nil {
		t.Errorf("record %+v", rec)
	}
	if events := callEvents(t, m, f.APIKey, placed.CallID); !hasInOrder(events, sb.EventOffered, sb.EventDialing, sb.EventAnswered, sb.EventEnded) {
		t.Errorf("events %v", events)
	}
}
