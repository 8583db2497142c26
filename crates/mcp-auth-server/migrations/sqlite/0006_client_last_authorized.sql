-- mcp-auth-server SqliteStore schema, version 6: unused public clients expire (SPEC AS-46).
-- last_authorized_at: when the client last completed an authorization (an authorization code
-- exchanged), UNIX seconds; NULL: never.

ALTER TABLE clients ADD COLUMN last_authorized_at INTEGER;
