-- Retention per data class: call records are anonymised after
-- call_retention_days (their numbers, references, sources and timelines
-- go; the counts stay), quality samples are deleted after
-- quality_retention_days (SIP traces keep trace_retention_days). A tenant
-- may also mask callers' numbers on the operator's page.
ALTER TABLE tenants
	ADD COLUMN call_retention_days    integer NOT NULL DEFAULT 365 CHECK (call_retention_days BETWEEN 1 AND 3650),
	ADD COLUMN quality_retention_days integer NOT NULL DEFAULT 30 CHECK (quality_retention_days BETWEEN 1 AND 3650),
	ADD COLUMN mask_operator_numbers  boolean NOT NULL DEFAULT false;
ALTER TABLE calls ADD COLUMN anonymised_at timestamptz;
CREATE INDEX calls_to_anonymise_idx ON calls (created_at) WHERE anonymised_at IS NULL;
