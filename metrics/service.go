package metrics

import (
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// What the service's own parts do, besides calls: HTTP requests, webhook
// deliveries, the database pool, the recording store's reachability.

// httpMethods are the methods counted by name; anything else is "other".
var httpMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// HTTPRequest counts one answered HTTP request. route is the router's
// pattern ("/v1/calls/{id}"), never the raw path, so IDs in paths do not
// grow the label set; "" is a request no route matched.
func (m *Metrics) HTTPRequest(route, method string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if !httpMethods[method] {
		method = "other"
	}
	code := strconv.Itoa(status)
	if status < 100 || status > 599 {
		code = "other"
	}
	m.httpRequests.WithLabelValues(route, method, code).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// WebhookDelivery counts one delivery attempt by outcome: delivered,
// rejected, unreachable.
func (m *Metrics) WebhookDelivery(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }

// RecordingStoreUp says whether the recording store answered its last
// check.
func (m *Metrics) RecordingStoreUp(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.storeUp.Set(v)
}

// WatchRecordingStore registers switchboard_recording_store_up: only a
// service with a remote store has it.
func (m *Metrics) WatchRecordingStore() { m.reg.MustRegister(m.storeUp) }

// Counter registers a counter whose total is kept elsewhere, read from fn
// at each scrape.
func (m *Metrics) Counter(name, help string, fn func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(fn()) }))
}

// Pool registers the database pool's statistics, read from stat at each
// scrape.
func (m *Metrics) Pool(stat func() *pgxpool.Stat) {
	m.reg.MustRegister(&poolCollector{stat: stat})
}

var (
	poolConns = prometheus.NewDesc("switchboard_db_pool_connections",
		"Database pool connections, by state: acquired (in use), idle, constructing.", []string{"state"}, nil)
	poolTotal = prometheus.NewDesc("switchboard_db_pool_total_connections",
		"Database pool connections open or being opened (the sum of the states).", nil, nil)
	poolMax = prometheus.NewDesc("switchboard_db_pool_max_connections",
		"The database pool's size limit.", nil, nil)
	poolAcquires = prometheus.NewDesc("switchboard_db_pool_acquires_total",
		"Connections taken from the database pool.", nil, nil)
	poolEmptyAcquires = prometheus.NewDesc("switchboard_db_pool_empty_acquires_total",
		"Connections taken from the database pool that had to wait: none was idle.", nil, nil)
	poolWait = prometheus.NewDesc("switchboard_db_pool_acquire_wait_seconds_total",
		"Time acquires waited for a connection because the database pool had none idle.", nil, nil)
)

// poolCollector reads pgxpool's statistics at each scrape.
type poolCollector struct{ stat func() *pgxpool.Stat }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolTotal, poolMax, poolAcquires, poolEmptyAcquires, poolWait} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
}
