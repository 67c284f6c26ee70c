-- Operator notifications, per outbox event and channel: a webhook and an
-- email channel retry on their own schedules, so each keeps its own row.
-- A missing row means the channel has not tried the event yet. The
-- outbox's own delivered_at belongs to downstream record events.
CREATE TABLE notification_deliveries (
    outbox_id       BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    given_up_at     TIMESTAMPTZ,
    last_error      TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (outbox_id, channel)
);
CREATE INDEX notification_deliveries_by_update ON notification_deliveries (updated_at);
CREATE INDEX outbox_by_event ON outbox (event, id);
