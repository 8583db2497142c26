// An MCP server written with the official TypeScript SDK (`@modelcontextprotocol/sdk` v1, pinned
// in package.json: `McpServer` over `StreamableHTTPServerTransport`, stateless, on node:http),
// put behind `mcp-auth-gateway` by `tests/tests/gateway.rs`. It knows nothing of OAuth; it checks
// the gateway's identity JWT exactly as the gateway's README shows (jose):
//
//   node upstream-server.mjs JWKS_URL ISSUER AUDIENCE
//
// Every request without a valid identity token gets 401. It listens on a free loopback port and
// prints `listening PORT`. Tools: `echo(text)`, `whoami()` (the token's claims), `countdown(n)`
// (a progress notification every 0.3 s, then `liftoff`), `wipe()`.

import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { z } from 'zod';

const [jwksUrl, issuer, audience] = process.argv.slice(2);
if (!audience) {
    process.stderr.write('usage: node upstream-server.mjs JWKS_URL ISSUER AUDIENCE\n');
    process.exit(2);
}

// The README's snippet: who calls, according to the gateway.
const JWKS = createRemoteJWKSet(new URL(jwksUrl));
async function caller(authorization) {
    const { payload } = await jwtVerify((authorization ?? '').replace(/^Bearer /, ''), JWKS, {
        issuer,
        audience,
        typ: 'at+jwt',
        algorithms: ['ES256', 'EdDSA', 'RS256']
    });
    return payload;
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const text = value => ({ content: [{ type: 'text', text: value }] });

function newServer() {
    const server = new McpServer({ name: 'gateway-e2e-ts-upstream', version: '1.0.0' });
    server.registerTool('echo', { description: 'Returns its argument.', inputSchema: { text: z.string() } }, ({ text: t }) =>
        text(t)
    );
    server.registerTool('whoami', { description: 'Who the gateway says is calling.' }, extra => {
        const claims = extra.authInfo?.extra?.claims ?? {};
        return text(
            JSON.stringify({
                mode: 'jwt',
                subject: claims.sub ?? null,
                client_id: claims.client_id ?? null,
                scopes: claims.scope ?? null,
                issuer: claims.iss ?? null,
                audience: claims.aud ?? null,
                lifetime: claims.exp - claims.iat
            })
        );
    });
    server.registerTool(
        'countdown',
        { description: 'Reports progress n times, 0.3 s apart.', inputSchema: { n: z.number().int() } },
        async ({ n }, extra) => {
            const progressToken = extra._meta?.progressToken;
            for (let i = 0; i < n; i += 1) {
                if (progressToken !== undefined) {
                    await extra.sendNotification({
                        method: 'notifications/progress',
                        params: { progressToken, progress: i + 1, total: n, message: `step ${i + 1} of ${n}` }
                    });
                }
                await sleep(300);
            }
            return text('liftoff');
        }
    );
    server.registerTool('wipe', { description: 'A privileged tool.' }, () => text('wiped'));
    return server;
}

const httpServer = http.createServer(async (req, res) => {
    let claims;
    try {
        claims = await caller(req.headers.authorization);
    } catch (error) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(
            JSON.stringify({ error: 'invalid_token', detail: error?.code ?? String(error) })
        );
        return;
    }
    req.auth = {
        token: 'identity',
        clientId: String(claims.client_id ?? ''),
        scopes: String(claims.scope ?? '').split(' ').filter(Boolean),
        extra: { claims }
    };
    // Stateless: a server and a transport per request, as the SDK's examples do.
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: false });
    res.on('close', () => {
        transport.close();
        server.close();
    });
    try {
        await server.connect(transport);
        await transport.handleRequest(req, res);
    } catch (error) {
        if (!res.headersSent) {
            res.writeHead(500, { 'content-type': 'application/json' }).end(
                JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: String(error) } })
            );
        }
    }
});

httpServer.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${httpServer.address().port}\n`);
});
