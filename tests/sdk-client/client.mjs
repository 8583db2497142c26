// The official TypeScript MCP SDK (`@modelcontextprotocol/sdk`, pinned in package.json) as an
// OAuth client of an MCP server, given nothing but the server's URL:
//
//   node client.mjs http://127.0.0.1:PORT/mcp
//
// The SDK does the OAuth work itself (protected resource metadata and authorization server
// discovery, dynamic client registration, PKCE, the token exchange, refresh). This script only
// supplies an in-memory `OAuthClientProvider` and plays the user and the browser: it fetches each
// authorization URL without following the redirect and takes the `code` from the `Location`,
// which works against a server that approves at once (the demo's `--auto-approve`).
//
// Steps: connect (401 → authorization) → tools/list → list_notes → add_note (403
// insufficient_scope → step-up to notes:write) → delete_note (step-up to notes:admin) → whoami.
// One JSON line per step on stdout; exit 1 with a message on stderr on any failure.
//
// `tests/tests/sdk_client.rs` runs it (from a copy next to the modules that `cargo xtask setup`
// installs into .tools/sdk-client, since ESM resolves packages from the script's own directory).

import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
    StreamableHTTPClientTransport,
    StreamableHTTPError
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';

/** Nothing listens here: `redirectToAuthorization` reads the redirect instead of following it. */
const REDIRECT_URL = 'http://127.0.0.1:53682/callback';
/** The whole run, bounded. */
const OVERALL_TIMEOUT_MS = 45_000;
/** Each authorization request (the "browser" fetch). */
const AUTHORIZE_TIMEOUT_MS = 10_000;
/** Authorization rounds per tool call, bounded (one is expected per step-up). */
const MAX_AUTH_ROUNDS = 2;

function emit(step, fields = {}) {
    process.stdout.write(`${JSON.stringify({ step, ...fields })}\n`);
}

function fail(message) {
    process.stderr.write(`sdk-client: FAILED: ${message}\n`);
    process.exit(1);
}

/** An in-memory `OAuthClientProvider`: what a desktop app would keep in its keychain. */
class InMemoryOAuthProvider {
    constructor() {
        this._clientInformation = undefined;
        this._tokens = undefined;
        this._codeVerifier = undefined;
        this._state = undefined;
        this._pendingCode = undefined;
        /** The `scope` parameter of every authorization request, in order. */
        this.authorizationScopes = [];
    }

    get redirectUrl() {
        return REDIRECT_URL;
    }

    get clientMetadata() {
        return {
            client_name: 'mcp-auth e2e (TypeScript SDK)',
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
        emit('tokens', { scope: tokens.scope ?? null, refresh_token: Boolean(tokens.refresh_token) });
    }

    saveCodeVerifier(codeVerifier) {
        this._codeVerifier = codeVerifier;
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

    /** The user approves in a browser, which is redirected back with `code` and `state`. */
    async redirectToAuthorization(authorizationUrl) {
        const url = new URL(authorizationUrl);
        const scope = url.searchParams.get('scope');
        this.authorizationScopes.push(scope);
        if (url.searchParams.get('code_challenge_method') !== 'S256' || !url.searchParams.get('code_challenge')) {
            fail(`authorization request without PKCE S256: ${url}`);
        }
        const response = await fetch(url, {
            redirect: 'manual',
            signal: AbortSignal.timeout(AUTHORIZE_TIMEOUT_MS)
        });
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
            fail(`authorization refused: ${params.get('error')} ${params.get('error_description') ?? ''}`);
        }
        if (params.get('state') !== this._state) {
            fail(`state mismatch: sent ${this._state}, got ${params.get('state')}`);
        }
        const code = params.get('code');
        if (!code) {
            fail(`no code in ${callback}`);
        }
        this._pendingCode = code;
        emit('authorize', {
            scope,
            resource: url.searchParams.get('resource'),
            status: response.status,
            iss: params.get('iss')
        });
    }

    /** The code from the last redirect, once. */
    takeCode() {
        const code = this._pendingCode;
        this._pendingCode = undefined;
        if (!code) {
            fail('the SDK asked to finish an authorization that was never redirected');
        }
        return code;
    }
}

/** `a ∪ b` of two space-separated scope strings, in order of first appearance. */
function scopeUnion(a, b) {
    return [...new Set(`${a} ${b}`.split(' ').filter(Boolean))].join(' ');
}

async function main() {
    const [serverUrl] = process.argv.slice(2);
    if (!serverUrl) {
        fail('usage: node client.mjs <MCP server URL>');
    }
    const url = new URL(serverUrl);
    const provider = new InMemoryOAuthProvider();

    // The last 403 challenge the transport received (the SDK keeps it to itself).
    let lastChallenge;
    const observingFetch = async (input, init) => {
        const response = await fetch(input, init);
        if (response.status === 403) {
            const header = response.headers.get('www-authenticate');
            lastChallenge = { ...extractWWWAuthenticateParams(response), header };
            emit('challenge', { status: 403, www_authenticate: header });
        }
        return response;
    };
    const newTransport = () => new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: observingFetch });

    const client = new Client({ name: 'mcp-auth-sdk-e2e', version: '0.0.0' });
    let transport = newTransport();

    // The SDK's documented pattern: connect; on UnauthorizedError the provider has been sent to
    // the authorization URL; finish with the code, then connect again on a new transport.
    try {
        await client.connect(transport);
    } catch (error) {
        if (!(error instanceof UnauthorizedError)) {
            throw error;
        }
        await transport.finishAuth(provider.takeCode());
        transport = newTransport();
        await client.connect(transport);
    }
    emit('connect', {
        server: client.getServerVersion(),
        protocol_version: transport.protocolVersion ?? null,
        session: Boolean(transport.sessionId)
    });

    /** `tools/call`, authorizing again as an SDK app does when the SDK asks for it. */
    const callTool = async (name, args = {}) => {
        for (let round = 0; ; round += 1) {
            try {
                const result = await client.callTool({ name, arguments: args });
                if (result.isError) {
                    fail(`${name} returned a tool error: ${JSON.stringify(result.content)}`);
                }
                const text = result.content?.find(part => part.type === 'text')?.text;
                if (typeof text !== 'string') {
                    fail(`${name} returned no text content: ${JSON.stringify(result)}`);
                }
                return JSON.parse(text);
            } catch (error) {
                if (round >= MAX_AUTH_ROUNDS) {
                    throw error;
                }
                if (error instanceof UnauthorizedError) {
                    // The SDK re-ran auth() (with the 403's scope on a step-up) and redirected.
                    emit('step_up', { tool: name, sdk: 'UnauthorizedError (redirected to authorize)' });
                    await transport.finishAuth(provider.takeCode());
                    continue;
                }
                if (
                    error instanceof StreamableHTTPError &&
                    error.code === 403 &&
                    lastChallenge?.error === 'insufficient_scope' &&
                    lastChallenge.scope
                ) {
                    // SDK 1.x on 403 insufficient_scope: auth() with the challenged scope, but
                    // holding a refresh token it refreshes (without `scope`, and a refresh cannot
                    // widen the grant: RFC 6749 §6), retries with the same token, gets the same
                    // 403 and gives up ("Server returned 403 after trying upscoping";
                    // modelcontextprotocol/typescript-sdk#2255). So do what it would do without
                    // the refresh token: drop the tokens and ask the user again. The request is
                    // for the scopes granted so far plus the challenged ones, as the spec asks of
                    // clients (SEP-2350; the SDK's 2.x `computeScopeUnion`): the challenge names
                    // what this call needs, not what the client held.
                    const granted = provider.tokens()?.scope ?? provider.authorizationScopes.at(-1) ?? '';
                    const requested = scopeUnion(granted, lastChallenge.scope);
                    emit('step_up', {
                        tool: name,
                        sdk: error.message,
                        granted,
                        challenged: lastChallenge.scope,
                        requested
                    });
                    await provider.invalidateCredentials('tokens');
                    const result = await auth(provider, {
                        serverUrl: url,
                        scope: requested,
                        resourceMetadataUrl: lastChallenge.resourceMetadataUrl
                    });
                    if (result !== 'REDIRECT') {
                        fail(`auth() for the step-up returned ${result}, expected REDIRECT`);
                    }
                    await transport.finishAuth(provider.takeCode());
                    continue;
                }
                throw error;
            }
        }
    };

    const { tools } = await client.listTools();
    emit('list_tools', { tools: tools.map(tool => tool.name) });

    emit('list_notes', { result: await callTool('list_notes') });
    const added = await callTool('add_note', { text: 'from the TypeScript SDK' });
    emit('add_note', { result: added });
    emit('delete_note', { result: await callTool('delete_note', { id: added.id }) });
    emit('whoami', { result: await callTool('whoami') });
    emit('authorization_scopes', { scopes: provider.authorizationScopes });

    await client.close();
    emit('done');
}

setTimeout(() => fail(`timed out after ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS).unref();
main().then(
    () => process.exit(0),
    error => fail(error?.stack ?? String(error))
);
