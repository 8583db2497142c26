"""An MCP server written with the official Python SDK (PyPI `mcp`, pinned in requirements.txt:
`MCPServer`, the SDK's FastMCP, renamed in mcp 2), put behind `mcp-auth-gateway` by
`tests/tests/gateway.rs`. It knows nothing of OAuth; it only reads who the gateway says calls:

    python upstream_server.py headers [--uds PATH]
    python upstream_server.py jwt JWKS_URL ISSUER AUDIENCE

It listens on a free loopback port (or the unix socket PATH) and prints `listening PORT` (or
`listening unix`) once it accepts connections.

- `headers`: the caller is in `X-MCP-Subject`, `X-MCP-Client-Id` and `X-MCP-Scopes`.
- `jwt`: every request must carry `Authorization: Bearer <JWT>` signed by the gateway (keys at
  JWKS_URL, `iss` ISSUER, `aud` AUDIENCE); anything else is answered 401. This is the check the
  gateway's README shows.

Tools: `echo(text)`, `whoami()` (the caller as this server learned it, and whether a client
token leaked through), `countdown(n)` (a progress notification every 0.3 s, then `liftoff`),
`wipe()` (the gateway's configuration makes it need an extra scope).
"""

import json
import socket
import sys

import anyio
import jwt
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

MODE = sys.argv[1] if len(sys.argv) > 1 else "headers"
UDS = sys.argv[3] if MODE == "headers" and len(sys.argv) > 3 and sys.argv[2] == "--uds" else None
if MODE == "jwt":
    JWKS_URL, ISSUER, AUDIENCE = sys.argv[2], sys.argv[3], sys.argv[4]
    JWKS = jwt.PyJWKClient(JWKS_URL)


def verify_identity(authorization):
    """The identity JWT's claims; raises on anything but a valid gateway token for us."""
    if not authorization or not authorization.startswith("Bearer "):
        raise ValueError("no identity token")
    token = authorization[len("Bearer ") :]
    key = JWKS.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["ES256", "EdDSA", "RS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub"]},
    )


server = MCPServer("gateway-e2e-upstream", version="1.0.0")


def caller(ctx):
    headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
    if MODE == "jwt":
        claims = verify_identity(headers.get("authorization"))
        return {
            "mode": "jwt",
            "subject": claims.get("sub"),
            "client_id": claims.get("client_id"),
            "scopes": claims.get("scope"),
            "issuer": claims.get("iss"),
            "audience": claims.get("aud"),
            "lifetime": claims["exp"] - claims["iat"],
        }
    return {
        "mode": "headers",
        "subject": headers.get("x-mcp-subject"),
        "client_id": headers.get("x-mcp-client-id"),
        "scopes": headers.get("x-mcp-scopes"),
        "authorization": headers.get("authorization"),
    }


@server.tool()
def echo(text: str) -> str:
    """Returns its argument."""
    return text


@server.tool()
def whoami(ctx: Context) -> str:
    """Who the gateway says is calling."""
    return json.dumps(caller(ctx))


@server.tool()
async def countdown(n: int, ctx: Context) -> str:
    """Reports progress n times, 0.3 s apart, then answers."""
    for i in range(n):
        await ctx.report_progress(i + 1, n, f"step {i + 1} of {n}")
        await anyio.sleep(0.3)
    return "liftoff"


@server.tool()
def wipe() -> str:
    """A privileged tool: the gateway asks for an extra scope before it runs."""
    return "wiped"


def checked(app):
    """ASGI middleware: in `jwt` mode, refuse any HTTP request without a valid identity token."""

    async def middleware(scope, receive, send):
        if MODE == "jwt" and scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            try:
                verify_identity(headers.get("authorization"))
            except Exception as error:  # noqa: BLE001
                body = json.dumps({"error": "invalid_token", "detail": type(error).__name__}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return middleware


async def main():
    if UDS:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(UDS)
        port = "unix"
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Without TCP_NODELAY every answer after the first on a kept-alive connection waits about
        # 40 ms (the SSE response's last small write held by Nagle against the client's delayed
        # ACK); accepted sockets inherit it from the listener.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = checked(server.streamable_http_app(host="127.0.0.1"))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)

    async def announce():
        while not uv.started:
            await anyio.sleep(0.02)
        sys.stdout.write(f"listening {port}\n")
        sys.stdout.flush()

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await uv.serve(sockets=[sock])


if __name__ == "__main__":
    anyio.run(main)
