-- Which host process is delivering each target now, so that several
-- `serve` processes sharing one store never deliver the same target at
-- once. A lease that was not renewed before it expired may be taken over.
CREATE TABLE target_leases (
    target     TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
