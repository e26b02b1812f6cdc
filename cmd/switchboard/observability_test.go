package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// readyzBody reads /readyz: its status and body.
func readyzBody(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

// waitStoreReported waits until /readyz reports the recording store as
// want ("ok", "unavailable"), failing the test if /readyz is ever not
// 200 meanwhile (the store does not decide readiness) or the database or
// SIP listener is reported down.
func waitStoreReported(t *testing.T, m *Main, want string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(3 * storeCheck)
	for {
		code, body := readyzBody(t, m.HTTPURL())
		if code != http.StatusOK || body["status"] != "ok" || body["database"] != "ok" || body["sip"] != "ok" {
			t.Fatalf("/readyz %d %v: the recording store must not make the instance unready", code, body)
		}
		if body["storage"] == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still reports the store %q, want %q", body["storage"], want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// With the S3 server stopped while a call goes on, /readyz stays 200
// (the spool keeps the recording: this instance can take calls) and names
// the store as unavailable, and switchboard_recording_store_up says 0;
// with it back, both say so again.
func TestReadyzStaysReadyWithTheStoreDown(t *testing.T) {
	x := mustRecordingFixture(t)
	if body := waitStoreReported(t, x.m, "ok"); len(body) != 4 {
		t.Errorf("/readyz body %v, want status, database, sip and storage", body)
	}
	if got := scrape(t, x.m)["switchboard_recording_store_up"]; got != 1 {
		t.Errorf("switchboard_recording_store_up %v with the store up", got)
	}
	x.call(t, "yes", func(sb.ID) {
		x.s3.Stop()
		waitStoreReported(t, x.m, "unavailable")
		if got := scrape(t, x.m); got["switchboard_recording_store_up"] != 0 || got["switchboard_active_calls"] != 1 {
			t.Errorf("during the outage: store up %v, active calls %v", got["switchboard_recording_store_up"], got["switchboard_active_calls"])
		}
	})
	x.s3.Start()
	waitStoreReported(t, x.m, "ok")
	if got := scrape(t, x.m)["switchboard_recording_store_up"]; got != 1 {
		t.Errorf("switchboard_recording_store_up %v with the store back", got)
	}
}

// RTP packet counters move while a call goes on, not only when it ends:
// scraped twice during one call, they rose by what was sent. The media
// ports in use follow the call, and the database pool is reported.
func TestRTPCountersMoveDuringCalls(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	const from, to = `switchboard_rtp_packets_total{direction="from_caller"}`, `switchboard_rtp_packets_total{direction="to_caller"}`
	before := scrape(t, m)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendPattern(t, 25, op.SendAudio)
	}()
	sendPattern(t, 25, func(p []byte) error { return call.SendRTP(p, false) })
	<-done
	// Counts reach the counters at the call's next quality sample.
	deadline := time.Now().Add(15 * time.Second)
	got := scrape(t, m)
	for got[from]-before[from] < 20 || got[to]-before[to] < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("during the call: %s rose %v, %s rose %v; want about 25 each", from, got[from]-before[from], to, got[to]-before[to])
		}
		time.Sleep(100 * time.Millisecond)
		got = scrape(t, m)
	}
	if got["switchboard_active_calls"] != 1 {
		t.Fatalf("the call ended before its packets were counted: active calls %v", got["switchboard_active_calls"])
	}
	const sipPorts, webrtcPorts = `switchboard_rtp_ports_in_use{side="sip"}`, `switchboard_rtp_ports_in_use{side="webrtc"}`
	if got[sipPorts] != 1 || got[webrtcPorts] != 1 {
		t.Errorf("during the call: %s %v, %s %v; want the call's and the operator's", sipPorts, got[sipPorts], webrtcPorts, got[webrtcPorts])
	}
	if got["switchboard_db_pool_max_connections"] != 16 || got["switchboard_db_pool_total_connections"] < 1 ||
		got["switchboard_db_pool_acquires_total"] < 1 {
		t.Errorf("database pool: max %v, total %v, acquires %v", got["switchboard_db_pool_max_connections"],
			got["switchboard_db_pool_total_connections"], got["switchboard_db_pool_acquires_total"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	rec := waitCallEnded(t, m, f.APIKey, in.CallID)
	after := scrape(t, m)
	if after[sipPorts] != 0 || after[webrtcPorts] != 1 {
		t.Errorf("after the call: %s %v, %s %v; want the operator's alone", sipPorts, after[sipPorts], webrtcPorts, after[webrtcPorts])
	}
	// Counted once: during the call, then only the rest at its end (the
	// service's only call).
	if after[from] != float64(rec.FromCaller.Packets) || after[to] != float64(rec.ToCaller.Packets) {
		t.Errorf("after the call: %s %v, %s %v; its record says %d and %d", from, after[from], to, after[to],
			rec.FromCaller.Packets, rec.ToCaller.Packets)
	}
}
