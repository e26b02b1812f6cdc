-- How long a tenant keeps call recordings. Past it, a sweep deletes the
-- audio and erases the wrapped data key (crypto-shredding).
ALTER TABLE tenants ADD COLUMN recording_retention_days integer NOT NULL DEFAULT 30
	CHECK (recording_retention_days BETWEEN 1 AND 3650);
