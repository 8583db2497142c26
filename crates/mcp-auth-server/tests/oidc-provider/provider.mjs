// panva's oidc-provider (OpenID Certified) on a loopback port, as the upstream identity provider
// of the mcp-auth-server tests (crates/mcp-auth-server/tests/upstream_oidc.rs).
//
// Run from a copy inside .tools/oidc-provider (ESM resolves `oidc-provider` from there) with
// Node >= 22:
//
//   node provider.mjs '<config json>'
//
// The config (all optional): {
//   "redirect_uris": ["http://127.0.0.1:PORT/login/callback"],
//   "client_id": "mcp-auth-test", "client_secret": "…", "auth_method": "client_secret_basic",
//   "access_token_ttl": 3600, "refresh": true
// }
//
// Prints one JSON line on stdout once it listens: {"issuer": "http://127.0.0.1:PORT"}.
// Its development interaction pages sign in any login name with any password: a test posts
// `prompt=login&login=alice&password=x` then `prompt=consent` to /interaction/:uid, or GETs
// /interaction/:uid/abort (the client then receives error=access_denied).
// The account `alice` has email alice@example.com (verified) and groups ["staff"];
// `bob@other` has email bob@other.example (unverified); any other login NAME has
// NAME@example.com (verified) and no group.

import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? '{}');

function claimsOf(sub) {
  if (sub === 'alice') {
    return { sub, email: 'alice@example.com', email_verified: true, name: 'Alice Example', groups: ['staff'] };
  }
  if (sub === 'bob@other') {
    return { sub, email: 'bob@other.example', email_verified: false, name: 'Bob Other', groups: [] };
  }
  return { sub, email: `${sub}@example.com`, email_verified: true, name: `User ${sub}`, groups: [] };
}

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id ?? 'mcp-auth-test',
    client_secret: config.client_secret ?? 'mcp-auth-test-secret-0123456789',
    redirect_uris: config.redirect_uris ?? [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: config.auth_method ?? 'client_secret_basic',
    application_type: 'web',
  }],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return claimsOf(sub); } };
  },
  issueRefreshToken: async (ctx, client) => config.refresh !== false
    && client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: config.access_token_ttl ?? 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: 86400,
  },
  cookies: { keys: ['mcp-auth-test-cookie-key-0123456789'] },
  // Loopback http in tests: the provider's own cookies are not `Secure`.
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});
provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err}\n`));

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

// End with the parent: stdin closes when the test process exits.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
