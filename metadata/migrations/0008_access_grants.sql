-- Support engineers' diagnostic access to recordings. A tenant chooses
-- whether support engineers may see it at all, whether a second person of
-- the tenant must approve each grant, how long a grant may last, and
-- whether a grant may allow downloading the decrypted audio.
ALTER TABLE tenants
	ADD COLUMN support_access        boolean NOT NULL DEFAULT false,
	ADD COLUMN grant_approval        boolean NOT NULL DEFAULT false,
	ADD COLUMN grant_max_ttl_seconds integer NOT NULL DEFAULT 3600 CHECK (grant_max_ttl_seconds BETWEEN 60 AND 604800),
	ADD COLUMN grant_download        boolean NOT NULL DEFAULT false;

-- What an audited access touched (a byte range, a time window). Existing
-- entries keep an empty detail, which their hashes never covered.
ALTER TABLE audit_log ADD COLUMN detail text NOT NULL DEFAULT '';

-- Where each segment of a recording begins, in milliseconds from its
-- start, so a range read decrypts only the segments it touches. NULL for a
-- recording finished without it (recovered after a crash): those are read
-- from the start.
ALTER TABLE recordings ADD COLUMN segment_starts bigint[];
ALTER TABLE recordings ADD CONSTRAINT recordings_tenant_id_id_key UNIQUE (tenant_id, id);

-- A grant is one person's time-limited access to one recording. The
-- requester may be a support engineer of another tenant, so it names a
-- user without a foreign key; the audit log keeps the history.
CREATE TABLE access_grants (
	id            uuid PRIMARY KEY,
	tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
	recording_id  uuid NOT NULL,
	call_id       uuid NOT NULL,
	requested_by  uuid NOT NULL,
	requester_role text NOT NULL CHECK (requester_role IN ('support', 'admin')),
	reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
	ticket        text NOT NULL CHECK (length(ticket) BETWEEN 1 AND 200),
	download      boolean NOT NULL DEFAULT false,
	ttl_seconds   integer NOT NULL CHECK (ttl_seconds > 0),
	status        text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked', 'expired')),
	requested_at  timestamptz NOT NULL,
	decided_by    uuid,
	decided_at    timestamptz,
	expires_at    timestamptz NOT NULL, -- of the request while pending, of the access once approved
	ended_by      uuid,
	ended_at      timestamptz,
	FOREIGN KEY (tenant_id, recording_id) REFERENCES recordings (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX access_grants_tenant_idx ON access_grants (tenant_id, requested_at DESC);
CREATE INDEX access_grants_live_idx ON access_grants (expires_at) WHERE status IN ('pending', 'approved');
