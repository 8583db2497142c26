-- mcp-auth-server PostgresStore schema, version 2: DPoP-bound refresh tokens (RFC 9449 §5).
-- dpop_jkt: the JWK SHA-256 thumbprint of the DPoP key a public client's refresh token is bound
-- to (a refresh must come with a proof by that key); NULL: not bound.

ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
