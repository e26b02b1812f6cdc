-- WhatsApp Business calling in Graph API mode: a tenant's business phone
-- numbers, their app secret and access token sealed with the keyring
-- (bound to the row's ID), the webhook verify token kept as its SHA-256
-- only. A phone number ID is unique within its tenant, not across tenants:
-- a connection is named by its ID (its webhook URL), and a tenant must not
-- be able to block another's number, or learn that it is connected, by
-- connecting it first. A call records the channel it came in on or went out by, and the
-- messenger's error code when the platform refused a request of ours.
CREATE TABLE whatsapp_connections (
	id              uuid PRIMARY KEY,
	tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
	phone_number_id text NOT NULL CHECK (phone_number_id ~ '^[0-9]{1,30}$'),
	number          text NOT NULL CHECK (number ~ '^\+[0-9]{3,15}$'),
	graph_url       text NOT NULL CHECK (graph_url ~ '^https?://' AND length(graph_url) <= 300),
	app_secret      bytea NOT NULL,
	access_token    bytea NOT NULL,
	verify_hash     bytea NOT NULL,
	created_at      timestamptz NOT NULL,
	CONSTRAINT whatsapp_connections_tenant_id_id_key UNIQUE (tenant_id, id),
	CONSTRAINT whatsapp_connections_tenant_phone_key UNIQUE (tenant_id, phone_number_id)
);
CREATE INDEX whatsapp_connections_tenant_idx ON whatsapp_connections (tenant_id, created_at);

ALTER TABLE calls
	ADD COLUMN channel        text NOT NULL DEFAULT '' CHECK (channel IN ('', 'whatsapp')),
	ADD COLUMN api_error_code integer NOT NULL DEFAULT 0;
