-- The rule behind each issue and how a school fixes it at the source;
-- and each connection's standing issues: what is wrong now, the set its
-- latest runs leave (a full read replaces it, a delta amends it).

ALTER TABLE run_issues ADD COLUMN policy TEXT NOT NULL DEFAULT '';
ALTER TABLE run_issues ADD COLUMN fix TEXT NOT NULL DEFAULT '';

CREATE TABLE standing_issues (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    source_id     TEXT NOT NULL,
    entity_type   TEXT NOT NULL,
    entity_name   TEXT NOT NULL,
    mis_id        TEXT NOT NULL,
    message       TEXT NOT NULL,
    policy        TEXT NOT NULL,
    fix           TEXT NOT NULL,
    -- The run that last raised it.
    run_id        INTEGER NOT NULL
);
CREATE INDEX standing_issues_by_source ON standing_issues (connection_id, source_id);
