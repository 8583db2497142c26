// The official TypeScript MCP SDK v2 (`@modelcontextprotocol/client`, pinned in package.json)
// against `mcp-auth-gateway` in front of an MCP server the SDK knows nothing about, given only
// the gateway's URL, in one protocol era:
//
//   node gateway-client.mjs http://localhost:PORT/mcp legacy|2026-07-28
//
// The OAuth plumbing (in-memory provider, "browser", wire log, revocation) is client-v2.mjs's.
// Steps: connect (401 -> authorization) -> tools/list (the privileged `wipe` hidden) -> echo ->
// countdown (progress notifications, timed as they arrive) -> wipe (403 insufficient_scope ->
// the SDK's step-up) -> tools/list (with `wipe`) -> the access token is revoked (standing in for
// its expiry) -> whoami (the SDK refreshes on the 401 and retries). One JSON line per step on
// stdout; exit 1 with a message on stderr on any failure.
//
// `tests/tests/gateway.rs` runs it.

import { createHash, randomBytes } from 'node:crypto';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';

/** Nothing listens here: `redirectToAuthorization` reads the redirect instead of following it. */
const REDIRECT_URL = 'http://127.0.0.1:53685/callback';
/** The whole run, bounded. */
const OVERALL_TIMEOUT_MS = 45_000;
/** Each request the script makes itself (the "browser" fetch, the revocation). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Authorization rounds per operation, bounded (one is expected per step-up). */
const MAX_AUTH_ROUNDS = 2;

function emit(step, fields = {}) {
    process.stdout.write(`${JSON.stringify({ step, ...fields })}\n`);
}

function fail(message) {
    process.stderr.write(`gateway-client: FAILED: ${message}\n`);
    process.exit(1);
}

/** Tokens never leave this process; a short hash tells them apart in the output. */
function fingerprint(token) {
    return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

/** An in-memory `OAuthClientProvider`: what a desktop app would keep in its keychain. */
class InMemoryOAuthProvider {
    constructor() {
        this._clientInformation = undefined;
        this._tokens = undefined;
        this._codeVerifier = undefined;
        this._state = undefined;
        this._pending = undefined;
        /** The `scope` parameter of every authorization request, in order. */
        this.authorizationScopes = [];
    }

    get redirectUrl() {
        return REDIRECT_URL;
    }

    get clientMetadata() {
        return {
            client_name: 'mcp-auth gateway e2e (TypeScript SDK v2)',
            redirect_uris: [REDIRECT_URL],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none'
        };
    }

    state() {
        this._state = randomBytes(16).toString('hex');
        return this._state;
    }

    clientInformation() {
        return this._clientInformation;
    }

    saveClientInformation(information) {
        this._clientInformation = information;
        emit('registered', { client_id: information.client_id });
    }

    tokens() {
        return this._tokens;
    }

    saveTokens(tokens) {
        this._tokens = tokens;
        emit('tokens', {
            scope: tokens.scope ?? null,
            refresh_token: Boolean(tokens.refresh_token),
            access_token: fingerprint(tokens.access_token)
        });
    }

    saveCodeVerifier(codeVerifier) {
        this._codeVerifier = codeVerifier;
    }

    /** Kept with the code verifier, so the SDK can check the callback against the server it sent the user to. */
    saveDiscoveryState(state) {
        this._discoveryState = state;
    }

    discoveryState() {
        return this._discoveryState;
    }

    codeVerifier() {
        if (!this._codeVerifier) {
            throw new Error('no code verifier saved');
        }
        return this._codeVerifier;
    }

    invalidateCredentials(scope) {
        if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
        if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
        if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
        emit('invalidated', { what: scope });
    }

    /** The user approves in a browser, which is redirected back with `code`, `state` and `iss`. */
    async redirectToAuthorization(authorizationUrl) {
        const url = new URL(authorizationUrl);
        const scope = url.searchParams.get('scope');
        this.authorizationScopes.push(scope);
        if (url.searchParams.get('code_challenge_method') !== 'S256' || !url.searchParams.get('code_challenge')) {
            fail(`authorization request without PKCE S256: ${url}`);
        }
        const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        await response.body?.cancel();
        const location = response.headers.get('location');
        if (response.status < 300 || response.status > 399 || !location) {
            fail(`authorization request answered ${response.status} without a redirect: ${url}`);
        }
        const callback = new URL(location, url);
        if (`${callback.origin}${callback.pathname}` !== REDIRECT_URL) {
            fail(`redirected to ${callback}, not to ${REDIRECT_URL}`);
        }
        const params = callback.searchParams;
        if (params.get('error')) {
            fail(`authorization refused: ${params.get('error')}`);
        }
        // The SDK does not check `state`; the app does (its documented contract).
        if (params.get('state') !== this._state) {
            fail(`state mismatch: sent ${this._state}, got ${params.get('state')}`);
        }
        if (!params.get('code')) {
            fail(`no code in ${callback}`);
        }
        this._pending = params;
        emit('authorize', {
            scope,
            resource: url.searchParams.get('resource'),
            status: response.status,
            iss: params.get('iss')
        });
    }

    /** The callback parameters of the last redirect, once. */
    takeCallback() {
        const params = this._pending;
        this._pending = undefined;
        if (!params) {
            fail('the SDK asked to finish an authorization that was never redirected');
        }
        return params;
    }
}

/** What went over HTTP, seen by the transport's `fetch`. */
class Wire {
    constructor(mcpUrl) {
        this.mcpUrl = `${mcpUrl.origin}${mcpUrl.pathname}`;
        this.versions = [];
        this.grantTypes = [];
        this.statuses = [];
    }

    fetch = async (input, init) => {
        const url = new URL(input instanceof Request ? input.url : input);
        const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
        const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
        const isMcp = `${url.origin}${url.pathname}` === this.mcpUrl && method === 'POST';
        if (isMcp) {
            this.versions.push(headers.get('mcp-protocol-version'));
        } else if (method === 'POST' && url.pathname.endsWith('/token')) {
            const grantType = new URLSearchParams(init?.body?.toString() ?? '').get('grant_type');
            this.grantTypes.push(grantType);
            emit('token_request', { grant_type: grantType });
        }
        const response = await fetch(input, init);
        if (isMcp) {
            this.statuses.push(response.status);
        }
        if (response.status === 403 || (isMcp && response.status === 401)) {
            emit('challenge', { status: response.status, www_authenticate: response.headers.get('www-authenticate') });
        }
        return response;
    };
}

/** RFC 7009 revocation of the current access token, as the public client it was issued to. */
async function revokeAccessToken(provider, serverUrl) {
    const prm = await getJson(new URL(`/.well-known/oauth-protected-resource${serverUrl.pathname}`, serverUrl));
    const issuer = prm.authorization_servers?.[0];
    const metadata = await getJson(new URL(`${issuer}/.well-known/oauth-authorization-server`));
    if (!metadata.revocation_endpoint) {
        fail(`the authorization server ${issuer} has no revocation_endpoint`);
    }
    const response = await fetch(metadata.revocation_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
            token: provider.tokens().access_token,
            token_type_hint: 'access_token',
            client_id: provider.clientInformation().client_id
        }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    });
    await response.body?.cancel();
    if (response.status !== 200) {
        fail(`revocation answered ${response.status}`);
    }
    emit('revoked', { access_token: fingerprint(provider.tokens().access_token) });
}

async function getJson(url) {
    const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (response.status !== 200) {
        fail(`${url} answered ${response.status}`);
    }
    return response.json();
}

async function main() {
    const [serverUrl, mode] = process.argv.slice(2);
    if (!serverUrl || !['legacy', '2026-07-28'].includes(mode)) {
        fail('usage: node gateway-client.mjs <gateway MCP URL> legacy|2026-07-28');
    }
    const url = new URL(serverUrl);
    const provider = new InMemoryOAuthProvider();
    const wire = new Wire(url);
    const newTransport = () => new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: wire.fetch });
    let transport = newTransport();
    const client = new Client(
        { name: 'mcp-auth-gateway-e2e', version: '0.0.0' },
        { versionNegotiation: { mode: mode === 'legacy' ? 'legacy' : { pin: mode } } }
    );

    /** Runs `operation`, finishing an authorization whenever the SDK asks for one. */
    const authorized = async (what, operation) => {
        for (let round = 0; ; round += 1) {
            try {
                return await operation();
            } catch (error) {
                if (!(error instanceof UnauthorizedError) || round >= MAX_AUTH_ROUNDS) {
                    throw error;
                }
                emit('authorization_needed', { for: what, sdk: error.message });
                await transport.finishAuth(provider.takeCallback());
            }
        }
    };

    try {
        await client.connect(transport);
    } catch (error) {
        if (!(error instanceof UnauthorizedError)) {
            throw error;
        }
        emit('authorization_needed', { for: 'connect', sdk: error.message });
        await transport.finishAuth(provider.takeCallback());
        transport = newTransport();
        await client.connect(transport);
    }
    emit('connect', { protocol_version: transport.protocolVersion ?? null });

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

setTimeout(() => fail(`timed out after ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS).unref();
main().then(
    () => process.exit(0),
    error => fail(error?.stack ?? String(error))
);
