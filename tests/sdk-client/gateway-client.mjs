// The official TypeScript MCP SDK v2 (`@modelcontextprotocol/client`, pinned in package.json)
// against `mcp-auth-gateway` in front of an MCP server the SDK knows nothing about, given only
// the gateway's URL, in one protocol era:
//
//   node gateway-client.mjs http://localhost:PORT/mcp legacy|2026-07-28
//
// The OAuth plumbing (in-memory provider, "browser", wire log, revocation) is sdk-v2-harness.mjs's.
// Steps: connect (401 -> authorization) -> tools/list (the privileged `wipe` hidden) -> echo ->
// countdown (progress notifications, timed as they arrive) -> wipe (403 insufficient_scope ->
// the SDK's step-up) -> tools/list (with `wipe`) -> the access token is revoked (standing in for
// its expiry) -> whoami (the SDK refreshes on the 401 and retries). One JSON line per step on
// stdout; exit 1 with a message on stderr on any failure.
//
// `tests/tests/gateway.rs` runs it.

import { Client } from '@modelcontextprotocol/client';

import { InMemoryOAuthProvider, Wire, connect, emit, fail, revokeAccessToken, run } from './sdk-v2-harness.mjs';

async function main() {
    const [serverUrl, mode] = process.argv.slice(2);
    if (!serverUrl || !['legacy', '2026-07-28'].includes(mode)) {
        fail('usage: node gateway-client.mjs <gateway MCP URL> legacy|2026-07-28');
    }
    const url = new URL(serverUrl);
    const provider = new InMemoryOAuthProvider({ redirectUrl: 'http://127.0.0.1:53685/callback', clientName: 'mcp-auth gateway e2e (TypeScript SDK v2)' });
    const wire = new Wire(url);
    const client = new Client(
        { name: 'mcp-auth-gateway-e2e', version: '0.0.0' },
        { versionNegotiation: { mode: mode === 'legacy' ? 'legacy' : { pin: mode } } }
    );
    const session = await connect(client, url, provider, wire);
    const { authorized } = session;
    const transport = () => session.transport;
    emit('connect', { protocol_version: transport().protocolVersion ?? null });

    const callTool = (name, args = {}, options = undefined) =>
        authorized(name, async () => {
            const result = await client.callTool({ name, arguments: args }, options);
            if (result.isError) {
                fail(`${name} returned a tool error: ${JSON.stringify(result.content)}`);
            }
            const text = result.content?.find(part => part.type === 'text')?.text;
            if (typeof text !== 'string') {
                fail(`${name} returned no text content: ${JSON.stringify(result)}`);
            }
            return text;
        });
    const listTools = async () => {
        const { tools } = await authorized('tools/list', () => client.listTools());
        return tools.map(tool => tool.name).sort();
    };

    emit('list_tools', { tools: await listTools() });
    emit('echo', { result: await callTool('echo', { text: 'hello' }) });

    const started = performance.now();
    const progress = [];
    const result = await callTool(
        'countdown',
        { n: 4 },
        {
            onprogress: p =>
                progress.push({ progress: p.progress, total: p.total ?? null, at: (performance.now() - started) / 1000 })
        }
    );
    emit('countdown', { result, progress, done_at: (performance.now() - started) / 1000 });

    emit('wipe', { result: await callTool('wipe') });
    emit('list_tools_after_step_up', { tools: await listTools() });

    const before = provider.tokens();
    if (!before?.refresh_token) {
        fail('no refresh token was issued');
    }
    await revokeAccessToken(provider, url);
    const me = JSON.parse(await callTool('whoami'));
    const after = provider.tokens();
    emit('refresh', { refreshed: after !== before, new_access_token: after.access_token !== before.access_token });
    emit('whoami', { result: me, client_id: provider.clientInformation().client_id });
    emit('wire', { grant_types: wire.grantTypes });

    await client.close();
    emit('done');
}

run('gateway-client', main);
