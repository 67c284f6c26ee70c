-- Accounts and the links that tie them to source people; held and dry-run
-- change sets; what a run read and why it failed.

ALTER TABLE sync_runs ADD COLUMN dry_run BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sync_runs ADD COLUMN records_read BIGINT NOT NULL DEFAULT 0;
-- The provider was unreachable or refused the credentials: what the
-- disconnected hold counts.
ALTER TABLE sync_runs ADD COLUMN unreachable BOOLEAN NOT NULL DEFAULT FALSE;
-- Why a run failed or was held, in one sentence.
ALTER TABLE sync_runs ADD COLUMN message TEXT;

-- Accounts exist with or without a connection (made by hand, imported);
-- `created_by` names the connection that provisioned one.
CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    mis_id       TEXT,
    email        TEXT,
    username     TEXT,
    display_name TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('active', 'deprovisioned', 'deleted')),
    created_by   TEXT REFERENCES connections (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX accounts_by_email ON accounts (email);

-- Which account a connection's source person is: the stable identity that
-- survives a change of email or name at the source.
CREATE TABLE account_links (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    source_id     TEXT NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    linked_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection_id, source_id),
    UNIQUE (connection_id, account_id)
);

-- The change set a held or dry run would have applied, kept as JSON.
CREATE TABLE change_sets (
    run_id BIGINT PRIMARY KEY REFERENCES sync_runs (id) ON DELETE CASCADE,
    body   TEXT NOT NULL
);

-- A held connection: the latest held run's change set waits here for an
-- operator's answer. At most one hold per connection is open.
CREATE TABLE holds (
    id            BIGSERIAL PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    run_id        BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    reasons       TEXT NOT NULL,
    cursor        TEXT,
    status        TEXT NOT NULL CHECK (status IN ('open', 'confirmed', 'rejected')),
    opened_at     TIMESTAMPTZ NOT NULL,
    answered_at   TIMESTAMPTZ,
    answered_by   TEXT
);
CREATE UNIQUE INDEX one_open_hold_per_connection ON holds (connection_id) WHERE status = 'open';
