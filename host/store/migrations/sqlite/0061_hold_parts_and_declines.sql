-- Holds answered in parts, and contacts an operator declined.

-- The answers given so far to a hold whose reasons are of several types,
-- one stored answer per part (`removals/confirm-removals,...`), in order;
-- `kind` is the part now waiting. A new revision starts the parts again.
ALTER TABLE holds ADD COLUMN answered_parts TEXT NOT NULL DEFAULT '';

-- What an operator answered about the contacts a key names: `accept`
-- ("Create accounts") or `decline` ("Don't create"). A declined contact is
-- left out of later runs, as an issue, until the data the key names
-- changes.
ALTER TABLE hold_acceptances ADD COLUMN verdict TEXT NOT NULL DEFAULT 'accept';
