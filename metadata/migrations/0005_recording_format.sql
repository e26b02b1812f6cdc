-- The container format version of each recording (docs/recording-format.md),
-- beside its key version: what a reader needs to open it.
ALTER TABLE recordings ADD COLUMN format integer NOT NULL DEFAULT 1;
