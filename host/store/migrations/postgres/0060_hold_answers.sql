-- Holds by type, and what an operator answered.

-- The hold's type (removals, contacts, changes, disconnected): what its
-- current revision's reasons are about, which decides the answers offered.
ALTER TABLE holds ADD COLUMN kind TEXT NOT NULL DEFAULT 'changes';
UPDATE holds SET kind = 'disconnected' WHERE reasons LIKE '%"reason":"disconnected"%';
UPDATE holds SET kind = 'removals'
    WHERE kind = 'changes' AND reasons LIKE '%"reason":"too-many-removals"%'
      AND reasons NOT LIKE '%"reason":"too-many-updates"%'
      AND reasons NOT LIKE '%"reason":"too-many-contacts"%'
      AND reasons NOT LIKE '%"reason":"contact-types-not-accepted"%';
-- The answer given (`removals/confirm-removals`, ...) and the operator's
-- comment, if any.
ALTER TABLE holds ADD COLUMN answer TEXT;
ALTER TABLE holds ADD COLUMN comment TEXT;
