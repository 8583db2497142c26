// The official TypeScript MCP SDK v2 (`@modelcontextprotocol/client`, pinned in package.json) as an
// OAuth client of an MCP server, given nothing but the server's URL, in one protocol era:
//
//   node client-v2.mjs http://127.0.0.1:PORT/mcp legacy|2026-07-28
//
// `legacy` is the SDK's default negotiation (the 2025-11-25 `initialize` handshake); `2026-07-28`
// pins the modern era (`versionNegotiation: { mode: { pin: '2026-07-28' } }`: stateless, `_meta`
// on every request, no probe and no fallback).
//
// The SDK does the OAuth work itself (protected resource metadata and authorization server
// discovery, dynamic client registration, PKCE, the token exchange, the step-up on 403
// insufficient_scope, the refresh on 401). This script only supplies an in-memory
// `OAuthClientProvider` and plays the user and the browser: it fetches each authorization URL
// without following the redirect and hands the `Location`'s parameters (`code`, `iss`) to
// `finishAuth`, which works against a server that approves at once (the demo's `--auto-approve`).
//
// Steps: connect (401 → authorization) → tools/list → list_notes → add_note (403
// insufficient_scope → step-up to notes:write) → delete_note (step-up to notes:admin) → the access
// token is revoked at the authorization server (RFC 7009; the demo's tokens live 15 minutes, so
// this stands in for their expiry: the next request gets 401 invalid_token) → whoami (the SDK
// refreshes and retries). One JSON line per step on stdout; exit 1 with a message on stderr on
// any failure.
//
// `tests/tests/sdk_client.rs` runs it (from a copy next to the modules that `cargo xtask setup`
// installs into .tools/sdk-client, since ESM resolves packages from the script's own directory).

import { Client } from '@modelcontextprotocol/client';

import { InMemoryOAuthProvider, Wire, connect, emit, fail, revokeAccessToken, run } from './sdk-v2-harness.mjs';

async function main() {
    const [serverUrl, mode] = process.argv.slice(2);
    if (!serverUrl || !['legacy', '2026-07-28'].includes(mode)) {
        fail('usage: node client-v2.mjs <MCP server URL> legacy|2026-07-28');
    }
    const url = new URL(serverUrl);
    const provider = new InMemoryOAuthProvider({ redirectUrl: 'http://127.0.0.1:53684/callback', clientName: 'mcp-auth e2e (TypeScript SDK v2)' });
    const wire = new Wire(url);
    const client = new Client(
        { name: 'mcp-auth-sdk-v2-e2e', version: '0.0.0' },
        { versionNegotiation: { mode: mode === 'legacy' ? 'legacy' : { pin: mode } } }
    );
    const session = await connect(client, url, provider, wire);
    const { authorized } = session;
    const transport = () => session.transport;
    emit('connect', {
        server: client.getServerVersion() ?? null,
        protocol_version: transport().protocolVersion ?? null,
        session: Boolean(transport().sessionId)
    });

    const callTool = (name, args = {}) =>
        authorized(name, async () => {
            const result = await client.callTool({ name, arguments: args });
            if (result.isError) {
                fail(`${name} returned a tool error: ${JSON.stringify(result.content)}`);
            }
            const text = result.content?.find(part => part.type === 'text')?.text;
            if (typeof text !== 'string') {
                fail(`${name} returned no text content: ${JSON.stringify(result)}`);
            }
            return JSON.parse(text);
        });

    const { tools } = await authorized('tools/list', () => client.listTools());
    emit('list_tools', { tools: tools.map(tool => tool.name) });

    emit('list_notes', { result: await callTool('list_notes') });
    const added = await callTool('add_note', { text: 'from the TypeScript SDK v2' });
    emit('add_note', { result: added });
    emit('delete_note', { result: await callTool('delete_note', { id: added.id }) });

    const before = provider.tokens();
    if (!before?.refresh_token) {
        fail('no refresh token was issued');
    }
    await revokeAccessToken(provider, url);
    const me = await callTool('whoami');
    const after = provider.tokens();
    emit('refresh', {
        new_access_token: after.access_token !== before.access_token,
        scope: after.scope ?? null
    });
    emit('whoami', { result: me });
    emit('wire', {
        protocol_versions: [...new Set(wire.versions.filter(Boolean))].sort(),
        without_version: wire.versions.filter(v => !v).length,
        mcp_posts: wire.versions.length,
        grant_types: wire.grantTypes,
        negotiated: transport().protocolVersion ?? null
    });
    emit('authorization_scopes', { scopes: provider.authorizationScopes });

    await client.close();
    emit('done');
}

run('sdk-client-v2', main);
