-- A key the caller presses to consent to recording after the tenant's
-- announcement (e.g. '1'); empty: DTMF consent is off.
ALTER TABLE tenants ADD COLUMN recording_consent_digit text NOT NULL DEFAULT ''
	CHECK (recording_consent_digit IN ('', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'));
