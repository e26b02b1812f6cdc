// Package api is switchboard's HTTP side (chi): the REST API for call
// records, operator logins, the operator WebSocket, and the embedded
// operator page.
package api

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	sb "github.com/switchboard-voice/switchboard"
)

//go:embed web
var webFS embed.FS

// openAPI describes the whole REST API; tests hold it to the routes.
//
//go:embed openapi.json
var openAPI []byte

// Description returns the OpenAPI description of the REST API (served at
// /v1/openapi.json), which tests and the generated client are held to.
func Description() []byte { return bytes.Clone(openAPI) }

// Config tunes the HTTP side.
type Config struct {
	Logger        *slog.Logger
	SecureCookies bool
	ICEServers    []sb.ICEServer
	RingTimeout   time.Duration
	SessionTTL    time.Duration // default 12h
	// Now is the clock of login lockouts and API rate limits; nil: the
	// system's.
	Now func() time.Time
	// TrustedProxies are the reverse proxies whose X-Forwarded-For or
	// Forwarded header names the client; from anyone else those headers
	// are ignored.
	TrustedProxies []netip.Prefix
	// MetricsToken, when set, serves /metrics here to requests that bear
	// it (Authorization: Bearer); without it /metrics is not served here
	// (it shows volumes across tenants: it has its own listener).
	MetricsToken string
	// Observe hears each answered request: its route pattern ("" when no
	// route matched), method, status and duration. nil: nobody.
	Observe func(route, method string, status int, d time.Duration)
}

// CallControl is what the operator socket asks of call control;
// *switchboard.Switch implements it.
type CallControl interface {
	Available(op sb.OperatorConn) error
	Away(opID sb.ID)
	Accept(opID, callID sb.ID) error
	Decline(opID, callID sb.ID) error
	Hangup(opID, callID sb.ID) error
	Mute(opID, callID sb.ID, muted bool) error
	// OperatorConsent records that the operator confirmed (or the caller
	// refused) recording consent after the announcement.
	OperatorConsent(opID, callID sb.ID, given bool) error
	// TransferCall hands the operator's call on (blind): to another
	// operator, a queue or a SIP URI.
	TransferCall(opID, callID sb.ID, t sb.TransferTarget) error
	// Hold puts the operator's caller on hold, or takes them off.
	Hold(opID, callID sb.ID, held bool) error
	// Dial places a call from the operator to a number.
	Dial(opID sb.ID, number string) (sb.ID, error)
	// OperatorStats takes the browser's report of the audio it receives.
	OperatorStats(opID, callID sb.ID, q sb.QualitySample) error
	Disconnected(opID sb.ID)
	// Draining reports that this instance takes no more calls: operators
	// are sent to another.
	Draining() bool
	// Reattach gives an operator's new connection the call they were on
	// when their last one dropped; announce is told the call first.
	Reattach(op sb.OperatorConn, announce func(sb.CallOffer)) bool
	// OperatorPause pauses or resumes the recording of the operator's call.
	OperatorPause(opID, callID sb.ID, paused bool) error
	// Presence is the state of the tenant's operators connected here.
	Presence(tenantID sb.ID) map[sb.ID]string
}

// ConsentControl takes recording consent stated during a call;
// *switchboard.Switch implements it.
type ConsentControl interface {
	SetConsent(tenantID, callID sb.ID, c sb.Consent) error
	// PauseRecording pauses or resumes; by names who asked on the
	// timeline, as a consent's By does.
	PauseRecording(tenantID, callID sb.ID, paused bool, by string) error
}

// MediaSessionFactory makes an operator's PeerConnection.
type MediaSessionFactory interface {
	NewMediaSession() (MediaSession, error)
}

// MediaSession is an operator's shift-long PeerConnection.
type MediaSession interface {
	OnICECandidate(fn func(sb.ICECandidate))
	OnConnectionStateChange(fn func(state string))
	CreateOffer(ctx context.Context) (sdp string, err error)
	SetAnswer(sdp string) error
	AddICECandidate(c sb.ICECandidate) error
	Media() sb.MediaPort
	Close() error
}

// Deps are the services the HTTP side uses.
type Deps struct {
	Calls         sb.CallService
	Traces        sb.CallTraceService // nil: no call has a trace
	References    sb.CallReferencer   // nil: calls take no references
	Ender         CallEnder           // nil: calls are not ended through the API
	Originator    Originator          // nil: no click-to-call
	Webhooks      sb.WebhookService   // nil: no webhooks
	Registrations Registrations       // nil: trunks are listed without registration state
	Recordings    sb.RecordingService // nil: no call has a recording
	Consents      ConsentControl      // nil: consent cannot be stated through the API
	Audit         sb.AuditLog         // nil: nothing is audited (tests of other parts)
	AuditReader   sb.AuditService     // nil: GET /v1/audit is not served
	Grants        sb.GrantService     // nil: no recording can be heard
	Player        sb.RecordingPlayer  // nil: no recording can be heard
	Tenants       sb.TenantService    // support engineers' visits to other tenants
	Trunks        sb.TrunkService     // nil: trunks are not listed
	Users         sb.UserService
	APIKeys       sb.APIKeyService
	Sessions      sb.SessionService
	CallControl   CallControl
	MediaSessions MediaSessionFactory
	Health        func(context.Context) error // the database
	// Names names the people, keys, trunks and queues pages show; nil:
	// they go unnamed.
	Names sb.Namer
	// Floor is the live view's operators and queue waiters; nil: none.
	Floor Floor
	// Checks are the other parts readiness depends on, by name (sip).
	Checks map[string]func(context.Context) error
	// Advisories are parts /readyz reports without being unready when
	// they fail (storage: the spool keeps recordings meanwhile).
	Advisories map[string]func(context.Context) error
	Metrics    http.Handler      // nil: no /metrics
	SIPLogging SIPLogging        // nil: SIP messages cannot be logged
	Ingress    *Ingress          // nil: no browser callers (WHIP)
	Queues     *Queues           // nil: no queues are listed
	Subjects   sb.SubjectService // nil: no data-subject requests
	Resources  *Resources        // nil: trunks, routes and queues are not changed here
	WhatsApp   *WhatsApp         // nil: no WhatsApp calling (Graph API mode)
	// Desk is what the operator page reads about calls (the caller, recent
	// calls, colleagues); nil: it shows none of that.
	Desk sb.Desk
	// Routes are the tenants' outbound routes; nil: operators are not
	// offered a dial form.
	Routes sb.RouteDirectory
}

// Registrations says where trunks' outbound registrations stand;
// *sip.Server implements it.
type Registrations interface {
	RegistrationState(trunkID sb.ID) (sb.Registration, bool)
}

// Originator is click-to-call; *switchboard.Switch implements it.
type Originator interface {
	Originate(tenantID, opID sb.ID, number string) (sb.ID, error)
}

// CallEnder ends and transfers calls in progress for integrations;
// *switchboard.Switch implements it.
type CallEnder interface {
	EndCall(tenantID, callID sb.ID) error
	TransferByAPI(tenantID, callID sb.ID, t sb.TransferTarget) error
}

// SIPLogging switches logging of SIP messages at run time; *sip.Server
// implements it.
type SIPLogging interface {
	SetTrunkLogging(trunkID sb.ID, on bool)
	SetCallLogging(ctx context.Context, tenantID sb.ID, sipCallID string, on bool) bool
}

// Server serves HTTP.
type Server struct {
	conf Config
	deps Deps
	log  *slog.Logger
	ops  *operators
	// visitors are browser callers' WHIP sessions.
	visitors visitors
	limits   *limits
}

// NewServer returns a server for the configuration and services.
func NewServer(c Config, d Deps) *Server {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Server{conf: c, deps: d, log: c.Logger, ops: newOperators(), limits: newLimits(c.Now)}
}

// sessionCookie is the name of the browser session cookie.
const sessionCookie = "sb_session"

// maxBody bounds any request body; login has its own, smaller bound.
const maxBody = 64 << 10

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	// Cross-origin protection refuses state-changing requests a browser
	// sends from another site (Sec-Fetch-Site, Origin), on top of the
	// SameSite=Strict session cookie; clients with API keys send neither
	// header and pass.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, sb.Errorf(sb.EFORBIDDEN, "cross-origin request refused"))
	}))
	// Browser callers' routes carry a token or a session URL, never a
	// cookie: other origins (the sites embedding the widget) may use them.
	csrf.AddInsecureBypassPattern("POST /v1/whip")
	csrf.AddInsecureBypassPattern("DELETE /v1/whip/{id}")
	csrf.AddInsecureBypassPattern("POST " + whatsAppWebhookPath) // Meta's server, signed with the app secret
	// limitBody first, on the server's own writer (a body too large then
	// closes the connection); then every request is observed (ID, access
	// log, metrics) and a panic answered, whatever follows does.
	r.Use(limitBody, s.observeRequests, s.recoverPanics, securityHeaders, csrf.Handler)
	r.Get("/", s.page("web/index.html"))
	r.Get("/app.js", s.page("web/app.js"))
	r.Get("/style.css", s.page("web/style.css"))
	r.Get("/console", s.page("web/console.html"))
	r.Get("/console.js", s.page("web/console.js"))
	r.Get("/setup.js", s.page("web/setup.js"))
	r.Get("/timeline.js", s.page("web/timeline.js"))
	r.Get("/live.js", s.page("web/live.js"))
	r.Get("/console.css", s.page("web/console.css"))
	r.Get("/password", s.page("web/password.html"))
	r.Get("/password.js", s.page("web/password.js"))
	r.Get("/widget", s.widgetPage("web/widget.html"))
	r.Get("/widget.js", s.widgetPage("web/widget.js"))
	r.Get("/widget.css", s.widgetPage("web/widget.css"))
	// Every page's icon; /favicon.ico too, which browsers ask for by
	// themselves (a 404 there is an error in the page's console).
	r.Get("/favicon.svg", s.page("web/favicon.svg"))
	r.Get("/favicon.ico", s.page("web/favicon.svg"))
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	if s.deps.Metrics != nil && s.conf.MetricsToken != "" {
		r.Method(http.MethodGet, "/metrics", s.requireToken(s.conf.MetricsToken, s.deps.Metrics))
	}
	r.Route("/v1", func(r chi.Router) {
		r.Get("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if _, err := w.Write(openAPI); err != nil {
				s.log.Debug("writing the API description", "err", err)
			}
		})
		r.Group(func(r chi.Router) {
			r.Use(cors)
			r.Options("/whip", func(http.ResponseWriter, *http.Request) {})
			r.Post("/whip", s.postWHIP)
			r.Options("/whip/{id}", func(http.ResponseWriter, *http.Request) {})
			r.Get("/whip/{id}", s.getWHIP)
			r.Delete("/whip/{id}", s.deleteWHIP)
		})
		r.Get("/whatsapp/{id}/webhook", s.whatsAppWebhook)
		r.Post("/whatsapp/{id}/webhook", s.whatsAppWebhook)
		r.Post("/login", s.login)
		r.Post("/logout", s.logout)
		r.Get("/session", s.getSession)
		r.Post("/password", s.setPassword) // a one-time link's token is the credential
		r.Get("/operator/ws", s.operatorSocket)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.Get("/me", s.me)
			r.Get("/live", s.getLive)
			r.Get("/calls", s.listCalls)
			r.Post("/calls", s.postCall)
			r.Get("/calls/{id}", s.getCall)
			r.Patch("/calls/{id}", s.patchCall)
			r.Post("/calls/{id}/hangup", s.hangupCall)
			r.Post("/calls/{id}/transfer", s.transferCall)
			r.Get("/calls/{id}/events", s.getCallEvents)
			r.Get("/calls/{id}/recording", s.getCallRecording)
			r.Get("/calls/{id}/trace", s.getCallTrace)
			r.Get("/calls/{id}/quality", s.getCallQuality)
			r.Get("/calls/{id}/pcap", s.getCallPcap)
			r.Post("/calls/{id}/sip-logging", s.callSIPLogging)
			r.Post("/trunks/{id}/sip-logging", s.trunkSIPLogging)
			r.Post("/calls/{id}/consent", s.postCallConsent)
			r.Get("/audit", s.listAudit)
			r.Post("/calls/{id}/recording/pause", s.pauseRecording(true))
			r.Post("/calls/{id}/recording/resume", s.pauseRecording(false))
			r.Post("/calls/{id}/grants", s.postCallGrant)
			r.Get("/grants", s.listGrants)
			r.Get("/grants/{id}", s.getGrant)
			r.Post("/grants/{id}/approve", s.changeGrant("approve"))
			r.Post("/grants/{id}/deny", s.changeGrant("deny"))
			r.Post("/grants/{id}/revoke", s.changeGrant("revoke"))
			r.Get("/grants/{id}/audio", s.grantAudio)
			r.Post("/audit/verify", s.verifyAudit)
			// People and API keys (api/users.go, api/apikeys.go).
			r.Post("/me/password", s.changeOwnPassword)
			r.Get("/users", pagedList(s, "users", s.deps.Users.FindUsers, userID))
			r.Post("/users", s.postUser)
			r.Patch("/users/{id}", s.patchUser)
			r.Post("/users/{id}/password", s.resetPassword)
			r.Get("/apikeys", pagedList(s, "api_keys", s.deps.APIKeys.FindAPIKeys, apiKeyID))
			r.Post("/apikeys", s.postAPIKey)
			r.Delete("/apikeys/{id}", s.deleteAPIKey)

			r.Get("/trunks", pagedAll(s, "trunks", s.findTrunks, func(t trunkView) sb.ID { return t.ID }, true))
			r.Get("/queues", pagedAll(s, "queues", s.findQueues, func(q queueView) sb.ID { return q.ID }, true))
			r.Post("/webrtc/tokens", s.postWebRTCToken)
			r.Post("/subjects/export", s.exportSubject)
			r.Post("/subjects/erase", s.eraseSubject)
			r.Post("/subjects/rectify", s.rectifySubject)
			r.Get("/webhooks", pagedAll(s, "webhooks", s.findWebhooks, func(h *sb.Webhook) sb.ID { return h.ID }, true))
			r.Post("/webhooks", s.postWebhook)
			r.Delete("/webhooks/{id}", s.deleteWebhook)
			r.Get("/webhooks/{id}/deliveries", s.listDeliveries)
			r.Post("/webhooks/{id}/secrets", s.postWebhookSecret)
			r.Post("/webhooks/{id}/secrets/retire", s.retireWebhookSecret)
			// Trunks, their outbound routes, queues and numbers (api/resources.go).
			r.Post("/trunks", s.postTrunk)
			r.Get("/trunks/{id}", s.getTrunk)
			r.Patch("/trunks/{id}", s.patchTrunk)
			r.Delete("/trunks/{id}", s.deleteTrunk)
			r.Get("/routes", pagedAll(s, "routes", s.findRoutes, func(r sb.Route) sb.ID { return r.TrunkID }, false))
			r.Put("/routes/{id}", s.putRoute)
			r.Patch("/routes/{id}", s.putRoute)
			r.Delete("/routes/{id}", s.deleteRoute)
			r.Get("/numbers", s.listNumbers)
			r.Post("/queues", s.postQueue)
			r.Get("/queues/{id}", s.getQueue)
			r.Patch("/queues/{id}", s.patchQueue)
			r.Delete("/queues/{id}", s.deleteQueue)
			r.Patch("/webhooks/{id}", s.patchWebhook)
			// WhatsApp connections (api/whatsapp.go).
			r.Get("/whatsapp/connections", pagedAll(s, "connections", s.findWhatsApp, func(c *sb.WhatsAppConnection) sb.ID { return c.ID }, true))
			r.Post("/whatsapp/connections", s.postWhatsApp)
			r.Delete("/whatsapp/connections/{id}", s.deleteWhatsApp)
			r.Post("/whatsapp/permission-requests", s.postWhatsAppPermission)
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, sb.Errorf(sb.ENOTFOUND, "no such route: %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: "method_not_allowed", Message: r.Method + " is not allowed on " + r.URL.Path})
	})
	return r
}

// page serves one embedded file of the operator page. The page is
// revalidated on every load so that a deploy reaches open browsers.
func (s *Server) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, webFS, name)
	}
}

// widgetPage serves a file of the "call us" widget, which other sites
// embed in a frame (with allow="microphone"): unlike the operator's pages
// it may be framed anywhere.
func (s *Server) widgetPage(name string) http.HandlerFunc {
	serve := s.page(name)
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "+
			"media-src 'self' blob:; img-src 'self' data:; object-src 'none'; frame-ancestors *; base-uri 'none'; form-action 'none'")
		h.Del("X-Frame-Options")
		h.Set("Permissions-Policy", "microphone=*, camera=()")
		serve(w, r)
	}
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "+
			"media-src 'self' blob:; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "microphone=(self), camera=()")
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// healthz is liveness: the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := io.WriteString(w, "ok\n"); err != nil {
		s.log.Debug("healthz", "err", err)
	}
}

// readyz is readiness: whether this instance can take calls. The database,
// the SIP listener and draining decide its status (503 names the part);
// advisories (the recording store) are reported in the body only: while
// the store is away the spool keeps recordings and calls go on. Checks run
// at once, each bounded, so one that hangs holds up neither the others
// nor the probe.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{}
	for name, c := range s.deps.Checks {
		checks[name] = c
	}
	if s.deps.Health != nil {
		checks["database"] = s.deps.Health
	}
	type result struct {
		name     string
		advisory bool
		err      error
	}
	results := make(chan result, len(checks)+len(s.deps.Advisories))
	run := func(name string, advisory bool, check func(context.Context) error) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		results <- result{name, advisory, check(ctx)}
	}
	for name, check := range checks {
		go run(name, false, check)
	}
	for name, check := range s.deps.Advisories {
		go run(name, true, check)
	}
	out := map[string]string{"status": "ok"}
	status := http.StatusOK
	for range cap(results) {
		res := <-results
		out[res.name] = "ok"
		if res.err == nil {
			continue
		}
		out[res.name] = "unavailable"
		if res.advisory {
			s.log.Debug("readiness: unavailable, calls go on", "part", res.name, "err", res.err)
			continue
		}
		s.log.Warn("not ready", "part", res.name, "err", res.err)
		out["status"], status = "unavailable", http.StatusServiceUnavailable
	}
	s.writeJSON(w, status, out)
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RequestID is the request's X-Request-Id, to find its log lines.
	RequestID string `json:"request_id,omitempty"`
}

// statusOf maps an error code to its HTTP status, once for the whole API.
var statusOf = map[string]int{
	sb.EINVALID:      http.StatusBadRequest,
	sb.EUNAUTHORIZED: http.StatusUnauthorized,
	sb.EFORBIDDEN:    http.StatusForbidden,
	sb.ENOTFOUND:     http.StatusNotFound,
	sb.ECONFLICT:     http.StatusConflict,
	sb.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// error writes err as JSON. Internal errors are logged and reported
// without their detail.
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := sb.ErrorCode(err), sb.ErrorMessage(err)
	status, ok := statusOf[code]
	if !ok {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestIDOf(r.Context()), "err", err)
		status, code, msg = http.StatusInternalServerError, sb.EINTERNAL, "internal error"
	}
	s.writeJSON(w, status, errorBody{Code: code, Message: msg})
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	if e, ok := v.(errorBody); ok && e.RequestID == "" {
		// observeRequests set the ID on the response before any handler.
		e.RequestID = w.Header().Get(requestIDHeader)
		v = e
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("writing response", "err", err)
	}
}

// authenticate puts the actor in the request's context: an API key from
// the Authorization header, or the session cookie.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.actor(r)
		if err != nil {
			s.error(w, r, err)
			return
		}
		// The budget first: a visit is audited in the visited tenant, and
		// a request refused for the rate reads nothing there.
		credential := "user:" + a.UserID.String()
		if a.APIKeyID != (sb.ID{}) {
			credential = "key:" + a.APIKeyID.String()
		}
		if !s.limits.allowAPI(credential) {
			w.Header().Set("Retry-After", "1")
			s.writeJSON(w, http.StatusTooManyRequests, errorBody{Code: "rate_limited",
				Message: "too many requests: at most " + strconv.Itoa(apiRate) + " a second, with bursts of " + strconv.Itoa(apiBurst)})
			return
		}
		if err := s.visit(r, a); err != nil {
			s.error(w, r, err)
			return
		}
		a.IP = s.clientAddr(r)
		a.UserAgent = truncate(r.UserAgent(), 200)
		next.ServeHTTP(w, r.WithContext(sb.NewContextWithActor(r.Context(), a)))
	})
}

func (s *Server) actor(r *http.Request) (*sb.Actor, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			return nil, sb.Errorf(sb.EUNAUTHORIZED, "Authorization must be: Bearer <API key>")
		}
		k, err := s.deps.APIKeys.AuthenticateAPIKey(r.Context(), strings.TrimSpace(key))
		if err != nil {
			return nil, err
		}
		return &sb.Actor{TenantID: k.TenantID, APIKeyID: k.ID, Role: k.Role}, nil
	}
	return s.sessionActor(r)
}

// tenantHeader names the tenant a support engineer acts in, when it is
// not their own.
const tenantHeader = "X-Switchboard-Tenant"

// visit moves a support engineer into the tenant named by tenantHeader
// (or the tenant query parameter, for the page's audio element), if that
// tenant lets support engineers in. A tenant that does not looks missing.
func (s *Server) visit(r *http.Request, a *sb.Actor) error {
	v := r.Header.Get(tenantHeader)
	if v == "" {
		v = r.URL.Query().Get("tenant")
	}
	if v == "" {
		return nil
	}
	id, err := sb.ParseID(v)
	if err != nil {
		return sb.Errorf(sb.EINVALID, "%s: %q is not a tenant id", tenantHeader, v)
	}
	if id == a.TenantID {
		return nil
	}
	if a.Role != sb.RoleSupport || a.UserID == (sb.ID{}) || s.deps.Tenants == nil {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	home, err := s.deps.Tenants.FindTenantByID(r.Context(), a.TenantID)
	if err != nil || !home.ServiceDesk {
		// A support engineer of an ordinary tenant is that tenant's own.
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	t, err := s.deps.Tenants.FindTenantByID(r.Context(), id)
	if err != nil {
		return err
	}
	if !t.Support.Access {
		return sb.Errorf(sb.ENOTFOUND, "tenant not found")
	}
	a.HomeTenantID, a.TenantID = a.TenantID, id
	// Every request of a visitor is on the visited tenant's audit log,
	// before it is answered: what the service desk read there, and when.
	e := &sb.AuditEntry{TenantID: &a.TenantID, ActorUserID: &a.UserID, ActorRole: a.Role, Action: "service_desk.visit",
		ResourceType: "request", ResourceID: truncate(r.Method+" "+r.URL.Path, 200)}
	if err := s.audit(r, e); err != nil {
		return fmt.Errorf("api: auditing a visit: %w", err)
	}
	return nil
}

// sessionActor authenticates a browser login by its session cookie.
func (s *Server) sessionActor(r *http.Request) (*sb.Actor, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, sb.Errorf(sb.EUNAUTHORIZED, "authentication required: an API key or a login")
	}
	sess, err := s.deps.Sessions.FindSession(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	return &sb.Actor{TenantID: sess.TenantID, UserID: sess.UserID, Role: sess.Role}, nil
}
