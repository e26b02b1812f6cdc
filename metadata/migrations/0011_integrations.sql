-- Integrations: a call's reference in another system (a CRM ticket, a chat
-- or messenger ID) and labels they attach; webhooks for call events, with
-- every delivery attempt kept. A webhook's signing secret is sealed with
-- the keyring.
ALTER TABLE calls
	ADD COLUMN external_ref text NOT NULL DEFAULT '' CHECK (length(external_ref) <= 200),
	ADD COLUMN labels       text[] NOT NULL DEFAULT '{}' CHECK (cardinality(labels) <= 20);
CREATE INDEX calls_external_ref_idx ON calls (tenant_id, external_ref) WHERE external_ref <> '';

CREATE TABLE webhooks (
	id         uuid PRIMARY KEY,
	tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	url        text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 500),
	secret     bytea NOT NULL,
	events     text[] NOT NULL,
	created_at timestamptz NOT NULL,
	CONSTRAINT webhooks_tenant_id_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
	id              uuid PRIMARY KEY,
	tenant_id       uuid NOT NULL,
	webhook_id      uuid NOT NULL,
	event           text NOT NULL,
	payload         jsonb NOT NULL,
	status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL,
	last_status     integer NOT NULL DEFAULT 0,
	last_error      text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	delivered_at    timestamptz,
	FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook_idx ON webhook_deliveries (tenant_id, webhook_id, created_at DESC);
