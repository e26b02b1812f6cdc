-- What the service's operator deletes must leave the calls that named it
-- readable. A call names its trunk by ID only (no foreign key): deleting a
-- trunk writes the trunk's name onto its calls first. Deleting a tenant
-- would cascade to its calls, recordings and timelines, so a tenant is
-- marked deleted instead and stripped of every way in (sessions, API keys,
-- trunks, queues; its people disabled); its records stay until retention
-- removes them.
ALTER TABLE calls ADD COLUMN trunk_name text NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN deleted_at timestamptz;
