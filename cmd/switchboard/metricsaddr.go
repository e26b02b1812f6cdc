package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// listenMetrics serves /metrics on its own address when the
// configuration names one: the metrics show every tenant's volumes, so
// they stay off the address the public reaches. With -metrics-pprof the
// runtime's profiles are served there too, never on the public address.
func (m *Main) listenMetrics() error {
	addr := m.Config.MetricsAddr
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Metrics.Handler())
	if m.Config.MetricsPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	m.metricsLn = ln
	m.metrics = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.goServe(func() error { return m.metrics.Serve(ln) })
	return nil
}

// MetricsAddr returns /metrics' own listen address, or "".
func (m *Main) MetricsAddr() string { return addrString(m.metricsLn) }

// MetricsURL returns the URL of /metrics on its own address, or "".
func (m *Main) MetricsURL() string {
	if m.metricsLn == nil {
		return ""
	}
	return "http://" + m.MetricsAddr() + "/metrics"
}
