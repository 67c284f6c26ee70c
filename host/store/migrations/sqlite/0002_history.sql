-- What each run did and found, what it owes downstream, and who did what by hand.

ALTER TABLE connections ADD COLUMN last_changed_at TEXT;
ALTER TABLE connections ADD COLUMN last_checked_at TEXT;

CREATE TABLE run_counts (
    run_id INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind   TEXT NOT NULL,
    action TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (run_id, kind, action)
);

-- The columns schools know from their MIS integrations.
CREATE TABLE run_issues (
    run_id      INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    source_id   TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_name TEXT NOT NULL,
    mis_id      TEXT NOT NULL,
    message     TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);

-- Every applied change, per object, with the fields it changed as JSON.
CREATE TABLE change_log (
    run_id INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    key    TEXT NOT NULL,
    action TEXT NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX change_log_by_object ON change_log (kind, key);

-- Downstream effects, written with the changes that cause them and
-- delivered at least once; the idempotency key makes redelivery harmless.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id   TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    run_id          INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    connection_id TEXT,
    subject       TEXT NOT NULL,
    detail        TEXT NOT NULL
);
