-- Provisioning targets: the ledger of what each target holds as far as the
-- host delivered, the changes waiting to go, the log of every delivery,
-- logins a target said are taken, holds on mass suspensions, and renames
-- waiting for an operator. No password is ever written here.

CREATE TABLE target_objects (
    target       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    external_id  TEXT NOT NULL,
    target_id    TEXT,
    username     TEXT,
    email        TEXT,
    state        TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'deleted')),
    suspended_at TIMESTAMPTZ,
    content_hash TEXT,
    members      TEXT NOT NULL DEFAULT '[]',
    owners       TEXT NOT NULL DEFAULT '[]',
    revision     BIGINT NOT NULL DEFAULT 0,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (target, kind, external_id)
);

-- One row per change not yet done, under its idempotency key; a refused
-- change stays (refused_at set) so it is not sent again until the object
-- changes and a new key supersedes it.
CREATE TABLE target_pending (
    target          TEXT NOT NULL,
    key             TEXT NOT NULL,
    position        BIGINT NOT NULL,
    body            TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    refused_at      TIMESTAMPTZ,
    last_error      TEXT,
    enqueued_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (target, key)
);
CREATE INDEX target_pending_in_order ON target_pending (target, position);

CREATE TABLE target_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    target      TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    external_id TEXT NOT NULL,
    action      TEXT NOT NULL,
    key         TEXT NOT NULL,
    sent        TEXT NOT NULL,
    target_id   TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('done', 'matched', 'conflict', 'retry', 'refused', 'failed')),
    error       TEXT
);
CREATE INDEX target_deliveries_by_object ON target_deliveries (target, external_id, id);

CREATE TABLE target_taken_names (
    target   TEXT NOT NULL,
    name     TEXT NOT NULL,
    noted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (target, name)
);

CREATE TABLE target_holds (
    id          BIGSERIAL PRIMARY KEY,
    target      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'confirmed', 'rejected')),
    opened_at   TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ,
    answered_by TEXT
);
CREATE UNIQUE INDEX one_open_target_hold ON target_holds (target) WHERE status = 'open';

CREATE TABLE target_renames (
    target        TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    from_username TEXT NOT NULL,
    to_username   TEXT NOT NULL,
    to_email      TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'applied')),
    proposed_at   TIMESTAMPTZ NOT NULL,
    answered_at   TIMESTAMPTZ,
    answered_by   TEXT,
    PRIMARY KEY (target, external_id, from_username, to_username)
);
