"""The official Python MCP SDK client (pinned in requirements.txt) against `mcp-auth-gateway` in
front of `upstream_server.py`, given nothing but the gateway's URL:

    python gateway_client.py http://localhost:PORT/mcp legacy|2026-07-28

The SDK does the OAuth work (discovery, registration, PKCE, step-up on 403, refresh); the
user, browser and clock helpers are `client.py`'s. Steps: connect -> tools/list (the privileged
`wipe` is hidden) -> echo -> countdown (progress notifications, timed as they arrive) -> wipe
(403 insufficient_scope -> step-up) -> tools/list (now with `wipe`) -> refresh -> whoami.
One JSON line per step on stdout; exit 1 with a message on stderr on any failure.
"""

import json
import sys
import time

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth import oauth2 as sdk_oauth2
from mcp.client.streamable_http import streamable_http_client
from mcp.shared import auth_utils as sdk_auth_utils
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from client import REDIRECT_URL, Browser, MemoryStorage, SkewedClock, Wire, emit, fail

OVERALL_TIMEOUT_S = 45


def text_of(name, result):
    if result.is_error:
        fail(f"{name} returned a tool error: {result.content}")
    text = next((part.text for part in result.content if part.type == "text"), None)
    if not isinstance(text, str):
        fail(f"{name} returned no text content: {result}")
    return text


async def main(server_url, mode):
    storage = MemoryStorage()
    browser = Browser()
    wire = Wire(server_url)
    provider = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-auth gateway e2e (Python SDK)",
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
            emit("connect", protocol_version=client.protocol_version)
            tools = await client.list_tools()
            emit("list_tools", tools=sorted(tool.name for tool in tools.tools))
            emit("echo", result=text_of("echo", await client.call_tool("echo", {"text": "hello"})))

            started = time.monotonic()
            progress = []

            async def on_progress(value, total, message):
                progress.append({"progress": value, "total": total, "message": message, "at": time.monotonic() - started})

            result = await client.call_tool("countdown", {"n": 4}, progress_callback=on_progress)
            emit("countdown", result=text_of("countdown", result), progress=progress, done_at=time.monotonic() - started)

            emit("wipe", result=text_of("wipe", await client.call_tool("wipe", {})))
            tools = await client.list_tools()
            emit("list_tools_after_step_up", tools=sorted(tool.name for tool in tools.tools))

            before = storage.tokens
            if before is None or before.refresh_token is None:
                fail("no refresh token was issued")
            clock = SkewedClock((before.expires_in or 0) + 60)
            sdk_oauth2.time = clock
            sdk_auth_utils.time = clock
            me = json.loads(text_of("whoami", await client.call_tool("whoami", {})))
            after = storage.tokens
            emit("refresh", refreshed=after is not before, new_access_token=after.access_token != before.access_token)
            emit("whoami", result=me, client_id=storage.client_info.client_id)
            emit("wire", grant_types=wire.grant_types)
    emit("done")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: python gateway_client.py <gateway MCP URL> legacy|2026-07-28")

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
