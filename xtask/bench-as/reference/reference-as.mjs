// The reference authorization server of `cargo xtask bench-as`: the official TypeScript MCP
// SDK's demo in-memory OAuth provider (`DemoInMemoryAuthProvider`, the provider of its
// `setupAuthServer` example) behind the SDK's `mcpAuthRouter`, on Express, in memory.
//
//   node reference-as.mjs [--port PORT]     (default 0: any free port)
//
// Prints `listening http://127.0.0.1:PORT` once it accepts connections. Loopback only.
//
// What differs from `setupAuthServer`, and why (each keeps the reference at or below the SDK's
// own cost):
// - The SDK's default rate limits on /authorize and /token (100 requests per 15 minutes) are off:
//   a benchmark makes thousands, and our server does not rate-limit successful grants either.
// - The demo provider issues no refresh token and throws on the refresh grant ("Not implemented
//   for example demo"). `BenchProvider` adds the smallest in-memory version in the demo's own
//   style: a random refresh token with each code exchange, rotated (the old one deleted) on
//   each refresh grant, bound to its client.
// - Authorization is approved at once like the demo provider does (it "simulates a user
//   login" and redirects with a code), which matches our demo's `--auto-approve`.
// - The port is chosen by the caller (or the system), and the resource is checked strictly
//   against `http://127.0.0.1:PORT/mcp` (the demo's `strictResource`).
import { randomUUID } from 'node:crypto';
import express from 'express';
import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js';
import { mcpAuthRouter } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { InvalidGrantError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { resourceUrlFromServerUrl } from '@modelcontextprotocol/sdk/shared/auth-utils.js';

const ACCESS_TOKEN_TTL_MS = 3600 * 1000;

class BenchProvider extends DemoInMemoryAuthProvider {
    constructor(validateResource) {
        super(validateResource);
        this.refreshTokens = new Map();
    }

    issueRefreshToken(clientId, scopes, resource) {
        const refreshToken = randomUUID();
        this.refreshTokens.set(refreshToken, { clientId, scopes, resource });
        return refreshToken;
    }

    async exchangeAuthorizationCode(client, authorizationCode, codeVerifier) {
        const codeData = this.codes.get(authorizationCode);
        const tokens = await super.exchangeAuthorizationCode(client, authorizationCode, codeVerifier);
        const scopes = codeData.params.scopes || [];
        return { ...tokens, refresh_token: this.issueRefreshToken(client.client_id, scopes, codeData.params.resource) };
    }

    async exchangeRefreshToken(client, refreshToken, _scopes, _resource) {
        const data = this.refreshTokens.get(refreshToken);
        if (!data || data.clientId !== client.client_id) {
            throw new InvalidGrantError('Invalid refresh token');
        }
        this.refreshTokens.delete(refreshToken);
        const token = randomUUID();
        this.tokens.set(token, {
            token,
            clientId: client.client_id,
            scopes: data.scopes,
            expiresAt: Date.now() + ACCESS_TOKEN_TTL_MS,
            resource: data.resource,
            type: 'access'
        });
        return {
            access_token: token,
            token_type: 'bearer',
            expires_in: ACCESS_TOKEN_TTL_MS / 1000,
            scope: data.scopes.join(' '),
            refresh_token: this.issueRefreshToken(client.client_id, data.scopes, data.resource)
        };
    }
}

function parsePort(argv) {
    const i = argv.indexOf('--port');
    if (i === -1) return 0;
    const port = Number(argv[i + 1]);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
        console.error(`usage: node reference-as.mjs [--port PORT]; bad port ${argv[i + 1]}`);
        process.exit(2);
    }
    return port;
}

const app = express();
const server = app.listen(parsePort(process.argv.slice(2)), '127.0.0.1', error => {
    if (error) {
        console.error('cannot listen:', error);
        process.exit(1);
    }
    const { port } = server.address();
    const authServerUrl = new URL(`http://127.0.0.1:${port}/`);
    const expectedResource = resourceUrlFromServerUrl(new URL(`http://127.0.0.1:${port}/mcp`)).toString();
    const provider = new BenchProvider(resource => resource !== undefined && resource.toString() === expectedResource);
    // As in `setupAuthServer`.
    app.use(express.json());
    app.use(express.urlencoded());
    app.use(
        mcpAuthRouter({
            provider,
            issuerUrl: authServerUrl,
            scopesSupported: ['mcp:tools'],
            authorizationOptions: { rateLimit: false },
            tokenOptions: { rateLimit: false }
        })
    );
    console.log(`listening http://127.0.0.1:${port}`);
});
