// What the TypeScript SDK v2 scripts (`client-v2.mjs`, `gateway-client.mjs`) share: the
// in-memory `OAuthClientProvider` that plays the user and the browser, the wire log, RFC 7009
// revocation, the SDK's documented connect-then-finishAuth pattern, and the script's frame
// (one JSON line per step on stdout; exit 1 with a message on stderr on any failure; the whole
// run bounded).
//
// The scripts run from copies under `.tools/sdk-client/run` (see `tests/tests/support/sdk.rs`),
// which copies this module next to them.

import { createHash, randomBytes } from 'node:crypto';
import { StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';

/** The whole run, bounded. */
const OVERALL_TIMEOUT_MS = 45_000;
/** Each request the script makes itself (the "browser" fetch, the revocation). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Authorization rounds per operation, bounded (one is expected per step-up). */
const MAX_AUTH_ROUNDS = 2;

/** The script's name in failure messages (set by `run`). */
let label = 'sdk-client';

export function emit(step, fields = {}) {
    process.stdout.write(`${JSON.stringify({ step, ...fields })}\n`);
}

export function fail(message) {
    process.stderr.write(`${label}: FAILED: ${message}\n`);
    process.exit(1);
}

/** Tokens never leave this process; a short hash tells them apart in the output. */
export function fingerprint(token) {
    return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

/** An in-memory `OAuthClientProvider`: what a desktop app would keep in its keychain. */
export class InMemoryOAuthProvider {
    /** `redirectUrl`: where the authorization server sends the user back (nothing listens); `clientName`: the registered `client_name`. */
    constructor({ redirectUrl, clientName }) {
        this._redirectUrl = redirectUrl;
        this._clientName = clientName;
        this._clientInformation = undefined;
        this._tokens = undefined;
        this._codeVerifier = undefined;
        this._state = undefined;
        this._pending = undefined;
        /** The `scope` parameter of every authorization request, in order. */
        this.authorizationScopes = [];
    }

    get redirectUrl() {
        return this._redirectUrl;
    }

    get clientMetadata() {
        return {
            client_name: this._clientName,
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
export class Wire {
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
export async function revokeAccessToken(provider, serverUrl) {
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

export async function getJson(url) {
    const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (response.status !== 200) {
        fail(`${url} answered ${response.status}`);
    }
    return response.json();
}

/**
 * Connects `client` over a new transport to `url`, finishing an authorization when the SDK asks
 * (the SDK's documented pattern: connect; on `UnauthorizedError` the provider has been sent to
 * the authorization URL; finish with the callback's parameters, then connect again on a new
 * transport, since a started transport cannot be connected twice). Returns the live transport
 * (`session.transport`) and `session.authorized(what, operation)`, which runs `operation` and
 * finishes an authorization whenever the SDK asks for one (after a 401, or after a 403
 * insufficient_scope with the union of the granted and the challenged scopes).
 */
export async function connect(client, url, provider, wire) {
    const newTransport = () => new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: wire.fetch });
    const session = {
        transport: newTransport(),
        authorized: async (what, operation) => {
            for (let round = 0; ; round += 1) {
                try {
                    return await operation();
                } catch (error) {
                    if (!(error instanceof UnauthorizedError) || round >= MAX_AUTH_ROUNDS) {
                        throw error;
                    }
                    emit('authorization_needed', { for: what, sdk: error.message });
                    await session.transport.finishAuth(provider.takeCallback());
                }
            }
        }
    };
    try {
        await client.connect(session.transport);
    } catch (error) {
        if (!(error instanceof UnauthorizedError)) {
            throw error;
        }
        emit('authorization_needed', { for: 'connect', sdk: error.message });
        await session.transport.finishAuth(provider.takeCallback());
        session.transport = newTransport();
        await client.connect(session.transport);
    }
    return session;
}

/** Runs the script's `main` as `name`, bounded by the overall timeout; exits 0 when it ends. */
export function run(name, main) {
    label = name;
    setTimeout(() => fail(`timed out after ${OVERALL_TIMEOUT_MS} ms`), OVERALL_TIMEOUT_MS).unref();
    main().then(
        () => process.exit(0),
        error => fail(error?.stack ?? String(error))
    );
}
