-- Queues (departments): a tenant's number may lead to a queue, whose
-- members alone take its calls; callers wait up to max_wait_ms, then
-- overflow to another queue, a SIP URI, or a refusal.
CREATE TABLE queues (
	id             uuid PRIMARY KEY,
	tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
	max_wait_ms    integer NOT NULL CHECK (max_wait_ms BETWEEN 0 AND 3600000),
	overflow       text NOT NULL CHECK (overflow IN ('reject', 'queue', 'uri')),
	overflow_queue uuid,
	overflow_uri   text NOT NULL DEFAULT '' CHECK (length(overflow_uri) <= 200),
	created_at     timestamptz NOT NULL,
	CONSTRAINT queues_tenant_id_name_key UNIQUE (tenant_id, name),
	CONSTRAINT queues_tenant_id_id_key UNIQUE (tenant_id, id),
	FOREIGN KEY (tenant_id, overflow_queue) REFERENCES queues (tenant_id, id) ON DELETE SET NULL (overflow_queue)
);

CREATE TABLE queue_members (
	tenant_id uuid NOT NULL,
	queue_id  uuid NOT NULL,
	user_id   uuid NOT NULL,
	PRIMARY KEY (queue_id, user_id),
	FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, id) ON DELETE CASCADE,
	FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX queue_members_user_idx ON queue_members (tenant_id, user_id);

ALTER TABLE trunk_numbers
	ADD COLUMN queue_id uuid,
	ADD FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, id) ON DELETE SET NULL (queue_id);

-- A call forwarded by a queue's overflow can be ended by the party it was
-- forwarded to.
ALTER TABLE calls DROP CONSTRAINT calls_hangup_by_check,
	ADD CONSTRAINT calls_hangup_by_check CHECK (hangup_by IN ('', 'caller', 'operator', 'system', 'forwarded'));
