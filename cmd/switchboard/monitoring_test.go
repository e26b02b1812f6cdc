package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// The dashboard and the alert rules of deploy/ are held to the binary: each
// metric they read exists in its /metrics, the rules pass promtool, and
// the chart's PrometheusRule carries the same rules.

var (
	alertsFile    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yaml")
	chartAlerts   = filepath.Join("..", "..", "deploy", "helm", "switchboard", "files", "alerts.yaml")
	dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "switchboard.json")
)

// promqlKeywords are PromQL words that are no metric: operators and the
// modifiers whose parentheses hold label names.
var promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}

// promqlAggregations may put their by or without clause before their
// parentheses: they are no metric either.
var promqlAggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "count": true, "group": true,
	"stddev": true, "stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true}

// selectors returns the metrics a PromQL expression reads, each with the
// label names its matchers name.
func selectors(t *testing.T, expr string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	ident := func(c byte) bool {
		return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	skipSpace := func(i int) int {
		for i < len(expr) && strings.ContainsRune(" \t\n", rune(expr[i])) {
			i++
		}
		return i
	}
	// closing returns the index just past what closes the bracket at i,
	// skipping strings.
	closing := func(i int) int {
		open, shut := expr[i], map[byte]byte{'(': ')', '{': '}', '[': ']'}[expr[i]]
		depth := 0
		for ; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == '"' || c == '\'':
				for i++; i < len(expr) && expr[i] != c; i++ {
					if expr[i] == '\\' {
						i++
					}
				}
			case c == open:
				depth++
			case c == shut:
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		t.Fatalf("unbalanced %q in %s", open, expr)
		return len(expr)
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '{' || c == '[':
			if c == '{' || c == '[' {
				i = closing(i)
				continue
			}
			for i++; i < len(expr) && expr[i] != c; i++ {
			}
			i++
		case '0' <= c && c <= '9' || c == '.':
			for i < len(expr) && (ident(expr[i]) || expr[i] == '.') {
				i++
			}
		case ident(c):
			start := i
			for i < len(expr) && ident(expr[i]) {
				i++
			}
			name := expr[start:i]
			next := skipSpace(i)
			switch {
			case promqlKeywords[name]:
				if next < len(expr) && expr[next] == '(' && name != "and" && name != "or" && name != "unless" {
					i = closing(next) // label names
				}
			case promqlAggregations[name] || next < len(expr) && expr[next] == '(':
				// a function or aggregation
			default:
				labels := out[name]
				if next < len(expr) && expr[next] == '{' {
					end := closing(next)
					for _, m := range strings.Split(expr[next+1:end-1], ",") {
						label, _, _ := strings.Cut(strings.TrimSpace(m), "=")
						label = strings.TrimRight(strings.TrimSpace(label), "!")
						label, _, _ = strings.Cut(label, "!~")
						if label = strings.TrimSpace(label); label != "" {
							labels = append(labels, label)
						}
					}
					i = end
				}
				out[name] = labels
			}
		default:
			i++
		}
	}
	return out
}

func TestSelectors(t *testing.T) {
	got := selectors(t, `sum by (instance, le) (rate(switchboard_x_bucket{op="a", instance=~"$i"}[5m])) / ignoring (state) `+
		`switchboard_y > 0.5 and on (job) up{job=~".*switchboard.*"} == 0 unless count(count by (version) (switchboard_z))`)
	want := map[string][]string{"switchboard_x_bucket": {"op", "instance"}, "switchboard_y": nil, "up": {"job"}, "switchboard_z": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("selectors: %v, want %v", got, want)
	}
}

// alertRules reads a rules file: each alert's name and expression.
func alertRules(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// dashboardQueries reads the Grafana dashboard's queries, by panel.
func dashboardQueries(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	out := map[string][]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

// The alert rules pass promtool, and its unit tests of them
// (deploy/prometheus/alerts_test.yaml: series shaped as switchboard serves
// them, the alerts that must fire); the chart's copy is the same file.
func TestAlertRulesPassPromtool(t *testing.T) {
	a, err1 := os.ReadFile(alertsFile)
	b, err2 := os.ReadFile(chartAlerts)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s and %s differ: the chart's PrometheusRule must carry the same rules", chartAlerts, alertsFile)
	}
	promtool := findTool(t, "promtool", "promtool (Debian package prometheus; scripts/deps.sh installs it)")
	out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if n := len(alertRules(t, alertsFile)); !strings.Contains(string(out), "SUCCESS") || n < 10 {
		t.Errorf("promtool: %s (%d alerts)", out, n)
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yaml")
	cmd.Dir = filepath.Dir(alertsFile)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// Every metric the dashboard and the alert rules read exists in /metrics
// of the real binary after one recorded call, with the labels they match
// on: a renamed or missing metric would leave a panel empty or an alert
// that never fires.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	s3 := testenv.NewS3(t)
	s := mustStartBinary(t, "SWITCHBOARD_RECORDINGS=s3", "SWITCHBOARD_KEYRING="+testKeyring,
		"SWITCHBOARD_S3_ENDPOINT="+s3.Endpoint, "SWITCHBOARD_S3_BUCKET="+s3.Bucket, "SWITCHBOARD_S3_ACCESS_KEY="+s3.AccessKey,
		"SWITCHBOARD_S3_SECRET_KEY="+s3.SecretKey, "SWITCHBOARD_S3_PATH_STYLE=true", "SWITCHBOARD_RECORDING_SPOOL="+t.TempDir())
	c := binaryCallWith(t, s, "watched", siptest.Options{Transport: "udp", Headers: map[string]string{"X-Recording-Consent": "yes"}},
		"--recording-policy", "consent")
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendPattern(t, 25, c.op.SendAudio)
	}()
	sendPattern(t, 25, func(p []byte) error { return c.call.SendRTP(p, false) })
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitBinaryCall(t, s, c.key, c.in.CallID)

	labels := map[string]map[string]bool{} // metric → its label names
	for series := range scrapeURL(t, s.metricsURL) {
		name, rest, _ := strings.Cut(series, "{")
		if labels[name] == nil {
			labels[name] = map[string]bool{}
		}
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if l, _, ok := strings.Cut(kv, "="); ok {
				labels[name][l] = true
			}
		}
	}
	// Labels Prometheus adds to every series it scrapes; up is its own.
	scrapeLabels := map[string]bool{"instance": true, "job": true}
	check := func(where, expr string) {
		sel := selectors(t, expr)
		if len(sel) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for name, ls := range sel {
			if name == "up" {
				continue
			}
			have, ok := labels[name]
			if !ok {
				t.Errorf("%s reads %s, which /metrics does not have", where, name)
				continue
			}
			for _, l := range ls {
				if !have[l] && !scrapeLabels[l] {
					t.Errorf("%s matches %s on label %q, which it does not have", where, name, l)
				}
			}
		}
	}
	alerts := alertRules(t, alertsFile)
	for name, expr := range alerts {
		check("alert "+name, expr)
	}
	panels := dashboardQueries(t)
	for title, exprs := range panels {
		for _, e := range exprs {
			check("panel "+strings.TrimSpace(title), e)
		}
	}
	if len(alerts) < 10 || len(panels) < 20 {
		t.Errorf("%d alerts and %d panels read", len(alerts), len(panels))
	}
	// What the issue asks the dashboard to show, each on a panel.
	var all []string
	for _, exprs := range panels {
		all = append(all, exprs...)
	}
	joined := strings.Join(all, "\n")
	var missing []string
	for _, m := range []string{"switchboard_calls_total", "switchboard_time_to_answer_seconds_bucket", "switchboard_post_dial_delay_seconds_bucket",
		"switchboard_call_mos_bucket", "switchboard_rtp_lost_packets_total", "switchboard_operators", "switchboard_queue_wait_seconds_bucket",
		"switchboard_recording_spool_pending", "switchboard_journal_pending", "switchboard_sip_banned_sources",
		"switchboard_db_query_seconds_bucket", "switchboard_storage_seconds_bucket"} {
		if !strings.Contains(joined, m) {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard shows none of %v", missing)
	}
	checkOperationsDoc(t, labels, alerts)
}

// checkOperationsDoc fails the test unless docs/operations.md names every
// switchboard metric the binary serves and every alert of the rules, and
// names no switchboard metric the binary does not serve.
func checkOperationsDoc(t *testing.T, served map[string]map[string]bool, alerts map[string]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	family := func(name string) string {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if _, hist := served[base+"_bucket"]; hist {
					return base
				}
			}
		}
		return name
	}
	families := map[string]bool{}
	for name := range served {
		if strings.HasPrefix(name, "switchboard_") {
			families[family(name)] = true
		}
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`switchboard_[a-z0-9_]+`).FindAllString(doc, -1) {
		named[m] = true
	}
	for f := range families {
		if !named[f] {
			t.Errorf("docs/operations.md does not name %s, which /metrics serves", f)
		}
	}
	notMetrics := map[string]bool{"switchboard_signout": true} // a NOTIFY channel
	for n := range named {
		if !families[n] && !families[family(n)] && !notMetrics[n] {
			t.Errorf("docs/operations.md names %s, which /metrics does not serve", n)
		}
	}
	for a := range alerts {
		if !strings.Contains(doc, "`"+a+"`") {
			t.Errorf("docs/operations.md does not name the alert %s", a)
		}
	}
}

// With metrics.prometheusRule and metrics.serviceMonitor on, the chart
// renders a PrometheusRule holding the rules of deploy/prometheus (which
// pass promtool as rendered) and a ServiceMonitor scraping the metrics
// port through a Service of its own, with the labels a Prometheus selects
// on; the pods then lose the scrape annotations (no double scrape). Off
// (the default), none of them.
func TestHelmChartRendersMonitoring(t *testing.T) {
	helm := findTool(t, "helm", "helm (scripts/deps.sh builds it)")
	chart := filepath.Join("..", "..", "deploy", "helm", "switchboard")
	base := []string{"template", "sb", chart, "--namespace", "voice", "--kube-version", "1.31.0",
		"--set", "secrets.SWITCHBOARD_DATABASE_URL=postgres://switchboard:pw@db:5432/switchboard",
		"--set", "secrets.SWITCHBOARD_KEYRING=" + testKeyring,
		"--set", "secrets.SWITCHBOARD_CLUSTER_SECRET=a-cluster-secret-of-32-characters"}
	type object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec map[string]any `yaml:"spec"`
	}
	render := func(args ...string) map[string][]object {
		t.Helper()
		out, err := exec.Command(helm, append(append([]string{}, base...), args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		return byKind(out, func(o object) string { return o.Kind })
	}
	podAnnotations := func(objects map[string][]object) map[string]any {
		t.Helper()
		sts := objects["StatefulSet"]
		if len(sts) != 1 {
			t.Fatalf("%d StatefulSets", len(sts))
		}
		meta, _ := sts[0].Spec["template"].(map[string]any)["metadata"].(map[string]any)
		a, _ := meta["annotations"].(map[string]any)
		return a
	}

	off := render()
	if len(off["PrometheusRule"])+len(off["ServiceMonitor"]) != 0 || len(off["Service"]) != 2 {
		t.Errorf("by default: %d PrometheusRules, %d ServiceMonitors, %d Services; want none, none, 2",
			len(off["PrometheusRule"]), len(off["ServiceMonitor"]), len(off["Service"]))
	}
	if podAnnotations(off)["prometheus.io/scrape"] != "true" {
		t.Error("by default the pods lost their scrape annotations")
	}

	on := render("--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.prometheusRule.additionalLabels.release=kps",
		"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.additionalLabels.release=kps")
	if len(on["PrometheusRule"]) != 1 || len(on["ServiceMonitor"]) != 1 {
		t.Fatalf("%d PrometheusRules, %d ServiceMonitors rendered, want one each", len(on["PrometheusRule"]), len(on["ServiceMonitor"]))
	}
	rule := on["PrometheusRule"][0]
	if rule.Metadata.Labels["release"] != "kps" {
		t.Errorf("PrometheusRule labels %v, want release=kps", rule.Metadata.Labels)
	}
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var plain map[string]any
	if err := yaml.Unmarshal(b, &plain); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rule.Spec, plain) {
		t.Error("the PrometheusRule's spec is not the rules of deploy/prometheus/alerts.yaml")
	}
	rendered, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rule.yaml")
	if err := os.WriteFile(file, rendered, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool := findTool(t, "promtool", "promtool (Debian package prometheus; scripts/deps.sh installs it)")
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool on the rendered PrometheusRule: %v\n%s", err, out)
	}

	sm := on["ServiceMonitor"][0]
	if sm.Metadata.Labels["release"] != "kps" {
		t.Errorf("ServiceMonitor labels %v, want release=kps", sm.Metadata.Labels)
	}
	endpoints, _ := sm.Spec["endpoints"].([]any)
	if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != "metrics" || endpoints[0].(map[string]any)["path"] != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %v", endpoints)
	}
	match, _ := sm.Spec["selector"].(map[string]any)["matchLabels"].(map[string]any)
	var selected []object
	for _, svc := range on["Service"] {
		hit := len(match) > 0
		for k, v := range match {
			hit = hit && svc.Metadata.Labels[k] == v
		}
		if hit {
			selected = append(selected, svc)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("the ServiceMonitor selects %d Services, want the metrics one", len(selected))
	}
	ports, _ := selected[0].Spec["ports"].([]any)
	if len(ports) != 1 || ports[0].(map[string]any)["name"] != "metrics" || ports[0].(map[string]any)["targetPort"] != "metrics" {
		t.Errorf("the metrics Service's ports %v", ports)
	}
	if podAnnotations(on)["prometheus.io/scrape"] != nil {
		t.Error("with a ServiceMonitor the pods keep their scrape annotations: every instance scraped twice")
	}
}
