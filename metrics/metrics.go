// Package metrics is switchboard's Prometheus instrumentation: what call
// control, the SIP side, the database and the recording store do, served
// on /metrics. Labels never carry a number, a name or an ID: their values
// come from small fixed sets.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	sb "github.com/switchboard-voice/switchboard"
)

// Metrics holds the service's collectors in its own registry.
type Metrics struct {
	reg *prometheus.Registry

	calls        *prometheus.CounterVec
	offered      prometheus.Counter
	answered     prometheus.Counter
	timeToAnswer prometheus.Histogram
	postDial     prometheus.Histogram
	rtpPackets   *prometheus.CounterVec
	rtpLost      *prometheus.CounterVec
	mos          *prometheus.HistogramVec
	recordings   *prometheus.CounterVec
	sip          *prometheus.CounterVec
	db           *prometheus.HistogramVec
	storage      *prometheus.HistogramVec
	queueWait    *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	webhooks     *prometheus.CounterVec
	storeUp      prometheus.Gauge
	// relayDelay's two series, resolved once: observing them is on the
	// media path.
	delayFromCaller, delayToCaller prometheus.Observer

	queuedMu sync.Mutex
	queued   map[sb.ID]time.Time // calls waiting in a queue, since when
}

// New returns the service's metrics, with the Go runtime's and the
// process's.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), queued: map[sb.ID]time.Time{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_calls_total",
		Help: "Calls ended, by final status and the stage at which they failed (empty: none)."}, []string{"status", "failure_stage", "failure_leg"})
	m.offered = prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_calls_offered_total",
		Help: "Inbound calls that reached routing to operators."})
	m.answered = prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_calls_answered_total",
		Help: "Calls an operator answered."})
	m.timeToAnswer = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchboard_time_to_answer_seconds",
		Help: "INVITE to 200 OK of answered calls.", Buckets: []float64{.5, 1, 2, 5, 10, 20, 30, 60, 120}})
	m.postDial = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchboard_post_dial_delay_seconds",
		Help: "INVITE to 180 Ringing.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5}})
	m.rtpPackets = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_rtp_packets_total",
		Help: "RTP packets relayed, by direction (from_caller, to_caller)."}, []string{"direction"})
	m.rtpLost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_rtp_lost_packets_total",
		Help: "RTP packets lost before reaching switchboard (RFC 3550 A.3), by direction."}, []string{"direction"})
	m.mos = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_call_mos",
		Help: "Estimated MOS (E-model) of answered calls, by direction.", Buckets: []float64{1, 2, 2.5, 3, 3.5, 3.6, 3.8, 4, 4.2, 4.4}}, []string{"direction"})
	m.recordings = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_recordings_total",
		Help: "Recording outcomes: started, stored, failed, destroyed."}, []string{"outcome"})
	m.sip = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_sip_messages_total",
		Help: "SIP messages on the wire, by direction (in, out), request method, and response code (requests: empty)."},
		[]string{"direction", "method", "code"})
	m.db = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_db_query_seconds",
		Help: "PostgreSQL query latency, by outcome.", Buckets: prometheus.ExponentialBuckets(.0005, 2, 14)}, []string{"outcome"})
	m.storage = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_storage_seconds",
		Help: "Recording store latency, by operation and outcome.", Buckets: prometheus.ExponentialBuckets(.001, 2, 14)}, []string{"op", "outcome"})
	m.queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_queue_wait_seconds",
		Help:    "Time callers waited in a queue, by how the wait ended: offered (to an operator), overflowed (the queue's longest wait passed), abandoned (the call ended).",
		Buckets: []float64{1, 5, 10, 20, 30, 60, 120, 300, 600}}, []string{"outcome"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_http_requests_total",
		Help: "HTTP requests answered, by route pattern (unmatched: no route), method and status code."}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_http_request_seconds",
		Help: "HTTP request duration, by route pattern and method (an operator's WebSocket: its whole life).", Buckets: prometheus.DefBuckets},
		[]string{"route", "method"})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_webhook_deliveries_total",
		Help: "Webhook delivery attempts, by outcome: delivered (2xx), rejected (the receiver answered another status), unreachable (no answer)."},
		[]string{"outcome"})
	m.storeUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_recording_store_up",
		Help: "1 when the recording store (S3) answered its last check, 0 when it did not; recordings wait in the spool meanwhile."})
	m.storeUp.Set(1)
	// 10 µs .. 1.3 s in steps of two: a relay that keeps up takes tens
	// of microseconds; one that falls behind (a starved machine) is still
	// measured, not lost in the top bucket.
	delay := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_media_relay_delay_seconds",
		Help: "Time each relayed RTP packet spent in the service, from the kernel's receive timestamp on one leg to its " +
			"hand-over to the kernel on the other, by direction (from_caller, to_caller).",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 18)}, []string{"direction"})
	m.delayFromCaller, m.delayToCaller = delay.WithLabelValues("from_caller"), delay.WithLabelValues("to_caller")
	for _, c := range []prometheus.Collector{m.calls, m.offered, m.answered, m.timeToAnswer, m.postDial, m.rtpPackets, m.rtpLost,
		m.mos, m.recordings, m.sip, m.db, m.storage, m.queueWait, m.httpRequests, m.httpDuration, m.webhooks, delay} {
		f(c)
	}
	// Series of fixed label sets exist from the start, at zero, so that
	// rates and alerts over them have something to read before the first
	// event.
	for _, dir := range []string{"from_caller", "to_caller"} {
		m.rtpPackets.WithLabelValues(dir)
		m.rtpLost.WithLabelValues(dir)
	}
	for _, o := range []string{"started", "stored", "failed", "destroyed"} {
		m.recordings.WithLabelValues(o)
	}
	for _, o := range []string{"offered", "overflowed", "abandoned"} {
		m.queueWait.WithLabelValues(o)
	}
	for _, o := range []string{"delivered", "rejected", "unreachable"} {
		m.webhooks.WithLabelValues(o)
	}
	for _, o := range []string{"ok", "error"} {
		m.db.WithLabelValues(o)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// BuildInfo registers switchboard_build_info: always 1, its labels saying
// which build this is.
func (m *Metrics) BuildInfo(version, revision, goVersion string) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_build_info",
		Help:        "The running build: its version, VCS revision and Go version, as labels; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion}}, func() float64 { return 1 }))
}

// Gauge registers a gauge read from fn at each scrape.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// States registers a gauge with a label, read from fn at each scrape: one
// series per key of what fn returns.
func (m *Metrics) States(name, help, label string, fn func() map[string]int) {
	m.reg.MustRegister(&labelledCollector{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.GaugeValue,
		fn: func() map[string]float64 { return floats(fn()) }})
}

// Counters registers a counter with a label whose values are kept
// elsewhere (totals since start), read from fn at each scrape: one series
// per key of what fn returns, which must come from a small fixed set.
func (m *Metrics) Counters(name, help, label string, fn func() map[string]uint64) {
	m.reg.MustRegister(&labelledCollector{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.CounterValue,
		fn: func() map[string]float64 { return floats(fn()) }})
}

func floats[V int | uint64](m map[string]V) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// labelledCollector is a metric with one label whose values fn reads.
type labelledCollector struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	fn   func() map[string]float64
}

func (c *labelledCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *labelledCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.fn() {
		ch <- prometheus.MustNewConstMetric(c.desc, c.kind, v, k)
	}
}

var _ sb.CallObserver = (*Metrics)(nil)

// CallEvent counts the recording outcomes and the calls offered to
// operators, and times queue waits.
func (m *Metrics) CallEvent(e *sb.CallEvent) {
	switch e.Type {
	case sb.EventQueued:
		m.queuedMu.Lock()
		m.queued[e.CallID] = e.At
		m.queuedMu.Unlock()
	case sb.EventOffered, sb.EventHandedOver:
		m.dequeued(e, "offered")
	case sb.EventQueueTimeout:
		m.dequeued(e, "overflowed")
	case sb.EventEnded:
		m.dequeued(e, "abandoned")
	}
	switch e.Type {
	case sb.EventRecordingStarted:
		m.recordings.WithLabelValues("started").Inc()
	case sb.EventRecordingStored:
		m.recordings.WithLabelValues("stored").Inc()
	case sb.EventRecordingFailed:
		m.recordings.WithLabelValues("failed").Inc()
	case sb.EventRecordingDestroyed:
		m.recordings.WithLabelValues("destroyed").Inc()
	case sb.EventTrying:
		m.offered.Inc()
	}
}

// dequeued observes the wait of a call that was in a queue, if it was.
func (m *Metrics) dequeued(e *sb.CallEvent, outcome string) {
	m.queuedMu.Lock()
	since, ok := m.queued[e.CallID]
	delete(m.queued, e.CallID)
	m.queuedMu.Unlock()
	if ok {
		m.queueWait.WithLabelValues(outcome).Observe(max(e.At.Sub(since).Seconds(), 0))
	}
}

// CallMedia adds what a call relayed since its last report to the RTP
// totals: call control reports as the call goes, not only at its end.
func (m *Metrics) CallMedia(fromCaller, toCaller sb.MediaCount) {
	for dir, n := range map[string]sb.MediaCount{"from_caller": fromCaller, "to_caller": toCaller} {
		if n.Packets > 0 {
			m.rtpPackets.WithLabelValues(dir).Add(float64(n.Packets))
		}
		if n.Lost > 0 {
			m.rtpLost.WithLabelValues(dir).Add(float64(n.Lost))
		}
	}
}

// CallEnded counts the call by outcome, its answer and its MOS (its media
// is counted as it flows, by CallMedia).
func (m *Metrics) CallEnded(c *sb.Call) {
	m.queuedMu.Lock()
	delete(m.queued, c.ID) // a wait no event ended is not kept
	m.queuedMu.Unlock()
	m.calls.WithLabelValues(string(c.Status), c.FailureStage, c.FailureLeg).Inc()
	if c.PostDialDelayMS > 0 {
		m.postDial.Observe(float64(c.PostDialDelayMS) / 1000)
	}
	if c.AnsweredAt == nil {
		return
	}
	m.answered.Inc()
	m.timeToAnswer.Observe(float64(c.TimeToAnswerMS) / 1000)
	for dir, st := range map[string]sb.MediaStats{"from_caller": c.FromCaller, "to_caller": c.ToCaller} {
		if st.MOS > 0 {
			m.mos.WithLabelValues(dir).Observe(st.MOS)
		}
	}
}

// RelayDelay observes the time one relayed packet spent in the service;
// it is callctl.WithRelayDelay's function, and allocates nothing.
func (m *Metrics) RelayDelay(fromCaller bool, d time.Duration) {
	if fromCaller {
		m.delayFromCaller.Observe(d.Seconds())
	} else {
		m.delayToCaller.Observe(d.Seconds())
	}
}

// sipMethods are the methods counted by name; anything else is "other",
// so a scanner cannot grow the label set.
var sipMethods = map[string]bool{"INVITE": true, "ACK": true, "BYE": true, "CANCEL": true, "OPTIONS": true,
	"REGISTER": true, "INFO": true, "UPDATE": true, "PRACK": true, "REFER": true, "NOTIFY": true, "SUBSCRIBE": true, "MESSAGE": true}

// SIPMessage counts one SIP message; it is a sip.Exporter.
func (m *Metrics) SIPMessage(msg sb.SIPMessage, _ string) {
	dir := "out"
	if msg.Inbound {
		dir = "in"
	}
	line, _, _ := strings.Cut(msg.Message, "\r\n")
	if rest, ok := strings.CutPrefix(line, "SIP/2.0 "); ok {
		code, _, _ := strings.Cut(rest, " ")
		if n, err := strconv.Atoi(code); err != nil || n < 100 || n > 699 {
			code = "other"
		}
		method := ""
		if cseq := cseqMethod(msg.Message); sipMethods[cseq] {
			method = cseq
		}
		m.sip.WithLabelValues(dir, method, code).Inc()
		return
	}
	method, _, _ := strings.Cut(line, " ")
	if !sipMethods[method] {
		method = "other"
	}
	m.sip.WithLabelValues(dir, method, "").Inc()
}

// cseqMethod is the method a response answers, from its CSeq header. It
// reads the header section line by line and copies nothing: every
// response is counted, and splitting the whole message into lines cost
// each one a slice as long as its lines.
func cseqMethod(msg string) string {
	for rest, more := msg, true; more; {
		var line string
		line, rest, more = strings.Cut(rest, "\r\n")
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "cseq") {
			if f, n := secondField(value); n == 2 {
				return f
			}
		}
	}
	return ""
}

// secondField returns the second of s's fields (as strings.Fields splits
// them) and how many there are, up to three.
func secondField(s string) (second string, n int) {
	for f := range strings.FieldsSeq(s) {
		if n++; n == 2 {
			second = f
		} else if n == 3 {
			break
		}
	}
	return second, n
}

// The database's latency: Metrics is a pgx.QueryTracer.

type queryStart struct{}

// TraceQueryStart notes when a query began.
func (m *Metrics) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryStart{}, time.Now())
}

// TraceQueryEnd observes the query's latency.
func (m *Metrics) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	start, ok := ctx.Value(queryStart{}).(time.Time)
	if !ok {
		return
	}
	outcome := "ok"
	if data.Err != nil {
		outcome = "error"
	}
	m.db.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

// TraceBatchStart notes when a pipeline of statements (the call record
// writer's batch) began: it is observed as one query, its round trip.
func (m *Metrics) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return context.WithValue(ctx, queryStart{}, time.Now())
}

// TraceBatchQuery is each statement of a pipeline: its time is the
// pipeline's.
func (m *Metrics) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd observes the pipeline's latency.
func (m *Metrics) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	m.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{Err: data.Err})
}

// Storage observes one recording store operation.
func (m *Metrics) Storage(op string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.storage.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
}
