-- Operator notifications, per outbox event and channel: a webhook and an
-- email channel retry on their own schedules, so each keeps its own row.
-- A missing row means the channel has not tried the event yet. The
-- outbox's own delivered_at belongs to downstream record events.
CREATE TABLE notification_deliveries (
    outbox_id       INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    delivered_at    TEXT,
    given_up_at     TEXT,
    last_error      TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (outbox_id, channel)
);
CREATE INDEX notification_deliveries_by_update ON notification_deliveries (updated_at);
CREATE INDEX outbox_by_event ON outbox (event, id);
