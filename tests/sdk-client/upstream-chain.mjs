// The official TypeScript MCP SDK v2 (`@modelcontextprotocol/client`, pinned in package.json),
// era 2026-07-28 pinned, as the MCP client of the whole upstream sign-in chain (issue 11 item 9):
// the demo started with `--upstream-oidc` in front of a real OpenID provider, driven step by step
// by `tests/tests/upstream_chain_sdk.rs`, which plays the user's browser:
//
//   node upstream-chain.mjs http://127.0.0.1:PORT/mcp http://127.0.0.1:RPORT/callback
//
// The second argument is the redirect URI the SDK registers; nothing listens there. The SDK does
// all of the OAuth work itself (discovery, dynamic registration, PKCE, the code exchange, the
// refresh on 401, a new authorization when the refresh is refused); this script only supplies an
// in-memory `OAuthClientProvider` and talks to the test over JSON lines:
//
// - stdout, one JSON object per line with a `step`: `authorize` ({url}: the SDK's
//   `redirectToAuthorization`; the test opens the URL in its browser), `ready` (connected and
//   authorized), `result` ({tool, ok, result | error}: one tool call), `token_request`
//   ({grant_type, status}), `challenge` ({status, www_authenticate}: a 401 or 403 from the
//   server), `tokens`, `registered`, `done`;
// - stdin, one JSON object per line: after `authorize`, `{"callback": "<the final redirect to the
//   redirect URI, with code, state and iss>"}` (handed to `finishAuth`); otherwise a command,
//   `{"call": "<tool>"}` or `{"done": true}`.
//
// Every wait is bounded; exit 1 with a message on stderr on any failure. The test runs it from a
// copy next to the modules `cargo xtask setup` installs into .tools/sdk-client (ESM resolves
// packages from the script's own directory).

import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';

/** The whole run, bounded. */
const OVERALL_TIMEOUT_MS = 55_000;
/** Each wait for a line from the test. */
const LINE_TIMEOUT_MS = 30_000;
/** Authorization rounds per operation, bounded (one is expected at most). */
const MAX_AUTH_ROUNDS = 1;
/** Tool calls the test may ask for, bounded. */
const MAX_COMMANDS = 32;

function emit(step, fields = {}) {
    process.stdout.write(`${JSON.stringify({ step, ...fields })}\n`);
}

function fail(message) {
    process.stderr.write(`upstream-chain: FAILED: ${message}\n`);
    process.exit(1);
}

/** Tokens never leave this process; a short hash tells them apart in the output. */
function fingerprint(token) {
    return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

/** The test's lines on stdin, one at a time. */
class Lines {
    constructor() {
        this.queue = [];
        this.waiting = undefined;
        this.closed = false;
        const input = createInterface({ input: process.stdin });
        input.on('line', line => {
            if (this.waiting) {
                const resolve = this.waiting;
                this.waiting = undefined;
                resolve(line);
            } else {
                this.queue.push(line);
            }
        });
        input.on('close', () => {
            this.closed = true;
            this.waiting?.(undefined);
        });
    }

    /** The next line as JSON; fails on a timeout or the end of stdin. */
    async next(what) {
        let line = this.queue.shift();
        if (line === undefined && !this.closed) {
            let timer;
            line = await Promise.race([
                new Promise(resolve => {
                    this.waiting = resolve;
                }),
                new Promise(resolve => {
                    timer = setTimeout(() => resolve(undefined), LINE_TIMEOUT_MS);
                })
            ]);
            clearTimeout(timer);
            this.waiting = undefined;
        }
        if (line === undefined) {
            fail(`no ${what} from the test (stdin closed or ${LINE_TIMEOUT_MS} ms passed)`);
        }
        try {
            return JSON.parse(line);
        } catch (error) {
            fail(`not a JSON line (${error}): ${line}`);
        }
    }
}

/** An in-memory `OAuthClientProvider` whose user is the test's browser. */
class TestOAuthProvider {
    constructor(redirectUrl, lines) {
        this._redirectUrl = redirectUrl;
        this._lines = lines;
        this._clientInformation = undefined;
        this._tokens = undefined;
        this._codeVerifier = undefined;
        this._discoveryState = undefined;
        this._state = undefined;
        this._pending = undefined;
    }

    get redirectUrl() {
        return this._redirectUrl;
    }

    get clientMetadata() {
        return {
            client_name: 'upstream chain e2e (TypeScript SDK v2)',
            redirect_uris: [this._redirectUrl],
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

    codeVerifier() {
        if (!this._codeVerifier) {
            throw new Error('no code verifier saved');
        }
        return this._codeVerifier;
    }

    saveDiscoveryState(state) {
        this._discoveryState = state;
    }

    discoveryState() {
        return this._discoveryState;
    }

    invalidateCredentials(scope) {
        if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
        if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
        if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
        emit('invalidated', { what: scope });
    }

    /** Hands the URL to the test's browser and reads back where the browser was redirected. */
    async redirectToAuthorization(authorizationUrl) {
        const url = new URL(authorizationUrl);
        if (url.searchParams.get('code_challenge_method') !== 'S256' || !url.searchParams.get('code_challenge')) {
            fail(`authorization request without PKCE S256: ${url}`);
        }
        emit('authorize', { url: url.toString(), scope: url.searchParams.get('scope') });
        const answer = await this._lines.next('callback');
        if (typeof answer?.callback !== 'string') {
            fail(`expected {"callback": ...}, got ${JSON.stringify(answer)}`);
        }
        const callback = new URL(answer.callback);
        if (`${callback.origin}${callback.pathname}` !== this._redirectUrl) {
            fail(`redirected to ${callback}, not to ${this._redirectUrl}`);
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
        emit('callback', { iss: params.get('iss') });
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

/** The transport's `fetch`: reports token requests and the server's challenges. */
function watchingFetch(mcpUrl) {
    const mcp = `${mcpUrl.origin}${mcpUrl.pathname}`;
    return async (input, init) => {
        const url = new URL(input instanceof Request ? input.url : input);
        const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
        const isMcp = `${url.origin}${url.pathname}` === mcp && method === 'POST';
        const isToken = method === 'POST' && url.pathname.endsWith('/token');
        const grantType = isToken ? new URLSearchParams(init?.body?.toString() ?? '').get('grant_type') : null;
        const response = await fetch(input, init);
        if (isToken) {
            emit('token_request', { grant_type: grantType, status: response.status });
        }
        if (response.status === 403 || (isMcp && response.status === 401)) {
            emit('challenge', { status: response.status, www_authenticate: response.headers.get('www-authenticate') });
        }
        return response;
    };
}

async function main() {
    const [serverUrl, redirectUrl] = process.argv.slice(2);
    if (!serverUrl || !redirectUrl) {
        fail('usage: node upstream-chain.mjs <MCP server URL> <redirect URI>');
    }
    const url = new URL(serverUrl);
    const lines = new Lines();
    const provider = new TestOAuthProvider(redirectUrl, lines);
    const newTransport = () =>
        new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: watchingFetch(url) });
    let transport = newTransport();
    const client = new Client(
        { name: 'mcp-auth-upstream-chain-e2e', version: '0.0.0' },
        { versionNegotiation: { mode: { pin: '2026-07-28' } } }
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

    // The SDK's documented pattern: on UnauthorizedError from connect, finish the authorization
    // and connect again on a new transport (a started transport cannot be connected twice).
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
    const { tools } = await authorized('tools/list', () => client.listTools());
    emit('ready', {
        protocol_version: transport.protocolVersion ?? null,
        tools: tools.map(tool => tool.name)
    });

    for (let commands = 0; commands < MAX_COMMANDS; commands += 1) {
        const command = await lines.next('command');
        if (command?.done === true) {
            await client.close();
            emit('done');
            return;
        }
        const tool = command?.call;
        if (typeof tool !== 'string') {
            fail(`unknown command ${JSON.stringify(command)}`);
        }
        try {
            const result = await authorized(tool, () => client.callTool({ name: tool, arguments: {} }));
            const text = result.content?.find(part => part.type === 'text')?.text;
            if (result.isError || typeof text !== 'string') {
                emit('result', { tool, ok: false, error: JSON.stringify(result.content ?? null), tool_error: true });
            } else {
                emit('result', { tool, ok: true, result: JSON.parse(text) });
            }
        } catch (error) {
            if (error instanceof UnauthorizedError) {
                throw error;
            }
            // A JSON-RPC error (e.g. the upstream account must be reconnected).
            emit('result', { tool, ok: false, error: String(error?.message ?? error), code: error?.code ?? null });
        }
    }
    fail(`more than ${MAX_COMMANDS} commands`);
}

setTimeout(() => fail(`timed out after ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS).unref();
main().then(
    () => process.exit(0),
    error => fail(error?.stack ?? String(error))
);
