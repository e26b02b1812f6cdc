-- The audit log: append-only, hash-chained. The database itself refuses
-- UPDATE, DELETE and TRUNCATE; a superuser who disables the triggers to
-- change a row breaks the chain, which `audit verify` finds.
CREATE TABLE audit_log (
	seq            bigint PRIMARY KEY,
	id             uuid NOT NULL UNIQUE,
	tenant_id      uuid, -- no foreign key: the log outlives what it names
	at             timestamptz NOT NULL,
	actor_user_id  uuid,
	actor_key_id   uuid,
	actor_role     text NOT NULL DEFAULT '',
	action         text NOT NULL CHECK (action <> ''),
	resource_type  text NOT NULL DEFAULT '',
	resource_id    text NOT NULL DEFAULT '',
	reason         text NOT NULL DEFAULT '',
	ticket         text NOT NULL DEFAULT '',
	ip             text NOT NULL DEFAULT '',
	user_agent     text NOT NULL DEFAULT '',
	outcome        text NOT NULL CHECK (outcome <> ''),
	prev_hash      bytea NOT NULL,
	hash           bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
