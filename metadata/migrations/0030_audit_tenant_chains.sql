-- Each tenant's audit entries are numbered and chained on their own. The
-- log's one numbering and chain (seq, prev_hash, hash) count every
-- tenant's entries, so a tenant's admin who read them learnt how many
-- audited actions other tenants took between two of theirs. seq, prev_hash
-- and hash stay, the service's (`audit verify`, the signed checkpoints);
-- tenant_seq is the entry's number in its tenant's log (the system's
-- entries, tenant_id NULL, in theirs), and tenant_hash its hash in the
-- tenant's chain, over the tenant's entry before (tenant_prev_hash).
-- Entries from before have no tenant hash: their hash in the log is still
-- checked as it was made, and their tenant's chain goes on from it.
ALTER TABLE audit_log ADD COLUMN tenant_seq bigint,
	ADD COLUMN tenant_prev_hash bytea CHECK (length(tenant_prev_hash) = 32),
	ADD COLUMN tenant_hash bytea CHECK (length(tenant_hash) = 32),
	ADD CONSTRAINT audit_log_tenant_chain CHECK ((tenant_prev_hash IS NULL) = (tenant_hash IS NULL));

-- Numbering the entries already there is the one change ever made to the
-- log's rows: the trigger that refuses it is off for this statement alone,
-- inside this migration's transaction, which holds the table meanwhile. No
-- hash covers an old entry's number; `audit verify` checks that each
-- tenant's entries are numbered 1, 2, 3... in the log's order.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
UPDATE audit_log a SET tenant_seq = n.tenant_seq
	FROM (SELECT seq, row_number() OVER (PARTITION BY tenant_id ORDER BY seq) AS tenant_seq FROM audit_log) n
	WHERE a.seq = n.seq;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;

-- An instance of the version before, still running during a rolling
-- upgrade, appends entries without a number or a tenant hash: each gets
-- the next number of its tenant's (it appends under the same advisory lock
-- as this version does), and is shown as an entry from before.
CREATE FUNCTION audit_log_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.tenant_seq IS NULL AND NEW.tenant_id IS NULL THEN
		SELECT coalesce(max(tenant_seq), 0) + 1 INTO NEW.tenant_seq FROM audit_log WHERE tenant_id IS NULL;
	ELSIF NEW.tenant_seq IS NULL THEN
		SELECT coalesce(max(tenant_seq), 0) + 1 INTO NEW.tenant_seq FROM audit_log WHERE tenant_id = NEW.tenant_id;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_number BEFORE INSERT ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_number();

ALTER TABLE audit_log ALTER COLUMN tenant_seq SET NOT NULL;
CREATE UNIQUE INDEX audit_log_tenant_seq_idx ON audit_log (tenant_id, tenant_seq);
-- The system's entries (tenant_id NULL) are one chain too: NULLs are
-- distinct in the index above, so their numbers are kept unique here.
CREATE UNIQUE INDEX audit_log_system_seq_idx ON audit_log (tenant_seq) WHERE tenant_id IS NULL;
