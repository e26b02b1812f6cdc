package main

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip"
)

// Config is the service's configuration, from flags and SWITCHBOARD_*
// environment variables (a flag wins over its variable).
type Config struct {
	DatabaseURL string
	HTTPAddr    string
	// HTTPTrustedProxies are the reverse proxies whose X-Forwarded-For or
	// Forwarded header names the client.
	HTTPTrustedProxies []netip.Prefix
	// MetricsAddr is /metrics' own listen address; empty: none.
	// MetricsToken, when set, also serves /metrics on HTTPAddr to
	// requests that bear it.
	MetricsAddr  string
	MetricsToken string
	// MetricsPprof also serves Go's runtime profiles (/debug/pprof/) on
	// MetricsAddr, for diagnosing the service's CPU and memory.
	MetricsPprof  bool
	SIPAddr       string
	SIPTransports []string // udp, tcp
	SIPTLSAddr    string
	TLSCert       string
	TLSKey        string
	PublicIP      netip.Addr
	RTPPorts      sb.PortRange
	ICEServers    []sb.ICEServer
	RingTimeout   time.Duration
	MediaTimeout  time.Duration
	DrainTimeout  time.Duration
	// SIPMinSE is the shortest session interval (RFC 4028) a trunk may
	// ask for; SIPSessionExpires the one we ask for on calls we place.
	SIPMinSE          time.Duration
	SIPSessionExpires time.Duration
	// ReconnectGrace is how long a call waits for an operator whose page
	// lost its connection.
	ReconnectGrace time.Duration
	LogLevel       string
	RegisterSync   time.Duration // how often trunks to register are looked up
	SIPShield      sip.ShieldConfig
	// SIPTrustedProxies are the SIP front-ends whose X-Switchboard-Source
	// header names a request's original source.
	SIPTrustedProxies []netip.Prefix
	// Instance names this process among those sharing the database: after
	// a crash it closes the records of its own calls only.
	Instance string
	// ClusterSecret, shared by the instances on one database, lets a call
	// go to an operator free on another instance; ClusterAddr is where
	// they reach this one's SIP.
	ClusterSecret []byte
	ClusterAddr   string
	HEPCollector  string // host:port; empty: no HEP export
	HEPCaptureID  uint32
	HEPPassword   string
	LogFormat     string                // json or text
	LogLevels     map[string]slog.Level // by component
	// WebRTCLoopback makes the server gather loopback ICE candidates only:
	// for tests and for a browser on the same machine inside a network
	// namespace.
	WebRTCLoopback bool
	// WebRTCUDPPort is the one UDP port of every operator's media: 0 takes
	// the first free port of RTPPorts; -1 gives each PeerConnection its
	// own port from RTPPorts.
	WebRTCUDPPort int
	// OverloadBacklog is how many call-record steps may wait for the
	// database before new calls are refused with 503; 0: never.
	OverloadBacklog int
	// OverloadSIPDelay is how long SIP may stand in the UDP socket's
	// queue before new calls are refused with 503; 0: never.
	OverloadSIPDelay time.Duration
	// OverloadDBDelay is how long a call-record step may wait for the
	// database before new calls are refused with 503; 0: never.
	OverloadDBDelay time.Duration
	SecureCookies   bool
	// WebhookPrivateTargets lets webhooks, and WhatsApp connections' Graph
	// API URLs, go to loopback and private addresses (tests; receivers on
	// the same private network).
	WebhookPrivateTargets bool

	// Recordings is where sealed recordings go: a folder, or "s3" for the
	// S3 settings; empty records nothing.
	Recordings     string
	S3             recordings.S3Config
	Keyring        *recordings.Keyring
	RetentionSweep time.Duration
	RecordingSpool string
	// Journal is the file where call records wait while the database is
	// unreachable.
	Journal  string
	AuditKey ed25519.PrivateKey // nil: no checkpoints are signed
	// PIDFile, when set, holds serve's process ID while it runs, for
	// `switchboard drain`; it goes once the calls are over.
	PIDFile string
}

// setting is one configuration item: its flag, its variable and its help.
type setting struct {
	name, env, def, help string
	// secret settings show only whether they are set in help.
	secret bool
	// boolean settings are given as -name or -name=false, as every
	// boolean flag is.
	boolean bool
	value   *string
}

// boolSetting is a boolean setting's flag: it keeps the text, which
// parseConfig checks, and lets -name stand for -name=true.
type boolSetting struct{ v *string }

func (b boolSetting) IsBoolFlag() bool { return true }
func (b boolSetting) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolSetting) Set(s string) error { *b.v = s; return nil }

// configFlags registers the service settings on fs and returns a function
// that validates them into a Config once fs is parsed.
func configFlags(fs *flag.FlagSet, defaults map[string]string) func() (*Config, error) {
	settings := []*setting{
		{name: "database-url", env: "SWITCHBOARD_DATABASE_URL", help: "PostgreSQL URL, e.g. postgres://user:pass@host/db", secret: true},
		{name: "http-addr", env: "SWITCHBOARD_HTTP_ADDR", def: ":8080", help: "HTTP listen address (operator page, API, signaling)"},
		{name: "http-trusted-proxies", env: "SWITCHBOARD_HTTP_TRUSTED_PROXIES", help: "comma-separated addresses or CIDRs of the reverse proxies in front of http-addr: only from them is the client taken from X-Forwarded-For (else Forwarded), the rightmost address that is not one of them"},
		{name: "metrics-addr", env: "SWITCHBOARD_METRICS_ADDR", def: "127.0.0.1:9090", help: "listen address of /metrics alone (it shows volumes across tenants: keep it off the public network); off: none"},
		{name: "metrics-pprof", env: "SWITCHBOARD_METRICS_PPROF", def: "false", help: "also serve Go's runtime profiles (/debug/pprof/: CPU, heap, goroutines) on metrics-addr, for diagnosing the service's own cost; they show code paths and memory, so keep metrics-addr private", boolean: true},
		{name: "metrics-token", env: "SWITCHBOARD_METRICS_TOKEN", help: "bearer token that also serves /metrics on http-addr (at least 16 characters; without it http-addr has no /metrics)", secret: true},
		{name: "sip-addr", env: "SWITCHBOARD_SIP_ADDR", def: ":5060", help: "SIP listen address for UDP and TCP"},
		{name: "sip-transports", env: "SWITCHBOARD_SIP_TRANSPORTS", def: "udp,tcp", help: "SIP transports on sip-addr: udp, tcp or both"},
		{name: "sip-trusted-proxies", env: "SWITCHBOARD_SIP_TRUSTED_PROXIES", help: "comma-separated addresses or CIDRs of the SIP front-ends (deploy/kamailio/dispatcher.cfg) in front of sip-addr: only from them is a request's source taken from its " + sip.SourceHeader + " header, for trunk recognition, the call's record and the rate limits and bans"},
		{name: "sip-tls-addr", env: "SWITCHBOARD_SIP_TLS_ADDR", help: "SIP over TLS listen address (needs tls-cert and tls-key)"},
		{name: "tls-cert", env: "SWITCHBOARD_TLS_CERT", help: "PEM certificate for SIP over TLS"},
		{name: "tls-key", env: "SWITCHBOARD_TLS_KEY", help: "PEM private key for SIP over TLS"},
		{name: "public-ip", env: "SWITCHBOARD_PUBLIC_IP", help: "address announced in SDP and ICE when behind 1:1 NAT"},
		{name: "rtp-ports", env: "SWITCHBOARD_RTP_PORTS", def: "10000-20000", help: "UDP port range for media, low-high"},
		{name: "overload-backlog", env: "SWITCHBOARD_OVERLOAD_BACKLOG", def: strconv.Itoa(defaultOverloadBacklog), help: "call-record writes waiting for the database past which new calls are refused at once with 503 and Retry-After, so the calls taken keep their pace (0, the default: never refuse)"},
		{name: "overload-sip-delay", env: "SWITCHBOARD_OVERLOAD_SIP_DELAY", def: defaultOverloadSIPDelay, help: "how long SIP may stand in the UDP socket's queue (every message of 200 ms read this long or longer after it arrived) before new calls are refused at once with 503 and Retry-After until it has caught up, so the calls taken keep their pace; calls in progress are never refused (0: never refuse)"},
		{name: "overload-db-delay", env: "SWITCHBOARD_OVERLOAD_DB_DELAY", def: defaultOverloadDBDelay, help: "how long a call's record may wait for the database before new calls are refused at once with 503 and Retry-After until it has caught up; a database found unreachable is not waited for (the journal keeps the records) (0: never refuse)"},
		{name: "webrtc-udp-port", env: "SWITCHBOARD_WEBRTC_UDP_PORT", help: "the one UDP port every browser's WebRTC media uses (operators as ICE-lite sessions); empty: the first free port of rtp-ports; off: a pion PeerConnection per operator, each on a port from rtp-ports"},
		{name: "ice-servers", env: "SWITCHBOARD_ICE_SERVERS", help: "comma-separated STUN/TURN URLs handed to browsers"},
		{name: "turn-username", env: "SWITCHBOARD_TURN_USERNAME", help: "username for the TURN servers"},
		{name: "turn-password", env: "SWITCHBOARD_TURN_PASSWORD", help: "password for the TURN servers", secret: true},
		{name: "ring-timeout", env: "SWITCHBOARD_RING_TIMEOUT", def: "20s", help: "how long one operator is rung"},
		{name: "media-timeout", env: "SWITCHBOARD_MEDIA_TIMEOUT", def: "30s", help: "a call with no RTP from the caller for this long is ended"},
		{name: "sip-min-se", env: "SWITCHBOARD_SIP_MIN_SE", def: "90s", help: "the shortest session-timer interval (RFC 4028 Min-SE) a trunk may ask for; a shorter one is refused with 422, or raised to it when the trunk does not support timers"},
		{name: "sip-session-expires", env: "SWITCHBOARD_SIP_SESSION_EXPIRES", def: "30m", help: "the session-timer interval (RFC 4028) asked for on calls placed through trunks"},
		{name: "reconnect-grace", env: "SWITCHBOARD_RECONNECT_GRACE", def: "20s", help: "how long a call waits, the caller hearing silence, for an operator whose page lost its connection (0: end it at once)"},
		{name: "drain-timeout", env: "SWITCHBOARD_DRAIN_TIMEOUT", def: "5m", help: "on SIGTERM, how long calls may go on before they are ended"},
		{name: "instance", env: "SWITCHBOARD_INSTANCE", help: "this instance's name among those sharing the database (default: the host name)"},
		{name: "cluster-secret", env: "SWITCHBOARD_CLUSTER_SECRET", help: "shared by the instances on one database (at least 16 characters; prefer the variable): a call nobody here is free for goes to an operator free on another instance", secret: true},
		{name: "cluster-addr", env: "SWITCHBOARD_CLUSTER_ADDR", help: "host:port the other instances reach this one's SIP (UDP) at (default: the address sip-addr is bound to)"},
		{name: "register-sync", env: "SWITCHBOARD_REGISTER_SYNC", def: "1m", help: "how often trunks to register are looked up again"},
		{name: "sip-rate-limit", env: "SWITCHBOARD_SIP_RATE_LIMIT", def: "50", help: "SIP messages a second a source may send before a trunk's call came from it (0: no limit); a thousand dropped bans it"},
		{name: "sip-ban-failures", env: "SWITCHBOARD_SIP_BAN_FAILURES", def: "10", help: "refusals (unknown source, wrong password) in a minute that ban a source (0: never)"},
		{name: "sip-ban-time", env: "SWITCHBOARD_SIP_BAN_TIME", def: "10m", help: "how long a banned SIP source is ignored"},
		{name: "hep-collector", env: "SWITCHBOARD_HEP_COLLECTOR", help: "host:port of a Homer collector: every SIP message is sent there as HEPv3, redacted by its tenant's trace policy"},
		{name: "hep-capture-id", env: "SWITCHBOARD_HEP_CAPTURE_ID", def: "2001", help: "the capture agent ID in HEP packets"},
		{name: "hep-password", env: "SWITCHBOARD_HEP_PASSWORD", help: "the collector's HEP password, if it wants one", secret: true},
		{name: "log-level", env: "SWITCHBOARD_LOG_LEVEL", def: "info", help: "debug, info, warn or error"},
		{name: "log-levels", env: "SWITCHBOARD_LOG_LEVELS", help: "levels by component, e.g. sip=debug,api=warn (components: sip, webrtc, api, calls)"},
		{name: "log-format", env: "SWITCHBOARD_LOG_FORMAT", def: "json", help: "json (one object a line) or text"},
		{name: "webrtc-loopback", env: "SWITCHBOARD_WEBRTC_LOOPBACK", def: "false", help: "offer loopback ICE candidates only (tests, same-machine browsers)", boolean: true},
		{name: "webhook-private-targets", env: "SWITCHBOARD_WEBHOOK_PRIVATE_TARGETS", def: "false", help: "let webhooks go to loopback and private addresses (by default only public ones: a tenant's URL must not reach this network)", boolean: true},
		{name: "secure-cookies", env: "SWITCHBOARD_SECURE_COOKIES", def: "false", help: "mark session cookies Secure (when served behind HTTPS)", boolean: true},
		{name: "recordings", env: "SWITCHBOARD_RECORDINGS", help: "where consented call recordings go, encrypted: a folder, or s3 (empty: none)"},
		{name: "pid-file", env: "SWITCHBOARD_PID_FILE", help: "file that holds the process ID while serve runs and is removed once it has drained; switchboard drain reads it"},
		{name: "journal", env: "SWITCHBOARD_JOURNAL", def: "switchboard-journal", help: "local file where call records wait while the database is unreachable (fsync'd, replayed in order)"},
		{name: "recording-spool", env: "SWITCHBOARD_RECORDING_SPOOL", def: "switchboard-spool", help: "local folder where recordings wait for the S3 store (ciphertext only)"},
		{name: "audit-key", env: "SWITCHBOARD_AUDIT_KEY", help: "Ed25519 seed (base64, or @file) that signs audit checkpoints every 10 minutes", secret: true},
		{name: "retention-sweep", env: "SWITCHBOARD_RETENTION_SWEEP", def: "1h", help: "how often what has passed its tenant's retention is removed: traces, samples, call records (anonymised), recordings"},
		{name: "keyring", env: "SWITCHBOARD_KEYRING", help: "recording key-encryption keys: VERSION:BASE64KEY,... (32-byte keys; highest version active)", secret: true},
		{name: "s3-endpoint", env: "SWITCHBOARD_S3_ENDPOINT", help: "S3-compatible endpoint URL (empty: AWS)"},
		{name: "s3-region", env: "SWITCHBOARD_S3_REGION", def: "us-east-1", help: "S3 region"},
		{name: "s3-bucket", env: "SWITCHBOARD_S3_BUCKET", help: "S3 bucket for recordings"},
		{name: "s3-access-key", env: "SWITCHBOARD_S3_ACCESS_KEY", help: "S3 access key (with the secret key; neither: the AWS default chain, e.g. AWS_* variables, EKS IRSA, an instance role)", secret: true},
		{name: "s3-secret-key", env: "SWITCHBOARD_S3_SECRET_KEY", help: "S3 secret key (prefer the variable to the flag)", secret: true},
		{name: "s3-path-style", env: "SWITCHBOARD_S3_PATH_STYLE", def: "true", help: "path-style S3 addressing (MinIO and most non-AWS servers)", boolean: true},
	}
	for _, s := range settings {
		def := s.def
		if d, ok := defaults[s.name]; ok {
			def = d
		}
		if v, ok := os.LookupEnv(s.env); ok {
			def = v
		}
		if s.boolean {
			s.value = &def
			fs.Var(boolSetting{s.value}, s.name, s.help+" ["+s.env+"]")
		} else {
			s.value = fs.String(s.name, def, s.help+" ["+s.env+"]")
		}
		if s.secret {
			hideDefault(fs, s.name)
		}
	}
	get := func(name string) string {
		for _, s := range settings {
			if s.name == name {
				return strings.TrimSpace(*s.value)
			}
		}
		return ""
	}
	return func() (*Config, error) { return parseConfig(get) }
}

// parseConfig validates the settings, collecting every problem so a person
// can fix them all at once.
func parseConfig(get func(string) string) (*Config, error) {
	var errs []error
	var err error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c := &Config{
		DatabaseURL: get("database-url"),
		HTTPAddr:    get("http-addr"),
		SIPAddr:     get("sip-addr"),
		SIPTLSAddr:  get("sip-tls-addr"),
		TLSCert:     get("tls-cert"),
		TLSKey:      get("tls-key"),
		LogLevel:    get("log-level"),
	}
	for _, a := range []struct{ name, v string }{{"http-addr", c.HTTPAddr}, {"sip-addr", c.SIPAddr}, {"sip-tls-addr", c.SIPTLSAddr}} {
		if a.v == "" && a.name == "sip-tls-addr" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad("%s %q is not host:port (e.g. 127.0.0.1:5060 or :5060)", a.name, a.v)
		}
	}
	switch c.MetricsAddr = get("metrics-addr"); c.MetricsAddr {
	case "off":
		c.MetricsAddr = ""
	case "":
	default:
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics-addr %q is not host:port (e.g. 127.0.0.1:9090) or off", c.MetricsAddr)
		}
	}
	if c.MetricsToken = get("metrics-token"); c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		bad("metrics-token must be at least 16 characters")
	}
	if c.HTTPTrustedProxies, err = parseTrustedProxies(get("http-trusted-proxies")); err != nil {
		bad("http-trusted-proxies: %v", err)
	}
	if c.SIPTrustedProxies, err = parseTrustedProxies(get("sip-trusted-proxies")); err != nil {
		bad("sip-trusted-proxies: %v", err)
	}
	for _, t := range strings.Split(get("sip-transports"), ",") {
		switch t = strings.ToLower(strings.TrimSpace(t)); t {
		case "udp", "tcp":
			c.SIPTransports = append(c.SIPTransports, t)
		case "":
		default:
			bad("sip-transports: %q is not udp or tcp (TLS has its own address: sip-tls-addr)", t)
		}
	}
	if len(c.SIPTransports) == 0 {
		bad("sip-transports names no transport")
	}
	if (c.SIPTLSAddr != "") != (c.TLSCert != "" && c.TLSKey != "") {
		bad("SIP over TLS needs all of sip-tls-addr, tls-cert and tls-key")
	}
	if v := get("public-ip"); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil || ip.IsUnspecified() {
			bad("public-ip %q is not an IP address", v)
		}
		c.PublicIP = ip
	}
	if c.RTPPorts, err = sb.ParsePortRange(get("rtp-ports")); err != nil {
		bad("rtp-ports: %s", sb.ErrorMessage(err))
	} else if !c.RTPPorts.IsZero() && int(c.RTPPorts.Max)-int(c.RTPPorts.Min) < 10 {
		bad("rtp-ports %q is too small: each call needs its own port", get("rtp-ports"))
	}
	c.OverloadBacklog = defaultOverloadBacklog
	if v := get("overload-backlog"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			bad("overload-backlog %q is not a count (0: never refuse)", v)
		} else {
			c.OverloadBacklog = n
		}
	}
	switch v := get("webrtc-udp-port"); v {
	case "":
	case "off":
		c.WebRTCUDPPort = -1
	default:
		if p, err := strconv.ParseUint(v, 10, 16); err != nil || p == 0 {
			bad("webrtc-udp-port %q is not a UDP port (1..65535), empty or off", v)
		} else {
			c.WebRTCUDPPort = int(p)
		}
	}
	if urls := get("ice-servers"); urls != "" {
		s := sb.ICEServer{Username: get("turn-username"), Credential: get("turn-password")}
		for _, u := range strings.Split(urls, ",") {
			u = strings.TrimSpace(u)
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				bad("ice-servers: %q must start with stun:, turn: or turns:", u)
			}
			s.URLs = append(s.URLs, u)
		}
		c.ICEServers = []sb.ICEServer{s}
	}
	// Each duration's default when unset: the flags give their own, a
	// service configured by its environment alone (and the tests) these.
	durations := []struct {
		name string
		dst  *time.Duration
		min  time.Duration
		def  string
	}{{"ring-timeout", &c.RingTimeout, time.Second, ""}, {"media-timeout", &c.MediaTimeout, time.Second, ""}, {"drain-timeout", &c.DrainTimeout, 0, ""},
		{"reconnect-grace", &c.ReconnectGrace, 0, "20s"}, {"sip-min-se", &c.SIPMinSE, time.Second, "90s"}, {"sip-session-expires", &c.SIPSessionExpires, time.Second, "30m"},
		{"retention-sweep", &c.RetentionSweep, time.Second, ""}, {"register-sync", &c.RegisterSync, 10 * time.Millisecond, "1m"},
		{"overload-sip-delay", &c.OverloadSIPDelay, 0, defaultOverloadSIPDelay}, {"overload-db-delay", &c.OverloadDBDelay, 0, defaultOverloadDBDelay}}
	for _, d := range durations {
		raw := get(d.name)
		if raw == "" {
			raw = d.def
		}
		v, err := time.ParseDuration(raw)
		if err != nil || v < d.min {
			bad("%s %q must be a duration of at least %s, e.g. 20s", d.name, raw, d.min)
		}
		*d.dst = v
	}
	if c.Instance = get("instance"); c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
	if v := get("cluster-secret"); v != "" {
		if len(v) < 16 {
			bad("cluster-secret must be at least 16 characters")
		}
		c.ClusterSecret = []byte(v)
	}
	if c.ClusterAddr = get("cluster-addr"); c.ClusterAddr != "" {
		if _, err := netip.ParseAddrPort(c.ClusterAddr); err != nil {
			bad("cluster-addr %q is not ip:port", c.ClusterAddr)
		}
	}
	c.SIPShield = sip.DefaultShield
	for _, n := range []struct {
		name string
		set  func(float64)
	}{{"sip-rate-limit", func(v float64) { c.SIPShield.Rate = v }}, {"sip-ban-failures", func(v float64) { c.SIPShield.Failures = int(v) }}} {
		if raw := get(n.name); raw != "" {
			v, err := strconv.ParseFloat(raw, 64)
			if err != nil || v < 0 || v > 1e6 {
				bad("%s %q must be a number from 0", n.name, raw)
			}
			n.set(v)
		}
	}
	if raw := get("sip-ban-time"); raw != "" {
		v, err := time.ParseDuration(raw)
		if err != nil || v < time.Second {
			bad("sip-ban-time %q must be a duration of at least 1s", raw)
		}
		c.SIPShield.BanFor = v
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level %q is not debug, info, warn or error", c.LogLevel)
	}
	if levels, err := parseLevels(get("log-levels")); err != nil {
		bad("log-levels: %v", err)
	} else {
		c.LogLevels = levels
	}
	c.HEPCollector, c.HEPPassword = get("hep-collector"), get("hep-password")
	if c.HEPCollector != "" {
		if _, _, err := net.SplitHostPort(c.HEPCollector); err != nil {
			bad("hep-collector %q is not host:port", c.HEPCollector)
		}
		id, err := strconv.ParseUint(get("hep-capture-id"), 10, 32)
		if err != nil {
			bad("hep-capture-id %q is not a number", get("hep-capture-id"))
		}
		c.HEPCaptureID = uint32(id)
	}
	switch c.LogFormat = get("log-format"); c.LogFormat {
	case "":
		c.LogFormat = "json"
	case "json", "text":
	default:
		bad("log-format %q is not json or text", c.LogFormat)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"webrtc-loopback", &c.WebRTCLoopback}, {"secure-cookies", &c.SecureCookies}, {"s3-path-style", &c.S3.PathStyle},
		{"webhook-private-targets", &c.WebhookPrivateTargets}, {"metrics-pprof", &c.MetricsPprof}} {
		if v := get(b.name); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				bad("%s %q must be true or false", b.name, v)
			}
			*b.dst = on
		}
	}
	if c.MetricsPprof && c.MetricsAddr == "" {
		bad("metrics-pprof needs metrics-addr: the profiles are served there only")
	}
	if v := get("audit-key"); v != "" {
		k, err := parseAuditKey(v)
		if err != nil {
			bad("audit-key: %v", err)
		}
		c.AuditKey = k
	}
	c.Recordings = get("recordings")
	c.RecordingSpool = get("recording-spool")
	c.PIDFile = get("pid-file")
	if c.Journal = get("journal"); c.Journal == "" {
		c.Journal = "switchboard-journal"
	}
	if c.Recordings == "s3" && c.RecordingSpool == "" {
		bad("recordings in s3 need a recording-spool folder")
	}
	c.S3.Endpoint, c.S3.Region, c.S3.Bucket = get("s3-endpoint"), get("s3-region"), get("s3-bucket")
	c.S3.AccessKey, c.S3.SecretKey = get("s3-access-key"), get("s3-secret-key")
	// The keyring seals recordings' keys and trunks' outbound passwords.
	if get("keyring") != "" || c.Recordings != "" {
		ring, err := recordings.ParseKeyring(get("keyring"))
		if err != nil {
			bad("recordings and outbound trunk passwords need a keyring (keyring / SWITCHBOARD_KEYRING): %v", err)
		}
		c.Keyring = ring
	}
	if c.Recordings != "" {
		if c.Recordings == "s3" && c.S3.Bucket == "" {
			bad("recordings in s3 need s3-bucket")
		}
	}
	return c, errors.Join(errs...)
}

// parseTrustedProxies reads a comma-separated list of addresses and CIDRs
// (an address is a network of one).
func parseTrustedProxies(raw string) ([]netip.Prefix, error) {
	var nets []netip.Prefix
	for _, v := range strings.Split(raw, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if a, err := netip.ParseAddr(v); err == nil {
			nets = append(nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR, e.g. 10.0.0.0/8", v)
		}
		nets = append(nets, p.Masked())
	}
	return nets, nil
}

// The overload delays by default. SIP that stands 100 ms in the socket's
// queue is answered late enough for peers to retransmit at T1 (500 ms)
// soon, which adds to the load; a record that waits a second for the
// database holds its call's setup as long. Measured with SIPp on the
// 2-CPU machine (docs/performance.md): past capacity they hold the best
// rate; below it they refused nothing, or 37 of 10,000 calls at 500 a
// second when the machine was at its limit.
const (
	defaultOverloadSIPDelay = "100ms"
	defaultOverloadDBDelay  = "1s"
)

// defaultOverloadBacklog is 0: no call is refused for the backlog unless
// the operator sets a limit. Measured with SIPp at 500 calls/s on the
// 2-CPU machine (docs/performance.md), a limit of 1,000 refused half the
// calls and halved the calls completed (96/s against 183/s with none),
// 4,000 cost a tenth: the count of waiting writes is not yet a signal that
// holds the best rate.
const defaultOverloadBacklog = 0
