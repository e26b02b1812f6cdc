package metadata

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// WebhookStore keeps webhooks and their deliveries. Secrets are sealed;
// without a sealer no webhook can be made.
type WebhookStore struct {
	db     *DB
	sealer Sealer
}

var _ sb.WebhookService = (*WebhookStore)(nil)

// NewWebhookStore returns a WebhookStore on db; sealer may be nil.
func NewWebhookStore(db *DB, sealer Sealer) *WebhookStore {
	return &WebhookStore{db: db, sealer: sealer}
}

// CreateWebhook registers url for events, for a tenant's admin, and
// returns the webhook with its signing secret, shown only now.
func (s *WebhookStore) CreateWebhook(ctx context.Context, rawURL string, events []string) (*sb.Webhook, string, error) {
	a, err := staff(ctx, "making a webhook", sb.RoleAdmin)
	if err != nil {
		return nil, "", err
	}
	u, err := validWebhook(rawURL, events)
	if err != nil {
		return nil, "", err
	}
	h := &sb.Webhook{ID: sb.NewID(), TenantID: a.TenantID, URL: rawURL, Events: events, CreatedAt: s.db.now()}
	secret, sealed, err := s.newSecret(h.ID)
	if err != nil {
		return nil, "", err
	}
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO webhooks (id, tenant_id, url, secret, events, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
			h.ID, h.TenantID, h.URL, sealed, h.Events, h.CreatedAt); err != nil {
			return mapError(err, "webhook")
		}
		e := actorEntry(a, "webhook.create", "webhook", h.ID)
		e.Detail = u.Scheme + "://" + u.Host
		return appendAudit(ctx, tx, h.CreatedAt, e)
	})
	if err != nil {
		return nil, "", err
	}
	return h, secret, nil
}

// newSecret makes a signing secret for webhook id, and returns it with
// its sealed form, bound to the ID.
func (s *WebhookStore) newSecret(id sb.ID) (string, []byte, error) {
	if s.sealer == nil {
		return "", nil, sb.Errorf(sb.EUNAVAILABLE, "webhooks need a keyring to keep their secrets (SWITCHBOARD_KEYRING)")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("metadata: webhook secret: %w", err)
	}
	secret := "whsec_" + base64.RawURLEncoding.EncodeToString(raw)
	sealed, err := s.sealer.Seal([]byte(secret), id[:])
	if err != nil {
		return "", nil, fmt.Errorf("metadata: seal webhook secret: %w", err)
	}
	return secret, sealed, nil
}

// FindWebhooks lists the tenant's webhooks, for its admins.
func (s *WebhookStore) FindWebhooks(ctx context.Context) ([]*sb.Webhook, error) {
	a, err := staff(ctx, "listing webhooks", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.pool.Query(ctx, "SELECT "+webhookColumns+" FROM webhooks WHERE tenant_id = $1 ORDER BY created_at", a.TenantID)
	if err != nil {
		return nil, fmt.Errorf("metadata: webhooks: %w", err)
	}
	defer rows.Close()
	out := []*sb.Webhook{}
	for rows.Next() {
		h, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("metadata: webhooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

const webhookColumns = "id, tenant_id, url, events, created_at, new_secret_at"

func scanWebhook(row pgx.Row) (*sb.Webhook, error) {
	h := &sb.Webhook{}
	return h, row.Scan(&h.ID, &h.TenantID, &h.URL, &h.Events, &h.CreatedAt, &h.NewSecretAt)
}

// DeleteWebhook removes a webhook and its deliveries, for an admin.
func (s *WebhookStore) DeleteWebhook(ctx context.Context, id sb.ID) error {
	a, err := staff(ctx, "deleting a webhook", sb.RoleAdmin)
	if err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2", a.TenantID, id)
		if err != nil {
			return mapError(err, "webhook")
		}
		if tag.RowsAffected() == 0 {
			return sb.Errorf(sb.ENOTFOUND, "webhook not found")
		}
		return appendAudit(ctx, tx, s.db.now(), actorEntry(a, "webhook.delete", "webhook", id))
	})
}

// FindDeliveries lists a webhook's latest deliveries with their attempts,
// for an admin.
func (s *WebhookStore) FindDeliveries(ctx context.Context, webhookID sb.ID) ([]*sb.WebhookDelivery, error) {
	a, err := staff(ctx, "reading webhook deliveries", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := s.db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = $1 AND id = $2)", a.TenantID, webhookID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("metadata: deliveries: %w", err)
	}
	if !exists {
		return nil, sb.Errorf(sb.ENOTFOUND, "webhook not found")
	}
	rows, err := s.db.pool.Query(ctx, "SELECT "+deliveryColumns+` FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2
		ORDER BY created_at DESC LIMIT 200`, a.TenantID, webhookID)
	if err != nil {
		return nil, fmt.Errorf("metadata: deliveries: %w", err)
	}
	defer rows.Close()
	out := []*sb.WebhookDelivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

const deliveryColumns = `id, tenant_id, webhook_id, event, payload, status, attempts, next_attempt_at, last_status, last_error,
	created_at, delivered_at`

func scanDelivery(row pgx.Row) (*sb.WebhookDelivery, error) {
	d := &sb.WebhookDelivery{}
	err := row.Scan(&d.ID, &d.TenantID, &d.WebhookID, &d.Event, &d.Payload, &d.Status, &d.Attempts, &d.NextAttemptAt,
		&d.LastStatus, &d.LastError, &d.CreatedAt, &d.DeliveredAt)
	if err != nil {
		return nil, fmt.Errorf("metadata: delivery: %w", err)
	}
	return d, nil
}

// Enqueue records each event for every webhook of its tenant that wants
// it, in one statement, and returns how many deliveries it made. Events
// nobody subscribed to make none.
func (s *WebhookStore) Enqueue(ctx context.Context, events ...sb.WebhookEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	tenants, names, payloads := make([]sb.ID, len(events)), make([]string, len(events)), make([]string, len(events))
	for i, e := range events {
		tenants[i], names[i], payloads[i] = e.TenantID, e.Event, string(e.Payload)
	}
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event, payload, status, next_attempt_at, created_at)
		SELECT gen_random_uuid(), w.tenant_id, w.id, e.event, e.payload::jsonb, 'pending', $4, $4
		FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS e(tenant_id, event, payload, n)
		JOIN webhooks w ON w.tenant_id = e.tenant_id AND e.event = ANY (w.events)
		ORDER BY e.n`, tenants, names, payloads, s.db.now())
	if err != nil {
		return 0, fmt.Errorf("metadata: enqueue webhooks: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// leaseTime is how long a sender holds the deliveries it took; one it did
// not finish (the process died) is taken again after it.
const leaseTime = time.Minute

// TakeDue leases up to limit deliveries that are due, with their URL and
// opened secret, for the sender.
func (s *WebhookStore) TakeDue(ctx context.Context, limit int) ([]*sb.WebhookDelivery, error) {
	var out []*sb.WebhookDelivery
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		now := s.db.now()
		rows, err := tx.Query(ctx, "SELECT "+prefixed("d.", deliveryColumns)+`, w.url, w.secret, w.new_secret FROM webhook_deliveries d
			JOIN webhooks w ON w.tenant_id = d.tenant_id AND w.id = d.webhook_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED`, now, limit)
		if err != nil {
			return fmt.Errorf("metadata: due deliveries: %w", err)
		}
		for rows.Next() {
			d := &sb.WebhookDelivery{}
			var sealed, sealedNew []byte
			if err := rows.Scan(&d.ID, &d.TenantID, &d.WebhookID, &d.Event, &d.Payload, &d.Status, &d.Attempts, &d.NextAttemptAt,
				&d.LastStatus, &d.LastError, &d.CreatedAt, &d.DeliveredAt, &d.URL, &sealed, &sealedNew); err != nil {
				rows.Close()
				return fmt.Errorf("metadata: due deliveries: %w", err)
			}
			for _, sealed := range [][]byte{sealed, sealedNew} {
				if s.sealer == nil || sealed == nil {
					continue
				}
				secret, err := s.sealer.Open(sealed, d.WebhookID[:])
				if err != nil {
					rows.Close()
					return fmt.Errorf("metadata: open webhook %s's secret: %w", d.WebhookID, err)
				}
				d.Secrets = append(d.Secrets, secret)
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range out {
			if _, err := tx.Exec(ctx, "UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id = $1", d.ID, now.Add(leaseTime)); err != nil {
				return fmt.Errorf("metadata: lease delivery: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// RecordAttempt stores one attempt's outcome as the sender decided it
// (webhooks: delivered, retried at NextAttemptAt, or failed).
func (s *WebhookStore) RecordAttempt(ctx context.Context, d *sb.WebhookDelivery) error {
	lastError := d.LastError
	if len(lastError) > 500 {
		lastError = strings.ToValidUTF8(lastError[:500], "")
	}
	_, err := s.db.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, last_status = $5,
		last_error = $6, delivered_at = $7 WHERE id = $1`, d.ID, d.Status, d.Attempts, d.NextAttemptAt, d.LastStatus, lastError, d.DeliveredAt)
	if err != nil {
		return fmt.Errorf("metadata: record delivery attempt: %w", err)
	}
	return nil
}
