-- mcp-auth-server SqliteStore schema, version 5: idempotent public registration.
-- registration_key: SHA-256 of the canonical metadata of a dynamically registered public client
-- (NULL for every other client); at most one client per key.

ALTER TABLE clients ADD COLUMN registration_key BLOB;

CREATE UNIQUE INDEX clients_registration_key ON clients (registration_key)
    WHERE registration_key IS NOT NULL;
