-- Holds per population, revisions a confirm names, and answers a school
-- gives once.

-- A person's role or a group's kind, read from the stored record: the
-- populations hold shares are weighed over (students, staff and contacts
-- apart; each kind of group apart).
ALTER TABLE roster_records ADD COLUMN class TEXT GENERATED ALWAYS AS (
    CASE kind
        WHEN 'person' THEN (body::jsonb) #>> '{person,role}'
        WHEN 'group' THEN (body::jsonb) #>> '{group,kind}'
    END
) STORED;
CREATE INDEX roster_records_by_class ON roster_records (connection_id, kind, class);

-- The hold's current revision: its number and the digest of its change
-- set. Holds opened before revisions existed are named by their run.
ALTER TABLE holds ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE holds ADD COLUMN digest TEXT NOT NULL DEFAULT '';
UPDATE holds SET digest = 'run-' || run_id;

-- Every change set a hold has shown. A later held run with a different
-- change set supersedes the current one; the superseded run's change set
-- stays kept as evidence.
CREATE TABLE hold_revisions (
    hold_id       BIGINT NOT NULL REFERENCES holds (id) ON DELETE CASCADE,
    revision      BIGINT NOT NULL,
    run_id        BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    digest        TEXT NOT NULL,
    reasons       TEXT NOT NULL,
    cursor        TEXT,
    opened_at     TIMESTAMPTZ NOT NULL,
    superseded_at TIMESTAMPTZ,
    PRIMARY KEY (hold_id, revision)
);
INSERT INTO hold_revisions (hold_id, revision, run_id, digest, reasons, cursor, opened_at)
    SELECT id, 1, run_id, digest, reasons, cursor, opened_at FROM holds;

-- What operators accepted by confirming a hold (a contact's type, a
-- pupil's contact set), as keys the core defines; a later run is not held
-- again for them until the data they name changes.
CREATE TABLE hold_acceptances (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    hold_id       BIGINT NOT NULL REFERENCES holds (id) ON DELETE CASCADE,
    accepted_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection_id, key)
);
