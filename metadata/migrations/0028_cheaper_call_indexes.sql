-- A call writes its record three times (created, answered, ended) and
-- none of those updates can be HOT (each changes an indexed column), so
-- every index on calls whose predicate the row meets takes an entry at
-- each write; its trace adds a row per SIP message and quality sample.
-- Indexes hold only the rows their queries can find (BenchmarkCallRecords:
-- 11 % less WAL per call):
-- * quality tags: most calls have none, and a query by tag names a tag
--   (FindCalls adds the predicate);
-- * an operator's calls: only answered calls name one;
-- * calls to anonymise: retention takes ended calls only;
-- * traces by age, for retention: a trace is written when its call ends,
--   so rows lie in time order and a block range index serves the sweep
--   for a fraction of a B-tree's upkeep.
-- The new indexes are built first, beside the old ones: a build holds
-- writes to its table (SHARE: reads go on; a migration is one
-- transaction, so not CONCURRENTLY) for as long as it takes, so on a
-- large database upgrade at a quiet hour. Only then are the old ones
-- dropped and the new ones named after them, which takes each table
-- whole (ACCESS EXCLUSIVE), for a moment, until the migration commits.
CREATE INDEX calls_tags_idx_new ON calls USING gin (tags) WHERE tags <> '{}';
CREATE INDEX calls_tenant_operator_idx_new ON calls (tenant_id, operator_id, created_at DESC, id DESC) WHERE operator_id IS NOT NULL;
CREATE INDEX calls_to_anonymise_idx_new ON calls (created_at) WHERE anonymised_at IS NULL AND ended_at IS NOT NULL;
CREATE INDEX call_sip_messages_at_idx_new ON call_sip_messages USING brin (at);
CREATE INDEX call_quality_samples_at_idx_new ON call_quality_samples USING brin (at);
DROP INDEX calls_tags_idx;
DROP INDEX calls_tenant_operator_idx;
DROP INDEX calls_to_anonymise_idx;
DROP INDEX call_sip_messages_at_idx;
DROP INDEX call_quality_samples_at_idx;
ALTER INDEX calls_tags_idx_new RENAME TO calls_tags_idx;
ALTER INDEX calls_tenant_operator_idx_new RENAME TO calls_tenant_operator_idx;
ALTER INDEX calls_to_anonymise_idx_new RENAME TO calls_to_anonymise_idx;
ALTER INDEX call_sip_messages_at_idx_new RENAME TO call_sip_messages_at_idx;
ALTER INDEX call_quality_samples_at_idx_new RENAME TO call_quality_samples_at_idx;
