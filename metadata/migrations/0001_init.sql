-- Tenants, people, keys, sessions, trunks, calls and their timelines.
-- Every tenant-owned row carries tenant_id. Child rows reference their
-- parent by (tenant_id, id), so a row can never point into another tenant.

CREATE TABLE tenants (
	id         uuid PRIMARY KEY,
	name       text NOT NULL CHECK (name <> ''),
	created_at timestamptz NOT NULL
);

CREATE TABLE users (
	id            uuid PRIMARY KEY,
	tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	email         text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
	name          text NOT NULL DEFAULT '',
	role          text NOT NULL CHECK (role IN ('operator', 'supervisor', 'support', 'admin')),
	password_hash text NOT NULL,
	created_at    timestamptz NOT NULL,
	CONSTRAINT users_email_key UNIQUE (email),
	CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE api_keys (
	id         uuid PRIMARY KEY,
	tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	role       text NOT NULL CHECK (role IN ('operator', 'supervisor', 'support', 'admin')),
	prefix     text NOT NULL,
	hash       bytea NOT NULL CHECK (length(hash) = 32), -- SHA-256 of the secret
	created_at timestamptz NOT NULL,
	CONSTRAINT api_keys_hash_key UNIQUE (hash)
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE sessions (
	token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32), -- SHA-256 of the token
	user_id    uuid NOT NULL,
	tenant_id  uuid NOT NULL,
	role       text NOT NULL CHECK (role IN ('operator', 'supervisor', 'support', 'admin')),
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user_idx ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE trunks (
	id         uuid PRIMARY KEY,
	tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	name       text NOT NULL CHECK (name <> ''),
	allow      cidr[] NOT NULL DEFAULT '{}',
	username   text, -- SIP digest username, global: a trunk is recognised before its tenant is known
	digest_ha1 text, -- MD5(username:realm:password), hex
	created_at timestamptz NOT NULL,
	CONSTRAINT trunks_username_key UNIQUE (username),
	CONSTRAINT trunks_tenant_id_name_key UNIQUE (tenant_id, name),
	CONSTRAINT trunks_tenant_id_id_key UNIQUE (tenant_id, id),
	CHECK (cardinality(allow) > 0 OR username IS NOT NULL),
	CHECK ((username IS NULL) = (digest_ha1 IS NULL))
);

CREATE TABLE trunk_numbers (
	number    text PRIMARY KEY CHECK (number ~ '^\+?[0-9]+$'),
	trunk_id  uuid NOT NULL,
	tenant_id uuid NOT NULL,
	FOREIGN KEY (tenant_id, trunk_id) REFERENCES trunks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX trunk_numbers_trunk_idx ON trunk_numbers (tenant_id, trunk_id);

-- Call records outlive the trunks and operators they name, so trunk_id and
-- operator_id carry no foreign key.
CREATE TABLE calls (
	id          uuid PRIMARY KEY,
	tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	direction   text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
	trunk_id    uuid,
	operator_id uuid,
	from_number text NOT NULL DEFAULT '',
	to_number   text NOT NULL DEFAULT '',
	source      text NOT NULL DEFAULT '',
	sip_call_id text NOT NULL DEFAULT '',
	status      text NOT NULL CHECK (status IN ('ringing', 'answered', 'completed', 'no-answer', 'busy', 'canceled', 'failed', 'rejected')),
	hangup_by   text NOT NULL DEFAULT '' CHECK (hangup_by IN ('', 'caller', 'operator', 'system')),
	sip_code    integer NOT NULL DEFAULT 0,
	reason      text NOT NULL DEFAULT '',
	codec       text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL,
	answered_at timestamptz,
	ended_at    timestamptz,
	duration_ms bigint NOT NULL DEFAULT 0,

	from_caller_packets   bigint NOT NULL DEFAULT 0,
	from_caller_bytes     bigint NOT NULL DEFAULT 0,
	from_caller_lost      bigint NOT NULL DEFAULT 0,
	from_caller_jitter_ms double precision NOT NULL DEFAULT 0,
	to_caller_packets     bigint NOT NULL DEFAULT 0,
	to_caller_bytes       bigint NOT NULL DEFAULT 0,
	to_caller_lost        bigint NOT NULL DEFAULT 0,
	to_caller_jitter_ms   double precision NOT NULL DEFAULT 0,

	CONSTRAINT calls_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX calls_tenant_created_idx  ON calls (tenant_id, created_at DESC, id DESC);
CREATE INDEX calls_tenant_operator_idx ON calls (tenant_id, operator_id, created_at DESC, id DESC);
CREATE INDEX calls_tenant_status_idx   ON calls (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX calls_tenant_from_idx     ON calls (tenant_id, from_number, created_at DESC, id DESC);
CREATE INDEX calls_tenant_to_idx       ON calls (tenant_id, to_number, created_at DESC, id DESC);

CREATE TABLE call_events (
	id        uuid PRIMARY KEY,
	call_id   uuid NOT NULL,
	tenant_id uuid NOT NULL,
	at        timestamptz NOT NULL,
	type      text NOT NULL CHECK (type <> ''),
	detail    jsonb,
	FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX call_events_call_idx ON call_events (tenant_id, call_id, at, id);
