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
-- Rebuilding them holds writes to calls and traces for as long as the
-- builds take (a migration is one transaction, so not CONCURRENTLY): on a
-- large database, upgrade at a quiet hour.
DROP INDEX calls_tags_idx;
CREATE INDEX calls_tags_idx ON calls USING gin (tags) WHERE tags <> '{}';
DROP INDEX calls_tenant_operator_idx;
CREATE INDEX calls_tenant_operator_idx ON calls (tenant_id, operator_id, created_at DESC, id DESC) WHERE operator_id IS NOT NULL;
DROP INDEX calls_to_anonymise_idx;
CREATE INDEX calls_to_anonymise_idx ON calls (created_at) WHERE anonymised_at IS NULL AND ended_at IS NOT NULL;
DROP INDEX call_sip_messages_at_idx;
CREATE INDEX call_sip_messages_at_idx ON call_sip_messages USING brin (at);
DROP INDEX call_quality_samples_at_idx;
CREATE INDEX call_quality_samples_at_idx ON call_quality_samples USING brin (at);
