-- Several instances share this database. Each says where it takes SIP and
-- that it is alive (heartbeat), and publishes its operators' presence, so
-- that a call arriving at one instance can be handed to an operator free
-- on another.
CREATE TABLE instances (
	name         text PRIMARY KEY CHECK (name <> ''),
	sip_addr     text NOT NULL,
	heartbeat_at timestamptz NOT NULL
);
CREATE TABLE operator_presence (
	operator_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	instance    text NOT NULL REFERENCES instances (name) ON DELETE CASCADE,
	state       text NOT NULL CHECK (state IN ('available', 'ringing', 'busy', 'away')),
	idle_since  timestamptz NOT NULL,
	PRIMARY KEY (operator_id, instance)
);
CREATE INDEX operator_presence_free_idx ON operator_presence (tenant_id, idle_since) WHERE state = 'available';
