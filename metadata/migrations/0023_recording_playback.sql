-- Each direction of a recorded call is kept in the codec it arrived in: the
-- caller's channel's codec is codec, the operator's is operator_codec (a
-- recording made before this has one codec for both).
ALTER TABLE recordings ADD COLUMN operator_codec text NOT NULL DEFAULT '';
UPDATE recordings SET operator_codec = codec;

-- A recording cut short (the service stopped while it was being made) is
-- kept up to its last whole segment and says so: truncated.
ALTER TABLE recordings ADD COLUMN truncated boolean NOT NULL DEFAULT false;
-- Recordings recovered before this were marked failed with no segment
-- count: what they hold is truncated (a failed one with no object stays
-- unplayable, as before).
UPDATE recordings SET truncated = true WHERE status = 'failed' AND segments = 0;

-- An Opus recording's Ogg layout (each second's length in the file that
-- plays it), sealed under the recording's own data key, so that a player
-- opens it without decrypting the whole recording; gone with the key.
ALTER TABLE recordings ADD COLUMN ogg_layout bytea;
