-- Runs asked for, by a schedule, an operator or a script, and how far each
-- has got. At most one queued-or-running row per connection: a second
-- request for the same connection joins the first. Whoever runs a run
-- (a host's worker, a `sync` command) stamps heartbeat_at while it goes; a
-- running row whose heartbeat has gone stale belongs to a process that
-- died, and any host settles it.
CREATE TABLE run_queue (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id  TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('delta', 'full')),
    reason         TEXT NOT NULL,
    requested_by   TEXT NOT NULL,
    requested_at   TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('queued', 'running', 'finished', 'failed')),
    additions_only INTEGER NOT NULL DEFAULT 0,
    started_at     TEXT,
    heartbeat_at   TEXT,
    finished_at    TEXT,
    run_id         INTEGER REFERENCES sync_runs (id) ON DELETE SET NULL,
    progress       TEXT,
    message        TEXT
);
CREATE UNIQUE INDEX one_active_run_per_connection ON run_queue (connection_id) WHERE state IN ('queued', 'running');
CREATE INDEX run_queue_by_state ON run_queue (state, id);
CREATE INDEX run_queue_running_by_heartbeat ON run_queue (heartbeat_at) WHERE state = 'running';
CREATE INDEX run_queue_by_connection ON run_queue (connection_id, id);
