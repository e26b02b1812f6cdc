package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/api"
	"github.com/switchboard-voice/switchboard/callctl"
	"github.com/switchboard-voice/switchboard/diag"
	"github.com/switchboard-voice/switchboard/journal"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/metrics"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip"
	"github.com/switchboard-voice/switchboard/webhooks"
	"github.com/switchboard-voice/switchboard/webrtc"
	"github.com/switchboard-voice/switchboard/whatsapp"
)

// Main is the running service: configuration in, listeners out. The
// end-to-end tests run it in-process on port 0.
type Main struct {
	Config *Config
	Logger *slog.Logger

	DB *metadata.DB
	// QueryTracer, when set before Run, sees every statement beside the
	// metrics (tests count what a call costs the database).
	QueryTracer pgx.QueryTracer
	Journal     *journal.Recorder // call records waiting for the database
	writer      *metadata.CallWriter
	Metrics     *metrics.Metrics
	Webhooks    *metadata.WebhookStore
	hep         *diag.HEPSender
	Switch      *callctl.Switch
	SIP         *sip.Server
	Media       *webrtc.Engine
	API         *api.Server

	httpServer *http.Server
	httpLn     net.Listener
	metrics    *http.Server // /metrics' own listener, when it has one
	metricsLn  net.Listener
	sipUDP     net.PacketConn
	sipTCP     net.Listener
	sipTLS     net.Listener

	cancel    context.CancelFunc
	stopLoops context.CancelFunc
	wg        sync.WaitGroup
	closed    sync.Once
}

// NewMain returns a service for the configuration.
func NewMain(c *Config, logger *slog.Logger) *Main {
	return &Main{Config: c, Logger: logger}
}

// Run opens the database, applies migrations, and starts the SIP and HTTP
// listeners. It returns once everything listens; Close stops it.
func (m *Main) Run(ctx context.Context) (err error) {
	c := m.Config
	if c.DatabaseURL == "" {
		return errors.New("no database: set SWITCHBOARD_DATABASE_URL or -database-url (or use `switchboard dev`)")
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.Metrics = metrics.New()
	b := readBuildInfo()
	m.Metrics.BuildInfo(b.Version, b.Revision, b.GoVersion)
	var tracer pgx.QueryTracer = m.Metrics
	if m.QueryTracer != nil {
		tracer = multitracer.New(m.Metrics, m.QueryTracer)
	}
	if m.DB, err = metadata.Open(ctx, c.DatabaseURL, metadata.WithQueryTracer(tracer)); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	if err := m.DB.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	m.Metrics.Pool(m.DB.Stat)
	calls := metadata.NewCallStore(m.DB).ForInstance(c.Instance)
	trunks := metadata.NewTrunkService(m.DB)
	// Call control's records go through a journal that keeps them while
	// the database is unreachable. What an earlier run left in it goes
	// first; then the calls this instance was running when it last stopped
	// without ending them are over: their records are closed before new
	// calls come.
	// Calls' steps are committed together, a few transactions at a time.
	m.writer = metadata.NewCallWriter(calls, recordWriters)
	records, err := journal.Open(c.Journal, m.writer, m.DB.Dead, m.Logger.With("component", "calls"))
	if err != nil {
		return err
	}
	m.Journal = records
	if _, err := records.Drain(ctx); err != nil {
		return err
	}
	m.every(ctx, time.Second, func(ctx context.Context) {
		if _, err := records.Drain(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Error("journal", "err", err)
		}
	}, nil)
	if n, err := calls.RecoverCalls(ctx); err != nil {
		return err
	} else if n > 0 {
		m.Logger.Warn("closed the records of calls cut by the last stop", "calls", n, "instance", c.Instance)
	}

	m.every(ctx, c.RetentionSweep, func(ctx context.Context) {
		if r, err := calls.SweepData(ctx, nil); err != nil && ctx.Err() == nil {
			m.Logger.Error("retention sweep", "err", err)
		} else if r != (metadata.RetentionReport{}) {
			m.Logger.Info("retention sweep", "sip_messages", r.SIPMessages, "quality_samples", r.QualitySamples,
				"calls_anonymised", r.Calls, "events", r.Events, "webhook_deliveries", r.WebhookDeliveries)
		}
	}, nil)
	var sealer metadata.Sealer // trunks' and webhooks' secrets; none without a keyring
	if c.Keyring != nil {
		sealer = c.Keyring
	}
	trunks = trunks.WithSealer(sealer)
	m.Webhooks = metadata.NewWebhookStore(m.DB, sealer)
	hookOpts := []webhooks.Option{webhooks.WithOutcomes(m.Metrics.WebhookDelivery)}
	if c.WebhookPrivateTargets {
		hookOpts = append(hookOpts, webhooks.WithPrivateTargets())
	}
	hooks := webhooks.New(m.Webhooks, m.Logger.With("component", "webhooks"), hookOpts...)
	m.background(ctx, hooks.Run)
	m.every(ctx, time.Second, func(ctx context.Context) {
		if _, err := hooks.Send(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Error("webhook deliveries", "err", err)
		}
	}, nil)
	grants := metadata.NewGrantStore(m.DB)
	m.expireGrants(ctx, grants, 30*time.Second)
	var player sb.RecordingPlayer
	var destroy func(context.Context, *sb.Recording, string) error // nil: no recordings to destroy
	checks := map[string]func(context.Context) error{}
	advisories := map[string]func(context.Context) error{} // reported by /readyz, not in its status
	opts := []callctl.SwitchOption{callctl.WithRingTimeout(c.RingTimeout), callctl.WithLogger(m.Logger.With("component", "calls")),
		callctl.WithObserver(webhooks.Observers(m.Metrics, hooks)), callctl.WithMediaCounter(m.Metrics.CallMedia), callctl.WithQuality(diag.Score), callctl.WithRelayDelay(m.Metrics.RelayDelay),
		callctl.WithQueues(metadata.NewQueueCache(metadata.NewQueueStore(m.DB), routingCacheAge, time.Now)), callctl.WithReconnectGrace(c.ReconnectGrace),
		callctl.WithDialPolicy(metadata.NewTenantService(m.DB))}
	if c.Recordings != "" {
		spooled, err := openRecordingStore(ctx, c)
		if err != nil {
			return err
		}
		store := recordings.Observed(spooled, m.Metrics.Storage)
		if p, ok := spooled.(interface{ Ping(context.Context) error }); ok {
			// The spool keeps recordings while the store is away: calls go
			// on, so the store is reported, not a reason to be unready.
			advisories["storage"] = m.watchStore(ctx, p.Ping)
		}
		svc := recordings.NewService(store, c.Keyring, metadata.NewRecordingStore(m.DB), recordings.WithEvents(records),
			recordings.WithAudit(metadata.NewAuditLog(m.DB)), recordings.WithInstance(c.Instance))
		opts = append(opts, callctl.WithRecordings(svc))
		player = recordings.NewPlayer(grants, store, c.Keyring,
			recordings.WithLayouts(metadata.NewRecordingStore(m.DB), m.Logger.With("component", "recordings")))
		destroy = svc.Destroy
		m.Logger.Info("recording consented calls", "store", recordingStoreName(c), "key_version", c.Keyring.Active())
		// What a crash left is recovered before the sweep's first pass
		// reaps recordings still marked as being made.
		var abort func(context.Context, time.Time, func(context.Context, string) (bool, error)) (int, error)
		switch st := spooled.(type) {
		case *recordings.SpoolStore:
			st.SetGone(svc.Destroyed)
			m.recoverRecordings(ctx, st.Recover, svc)
			m.flushSpool(ctx, st)
			abort = st.AbortUploads
			m.Metrics.Gauge("switchboard_recording_spool_pending", "Recordings in the local spool waiting for the S3 store.",
				func() float64 { return float64(st.Pending()) })
		case *recordings.DirStore:
			m.recoverRecordings(ctx, st.Recover, svc)
		}
		m.sweepRetention(ctx, svc, abort, c.RetentionSweep)
	}
	var cluster *metadata.Cluster
	if len(c.ClusterSecret) > 0 {
		cluster = metadata.NewCluster(m.DB, c.Instance, c.ClusterAddr)
		opts = append(opts, callctl.WithCluster(cluster, c.Instance, c.ClusterSecret))
	}
	m.Switch = callctl.NewSwitch(records, opts...)
	m.Metrics.Gauge("switchboard_journal_pending", "Call records waiting in the local journal for the database.",
		func() float64 { return float64(records.Pending()) })
	m.Metrics.Gauge("switchboard_active_calls", "Calls in progress.", func() float64 { return float64(m.Switch.ActiveCalls()) })
	m.Metrics.States("switchboard_operators", "Connected operators, by state.", "state", m.Switch.OperatorStates)
	if c.AuditKey != nil {
		m.checkpointAudit(ctx, c.AuditKey, checkpointEvery)
	}

	if m.Media, err = webrtc.NewEngine(webrtc.Config{
		PublicIP:     c.PublicIP,
		Ports:        c.RTPPorts,
		UDPPort:      c.WebRTCUDPPort,
		ICEServers:   c.ICEServers,
		LoopbackOnly: c.WebRTCLoopback,
		Logger:       m.Logger.With("component", "webrtc"),
	}); err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}

	// Every SIP message is counted, and sent to Homer when configured.
	export := m.Metrics.SIPMessage
	if c.HEPCollector != "" {
		if m.hep, err = diag.NewHEPSender(c.HEPCollector, c.HEPCaptureID, c.HEPPassword, m.Logger.With("component", "hep")); err != nil {
			return err
		}
		export = func(msg sb.SIPMessage, callID string) {
			m.Metrics.SIPMessage(msg, callID)
			m.hep.Send(msg, callID)
		}
		m.Logger.Info("sending SIP messages as HEPv3", "collector", c.HEPCollector)
	}
	// While the database is unreachable, trunks that called before are
	// still recognised, from the last answers about them.
	if m.SIP, err = sip.NewServer(metadata.NewTrunkCache(trunks, routingCacheAge, time.Now), m.Switch, sip.Config{
		PublicIP:       c.PublicIP,
		RTPPorts:       c.RTPPorts,
		MediaTimeout:   c.MediaTimeout,
		MinSE:          c.SIPMinSE,
		SessionExpires: c.SIPSessionExpires,
		Shield:         &c.SIPShield,
		HopSecret:      c.ClusterSecret,
		Logger:         m.Logger.With("component", "sip"),
		Export:         export,
		TracePolicy: func(ctx context.Context, tenantID sb.ID) (sb.TracePolicy, error) {
			t, err := metadata.NewTenantService(m.DB).FindTenantByID(ctx, tenantID)
			if err != nil {
				return sb.TracePolicy{}, err
			}
			return t.Trace, nil
		},
		TrustedProxies: c.SIPTrustedProxies,
		Overloaded:     m.overloaded,
		QueueDelay:     c.OverloadSIPDelay,
	}); err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	m.Metrics.Gauge("switchboard_sip_queue_behind", "1 while SIP stands in the UDP socket's queue longer than overload-sip-delay and new calls are refused with 503.",
		func() float64 {
			if m.SIP.Behind() {
				return 1
			}
			return 0
		})
	m.watchSIP()
	routes := metadata.NewRouteStore(m.DB, sealer)
	m.Switch.SetDialer(m.SIP, routes)
	waStore := metadata.NewWhatsAppStore(m.DB, sealer)
	waOpts := []whatsapp.Option{whatsapp.WithLogger(m.Logger.With("component", "whatsapp"))}
	if c.WebhookPrivateTargets {
		waOpts = append(waOpts, whatsapp.WithPrivateGraph())
	}
	wa := whatsapp.New(waStore, mediaSessions{m.Media}.answerPeer, mediaSessions{m.Media}.offerPeer, m.Switch.DispatchInbound, waOpts...)
	m.Switch.SetMessenger(wa)
	m.background(ctx, func(ctx context.Context) {
		<-ctx.Done()
		wa.Close()
	})
	m.Metrics.Counters("switchboard_whatsapp_webhooks_total", "WhatsApp webhook requests by outcome: accepted, bad_signature (refused, nothing done), "+
		"replay and unknown_call (ignored), unknown_connection, malformed, handshake_refused, foreign_number.", "result", wa.Counts)
	m.keepRegistered(ctx, routes, c.RegisterSync)
	checks["sip"] = m.SIP.Listening
	if err := m.listenSIP(ctx); err != nil {
		return err
	}
	if cluster != nil {
		if err := m.joinCluster(ctx, cluster); err != nil {
			return err
		}
	}

	m.API = api.NewServer(api.Config{
		Logger:         m.Logger.With("component", "api"),
		SecureCookies:  c.SecureCookies,
		ICEServers:     c.ICEServers,
		RingTimeout:    c.RingTimeout,
		TrustedProxies: c.HTTPTrustedProxies,
		MetricsToken:   c.MetricsToken,
		Observe:        m.Metrics.HTTPRequest,
	}, api.Deps{
		Calls:         calls,
		Traces:        calls,
		References:    calls,
		Ender:         m.Switch,
		Originator:    m.Switch,
		Webhooks:      m.Webhooks,
		Recordings:    metadata.NewRecordingStore(m.DB),
		Consents:      m.Switch,
		Audit:         metadata.NewAuditLog(m.DB),
		AuditReader:   metadata.NewAuditLog(m.DB),
		Grants:        grants,
		Player:        player,
		Tenants:       metadata.NewTenantService(m.DB),
		Names:         metadata.NewNames(m.DB),
		Trunks:        trunks,
		Users:         metadata.NewUserService(m.DB),
		APIKeys:       metadata.NewAPIKeyService(m.DB),
		Sessions:      metadata.NewSessionService(m.DB),
		CallControl:   m.Switch,
		Floor:         m.Switch,
		MediaSessions: mediaSessions{m.Media},
		Health:        m.DB.Ping,
		Checks:        checks,
		Advisories:    advisories,
		Metrics:       m.Metrics.Handler(),
		SIPLogging:    m.SIP,
		Registrations: m.SIP,
		Subjects:      metadata.NewSubjectStore(m.DB, destroy),
		Queues:        &api.Queues{Find: metadata.NewQueueStore(m.DB).FindQueues, Waiting: m.Switch.Waiting},
		Desk:          metadata.NewDeskStore(m.DB),
		Routes:        routes,
		Resources: &api.Resources{Trunks: metadata.NewTrunkAdmin(trunks, routes),
			Queues: metadata.NewQueueAdmin(metadata.NewQueueStore(m.DB))},
		WhatsApp: &api.WhatsApp{Admin: waStore, Webhook: wa.ServeWebhook, RequestPermission: wa.RequestPermission},
		Ingress: &api.Ingress{
			Tokens:   metadata.NewIngressService(m.DB),
			Check:    webrtc.CheckVisitorOffer,
			Answer:   mediaSessions{m.Media}.answerVisitor,
			Dispatch: m.Switch.DispatchInbound,
		},
	})
	m.background(ctx, m.listenSignOuts)
	if m.httpLn, err = net.Listen("tcp", c.HTTPAddr); err != nil {
		return fmt.Errorf("http: listen on %s: %w", c.HTTPAddr, err)
	}
	m.httpServer = &http.Server{
		Handler:           m.API.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.goServe(func() error { return m.httpServer.Serve(m.httpLn) })
	if err := m.listenMetrics(); err != nil {
		return err
	}

	m.Logger.Info("listening", "http", m.HTTPAddr(), "sip", m.SIPAddr(), "sip_tls", m.SIPTLSAddr(), "metrics", m.MetricsAddr())
	return nil
}

// listenSIP opens the SIP listeners. UDP and TCP share one port, as trunks
// expect; with port 0 the system's choice for UDP is taken for TCP too.
// joinCluster starts sharing presence with the other instances on the
// database, saying where they reach this one's SIP.
func (m *Main) joinCluster(ctx context.Context, cluster *metadata.Cluster) error {
	addr := m.Config.ClusterAddr
	if addr == "" {
		if m.sipUDP == nil {
			return errors.New("cluster: set cluster-addr: there is no UDP SIP listener to take it from")
		}
		ap, err := netip.ParseAddrPort(m.sipUDP.LocalAddr().String())
		if err != nil || ap.Addr().IsUnspecified() {
			return fmt.Errorf("cluster: set cluster-addr: sip-addr %s is not an address other instances can reach", m.Config.SIPAddr)
		}
		addr = ap.String()
	}
	cluster.SetSIPAddr(addr)
	m.background(ctx, m.Switch.RunCluster)
	m.Logger.Info("sharing operators with the other instances", "instance", m.Config.Instance, "sip", addr)
	return nil
}

func (m *Main) listenSIP(ctx context.Context) error {
	c := m.Config
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	_, port, _ := net.SplitHostPort(c.SIPAddr)
	for attempt := 0; ; attempt++ {
		addr := c.SIPAddr
		var err error
		if has(c.SIPTransports, "udp") {
			if m.sipUDP, err = net.ListenPacket("udp", addr); err != nil {
				return fmt.Errorf("sip: listen udp %s: %w", addr, err)
			}
			addr = m.sipUDP.LocalAddr().String()
		}
		if has(c.SIPTransports, "tcp") {
			if m.sipTCP, err = net.Listen("tcp", addr); err != nil {
				if port == "0" && m.sipUDP != nil && attempt < 10 {
					m.sipUDP.Close() // that port is taken for TCP; try another
					continue
				}
				return fmt.Errorf("sip: listen tcp %s: %w", addr, err)
			}
		}
		break
	}
	if m.sipUDP != nil {
		m.goServe(func() error { return m.SIP.ServeUDP(sctx, m.sipUDP) })
	}
	if m.sipTCP != nil {
		m.goServe(func() error { return m.SIP.ServeTCP(sctx, m.sipTCP) })
	}
	if c.SIPTLSAddr != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("sip: tls certificate: %w", err)
		}
		ln, err := net.Listen("tcp", c.SIPTLSAddr)
		if err != nil {
			return fmt.Errorf("sip: listen tls %s: %w", c.SIPTLSAddr, err)
		}
		m.sipTLS = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		m.goServe(func() error { return m.SIP.ServeTLS(sctx, m.sipTLS) })
	}
	return nil
}

func (m *Main) goServe(serve func() error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
			m.Logger.Error("listener stopped", "err", err)
		}
	}()
}

// HTTPAddr returns the HTTP listener's address.
func (m *Main) HTTPAddr() string { return addrString(m.httpLn) }

// HTTPURL returns the base URL of the HTTP server.
func (m *Main) HTTPURL() string { return "http://" + m.HTTPAddr() }

// SIPAddr returns the SIP UDP/TCP address.
func (m *Main) SIPAddr() string {
	if m.sipUDP != nil {
		return m.sipUDP.LocalAddr().String()
	}
	return addrString(m.sipTCP)
}

// SIPTLSAddr returns the SIP TLS address, or "".
func (m *Main) SIPTLSAddr() string { return addrString(m.sipTLS) }

func addrString(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Shutdown drains: new calls are refused, calls in progress may go on until
// ctx is done, then are ended. Then everything is closed.
func (m *Main) Shutdown(ctx context.Context) error {
	var err error
	if m.SIP != nil {
		m.SIP.Drain()
	}
	if m.Switch != nil {
		err = m.Switch.Shutdown(ctx)
	}
	return errors.Join(err, m.Close())
}

// recordWriters is how many transactions of call records are in flight
// at once.
const recordWriters = 4

// Close ends calls now and stops every listener.
func (m *Main) Close() error {
	var errs []error
	m.closed.Do(func() {
		if m.Switch != nil {
			errs = append(errs, m.Switch.Close())
		}
		if m.httpServer != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, m.httpServer.Shutdown(ctx))
			cancel()
		} else if m.httpLn != nil {
			errs = append(errs, m.httpLn.Close())
		}
		if m.metrics != nil {
			errs = append(errs, m.metrics.Close())
		} else if m.metricsLn != nil {
			errs = append(errs, m.metricsLn.Close())
		}
		if m.cancel != nil {
			m.cancel()
		}
		if m.stopLoops != nil {
			m.stopLoops()
		}
		if m.SIP != nil {
			errs = append(errs, m.SIP.Close())
		}
		if m.hep != nil {
			errs = append(errs, m.hep.Close())
		}
		if m.Media != nil {
			errs = append(errs, m.Media.Close())
		}
		for _, c := range []io.Closer{m.sipUDP, m.sipTCP, m.sipTLS} {
			if c != nil && !isNil(c) {
				if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					errs = append(errs, err)
				}
			}
		}
		m.wg.Wait()
		if m.writer != nil {
			m.writer.Close()
		}
		if m.DB != nil {
			m.DB.Close()
		}
	})
	return errors.Join(errs...)
}

// overloaded reports whether the database is behind with the calls'
// records, so that new calls are refused: a record has waited for it
// longer than the service lets one wait, or more wait than it lets pile
// up. A database found unreachable is not waited for: the journal takes
// the records, and the drains that try it are not calls.
func (m *Main) overloaded() bool {
	c := m.Config
	return c.OverloadDBDelay > 0 && m.writer.Behind() >= c.OverloadDBDelay && !m.Journal.Down() ||
		c.OverloadBacklog > 0 && m.writer.Backlog() >= c.OverloadBacklog
}

func isNil(c io.Closer) bool {
	switch v := c.(type) {
	case net.PacketConn:
		return v == nil
	case net.Listener:
		return v == nil
	}
	return false
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runServe is `switchboard serve`.
func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve", "Runs the service: SIP on -sip-addr, the operator page, API and signaling on -http-addr.", stderr)
	config := configFlags(fs, nil)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := config()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logger := newLogger(stderr, c.LogLevel, c.LogFormat, c.LogLevels)
	m := NewMain(c, logger)
	if err := m.Run(ctx); err != nil {
		return err
	}
	if c.PIDFile != "" {
		// Written once the service listens, removed once it has drained:
		// switchboard drain waits for it to go.
		if err := os.WriteFile(c.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			m.Close()
			return fmt.Errorf("pid file: %w", err)
		}
		defer os.Remove(c.PIDFile)
	}
	return waitForSignal(ctx, m, c.DrainTimeout)
}

// waitForSignal blocks until a signal or ctx ends the service. SIGTERM (or
// ctx) drains: new calls are refused and calls in progress may go on for up
// to drain, and a second signal ends them at once. SIGINT ends calls now.
func waitForSignal(ctx context.Context, m *Main, drain time.Duration) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	var sig os.Signal = syscall.SIGTERM
	select {
	case sig = <-sigs:
	case <-ctx.Done():
	}
	if sig == syscall.SIGINT {
		m.Logger.Info("interrupted: ending calls now", "active_calls", m.Switch.ActiveCalls())
		return m.Close()
	}
	m.Logger.Info("shutting down: refusing new calls, waiting for calls in progress",
		"drain_timeout", drain, "active_calls", m.Switch.ActiveCalls())
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			m.Logger.Info("second signal: ending calls now")
			cancel()
		case <-dctx.Done():
		}
	}()
	if err := m.Shutdown(dctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// sweepRetention finishes recordings stuck in `recording`, destroys
// recordings past their tenant's retention and, with S3, aborts the
// multipart uploads a crash lost (abort, nil without S3), at start and
// then every interval, until the service closes.
func (m *Main) sweepRetention(ctx context.Context, svc *recordings.Service,
	abort func(context.Context, time.Time, func(context.Context, string) (bool, error)) (int, error), interval time.Duration) {
	m.every(ctx, interval, func(ctx context.Context) {
		n, err := svc.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			m.Logger.Error("recording retention sweep", "err", err, "destroyed", n)
		} else if n > 0 {
			m.Logger.Info("recording retention sweep", "destroyed", n)
		}
		if abort == nil {
			return
		}
		if n, err := svc.AbortLostUploads(ctx, abort); err != nil && ctx.Err() == nil {
			m.Logger.Error("aborting lost recording uploads", "err", err, "aborted", n)
		} else if n > 0 {
			m.Logger.Info("aborted recording uploads lost in a crash", "aborted", n)
		}
	}, nil)
}

// expireGrants ends access grants whose time is up, auditing each.
func (m *Main) expireGrants(ctx context.Context, grants *metadata.GrantStore, interval time.Duration) {
	m.every(ctx, interval, func(ctx context.Context) {
		if n, err := grants.ExpireGrants(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Error("grant expiry", "err", err)
		} else if n > 0 {
			m.Logger.Info("grants expired", "count", n)
		}
	}, nil)
}

// keepRegistered starts a registration loop for every trunk that is to be
// registered, and every interval picks up trunks added, changed or
// removed since.
func (m *Main) keepRegistered(ctx context.Context, routes *metadata.RouteStore, interval time.Duration) {
	current := map[sb.ID]sb.OutboundRoute{}
	m.every(ctx, interval, func(ctx context.Context) {
		list, err := routes.RegisteringRoutes(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.Logger.Error("trunks to register", "err", err)
			}
			return
		}
		seen := map[sb.ID]bool{}
		for _, r := range list {
			seen[r.TrunkID] = true
			if current[r.TrunkID] != r {
				current[r.TrunkID] = r
				m.SIP.Register(r)
			}
		}
		for id := range current {
			if !seen[id] {
				delete(current, id)
				m.SIP.Unregister(id)
			}
		}
	}, nil)
}

// listenSignOuts closes the operator sockets, on this instance, of the
// people whose sessions any instance ended (disabled, new role, password
// reset), until ctx ends.
func (m *Main) listenSignOuts(ctx context.Context) {
	for ctx.Err() == nil {
		if err := metadata.ListenSignOuts(ctx, m.DB, m.API.SignedOut); err != nil && ctx.Err() == nil {
			m.Logger.Warn("listening for sign-outs", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// background runs fn on its own goroutine until the service closes.
func (m *Main) background(ctx context.Context, fn func(context.Context)) {
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	prev := m.stopLoops
	m.stopLoops = func() {
		stop()
		if prev != nil {
			prev()
		}
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn(ctx)
	}()
}

// every runs fn at once and then every interval on its own goroutine
// until the service closes; then last, if set, runs once.
func (m *Main) every(ctx context.Context, interval time.Duration, fn func(context.Context), last func()) {
	m.background(ctx, func(ctx context.Context) {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			fn(ctx)
			select {
			case <-ctx.Done():
				if last != nil {
					last()
				}
				return
			case <-tick.C:
			}
		}
	})
}

// routingCacheAge is how long into a database outage the last known
// trunks and queues still route calls.
const routingCacheAge = 12 * time.Hour

// spoolFlush is how often recordings waiting in the spool are offered to
// the store again: an empty spool costs one directory read.
const spoolFlush = 5 * time.Second

// recoverRecordings readies what calls left in the store's folder when
// the process last died (recover) and records those recordings as
// truncated, playable to their last whole segment.
func (m *Main) recoverRecordings(ctx context.Context, recover func() ([]string, error), svc *recordings.Service) {
	keys, err := recover()
	if err != nil {
		m.Logger.Error("recording recovery", "err", err)
	}
	n, err := svc.Recovered(ctx, keys)
	if err != nil {
		m.Logger.Error("recording recovery", "err", err)
	}
	if n > 0 {
		m.Logger.Warn("recovered recordings cut short by a crash", "count", n)
	}
}

// flushSpool uploads the spool every spoolFlush until the service closes.
func (m *Main) flushSpool(ctx context.Context, spool *recordings.SpoolStore) {
	m.every(ctx, spoolFlush, func(ctx context.Context) {
		if pending, err := spool.Flush(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Warn("recordings waiting for the store", "pending", pending, "err", err)
		}
	}, nil)
}

// openRecordingStore opens where sealed recordings go.
// A remote store gets a local spool in front: recordings are written there
// as calls go on and uploaded when they complete, or when the store is
// back after an outage.
func openRecordingStore(ctx context.Context, c *Config) (recordings.Store, error) {
	if c.Recordings == "s3" {
		s, err := recordings.NewS3Store(ctx, c.S3)
		if err != nil {
			return nil, fmt.Errorf("recordings: %w", err)
		}
		spool, err := recordings.NewSpoolStore(c.RecordingSpool, s)
		if err != nil {
			return nil, fmt.Errorf("recordings: %w", err)
		}
		return spool, nil
	}
	s, err := recordings.NewDirStore(c.Recordings)
	if err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	return s, nil
}

// recordingStoreName says where recordings go, without credentials.
func recordingStoreName(c *Config) string {
	if c.Recordings == "s3" {
		return "s3 bucket " + c.S3.Bucket
	}
	return c.Recordings
}

// mediaSessions adapts the webrtc engine to what the api needs.
type mediaSessions struct{ e *webrtc.Engine }

func (s mediaSessions) NewMediaSession() (api.MediaSession, error) { return s.e.NewSession() }

// answerPeer and offerPeer make a WhatsApp user's WebRTC peer: from their
// offer, or with ours.
func (s mediaSessions) answerPeer(ctx context.Context, offer string) (whatsapp.Peer, string, error) {
	v, answer, err := s.e.AnswerVisitor(ctx, offer)
	if err != nil {
		return nil, "", err
	}
	return v, answer, nil
}

func (s mediaSessions) offerPeer(ctx context.Context) (whatsapp.OfferingPeer, string, error) {
	v, offer, err := s.e.OfferVisitor(ctx)
	if err != nil {
		return nil, "", err
	}
	return v, offer, nil
}

func (s mediaSessions) answerVisitor(ctx context.Context, offer string) (api.VisitorLeg, string, error) {
	v, answer, err := s.e.AnswerVisitor(ctx, offer)
	if err != nil {
		return nil, "", err
	}
	return v, answer, nil
}
