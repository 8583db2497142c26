-- mcp-auth-server SqliteStore schema, version 3: the users' upstream tokens, encrypted by the vault.
-- nonce/ciphertext: AES-256-GCM (96-bit nonce; ciphertext followed by the tag), never the tokens
-- in the clear. lease_holder/lease_until: a refresh in flight (one at a time, across processes).

CREATE TABLE upstream_tokens (
    subject      TEXT    NOT NULL,
    upstream     TEXT    NOT NULL,
    key_id       TEXT    NOT NULL,
    nonce        BLOB    NOT NULL,
    ciphertext   BLOB    NOT NULL,
    updated_at   INTEGER NOT NULL,
    lease_holder TEXT,
    lease_until  INTEGER,
    PRIMARY KEY (subject, upstream)
) STRICT;

CREATE INDEX grants_subject ON grants (subject);
