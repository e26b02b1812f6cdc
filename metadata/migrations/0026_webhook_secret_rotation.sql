-- A webhook's secret is rotated by adding a second one that signs beside
-- it, then retiring the old: new_secret holds the second while both sign
-- (sealed with the keyring like secret, bound to the webhook's ID).
ALTER TABLE webhooks
	ADD COLUMN new_secret    bytea,
	ADD COLUMN new_secret_at timestamptz,
	ADD CONSTRAINT webhooks_new_secret_at_check CHECK ((new_secret IS NULL) = (new_secret_at IS NULL));
