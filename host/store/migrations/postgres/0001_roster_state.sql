-- The roster state a connection last applied, and its runs.

CREATE TABLE connections (
    id         TEXT PRIMARY KEY,
    connector  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row per source record. `content_hash` lets an unchanged record cost
-- a comparison and no write; `body` is the record as JSON.
CREATE TABLE roster_records (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('person', 'group', 'membership', 'relationship')),
    key           TEXT NOT NULL,
    content_hash  BYTEA NOT NULL,
    body          TEXT NOT NULL,
    changed_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection_id, kind, key)
);

CREATE TABLE sync_runs (
    id            BIGSERIAL PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    mode          TEXT NOT NULL CHECK (mode IN ('full', 'delta')),
    status        TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    -- The connector's resume point, stored only with the records it covers.
    cursor        TEXT
);

CREATE INDEX sync_runs_by_connection ON sync_runs (connection_id, id);
