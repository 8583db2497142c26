-- mcp-auth-server SqliteStore schema, version 1.
-- Times are UNIX seconds (INTEGER); hashes are SHA-256 (32-byte BLOB); metadata is JSON text.
-- Embedded in the binary (src/store/sqlite.rs); never edit an applied migration, add 0002_*.sql.

CREATE TABLE clients (
    client_id         TEXT    NOT NULL PRIMARY KEY,
    secret_hash       BLOB,
    secret_expires_at INTEGER NOT NULL,
    auth_method       TEXT    NOT NULL,
    metadata          TEXT    NOT NULL,
    issued_at         INTEGER NOT NULL,
    source            TEXT    NOT NULL
) STRICT;

CREATE TABLE codes (
    hash                    BLOB    NOT NULL PRIMARY KEY,
    client_id               TEXT    NOT NULL,
    redirect_uri            TEXT    NOT NULL,
    redirect_uri_in_request INTEGER NOT NULL,
    code_challenge          TEXT    NOT NULL,
    resource                TEXT    NOT NULL,
    scope                   TEXT    NOT NULL,
    subject                 TEXT    NOT NULL,
    grant_id                TEXT    NOT NULL,
    issued_at               INTEGER NOT NULL,
    expires_at              INTEGER NOT NULL,
    used                    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE grants (
    grant_id   TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE refresh_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('active', 'rotated', 'revoked'))
) STRICT;

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

CREATE TABLE consents (
    subject    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (subject, client_id, resource)
) STRICT;

CREATE TABLE signing_keys (
    kid          TEXT    NOT NULL PRIMARY KEY,
    alg          TEXT    NOT NULL,
    pkcs8        BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retired_at   INTEGER
) STRICT;
