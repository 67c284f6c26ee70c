-- Which build of each connector plugin may read with its connections'
-- secrets: the first build a connector runs with is accepted on first use;
-- a different file under the same name waits until an operator accepts it.
CREATE TABLE plugin_acceptances (
    connector   TEXT PRIMARY KEY,
    sha256      TEXT NOT NULL,
    version     TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    accepted_by TEXT NOT NULL
);
