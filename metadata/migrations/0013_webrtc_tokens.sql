-- Browser callers' tokens (WHIP ingress): issued by a tenant's backend for
-- one of its numbers, single use, short-lived. Only the secret's SHA-256
-- is kept.
CREATE TABLE webrtc_tokens (
	id           uuid PRIMARY KEY,
	tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	trunk_id     uuid NOT NULL,
	number       text NOT NULL,
	caller       text NOT NULL CHECK (length(caller) <= 100),
	external_ref text NOT NULL DEFAULT '' CHECK (length(external_ref) <= 200),
	hash         bytea NOT NULL UNIQUE,
	expires_at   timestamptz NOT NULL,
	used_at      timestamptz,
	created_at   timestamptz NOT NULL,
	FOREIGN KEY (tenant_id, trunk_id) REFERENCES trunks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webrtc_tokens_expires_idx ON webrtc_tokens (expires_at);
