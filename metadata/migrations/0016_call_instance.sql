-- Which instance ran a call: after a crash, an instance closes the records
-- of the calls it was running, and only those (others may share the
-- database).
ALTER TABLE calls ADD COLUMN instance text NOT NULL DEFAULT '';
CREATE INDEX calls_unended_idx ON calls (instance) WHERE ended_at IS NULL;
