-- Trunks that take the calls operators place: where to send the INVITE,
-- the credentials to answer a digest challenge with (the password sealed
-- with the keyring: a database dump alone does not reveal it), the number
-- presented, and the order in which trunks are tried.
ALTER TABLE trunks
	ADD COLUMN outbound_target    text CHECK (outbound_target ~ '^[^:\s]+:[0-9]{1,5}$'),
	ADD COLUMN outbound_transport text NOT NULL DEFAULT 'udp' CHECK (outbound_transport IN ('udp', 'tcp')),
	ADD COLUMN outbound_username  text NOT NULL DEFAULT '',
	ADD COLUMN outbound_secret    bytea,
	ADD COLUMN caller_id          text NOT NULL DEFAULT '' CHECK (caller_id = '' OR caller_id ~ '^\+?[0-9]{3,15}$'),
	ADD COLUMN outbound_priority  integer NOT NULL DEFAULT 100;
