-- mcp-auth-server SqliteStore schema, version 2: what a client may obtain beyond a user's approval.
-- machine_scope: scopes the operator allows for machine grants (NULL: none).
-- resources: JSON array of the resources the client may get tokens for ([]: every resource).

ALTER TABLE clients ADD COLUMN machine_scope TEXT;
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';

CREATE INDEX grants_revoked_at ON grants (revoked_at) WHERE revoked_at IS NOT NULL;
