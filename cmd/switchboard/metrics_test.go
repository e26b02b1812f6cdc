package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// scrape reads /metrics and returns each series' value.
func scrape(t *testing.T, m *Main) map[string]float64 {
	t.Helper()
	return scrapeURL(t, m.MetricsURL())
}

// mustGetText returns the body of a GET that answers 200.
func mustGetText(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return string(body)
}

// scrapeURL reads a /metrics URL and returns each series' value, by its
// name and labels as the text format writes them.
func scrapeURL(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// /metrics counts what happened: calls by outcome and failure stage, SIP
// messages by method and code, operators by state, database queries; and
// no label carries a number.
func TestMetrics(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	if got := scrape(t, m); got["switchboard_active_calls"] != 1 || got[`switchboard_operators{state="busy"}`] != 1 {
		t.Errorf("during the call: active %v, busy operators %v", got["switchboard_active_calls"], got[`switchboard_operators{state="busy"}`])
	}
	sendPattern(t, 25, func(p []byte) error { return call.SendRTP(p, false) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	if _, err := phone.Invite(ctx, m.SIPAddr(), "3000", "2999"); err == nil {
		t.Fatal("a call to a number the trunk does not have was answered")
	}
	// The refusal is recorded a moment after the caller hears 404.
	got := scrape(t, m)
	for deadline := time.Now().Add(5 * time.Second); got[`switchboard_calls_total{failure_leg="trunk",failure_stage="routing",status="rejected"}`] == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got = scrape(t, m)
	}
	want := map[string]float64{
		`switchboard_calls_total{failure_leg="",failure_stage="",status="completed"}`:            1,
		`switchboard_calls_total{failure_leg="trunk",failure_stage="routing",status="rejected"}`: 1,
		`switchboard_calls_answered_total`:                                                       1,
		`switchboard_sip_messages_total{code="",direction="in",method="INVITE"}`:                 2,
		`switchboard_sip_messages_total{code="200",direction="out",method="INVITE"}`:             1,
		`switchboard_sip_messages_total{code="404",direction="out",method="INVITE"}`:             1,
		`switchboard_sip_messages_total{code="",direction="in",method="BYE"}`:                    1,
		`switchboard_active_calls`:                 0,
		`switchboard_operators{state="available"}`: 1,
		`switchboard_time_to_answer_seconds_count`: 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got[`switchboard_rtp_packets_total{direction="from_caller"}`] < 20 || got[`switchboard_db_query_seconds_count{outcome="ok"}`] < 5 {
		t.Errorf("rtp %v, db queries %v", got[`switchboard_rtp_packets_total{direction="from_caller"}`], got[`switchboard_db_query_seconds_count{outcome="ok"}`])
	}
	// A histogram's bucket bounds (le) are the metric's own numbers, not
	// a call's.
	digits, bound := regexp.MustCompile(`[0-9]{5,}`), regexp.MustCompile(`le="[^"]*"`)
	for k := range got {
		if strings.HasPrefix(k, "switchboard_") && digits.MatchString(bound.ReplaceAllString(k, "")) {
			t.Errorf("a label carries a number: %s", k)
		}
	}
}

// /metrics shows volumes across tenants: the binary serves it on its own
// (loopback) address, and on the public HTTP address only to the bearer
// of the metrics token; without a token, not there at all.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	const token = "metrics-token-0123456789"
	s := mustStartBinary(t, "SWITCHBOARD_METRICS_TOKEN="+token, "GOGC=")
	// The collector's target is the service's own unless GOGC is set.
	if body := mustGetText(t, s.metricsURL); !strings.Contains(body, fmt.Sprintf("\ngo_gc_gogc_percent %d\n", defaultGCPercent)) {
		t.Errorf("without GOGC: want go_gc_gogc_percent %d in /metrics", defaultGCPercent)
	}
	if body := mustGetText(t, mustStartBinary(t, "GOGC=80").metricsURL); !strings.Contains(body, "\ngo_gc_gogc_percent 80\n") {
		t.Error("with GOGC=80: want go_gc_gogc_percent 80 in /metrics")
	}
	for _, c := range []struct {
		what, url, token string
		want             int
	}{
		{"the metrics address", s.metricsURL, "", http.StatusOK},
		{"the metrics address, anything else", strings.TrimSuffix(s.metricsURL, "/metrics") + "/healthz", "", http.StatusNotFound},
		{"the HTTP address without the token", s.httpURL + "/metrics", "", http.StatusUnauthorized},
		{"the HTTP address with another token", s.httpURL + "/metrics", "metrics-token-0123456780", http.StatusUnauthorized},
		{"the HTTP address with the token", s.httpURL + "/metrics", token, http.StatusOK},
	} {
		var auth []string
		if c.token != "" {
			auth = []string{"Authorization", "Bearer " + c.token}
		}
		if got := mustStatus(t, http.MethodGet, c.url, "", auth...); got != c.want {
			t.Errorf("%s (%s): %d, want %d", c.what, c.url, got, c.want)
		}
	}
	m := mustStartService(t, nil)
	if got := mustStatus(t, http.MethodGet, m.HTTPURL()+"/metrics", ""); got != http.StatusNotFound {
		t.Errorf("the HTTP address of a service without a metrics token: %d, want 404", got)
	}
	// Go's profiles only when asked for, and then on the metrics address
	// alone.
	for _, u := range []string{strings.TrimSuffix(s.metricsURL, "/metrics") + "/debug/pprof/", s.httpURL + "/debug/pprof/"} {
		if got := mustStatus(t, http.MethodGet, u, ""); got != http.StatusNotFound {
			t.Errorf("%s without -metrics-pprof: %d, want 404", u, got)
		}
	}
	p := mustStartService(t, map[string]string{"metrics-pprof": "true"})
	heap := strings.TrimSuffix(p.MetricsURL(), "/metrics") + "/debug/pprof/heap?debug=1"
	if body := mustGetText(t, heap); !strings.Contains(body, "heap profile:") {
		t.Errorf("%s with -metrics-pprof: no heap profile in %.200q", heap, body)
	}
	// The command line may carry secrets (-database-url): not served.
	if got := mustStatus(t, http.MethodGet, strings.TrimSuffix(p.MetricsURL(), "/metrics")+"/debug/pprof/cmdline", ""); got != http.StatusNotFound {
		t.Errorf("/debug/pprof/cmdline: %d, want 404", got)
	}
	if got := mustStatus(t, http.MethodGet, p.HTTPURL()+"/debug/pprof/heap", ""); got != http.StatusNotFound {
		t.Errorf("the HTTP address with -metrics-pprof: %d, want 404", got)
	}
}
