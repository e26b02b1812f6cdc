-- A call's record is written three times: created, answered, ended. The
-- answer of a call no operator takes (forwarded, placed for a messenger or
-- an integration) changes only columns no index holds (status,
-- answered_at, codec, timings), so PostgreSQL can write it as a heap-only
-- tuple (HOT): the new version goes on the row's own page and no index
-- takes an entry. (An operator's answer names them, which their calls'
-- index holds: not HOT.) That needs both of what follows:
-- * status is in no index. Calls by status are found through the
--   tenant's calls by time (the list is read newest first, a page at a
--   time); calls in progress, the one status query that runs often (the
--   live view, deleting a trunk or a tenant, recovery after a crash), are
--   the calls not ended, in a partial index of them alone, which replaces
--   the one recovery used;
-- * each page keeps room for the answers of the calls inserted into it
--   (fillfactor; pages written from now on).
-- The old indexes are dropped once the new one is built (see 0028 on
-- locks).
CREATE INDEX calls_live_idx ON calls (tenant_id, created_at DESC, id DESC) WHERE ended_at IS NULL;
DROP INDEX calls_tenant_status_idx;
DROP INDEX calls_unended_idx;
ALTER TABLE calls SET (fillfactor = 80);
