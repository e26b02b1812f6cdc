-- A trunk can be deleted once no call is in progress on it; the records of
-- its calls keep its ID (no foreign key) and, from then on, its name.
ALTER TABLE calls ADD COLUMN trunk_name text NOT NULL DEFAULT '';
