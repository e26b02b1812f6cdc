package metadata

import (
	"context"
	"net/url"
	"slices"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard-voice/switchboard"
)

// validWebhook checks a webhook's URL and events, and returns the URL.
func validWebhook(rawURL string, events []string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(rawURL) > 500 {
		return nil, sb.Errorf(sb.EINVALID, "url: an http(s) URL of at most 500 characters")
	}
	if len(events) == 0 {
		return nil, sb.Errorf(sb.EINVALID, "events: name at least one of %v", sb.WebhookEvents)
	}
	for _, e := range events {
		if !slices.Contains(sb.WebhookEvents, e) {
			return nil, sb.Errorf(sb.EINVALID, "events: %q is not one of %v", e, sb.WebhookEvents)
		}
	}
	return u, nil
}

// UpdateWebhook changes a webhook's URL or events (nil: left as they
// are), for an admin; its secret stays. The change is audited with it.
func (s *WebhookStore) UpdateWebhook(ctx context.Context, id sb.ID, rawURL *string, events *[]string) (*sb.Webhook, error) {
	a, err := staff(ctx, "changing a webhook", sb.RoleAdmin)
	if err != nil {
		return nil, err
	}
	var h *sb.Webhook
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		h = &sb.Webhook{}
		if err := tx.QueryRow(ctx, "SELECT id, tenant_id, url, events, created_at FROM webhooks WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
			a.TenantID, id).Scan(&h.ID, &h.TenantID, &h.URL, &h.Events, &h.CreatedAt); err != nil {
			return mapError(err, "webhook")
		}
		if rawURL != nil {
			h.URL = *rawURL
		}
		if events != nil {
			h.Events = *events
		}
		u, err := validWebhook(h.URL, h.Events)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE webhooks SET url = $3, events = $4 WHERE tenant_id = $1 AND id = $2", a.TenantID, id, h.URL, h.Events); err != nil {
			return mapError(err, "webhook")
		}
		e := actorEntry(a, "webhook.update", "webhook", id)
		e.Detail = u.Scheme + "://" + u.Host
		return appendAudit(ctx, tx, s.db.now(), e)
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}
