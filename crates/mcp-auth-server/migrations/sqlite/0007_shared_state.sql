-- mcp-auth-server SqliteStore schema, version 7: nothing a replica needs stays in one process.
-- flows: short-lived browser state (authorizations waiting for the user, login sessions,
--   pending upstream sign-ins), sealed by the server; key is the SHA-256 of the browser's secret.
-- rate_windows: fixed rate-limit windows. leases: one replica at a time (keys, upkeep).
-- revoked_access_tokens.revoked_at: replicas poll for what was revoked since.

CREATE TABLE flows (
    kind       TEXT    NOT NULL,
    key        BLOB    NOT NULL,
    subject    TEXT,
    value      BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) STRICT;

CREATE INDEX flows_expires_at ON flows (expires_at);
CREATE INDEX flows_subject ON flows (subject) WHERE subject IS NOT NULL;

CREATE TABLE rate_windows (
    key     TEXT    NOT NULL PRIMARY KEY,
    count   INTEGER NOT NULL,
    ends_at INTEGER NOT NULL
) STRICT;

CREATE TABLE leases (
    name   TEXT    NOT NULL PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
) STRICT;

ALTER TABLE revoked_access_tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
-- Rows from before this version: their revocation time is unknown; their `exp` keeps them in
-- every listing that could still need them.
UPDATE revoked_access_tokens SET revoked_at = expires_at;

CREATE INDEX revoked_access_tokens_revoked_at ON revoked_access_tokens (revoked_at);
