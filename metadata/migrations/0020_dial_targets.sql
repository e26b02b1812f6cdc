-- Where a tenant's transfers and forwards to SIP URIs may go: domain names,
-- addresses and CIDR blocks (switchboard.DialTargets). None by default.
ALTER TABLE tenants ADD COLUMN dial_targets text[] NOT NULL DEFAULT '{}';
