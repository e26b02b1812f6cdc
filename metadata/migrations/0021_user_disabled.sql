-- A disabled person keeps their record (calls, grants and the audit log
-- name them) but cannot log in; disabling ends their sessions.
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
