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
		var err error
		h, err = scanWebhook(tx.QueryRow(ctx, "SELECT "+webhookColumns+" FROM webhooks WHERE tenant_id = $1 AND id = $2 FOR UPDATE", a.TenantID, id))
		if err != nil {
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

// AddWebhookSecret makes a second signing secret for a webhook, for an
// admin, and returns it (shown only now); both sign until
// RetireWebhookSecret. Audited as webhook.secret.add.
func (s *WebhookStore) AddWebhookSecret(ctx context.Context, id sb.ID) (string, error) {
	a, err := staff(ctx, "adding a webhook secret", sb.RoleAdmin)
	if err != nil {
		return "", err
	}
	secret, sealed, err := s.newSecret(id)
	if err != nil {
		return "", err
	}
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		rotating, err := lockRotation(ctx, tx, a.TenantID, id)
		if err != nil {
			return err
		}
		if rotating {
			return sb.Errorf(sb.ECONFLICT, "the webhook already has a second secret; retire the old one first")
		}
		now := s.db.now()
		if _, err := tx.Exec(ctx, "UPDATE webhooks SET new_secret = $3, new_secret_at = $4 WHERE tenant_id = $1 AND id = $2",
			a.TenantID, id, sealed, now); err != nil {
			return mapError(err, "webhook")
		}
		return appendAudit(ctx, tx, now, actorEntry(a, "webhook.secret.add", "webhook", id))
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// RetireWebhookSecret drops a webhook's old secret, for an admin: the one
// AddWebhookSecret made signs alone. Audited as webhook.secret.retire.
func (s *WebhookStore) RetireWebhookSecret(ctx context.Context, id sb.ID) error {
	a, err := staff(ctx, "retiring a webhook secret", sb.RoleAdmin)
	if err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		rotating, err := lockRotation(ctx, tx, a.TenantID, id)
		if err != nil {
			return err
		}
		if !rotating {
			return sb.Errorf(sb.ECONFLICT, "the webhook has one secret; add a new one before retiring the old")
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks SET secret = new_secret, new_secret = NULL, new_secret_at = NULL
			WHERE tenant_id = $1 AND id = $2`, a.TenantID, id); err != nil {
			return mapError(err, "webhook")
		}
		return appendAudit(ctx, tx, s.db.now(), actorEntry(a, "webhook.secret.retire", "webhook", id))
	})
}

// lockRotation locks a tenant's webhook and reports whether it has a
// second secret.
func lockRotation(ctx context.Context, tx pgx.Tx, tenantID, id sb.ID) (bool, error) {
	var rotating bool
	err := tx.QueryRow(ctx, "SELECT new_secret IS NOT NULL FROM webhooks WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenantID, id).Scan(&rotating)
	if err != nil {
		return false, mapError(err, "webhook")
	}
	return rotating, nil
}
