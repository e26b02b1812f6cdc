-- Signed checkpoints of the audit chain's head: someone who rewrites the
-- log and recomputes every hash after the change still cannot forge the
-- Ed25519 signature over a checkpointed head.
CREATE TABLE audit_checkpoints (
	seq       bigint PRIMARY KEY,
	hash      bytea NOT NULL,
	at        timestamptz NOT NULL,
	signature bytea NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
