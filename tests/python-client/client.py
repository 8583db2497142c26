"""The official Python MCP SDK (PyPI `mcp`, pinned in requirements.txt) as an OAuth client of an
MCP server, given nothing but the server's URL:

    python client.py http://127.0.0.1:PORT/mcp legacy|2026-07-28

The SDK's `OAuthClientProvider` does the OAuth work itself (protected resource metadata and
authorization server discovery, dynamic client registration, PKCE, the token exchange, the
step-up on 403 insufficient_scope, the refresh). This script only supplies in-memory token
storage and plays the user and the browser: it fetches each authorization URL without following
the redirect and takes `code`, `state` and `iss` from the `Location`, which works against a
server that approves at once (the demo's `--auto-approve`).

The second argument is the SDK's `mode`: `legacy` (the 2025-11-25 `initialize` handshake) or a
pinned modern revision (`2026-07-28`: stateless, `_meta` on every request).

Steps: connect (401 -> authorization) -> tools/list -> list_notes -> add_note (403
insufficient_scope -> step-up to notes:write) -> delete_note (step-up to notes:admin) -> refresh
(the SDK refreshes an access token it holds as expired; the demo's tokens live 15 minutes, so the
SDK's clock is moved past `expires_in` instead of waiting) -> whoami.
One JSON line per step on stdout; exit 1 with a message on stderr on any failure.

`tests/tests/python_client.rs` runs it with the venv that `cargo xtask setup` installs into
.tools/python-client.
"""

import hashlib
import json
import sys
import time
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth import oauth2 as sdk_oauth2
from mcp.client.streamable_http import streamable_http_client
from mcp.shared import auth_utils as sdk_auth_utils
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

# Nothing listens here: the redirect handler reads the redirect instead of following it.
REDIRECT_URL = "http://127.0.0.1:53683/callback"
# The whole run, bounded.
OVERALL_TIMEOUT_S = 45
# Each authorization request (the "browser" fetch).
AUTHORIZE_TIMEOUT_S = 10


def emit(step, **fields):
    sys.stdout.write(json.dumps({"step": step, **fields}) + "\n")
    sys.stdout.flush()


def fail(message):
    sys.stderr.write(f"python-client: FAILED: {message}\n")
    sys.stderr.flush()
    sys.exit(1)


def fingerprint(token):
    """Tokens never leave this process; a short hash tells them apart in the output."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class MemoryStorage:
    """The SDK's `TokenStorage`: what a desktop app would keep in its keychain."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens
        emit(
            "tokens",
            scope=tokens.scope,
            refresh_token=tokens.refresh_token is not None,
            access_token=fingerprint(tokens.access_token),
            expires_in=tokens.expires_in,
        )

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client_info = client_info
        emit("registered", client_id=client_info.client_id)


class Browser:
    """The user approves in a browser, which is redirected back with `code`, `state` and `iss`."""

    def __init__(self):
        self.pending = None
        self.scopes = []

    async def redirect(self, authorization_url: str):
        query = parse_qs(urlparse(authorization_url).query)
        one = lambda name: (query.get(name) or [None])[0]  # noqa: E731
        self.scopes.append(one("scope"))
        if one("code_challenge_method") != "S256" or not one("code_challenge"):
            fail(f"authorization request without PKCE S256: {authorization_url}")
        async with httpx2.AsyncClient(timeout=AUTHORIZE_TIMEOUT_S, follow_redirects=False) as http:
            response = await http.get(authorization_url)
        location = response.headers.get("location")
        if not 300 <= response.status_code < 400 or not location:
            fail(f"authorization request answered {response.status_code} without a redirect")
        callback = urlparse(location)
        if f"{callback.scheme}://{callback.netloc}{callback.path}" != REDIRECT_URL:
            fail(f"redirected to {location}, not to {REDIRECT_URL}")
        params = parse_qs(callback.query)
        got = lambda name: (params.get(name) or [None])[0]  # noqa: E731
        if got("error"):
            fail(f"authorization refused: {got('error')} {got('error_description') or ''}")
        if not got("code"):
            fail(f"no code in {location}")
        self.pending = AuthorizationCodeResult(code=got("code"), state=got("state"), iss=got("iss"))
        emit(
            "authorize",
            scope=one("scope"),
            resource=one("resource"),
            status=response.status_code,
            iss=got("iss"),
        )

    async def callback(self) -> AuthorizationCodeResult:
        if self.pending is None:
            fail("the SDK asked for an authorization response that was never redirected")
        result, self.pending = self.pending, None
        return result


class Wire:
    """What went over HTTP: the MCP-Protocol-Version of each MCP request, the 403 challenges and the
    grant types at the token endpoint (read by httpx2 event hooks, which see every request the
    transport and the SDK's OAuth flow send)."""

    def __init__(self, mcp_url):
        self.mcp_path = urlparse(mcp_url).path
        self.versions = []
        self.grant_types = []

    async def on_request(self, request: httpx2.Request):
        if request.url.path == self.mcp_path and request.method == "POST":
            self.versions.append(request.headers.get("mcp-protocol-version"))
        elif request.method == "POST" and request.url.path.endswith("/token"):
            form = parse_qs(request.content.decode())
            grant_type = (form.get("grant_type") or [None])[0]
            self.grant_types.append(grant_type)
            emit("token_request", grant_type=grant_type)

    async def on_response(self, response: httpx2.Response):
        if response.status_code == 403:
            emit("challenge", status=403, www_authenticate=response.headers.get("www-authenticate"))


class SkewedClock:
    """The SDK's clock moved forward, so that a token it holds counts as expired: the `time`
    module that the SDK's OAuth code reads (for a token's expiry and for "now"), with `time()`
    shifted by `skew` seconds. It stays shifted: for the SDK, that much time has passed."""

    def __init__(self, skew):
        self.skew = skew

    def time(self):
        return time.time() + self.skew

    def __getattr__(self, name):
        return getattr(time, name)


async def call_tool(client, name, arguments=None):
    result = await client.call_tool(name, arguments or {})
    if result.is_error:
        fail(f"{name} returned a tool error: {result.content}")
    text = next((part.text for part in result.content if part.type == "text"), None)
    if not isinstance(text, str):
        fail(f"{name} returned no text content: {result}")
    return json.loads(text)


async def main(server_url, mode):
    storage = MemoryStorage()
    browser = Browser()
    wire = Wire(server_url)
    provider = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-auth e2e (Python SDK)",
            redirect_uris=[AnyUrl(REDIRECT_URL)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
    http = httpx2.AsyncClient(
        auth=provider,
        timeout=httpx2.Timeout(30, read=60),
        event_hooks={"request": [wire.on_request], "response": [wire.on_response]},
    )
    async with http:
        async with Client(streamable_http_client(server_url, http_client=http), mode=mode) as client:
            emit(
                "connect",
                server=client.server_info.model_dump(mode="json") if client.server_info else None,
                protocol_version=client.protocol_version,
            )
            tools = await client.list_tools()
            emit("list_tools", tools=[tool.name for tool in tools.tools])

            emit("list_notes", result=await call_tool(client, "list_notes"))
            added = await call_tool(client, "add_note", {"text": "from the Python SDK"})
            emit("add_note", result=added)
            emit("delete_note", result=await call_tool(client, "delete_note", {"id": added["id"]}))

            # The refresh: past the token's expiry by the SDK's clock, the next request makes the
            # SDK refresh first (grant_type=refresh_token), then send the new token.
            before = storage.tokens
            if before is None or before.refresh_token is None:
                fail("no refresh token was issued")
            clock = SkewedClock((before.expires_in or 0) + 60)
            sdk_oauth2.time = clock
            sdk_auth_utils.time = clock
            emit("expire", expires_in=before.expires_in)
            me = await call_tool(client, "whoami")
            after = storage.tokens
            emit(
                "refresh",
                refreshed=after is not before,
                new_access_token=after.access_token != before.access_token,
                scope=after.scope,
            )
            emit("whoami", result=me)
            emit(
                "wire",
                protocol_versions=sorted({v for v in wire.versions if v is not None}),
                without_version=sum(1 for v in wire.versions if v is None),
                mcp_posts=len(wire.versions),
                grant_types=wire.grant_types,
            )
            emit("authorization_scopes", scopes=browser.scopes)
    emit("done")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: python client.py <MCP server URL> legacy|2026-07-28")

    async def bounded():
        with anyio.fail_after(OVERALL_TIMEOUT_S):
            await main(sys.argv[1], sys.argv[2])

    try:
        anyio.run(bounded)
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        fail(repr(error))
