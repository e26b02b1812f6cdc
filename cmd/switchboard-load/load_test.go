package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metrics"
)

func TestStreamCountsGapsNotTail(t *testing.T) {
	s := &stream{}
	now := time.Now()
	buf := make([]byte, 160)
	for _, seq := range []uint32{1, 2, 4, 5, 5, 3} { // 3 lost, then arrives late; 5 duplicated
		s.add(append([]byte(nil), media.PatternFrame(buf, seq, now.Add(-time.Millisecond))...), now)
	}
	bad := media.PatternFrame(buf, 6, now)
	bad[100] ^= 0xff
	s.add(bad, now)
	var d direction
	d.add(s)
	d.finish()
	if d.Expected != 5 || d.Received != 4 || d.Corrupt != 1 {
		t.Errorf("expected %d received %d corrupt %d, want 5, 4, 1", d.Expected, d.Received, d.Corrupt)
	}
	if d.LossPct != 20 {
		t.Errorf("loss %.1f%%, want 20%%", d.LossPct)
	}
	if d.DelayP50MS < 0.9 || d.DelayP50MS > 1.1 {
		t.Errorf("delay p50 %.2f ms, want 1 ms", d.DelayP50MS)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%.0f = %s, want %s", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not zero")
	}
}

func TestSampleProcReadsThisProcess(t *testing.T) {
	s, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes < 1<<20 || s.CPUSeconds < 0 {
		t.Errorf("sample %+v: want at least 1 MB resident", s)
	}
	if _, err := sampleProc(1 << 30); err == nil {
		t.Error("sampling a process that does not exist succeeded")
	}
}

func TestJanusRepliesAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["transaction"] == "" {
			t.Errorf("request without a transaction: %v %v", body, err)
		}
		switch r.URL.Path {
		case "/janus":
			io.WriteString(w, `{"janus":"success","transaction":"x","data":{"id":4242}}`)
		default:
			io.WriteString(w, `{"janus":"error","transaction":"x","error":{"code":458,"reason":"No such session 7"}}`)
		}
	}))
	defer srv.Close()
	api := &janusAPI{url: srv.URL + "/janus", client: srv.Client()}
	rep, err := api.post(context.Background(), "", map[string]any{"janus": "create"})
	if err != nil || rep.Data.ID != 4242 {
		t.Fatalf("create: %+v, %v; want session 4242", rep, err)
	}
	if _, err := api.post(context.Background(), "/7", map[string]any{"janus": "attach"}); err == nil || !strings.Contains(err.Error(), "458 No such session 7") {
		t.Errorf("error reply gave %v, want Janus's code and reason", err)
	}
}

func TestTargetIsChecked(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-target", "asterisk", "-calls", "1"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `"asterisk" is not switchboard or janus`) {
		t.Errorf("run with an unknown target: %v", err)
	}
	err = run(context.Background(), []string{"-calls", "1"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "-database-url is required") {
		t.Errorf("switchboard target without a database: %v", err)
	}
}

// The runtime gauges are read from the service's real /metrics handler,
// and a page without them is an error rather than zeros.
func TestScrapeRuntime(t *testing.T) {
	srv := httptest.NewServer(metrics.New().Handler())
	defer srv.Close()
	s, err := scrapeRuntime(context.Background(), srv.URL+"/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Goroutines < 1 || s.HeapInuseMB <= 0 || s.OpenFDs < 3 {
		t.Errorf("runtime %+v: want this process's goroutines, heap and open files", s)
	}
	if _, err := parseRuntime(strings.NewReader("go_goroutines 12\n# HELP x\n")); err == nil {
		t.Error("a page without the heap and open files was taken")
	}
	s, err = parseRuntime(strings.NewReader("go_goroutines 12\ngo_memstats_heap_inuse_bytes 1048576\nprocess_open_fds 9\nswitchboard_active_calls 3\n" +
		`switchboard_sip_messages_total{code="503",direction="in",method="INVITE"} 4` + "\n" +
		`switchboard_sip_messages_total{code="503",direction="out",method="INVITE"} 7` + "\n" +
		`switchboard_sip_messages_total{code="503",direction="out",method="BYE"} 2` + "\n"))
	if err != nil || s.ActiveCalls != 3 || s.HeapInuseMB != 1 || s.Shed != 7 {
		t.Errorf("runtime %+v, %v: want 3 calls in progress, 1 MB of heap and 7 INVITEs refused with 503", s, err)
	}
}

func TestSIPpDurations(t *testing.T) {
	for v, want := range map[string]float64{"00:00:00:004": 4, "00:00:01:250000": 1250, "00:01:00:000": 60000, "bad": 0} {
		if got := sippDurationMS(v); got != want {
			t.Errorf("%q = %g ms, want %g", v, got, want)
		}
	}
}

// The service's own delay figures are read from its histogram, the run's
// packets alone (the difference from before the first call), and their
// quantiles interpolated within buckets as Prometheus does.
func TestServiceDelayFromTheHistogram(t *testing.T) {
	page := func(b1, b2, inf float64) string {
		return fmt.Sprintf("go_goroutines 1\ngo_memstats_heap_inuse_bytes 1\nprocess_open_fds 3\n"+
			"switchboard_media_relay_delay_seconds_bucket{direction=\"from_caller\",le=\"0.0001\"} %g\n"+
			"switchboard_media_relay_delay_seconds_bucket{direction=\"from_caller\",le=\"0.0002\"} %g\n"+
			"switchboard_media_relay_delay_seconds_bucket{direction=\"from_caller\",le=\"+Inf\"} %g\n"+
			"switchboard_media_relay_delay_seconds_sum{direction=\"from_caller\"} 1\n", b1, b2, inf)
	}
	before, err := parseRuntime(strings.NewReader(page(50, 50, 50)))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseRuntime(strings.NewReader(page(150, 250, 250)))
	if err != nil {
		t.Fatal(err)
	}
	d := newServiceDelay(after.relayDelay["from_caller"], before.relayDelay["from_caller"])
	// 200 packets of the run: 100 under 0.1 ms, 100 between 0.1 and 0.2.
	if d == nil || d.Packets != 200 || math.Abs(d.P50MS-0.1) > 1e-9 || math.Abs(d.P99MS-0.198) > 1e-9 {
		t.Errorf("in the service %+v: want 200 packets, p50 0.1 ms, p99 0.198 ms", d)
	}
	if d := newServiceDelay(before.relayDelay["from_caller"], before.relayDelay["from_caller"]); d != nil {
		t.Errorf("a run that relayed nothing: %+v, want none", d)
	}
	if d := newServiceDelay(after.relayDelay["to_caller"], nil); d != nil {
		t.Errorf("a direction the service did not report: %+v, want none", d)
	}
}
