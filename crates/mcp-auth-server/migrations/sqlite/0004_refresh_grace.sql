-- mcp-auth-server SqliteStore schema, version 4: the refresh grace window.
-- parent: the hash of the refresh token this one was rotated from (NULL: a grant's first token).
-- rotated_at: when this token was rotated (UNIX seconds), the start of its grace window (NULL while
-- active, and for a successor superseded by a sibling's use).

ALTER TABLE refresh_tokens ADD COLUMN parent BLOB;
ALTER TABLE refresh_tokens ADD COLUMN rotated_at INTEGER;

CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent) WHERE parent IS NOT NULL;
