// Package webhooks posts call events to the URLs tenants register:
// signed with HMAC-SHA256 over a timestamp and the body (package
// signature, which receivers can import to verify), queued durably in
// PostgreSQL, retried with a growing wait for 24 hours (retry.go), every
// attempt recorded.
//
// Every payload carries the event's "id": the same in every retry and at
// every webhook of the tenant, so a receiver de-duplicates on it. While a
// webhook's secret is rotated, both secrets sign each delivery.
package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/webhooks/signature"
)

// Store is where deliveries wait; metadata.WebhookStore is one.
type Store interface {
	Enqueue(ctx context.Context, events ...sb.WebhookEvent) (int, error)
	// TakeDue leases due deliveries, each with its webhook's URL and
	// opened secrets.
	TakeDue(ctx context.Context, limit int) ([]*sb.WebhookDelivery, error)
	// RecordAttempt stores an attempt's outcome as settle left it on d:
	// status, attempts, next attempt, last answer.
	RecordAttempt(ctx context.Context, d *sb.WebhookDelivery) error
}

// Hooks turns call events into deliveries and sends them.
type Hooks struct {
	store   Store
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	jitter  func(max time.Duration) time.Duration // shortens retry waits at random
	queue   chan event
	private bool         // deliveries may go to private addresses
	outcome func(string) // nil: attempts are not counted
}

type event struct {
	tenantID sb.ID
	name     string
	payload  []byte
}

// Option tunes Hooks.
type Option func(*Hooks)

// WithPrivateTargets lets deliveries go to loopback and private
// addresses: tests, and receivers on the same private network.
func WithPrivateTargets() Option { return func(h *Hooks) { h.private = true } }

// WithOutcomes hands fn each delivery attempt's outcome: delivered (the
// receiver answered 2xx), rejected (it answered another status),
// unreachable (no answer). For metrics; fn must not block.
func WithOutcomes(fn func(outcome string)) Option { return func(h *Hooks) { h.outcome = fn } }

// WithClock reads the time from now: when events happen, when deliveries
// are signed and when they are retried.
func WithClock(now func() time.Time) Option { return func(h *Hooks) { h.now = now } }

// New returns hooks on store. Call Run to enqueue and Send to deliver.
// Deliveries go to public addresses only, unless WithPrivateTargets: a
// tenant admin's URL must not reach the service's own network (SSRF).
func New(store Store, log *slog.Logger, opts ...Option) *Hooks {
	h := &Hooks{store: store, log: log, now: time.Now, jitter: randomJitter, queue: make(chan event, 1024)}
	for _, o := range opts {
		o(h)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !h.private {
		// Checked on the address actually dialled, after resolution, so a
		// name that resolves to a private address is refused too.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(host); err != nil || !publicAddr(ip.Unmap()) {
				return fmt.Errorf("webhooks: %s is not a public address", host)
			}
			return nil
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	transport.Proxy = nil
	h.client = &http.Client{Timeout: 10 * time.Second, Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a receiver that moved says so; we do not follow
	}}
	return h
}

// publicAddr reports whether ip is routable on the internet: not loopback,
// private, link-local, multicast, unspecified, or shared (CGNAT).
func publicAddr(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!ip.IsMulticast() && !ip.IsUnspecified() && !ip.IsInterfaceLocalMulticast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && !netip.MustParsePrefix("0.0.0.0/8").Contains(ip)
}

var _ sb.CallObserver = (*Hooks)(nil)

// payload is what a delivery's body says.
type payload struct {
	ID       sb.ID     `json:"id"` // the event's: a receiver de-duplicates on it
	Event    string    `json:"event"`
	At       time.Time `json:"at"`
	TenantID sb.ID     `json:"tenant_id"`
	CallID   sb.ID     `json:"call_id"`
	Call     *sb.Call  `json:"call,omitempty"`
	Detail   any       `json:"detail,omitempty"`
}

// names maps the call events webhooks carry.
var names = map[sb.EventType]string{
	sb.EventOffered:         "call.offered",
	sb.EventAnswered:        "call.answered",
	sb.EventRecordingStored: "recording.ready",
	sb.EventRecordingFailed: "recording.failed",
}

// CallEvent queues the events webhooks carry. It never blocks the call:
// when the queue is full the event is dropped and logged.
func (h *Hooks) CallEvent(e *sb.CallEvent) {
	if name := names[e.Type]; name != "" {
		h.push(e.TenantID, payload{ID: sb.NewID(), Event: name, At: e.At, TenantID: e.TenantID, CallID: e.CallID, Detail: e.Detail})
	}
}

// CallEnded queues call.ended with the final record.
func (h *Hooks) CallEnded(c *sb.Call) {
	h.push(c.TenantID, payload{ID: sb.NewID(), Event: "call.ended", At: h.now().UTC(), TenantID: c.TenantID, CallID: c.ID, Call: c})
}

func (h *Hooks) push(tenantID sb.ID, p payload) {
	b, err := json.Marshal(p)
	if err != nil {
		h.log.Error("webhook payload", "err", err)
		return
	}
	select {
	case h.queue <- event{tenantID: tenantID, name: p.Event, payload: b}:
	default:
		h.log.Error("webhook event dropped: the queue is full", "event", p.Event, "call_id", p.CallID)
	}
}

// Run stores queued events as deliveries until ctx ends, then stores what
// is left. What has queued up while a write was going on goes in the next
// one: under a few hundred calls a second that is one statement for many
// events, not one each.
func (h *Hooks) Run(ctx context.Context) {
	batch := make([]sb.WebhookEvent, 0, maxEnqueue)
	store := func(ctx context.Context, e event) {
		batch = append(batch[:0], sb.WebhookEvent{TenantID: e.tenantID, Event: e.name, Payload: e.payload})
	more:
		for len(batch) < maxEnqueue {
			select {
			case e := <-h.queue:
				batch = append(batch, sb.WebhookEvent{TenantID: e.tenantID, Event: e.name, Payload: e.payload})
			default:
				break more
			}
		}
		if _, err := h.store.Enqueue(ctx, batch...); err != nil {
			h.log.Error("webhook events not stored", "events", len(batch), "err", err)
		}
	}
	for {
		select {
		case e := <-h.queue:
			store(ctx, e)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for {
				select {
				case e := <-h.queue:
					store(dctx, e)
				default:
					return
				}
			}
		}
	}
}

// maxEnqueue bounds the events one write stores.
const maxEnqueue = 256

// Send delivers what is due, and returns how many it delivered.
func (h *Hooks) Send(ctx context.Context) (int, error) {
	due, err := h.store.TakeDue(ctx, 50)
	if err != nil {
		return 0, err
	}
	ok := 0
	for _, d := range due {
		status, err := h.post(ctx, d)
		if err == nil && (status < 200 || status >= 300) {
			err = fmt.Errorf("the receiver answered %d", status)
		}
		h.settle(d, status, err)
		switch d.Status {
		case "delivered":
			ok++
		case "failed":
			h.log.Error("webhook delivery given up", "webhook_id", d.WebhookID, "event", d.Event, "attempts", d.Attempts, "err", err)
		default:
			h.log.Warn("webhook delivery failed", "webhook_id", d.WebhookID, "event", d.Event, "attempt", d.Attempts,
				"next_attempt_at", d.NextAttemptAt, "err", err)
		}
		h.count(status, err)
		if rerr := h.store.RecordAttempt(ctx, d); rerr != nil {
			return ok, rerr
		}
	}
	return ok, nil
}

// count hands an attempt's outcome to the outcome counter, if any.
func (h *Hooks) count(status int, err error) {
	switch {
	case h.outcome == nil:
	case err == nil:
		h.outcome("delivered")
	case status != 0:
		h.outcome("rejected")
	default:
		h.outcome("unreachable")
	}
}

func (h *Hooks) post(ctx context.Context, d *sb.WebhookDelivery) (int, error) {
	body := []byte(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("the webhook's URL does not parse")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchboard-webhooks")
	req.Header.Set("Switchboard-Event", d.Event)
	req.Header.Set("Switchboard-Delivery", d.ID.String())
	secrets := make([]string, len(d.Secrets))
	for i, s := range d.Secrets {
		secrets[i] = string(s)
	}
	req.Header.Set(signature.Header, signature.Sign(body, h.now(), secrets...))
	res, err := h.client.Do(req)
	if err != nil {
		return 0, withoutURLSecrets(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // the answer's body is not ours to keep
	res.Body.Close()
	return res.StatusCode, nil
}

// withoutURLSecrets names only the scheme and host of the URL an error
// carries (a redirect's too): a receiver's URL may hold a token in its
// user, path or query, and the error goes to the log and to the
// delivery's last error.
func withoutURLSecrets(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	where := "the webhook's URL"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		where = u.Scheme + "://" + u.Host
	}
	return fmt.Errorf("%s %s: %w", ue.Op, where, ue.Err)
}

// Observers lets several observers hear every call.
func Observers(obs ...sb.CallObserver) sb.CallObserver { return observers(obs) }

type observers []sb.CallObserver

func (o observers) CallEvent(e *sb.CallEvent) {
	for _, x := range o {
		x.CallEvent(e)
	}
}

func (o observers) CallEnded(c *sb.Call) {
	for _, x := range o {
		x.CallEnded(c)
	}
}
