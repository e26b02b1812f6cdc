package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// A SIP scanner (SIPp sending INVITEs from 127.0.0.2 at 200 calls a
// second) hits the service while its trunk (127.0.0.1) places calls: every
// good call is answered, the scanner is refused, then banned and ignored.
func TestSIPFloodIsBannedWhileGoodCallsGoOn(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		requireDependency(t, "sipp (Debian package sip-tester)")
	}
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	floodCtx, stopFlood := context.WithTimeout(ctx, 15*time.Second)
	defer stopFlood()
	sigPort, mediaPort := sippPorts(t)
	flood := exec.CommandContext(floodCtx, "sipp", "-sn", "uac", "-s", "2000", "-i", "127.0.0.2", "-mi", "127.0.0.2",
		"-p", fmt.Sprint(sigPort), "-mp", fmt.Sprint(mediaPort), "-r", "200", "-m", "3000", "-timeout", "15s", "-nostdin",
		m.SIPAddr())
	flood.Dir = t.TempDir()
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	floodDone := make(chan struct{})
	go func() { flood.Wait(); close(floodDone) }()
	defer func() { stopFlood(); <-floodDone }()

	// Good calls from the trunk, one after another, while the flood runs.
	autoAnswer(t, op)
	time.Sleep(500 * time.Millisecond) // the flood is under way
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	const good = 20
	answered := 0
	for i := range good {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		call, err := phone.InviteAsync(cctx, m.SIPAddr(), fmt.Sprintf("+1555000%04d", i), "2000")
		if err != nil {
			ccancel()
			t.Fatal(err)
		}
		if err := call.Wait(cctx); err != nil {
			t.Errorf("good call %d: %v", i, err)
		} else {
			answered++
			call.Hangup(cctx)
		}
		call.Close()
		ccancel()
		time.Sleep(100 * time.Millisecond)
	}
	if answered != good {
		t.Errorf("%d of %d good calls answered during the flood", answered, good)
	}
	banned, refused := m.SIP.ShieldStats()
	if banned != 1 || refused < 100 {
		t.Errorf("shield: %d sources banned, %d messages refused; want the scanner banned and its flood dropped", banned, refused)
	}
	// A count since start is a counter (rate() works on it), named _total.
	if got := scrape(t, m); got["switchboard_sip_banned_sources"] != 1 || got["switchboard_sip_refused_messages_total"] < float64(refused) {
		t.Errorf("metrics: banned %v, refused %v; want 1 and at least %d", got["switchboard_sip_banned_sources"],
			got["switchboard_sip_refused_messages_total"], refused)
	}
	if !strings.Contains(mustGetText(t, m.MetricsURL()), "# TYPE switchboard_sip_refused_messages_total counter\n") {
		t.Error("switchboard_sip_refused_messages_total is not a counter")
	}
	logs := logsOf(m)
	if !strings.Contains(logs, "SIP source banned") || !strings.Contains(logs, "127.0.0.2") {
		t.Error("no log line says the scanner was banned")
	}
	t.Logf("%d good calls answered; scanner banned; %d messages refused", answered, refused)
}
