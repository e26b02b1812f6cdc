// Package whatsapp is the WhatsApp Business Calling API in Graph API mode:
// the webhook endpoint of each connection (the subscription handshake,
// signed events), WhatsApp users' calls handed to call control as inbound
// calls on a WebRTC peer, and calls placed to WhatsApp users.
package whatsapp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// maxCallID bounds a WhatsApp call ID we keep.
const maxCallID = 200

// Webhook outcomes, counted by Counts.
const (
	resultAccepted          = "accepted"           // an event acted on
	resultBadSignature      = "bad_signature"      // refused: no or a wrong X-Hub-Signature-256
	resultReplay            = "replay"             // an event seen before, ignored
	resultUnknownCall       = "unknown_call"       // an event for a call we do not have, ignored
	resultUnknownConnection = "unknown_connection" // no such connection
	resultMalformed         = "malformed"          // a signed body we could not read
	resultHandshakeRefused  = "handshake_refused"  // a subscription handshake with the wrong token
	resultForeignNumber     = "foreign_number"     // an event for another phone number ID, ignored
)

var results = []string{resultAccepted, resultBadSignature, resultReplay, resultUnknownCall, resultUnknownConnection,
	resultMalformed, resultHandshakeRefused, resultForeignNumber}

// seenFor is how long an event is remembered to ignore its replay.
const seenFor = time.Hour

// maxSeen bounds the events remembered.
const maxSeen = 100000

// Service takes WhatsApp calls in and places calls out.
type Service struct {
	dir      sb.WhatsAppDirectory
	answer   func(ctx context.Context, offer string) (Peer, string, error)
	offer    func(ctx context.Context) (OfferingPeer, string, error)
	dispatch func(*sb.InboundCall)
	http     *http.Client
	log      *slog.Logger
	now      func() time.Time
	// ctx bounds the waits for placed calls' media; Close cancels it and
	// waits for them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	calls map[callKey]*call // live calls
	// placing is each connection's connects in flight: a webhook about a
	// call we place can come before connect's answer has told us the
	// call's ID (the user's phone rings at once), and it waits for them
	// rather than be taken for a call we do not know.
	placing map[sb.ID]*placing

	seen   map[string]time.Time
	counts map[string]uint64
}

// callKey names a live call: WhatsApp call IDs are unique at Meta, but a
// connection's Graph API URL is its tenant's to set, so an ID is only
// trusted within the connection that reported it.
type callKey struct {
	conn sb.ID
	id   string
}

// call is a live WhatsApp call this instance handles.
type call struct {
	leg      *userLeg
	outbound bool
}

// Option tunes a Service.
type Option func(*Service)

// WithPrivateGraph lets connections' Graph API URLs point at private and
// loopback addresses (tests, an egress proxy of one's own).
func WithPrivateGraph() Option { return func(s *Service) { s.http = newHTTPClient(true) } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns the service. answer makes a peer from a user's offer (and
// our answer); offer makes one with our offer for a call we place;
// dispatch hands a user's call to call control. Close stops what it does
// in the background.
func New(dir sb.WhatsAppDirectory, answer func(ctx context.Context, offer string) (Peer, string, error),
	offer func(ctx context.Context) (OfferingPeer, string, error), dispatch func(*sb.InboundCall), opts ...Option) *Service {
	s := &Service{dir: dir, answer: answer, offer: offer, dispatch: dispatch, http: newHTTPClient(false), log: slog.Default(),
		now: time.Now, calls: map[callKey]*call{}, seen: map[string]time.Time{}, counts: map[string]uint64{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close stops the waits for placed calls' media and returns once they
// are over.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// Counts are the webhook requests by outcome, since start.
func (s *Service) Counts() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(results))
	for _, r := range results {
		out[r] = s.counts[r]
	}
	return out
}

func (s *Service) count(result string) {
	s.mu.Lock()
	s.counts[result]++
	s.mu.Unlock()
}

// firstSight reports whether the event key is new, and remembers it.
func (s *Service) firstSight(key string) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.seen[key]; ok && now.Sub(at) < seenFor {
		return false
	}
	if len(s.seen) >= maxSeen {
		for k, at := range s.seen {
			if now.Sub(at) >= seenFor {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxSeen {
			s.seen = map[string]time.Time{} // a flood of signed events: forget rather than grow
		}
	}
	s.seen[key] = now
	return true
}

func (s *Service) graph(c *sb.WhatsAppConnection, sec *sb.WhatsAppSecrets) *graph {
	return &graph{http: s.http, base: c.GraphURL, phoneID: c.PhoneNumberID, token: sec.AccessToken}
}

func (s *Service) find(conn sb.ID, id string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[callKey{conn, id}]
}

// placing counts a connection's connects in flight; done is closed, and
// replaced, each time one of them ends.
type placing struct {
	n    int
	done chan struct{}
}

// startPlacing notes a connect in flight on conn until endPlacing.
func (s *Service) startPlacing(conn sb.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.placing == nil {
		s.placing = map[sb.ID]*placing{}
	}
	p := s.placing[conn]
	if p == nil {
		p = &placing{done: make(chan struct{})}
		s.placing[conn] = p
	}
	p.n++
}

// endPlacing ends a connect started with startPlacing, once its call is
// kept (or failed), and wakes the webhooks that waited for it.
func (s *Service) endPlacing(conn sb.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.placing[conn]
	close(p.done)
	if p.n--; p.n == 0 {
		delete(s.placing, conn)
	} else {
		p.done = make(chan struct{})
	}
}

// await finds a live call, waiting while connects are in flight on its
// connection (one of them may be placing it), until ctx ends.
func (s *Service) await(ctx context.Context, conn sb.ID, id string) *call {
	for {
		s.mu.Lock()
		c := s.calls[callKey{conn, id}]
		var done chan struct{}
		if p := s.placing[conn]; p != nil {
			done = p.done
		}
		s.mu.Unlock()
		if c != nil || done == nil {
			return c
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil
		}
	}
}

// keep registers a call; false if one with its ID is live on its
// connection already.
func (s *Service) keep(c *call) bool {
	k := callKey{c.leg.conn, c.leg.id}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[k] != nil {
		return false
	}
	s.calls[k] = c
	return true
}

// forget drops the leg's call, and only its own: a leg that was never
// kept (its ID was in use) leaves the live call alone.
func (s *Service) forget(l *userLeg) {
	k := callKey{l.conn, l.id}
	s.mu.Lock()
	if c := s.calls[k]; c != nil && c.leg == l {
		delete(s.calls, k)
	}
	s.mu.Unlock()
}

// DialMessenger places a call to a WhatsApp user through the tenant's
// connection: our offer goes in connect, the answer comes in a webhook.
// A refusal of the Graph API (no permission from the user: code 138006)
// is a *sb.MessengerError.
func (s *Service) DialMessenger(ctx context.Context, tenantID sb.ID, channel, number string) (sb.MessengerLeg, error) {
	if channel != sb.ChannelWhatsApp {
		return nil, sb.Errorf(sb.EINVALID, "no such messenger: %q", channel)
	}
	conn, sec, err := s.dir.TenantWhatsApp(ctx, tenantID)
	if err != nil {
		if sb.ErrorCode(err) == sb.ENOTFOUND {
			return nil, sb.Errorf(sb.ENOTFOUND, "the tenant has no WhatsApp connection")
		}
		return nil, err
	}
	peer, offer, err := s.offer(ctx)
	if err != nil {
		return nil, err
	}
	g := s.graph(conn, sec)
	s.startPlacing(conn.ID)
	defer s.endPlacing(conn.ID) // once the call is kept, or failed
	id, err := g.connect(ctx, number, offer)
	if err != nil {
		peer.Close()
		return nil, err
	}
	leg := &userLeg{Peer: peer, svc: s, graph: g, conn: conn.ID, id: id, outbound: true}
	if !s.keep(&call{leg: leg, outbound: true}) {
		leg.Close() // the call placed is terminated
		return nil, errors.New("whatsapp: the call ID connect returned is already in use")
	}
	s.log.Info("whatsapp call placed", "tenant", tenantID, "connection", conn.ID, "whatsapp_call_id", id)
	return leg, nil
}

// RequestPermission sends a WhatsApp user the interactive request to let
// the tenant's business call them: for the tenant's own people and keys
// (operators and up), never a visiting support engineer; audited before
// it goes out. budget is asked once the request is checked and the
// tenant's connection found, before the entry: its error refuses the
// request and is returned as it is, so a refused request costs the
// tenant's budget nothing.
func (s *Service) RequestPermission(ctx context.Context, to, text string, budget func() error) error {
	a := sb.ActorFromContext(ctx)
	if a == nil {
		return sb.Errorf(sb.EUNAUTHORIZED, "not signed in")
	}
	if a.Role == sb.RoleSupport {
		return sb.Errorf(sb.EFORBIDDEN, "asking a WhatsApp user for permission to call: not allowed for the %s role", a.Role)
	}
	_, number, err := sb.DialTarget(sb.ChannelWhatsApp + ":" + to)
	if err != nil {
		return err
	}
	if text == "" || len(text) > 1024 {
		return sb.Errorf(sb.EINVALID, "text: 1 to 1024 characters saying why the business would call")
	}
	conn, sec, err := s.dir.TenantWhatsApp(ctx, a.TenantID)
	if err != nil {
		if sb.ErrorCode(err) == sb.ENOTFOUND {
			return sb.Errorf(sb.ENOTFOUND, "the tenant has no WhatsApp connection")
		}
		return err
	}
	if err := budget(); err != nil {
		return err
	}
	if err := s.dir.AuditPermissionRequest(ctx, conn); err != nil {
		return err
	}
	if err := s.graph(conn, sec).requestPermission(ctx, number, text); err != nil {
		var me *sb.MessengerError
		if errors.As(err, &me) {
			return sb.Errorf(sb.EUNAVAILABLE, "WhatsApp refused the permission request: error %d", me.Code)
		}
		return err
	}
	return nil
}
