-- mcp-auth-server PostgresStore schema, version 1: the same tables as SqliteStore's versions 1-7.
-- Times are UNIX seconds (BIGINT; times beyond i64::MAX are stored as i64::MAX); hashes are
-- SHA-256 (32-byte BYTEA); client metadata and resources are JSON text (kept as written).
-- Embedded in the binary (src/store/migrate.rs); never edit an applied migration, add 0002_*.sql.
-- Every table lives in the connection's schema (search_path), so several servers or test runs can
-- share one database, each in its own schema.

CREATE TABLE clients (
    client_id          TEXT    NOT NULL PRIMARY KEY,
    secret_hash        BYTEA,
    secret_expires_at  BIGINT  NOT NULL,
    auth_method        TEXT    NOT NULL,
    metadata           TEXT    NOT NULL,
    issued_at          BIGINT  NOT NULL,
    source             TEXT    NOT NULL,
    -- Scopes the operator allows for machine grants (NULL: none).
    machine_scope      TEXT,
    -- JSON array of the resources the client may get tokens for ([]: every resource).
    resources          TEXT    NOT NULL DEFAULT '[]',
    -- SHA-256 of the canonical metadata of a dynamically registered public client (NULL for
    -- every other client); at most one client per key.
    registration_key   BYTEA,
    -- When the client last completed an authorization (NULL: never); SPEC AS-46.
    last_authorized_at BIGINT
);

CREATE UNIQUE INDEX clients_registration_key ON clients (registration_key)
    WHERE registration_key IS NOT NULL;

CREATE TABLE codes (
    hash                    BYTEA   NOT NULL PRIMARY KEY,
    client_id               TEXT    NOT NULL,
    redirect_uri            TEXT    NOT NULL,
    redirect_uri_in_request BOOLEAN NOT NULL,
    code_challenge          TEXT    NOT NULL,
    resource                TEXT    NOT NULL,
    scope                   TEXT    NOT NULL,
    subject                 TEXT    NOT NULL,
    grant_id                TEXT    NOT NULL,
    issued_at               BIGINT  NOT NULL,
    expires_at              BIGINT  NOT NULL,
    used                    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE grants (
    grant_id   TEXT   NOT NULL PRIMARY KEY,
    client_id  TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    resource   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX grants_expires_at ON grants (expires_at);
CREATE INDEX grants_revoked_at ON grants (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX grants_subject ON grants (subject);
CREATE INDEX grants_client_id ON grants (client_id);

CREATE TABLE refresh_tokens (
    hash       BYTEA  NOT NULL PRIMARY KEY,
    grant_id   TEXT   NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    scope      TEXT   NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    state      TEXT   NOT NULL CHECK (state IN ('active', 'rotated', 'revoked')),
    -- The token this one was rotated from (NULL: a grant's first token).
    parent     BYTEA,
    -- When this token was rotated: the start of its grace window (NULL while active, and for a
    -- successor superseded by a sibling's use).
    rotated_at BIGINT
);

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent) WHERE parent IS NOT NULL;

CREATE TABLE revoked_access_tokens (
    jti        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    -- Replicas poll for what was revoked since.
    revoked_at BIGINT NOT NULL
);

CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);
CREATE INDEX revoked_access_tokens_revoked_at ON revoked_access_tokens (revoked_at);

CREATE TABLE consents (
    subject    TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    resource   TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id, resource)
);

CREATE TABLE signing_keys (
    kid          TEXT   NOT NULL PRIMARY KEY,
    alg          TEXT   NOT NULL,
    pkcs8        BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retired_at   BIGINT
);

-- The users' upstream tokens, encrypted by the vault: AES-256-GCM (96-bit nonce; ciphertext
-- followed by the tag), never the tokens in the clear. lease_holder/lease_until: a refresh in
-- flight (one at a time, across processes).
CREATE TABLE upstream_tokens (
    subject      TEXT   NOT NULL,
    upstream     TEXT   NOT NULL,
    key_id       TEXT   NOT NULL,
    nonce        BYTEA  NOT NULL,
    ciphertext   BYTEA  NOT NULL,
    updated_at   BIGINT NOT NULL,
    lease_holder TEXT,
    lease_until  BIGINT,
    PRIMARY KEY (subject, upstream)
);

-- Short-lived browser state (authorizations waiting for the user, login sessions, pending
-- upstream sign-ins), sealed by the server; key is the SHA-256 of the browser's secret.
CREATE TABLE flows (
    kind       TEXT   NOT NULL,
    key        BYTEA  NOT NULL,
    subject    TEXT,
    value      BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE INDEX flows_expires_at ON flows (expires_at);
CREATE INDEX flows_subject ON flows (subject) WHERE subject IS NOT NULL;

-- Fixed rate-limit windows.
CREATE TABLE rate_windows (
    key     TEXT   NOT NULL PRIMARY KEY,
    count   BIGINT NOT NULL,
    ends_at BIGINT NOT NULL
);

CREATE INDEX rate_windows_ends_at ON rate_windows (ends_at);

-- One replica at a time (signing keys, upkeep).
CREATE TABLE leases (
    name   TEXT   NOT NULL PRIMARY KEY,
    holder TEXT   NOT NULL,
    until  BIGINT NOT NULL
);
