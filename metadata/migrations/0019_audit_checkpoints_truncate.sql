-- The signed checkpoints are as append-only as the log they sign: TRUNCATE,
-- which row triggers do not see, is refused too.
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
