-- What a call leaves for diagnosis: where it failed, its quality, its SIP
-- messages as they crossed the wire and its quality over time, kept for
-- the tenant's trace retention and redacted by its trace policy.
ALTER TABLE tenants
	ADD COLUMN trace_retention_days integer NOT NULL DEFAULT 30 CHECK (trace_retention_days BETWEEN 1 AND 3650),
	ADD COLUMN trace_drop_bodies    boolean NOT NULL DEFAULT false,
	ADD COLUMN trace_mask_numbers   boolean NOT NULL DEFAULT false;

ALTER TABLE calls
	ADD COLUMN failure_leg        text NOT NULL DEFAULT '' CHECK (failure_leg IN ('', 'trunk', 'browser', 'switchboard')),
	ADD COLUMN failure_stage      text NOT NULL DEFAULT '' CHECK (failure_stage IN ('', 'auth', 'routing', 'offer', 'ringing', 'media_setup', 'media', 'teardown')),
	ADD COLUMN q850_cause         integer NOT NULL DEFAULT 0,
	ADD COLUMN post_dial_delay_ms bigint NOT NULL DEFAULT 0,
	ADD COLUMN time_to_answer_ms  bigint NOT NULL DEFAULT 0,
	ADD COLUMN from_caller_mos    double precision NOT NULL DEFAULT 0,
	ADD COLUMN to_caller_mos      double precision NOT NULL DEFAULT 0,
	ADD COLUMN tags               text[] NOT NULL DEFAULT '{}';
-- "Today's calls with one-way audio" is a query.
CREATE INDEX calls_tags_idx ON calls USING gin (tags);

CREATE TABLE call_sip_messages (
	tenant_id uuid NOT NULL,
	call_id   uuid NOT NULL,
	seq       integer NOT NULL,
	at        timestamptz NOT NULL,
	inbound   boolean NOT NULL,
	transport text NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
	src       text NOT NULL,
	dst       text NOT NULL,
	message   text NOT NULL,
	PRIMARY KEY (tenant_id, call_id, seq),
	FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX call_sip_messages_at_idx ON call_sip_messages (at);

CREATE TABLE call_quality_samples (
	tenant_id uuid NOT NULL,
	call_id   uuid NOT NULL,
	at        timestamptz NOT NULL,
	leg       text NOT NULL CHECK (leg IN ('trunk', 'browser')),
	source    text NOT NULL CHECK (source IN ('switchboard', 'browser')),
	packets   bigint NOT NULL,
	lost      bigint NOT NULL,
	jitter_ms double precision NOT NULL,
	rtt_ms    double precision NOT NULL DEFAULT 0,
	FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX call_quality_samples_call_idx ON call_quality_samples (tenant_id, call_id, at);
CREATE INDEX call_quality_samples_at_idx ON call_quality_samples (at);
