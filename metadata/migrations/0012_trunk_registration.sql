-- A trunk whose carrier needs us registered (behind NAT, dynamic
-- addresses): switchboard keeps a REGISTER refreshed with its target.
ALTER TABLE trunks ADD COLUMN outbound_register boolean NOT NULL DEFAULT false;
