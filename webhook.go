package switchboard

import (
	"context"
	"encoding/json"
	"time"
)

// WebhookEvents are the events a tenant's webhooks can carry.
var WebhookEvents = []string{"call.offered", "call.answered", "call.ended", "recording.ready", "recording.failed"}

// Webhook is where a tenant wants call events posted. The secret that
// signs them is shown once, at creation. To rotate it an admin adds a new
// secret, shown once too; from then on both sign every delivery, until
// the old one is retired and the new one signs alone.
type Webhook struct {
	ID        ID        `json:"id"`
	TenantID  ID        `json:"tenant_id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
	// NewSecretAt is when a second secret was added, while both sign;
	// nil when one secret signs.
	NewSecretAt *time.Time `json:"new_secret_at,omitempty"`
}

// WebhookEvent is one event for a tenant's webhooks, its body ready.
type WebhookEvent struct {
	TenantID ID
	Event    string // one of WebhookEvents
	Payload  []byte
}

// WebhookDelivery is one event's way to one webhook: every attempt
// counted, the last answer kept.
type WebhookDelivery struct {
	ID            ID              `json:"id"`
	WebhookID     ID              `json:"webhook_id"`
	Event         string          `json:"event"`
	Payload       json.RawMessage `json:"payload"`
	Status        string          `json:"status"` // pending, delivered, failed
	Attempts      int             `json:"attempts"`
	NextAttemptAt time.Time       `json:"next_attempt_at"`
	LastStatus    int             `json:"last_status"`
	LastError     string          `json:"last_error,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	DeliveredAt   *time.Time      `json:"delivered_at,omitempty"`

	TenantID ID       `json:"-"`
	URL      string   `json:"-"`
	Secrets  [][]byte `json:"-"` // opened, for signing (two while rotating); only the sender sees them
}

// WebhookService manages a tenant's webhooks, for its admins.
type WebhookService interface {
	CreateWebhook(ctx context.Context, url string, events []string) (*Webhook, string, error)
	FindWebhooks(ctx context.Context) ([]*Webhook, error)
	DeleteWebhook(ctx context.Context, id ID) error
	// UpdateWebhook changes a webhook's URL or events; nil leaves one.
	UpdateWebhook(ctx context.Context, id ID, url *string, events *[]string) (*Webhook, error)
	// FindDeliveries returns a webhook's latest deliveries, ENOTFOUND if
	// the tenant has no such webhook.
	FindDeliveries(ctx context.Context, webhookID ID) ([]*WebhookDelivery, error)
	// AddWebhookSecret makes a second secret that signs beside the
	// current one, and returns it (shown only now). ECONFLICT if a second
	// secret is already there.
	AddWebhookSecret(ctx context.Context, id ID) (string, error)
	// RetireWebhookSecret drops the old secret: the one added last signs
	// alone. ECONFLICT if no second secret was added.
	RetireWebhookSecret(ctx context.Context, id ID) error
}
