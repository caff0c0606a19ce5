"""The MCP server over streamable HTTP: bearer-token access and DNS-rebinding protection.

Whoever can reach this endpoint can place phone calls, so:

- every request must carry `Authorization: Bearer <MCP_HTTP_TOKEN>`; the token is compared in
  constant time and never logged. Running without one takes an explicit opt-out
  (`--no-auth` or MCP_HTTP_NO_AUTH=1), honoured only on a loopback address;
- a request whose `Host` is not this server's (a browser page on another site that made its
  name resolve to 127.0.0.1) is answered 421 before anything else is looked at, and the MCP
  SDK's own transport security checks Host and Origin again behind it.

`serve()` checks all of that before binding the port; `bind_problem()` is the check alone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Receive, Scope, Send

    from callagent.settings import Settings

__all__ = ["MIN_TOKEN_CHARS", "BearerAndHostGuard", "allowed_hosts", "bind_problem", "is_loopback", "serve"]

log = logging.getLogger("callagent.http")

MIN_TOKEN_CHARS = 16
_LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the port reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_problem(host: str, token: str | None, no_auth: bool) -> str | None:
    """Why the HTTP transport must not start with these settings, or None when it may."""
    if token is not None and no_auth:
        return (
            "MCP_HTTP_TOKEN is set and authentication was also turned off (--no-auth or "
            "MCP_HTTP_NO_AUTH); use one or the other"
        )
    if token is not None:
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            return (
                f"MCP_HTTP_TOKEN must be at least {MIN_TOKEN_CHARS} characters without spaces "
                "(generate one with: openssl rand -hex 32)"
            )
        return None
    if not no_auth:
        return (
            "the HTTP transport requires a bearer token: set MCP_HTTP_TOKEN (e.g. from "
            "`openssl rand -hex 32`) and have clients send `Authorization: Bearer <token>`; on a "
            "loopback address only, --no-auth (or MCP_HTTP_NO_AUTH=1) serves without one"
        )
    if not is_loopback(host):
        return (
            f"refusing to serve without authentication on {host}: anyone who can reach it could place "
            "phone calls. --no-auth / MCP_HTTP_NO_AUTH is only honoured on a loopback address "
            "(127.0.0.1, ::1, localhost); set MCP_HTTP_TOKEN to serve on other addresses"
        )
    return None


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """The `Host` header values this server answers: the bind address and the loopback names
    with the port, and any `extra` names (a name without a port gets this port)."""
    names: list[str] = [f"{n}:{port}" for n in _LOCAL_NAMES]
    bind = host.strip()
    if bind not in ("0.0.0.0", "::", ""):
        bound = f"[{bind.strip('[]')}]" if ":" in bind.strip("[]") else bind
        names.append(f"{bound.lower()}:{port}")
    for entry in extra:
        entry = entry.strip().lower()
        if not entry:
            continue
        has_port = entry.rsplit(":", 1)[-1].isdigit() and (not entry.startswith("[") or "]:" in entry)
        names.append(entry if has_port else f"{entry}:{port}")
    return list(dict.fromkeys(names))


def _digest(value: str) -> bytes:
    # Both sides hashed first: compare_digest then compares equal lengths, so neither the
    # token's content nor its length leaks through timing.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


class BearerAndHostGuard:
    """ASGI middleware: 421 for a foreign Host, then 401 without the right bearer token."""

    def __init__(self, app: ASGIApp, *, token: str | None, hosts: Iterable[str]) -> None:
        self.app = app
        self._token_digest = _digest(token) if token is not None else None
        self._hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers
        from starlette.responses import PlainTextResponse

        headers = Headers(scope=scope)
        peer = scope.get("client")
        where = f"{scope.get('method', '?')} {scope.get('path', '?')} from {peer[0] if peer else '?'}"
        host = (headers.get("host") or "").lower()
        if host not in self._hosts:
            log.warning("421 for %s: Host header not one of this server's names", where)
            await PlainTextResponse(
                "Misdirected request: this MCP server does not answer for that Host", status_code=421
            )(scope, receive, send)
            return
        if self._token_digest is not None:
            scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
            presented = credentials.strip() if scheme.lower() == "bearer" else ""
            ok = hmac.compare_digest(_digest(presented), self._token_digest)
            if not ok:
                log.warning("401 for %s: %s bearer token", where, "wrong" if presented else "no")
                challenge = 'Bearer realm="callagent"' + (', error="invalid_token"' if presented else "")
                await PlainTextResponse(
                    "Unauthorized: send Authorization: Bearer <MCP_HTTP_TOKEN>",
                    status_code=401,
                    headers={"WWW-Authenticate": challenge},
                )(scope, receive, send)
                return
        await self.app(scope, receive, send)


def serve(
    server: MCPServer[Any],
    settings: Settings,
    *,
    host: str,
    port: int,
    path: str,
    no_auth: bool = False,
    extra_hosts: Iterable[str] = (),
) -> int:
    """Serve `server` on http://host:port/path until interrupted. Returns an exit status:
    2, with the reason on stderr, when the settings make serving unsafe (nothing is bound)."""
    import sys

    token = settings.mcp_http_token.get_secret_value() if settings.mcp_http_token else None
    no_auth = no_auth or settings.mcp_http_no_auth
    problem = bind_problem(host, token, no_auth)
    if problem:
        print(f"callagent: {problem}", file=sys.stderr)
        return 2

    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = allowed_hosts(host, port, extra_hosts)
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    app = BearerAndHostGuard(
        server.streamable_http_app(streamable_http_path=path, transport_security=security, host=host),
        token=token,
        hosts=hosts,
    )
    shown = f"[{host}]" if ":" in host else host
    if token is None:
        log.warning("serving MCP on http://%s:%d%s WITHOUT authentication (loopback only)", shown, port, path)
    else:
        log.info("serving MCP on http://%s:%d%s; clients must send the bearer token", shown, port, path)
    log.info("accepted Host headers: %s", ", ".join(hosts))
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=settings.log_level.lower())
    uvicorn.Server(config).run()
    return 0
