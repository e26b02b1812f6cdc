-- Recording consent policy per tenant (default: never record), a trunk's
-- standing consent assertion, and call recordings' records. A recording's
-- data key is stored only wrapped by the keyring's key-encryption key.

ALTER TABLE tenants ADD COLUMN recording_policy text NOT NULL DEFAULT 'never'
	CHECK (recording_policy IN ('never', 'consent', 'trunk'));

ALTER TABLE trunks ADD COLUMN recording_consent boolean NOT NULL DEFAULT false;

CREATE TABLE recordings (
	id                uuid PRIMARY KEY,
	tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	call_id           uuid NOT NULL,
	status            text NOT NULL CHECK (status IN ('recording', 'complete', 'failed', 'destroyed')),
	codec             text NOT NULL,
	clock_rate        integer NOT NULL,
	started_at        timestamptz NOT NULL,
	ended_at          timestamptz,
	size_bytes        bigint NOT NULL DEFAULT 0,
	segments          integer NOT NULL DEFAULT 0,
	dropped_packets   bigint NOT NULL DEFAULT 0,
	consent_given     boolean NOT NULL,
	consent_mechanism text NOT NULL,
	consent_at        timestamptz NOT NULL,
	consent_by        text NOT NULL DEFAULT '',
	consent_policy    text NOT NULL,
	object_key        text NOT NULL,
	key_version       integer NOT NULL,
	wrapped_key       bytea, -- NULL once destroyed: the audio can never be opened again
	FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX recordings_call_idx ON recordings (tenant_id, call_id);
