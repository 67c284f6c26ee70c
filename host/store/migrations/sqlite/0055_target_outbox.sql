-- How far each provisioning target has followed the outbox, and how its
-- last unattended pass ended: the host delivers a target again when runs
-- have written events past seen_id; last_error is the one sentence of a
-- pass that failed, cleared by the next that succeeds.
CREATE TABLE target_outbox (
    target  TEXT PRIMARY KEY,
    seen_id INTEGER NOT NULL DEFAULT 0,
    at      TEXT NOT NULL,
    last_error TEXT
);
