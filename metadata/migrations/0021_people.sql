-- Day two of people and keys: keys get a label, an expiry and the time of
-- their last use; people can be disabled and can be sent a one-time link
-- to set their password (an invitation, or an admin's reset).

ALTER TABLE api_keys
	ADD COLUMN label        text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
	ADD COLUMN expires_at   timestamptz,
	ADD COLUMN last_used_at timestamptz;
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id, id);

-- disabled_at: the person may not log in, and has no session. An invited
-- person has no password yet (password_hash ''), so no password matches.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
CREATE INDEX users_tenant_id_idx ON users (tenant_id, id);

-- One-time links to set a password. Only the SHA-256 of the token is kept;
-- a token is deleted when used, and a new one replaces the person's last.
CREATE TABLE password_tokens (
	token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
	user_id    uuid NOT NULL,
	tenant_id  uuid NOT NULL,
	purpose    text NOT NULL CHECK (purpose IN ('invite', 'reset')),
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX password_tokens_user_idx ON password_tokens (tenant_id, user_id);
