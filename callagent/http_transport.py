"""The MCP server over streamable HTTP: bearer-token access and DNS-rebinding protection.

Whoever can reach this endpoint can place phone calls, so:

- every request must carry `Authorization: Bearer <MCP_HTTP_TOKEN>`; the token is compared in
  constant time and never logged. Running without one takes an explicit opt-out
  (`--no-auth` or MCP_HTTP_NO_AUTH=1), honoured only on a loopback address;
- a request whose `Host` is not this server's (a browser page on another site that made its
  name resolve to 127.0.0.1) is answered 421 before anything else is looked at, and the MCP
  SDK's own transport security checks Host and Origin again behind it.

And whoever can reach it can try to wear it out, so (`guarded_protocol`):

- at most MCP_HTTP_MAX_CONNECTIONS connections are held: a new one beyond that closes an idle
  one (one that never completed a request first), or gets 503 when all are serving requests;
- a client has MCP_HTTP_HEADER_TIMEOUT_S to send a request's headers (a connection that sends
  nothing, or a request line a byte at a time, is closed), and an idle keep-alive connection is
  closed after MCP_HTTP_KEEPALIVE_TIMEOUT_S; a request being served (the event stream, a long
  tool call) is never cut;
- no log line shows a query string: a client may put a token there (`/mcp?token=...`; it is
  refused all the same).

`serve()` checks all of that before binding the port; `bind_problem()` is the check alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from callagent.profiles import TENANT_SCOPE_KEY

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from callagent.settings import Settings

__all__ = [
    "MIN_TOKEN_CHARS",
    "BearerAndHostGuard",
    "DropQueryStrings",
    "allowed_hosts",
    "bind_problem",
    "connection_budget",
    "guarded_protocol",
    "is_loopback",
    "loggable_path",
    "serve",
]

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


def bind_problem(host: str, token: str | None, no_auth: bool, tenants: bool = False) -> str | None:
    """Why the HTTP transport must not start with these settings, or None when it may.
    `tenants`: callagent.toml names tenants, whose own tokens are accepted too."""
    if tenants and no_auth:
        return (
            "callagent.toml names tenants, and authentication was turned off (--no-auth or MCP_HTTP_NO_AUTH): "
            "a client without a token would act as the operator; serve tenants with authentication"
        )
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
    if tenants:  # only the tenants' tokens are accepted: no operator over HTTP
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


# A query string, also %-encoded ("/mcp%3Ftoken=..." is decoded into the path).
_QUERY = re.compile(r"(?:\?|%3f).*", re.IGNORECASE | re.DOTALL)
_QUERY_IN_LINE = re.compile(r"(?:\?|%3f)\S*", re.IGNORECASE)
_MAX_LOGGED_PATH = 200


def loggable_path(path: str) -> str:
    """`path` as a log line may show it: without any query string (clients put tokens there),
    control characters escaped (no forged log lines), at most 200 characters."""
    path = _QUERY.sub("", path)
    shown = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in path[:_MAX_LOGGED_PATH]
    )
    return shown + ("..." if len(path) > _MAX_LOGGED_PATH else "")


class DropQueryStrings(logging.Filter):
    """On uvicorn's access logger: its lines show the request target with the query string
    (`"GET /mcp?token=... HTTP/1.1" 401`); this cuts the query out before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(loggable_path(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):  # already formatted (a record factory did it)
            record.msg = _QUERY_IN_LINE.sub("", record.msg)
        return True


# MCP sessions remembered with whose they are; the oldest are forgotten past this many.
_MAX_SESSIONS = 10_000
_SESSION_HEADER = "mcp-session-id"


class BearerAndHostGuard:
    """ASGI middleware: 421 for a foreign Host, then 401 without a right bearer token.

    The token says who asks: the operator (MCP_HTTP_TOKEN) or a tenant (callagent.toml
    [tenants], by the token's SHA-256), put in the request's scope for the tools
    (profiles.TENANT_SCOPE_KEY). An MCP session belongs to whoever opened it: another
    principal's requests naming it get 404, as for a session that does not exist."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        hosts: Iterable[str],
        tenants: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self._token_digest = _digest(token) if token is not None else None
        # tenant name -> SHA-256 of its token
        self._tenants = {name: bytes.fromhex(digest) for name, digest in (tenants or {}).items()}
        self._hosts = frozenset(h.lower() for h in hosts)
        self._sessions: dict[str, str] = {}  # session id -> principal ("" the operator, else the tenant)

    def _principal(self, presented: str) -> str | None:
        """ "" for the operator's token, the tenant's name for a tenant's, None for neither.
        Every token is compared, in constant time, whichever matches."""
        digest = _digest(presented)
        found = None
        if self._token_digest is not None and hmac.compare_digest(digest, self._token_digest):
            found = ""
        for name, expected in self._tenants.items():
            if hmac.compare_digest(digest, expected):
                found = name
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers
        from starlette.responses import PlainTextResponse

        headers = Headers(scope=scope)
        peer = scope.get("client")
        where = f"{scope.get('method', '?')} {loggable_path(scope.get('path', '?'))} from {peer[0] if peer else '?'}"
        host = (headers.get("host") or "").lower()
        if host not in self._hosts:
            log.warning("421 for %s: Host header not one of this server's names", where)
            await PlainTextResponse(
                "Misdirected request: this MCP server does not answer for that Host", status_code=421
            )(scope, receive, send)
            return
        principal = ""
        if self._token_digest is not None or self._tenants:
            scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
            presented = credentials.strip() if scheme.lower() == "bearer" else ""
            found = self._principal(presented)
            if found is None:
                log.warning("401 for %s: %s bearer token", where, "wrong" if presented else "no")
                challenge = 'Bearer realm="callagent"' + (', error="invalid_token"' if presented else "")
                await PlainTextResponse(
                    "Unauthorized: send Authorization: Bearer <your token>",
                    status_code=401,
                    headers={"WWW-Authenticate": challenge},
                )(scope, receive, send)
                return
            principal = found
        session = headers.get(_SESSION_HEADER)
        if session is not None and self._sessions.get(session, principal) != principal:
            log.warning("404 for %s: an MCP session opened with another token", where)
            await PlainTextResponse("Not Found: no such session", status_code=404)(scope, receive, send)
            return
        if principal:
            scope = {**scope, TENANT_SCOPE_KEY: principal}
        await self.app(scope, receive, self._remember_session(send, principal))

    def _remember_session(self, send: Send, principal: str) -> Send:
        """`send`, noting the session id a response hands out as `principal`'s."""

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == _SESSION_HEADER.encode():
                        self._sessions[value.decode("latin-1")] = principal
                        while len(self._sessions) > _MAX_SESSIONS:
                            self._sessions.pop(next(iter(self._sessions)))
            await send(message)

        return noting


# Descriptors kept for everything but client connections: the database, log files, LiveKit
# API calls. Measured: the server holds ~10 when idle.
_SPARE_FDS = 64
_BURSTS = 4
_BUSY = b"Service unavailable: too many open connections; retry shortly\n"
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\nretry-after: 1\r\n\r\n%s" % (len(_BUSY), _BUSY)
)


def connection_budget(wanted: int) -> tuple[int, int]:
    """The connections to hold (up to `wanted`) and the listen backlog, within the open-file limit.

    The backlog is what the kernel queues before they are accepted, so that a burst does not
    make a client's connection wait for TCP to retry (1 s, then 3 s...); but asyncio also
    accepts up to that many at each turn of its loop, and a connection one too many is closed
    (its descriptor freed) some turns later: a burst holds several backlogs' worth (measured:
    up to 4) on top of the connections held, plus some to spare. The soft limit is raised
    towards the hard one when it is short; what still does not fit is warned about and not held,
    so that a flood cannot take the descriptors the served clients, the database and LiveKit
    calls need (asyncio would stop accepting for a second at each "Too many open files")."""
    backlog = min(2048, max(128, wanted))
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return wanted, backlog
    need = wanted + _BURSTS * backlog + _SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted, backlog
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft >= need:
        return wanted, backlog
    room = max(8, soft - _SPARE_FDS)
    fits = max(4, min(wanted, room // 2))
    backlog = max(4, min(backlog, (room - fits) // _BURSTS))
    log.warning(
        "the open-file limit (%d) is short for MCP_HTTP_MAX_CONNECTIONS=%d: holding at most %d "
        "connections (raise it with `ulimit -n %d`)",
        soft,
        wanted,
        fits,
        need,
    )
    return fits, backlog


class _Tally:
    """Connections closed by the limits, reported in one warning line at most every
    `interval_s`: a flood must not flood the log too."""

    def __init__(self, max_connections: int, header_timeout_s: float, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self.labels = {
            "evicted": f"idle closed to stay within {max_connections} connections",
            "refused": f"refused with 503 (all {max_connections} serving requests)",
            "timeout": f"closed for sending no complete request headers within {header_timeout_s:g} s",
        }
        self.counts: Counter[str] = Counter()
        self.last = float("-inf")
        self.pending: asyncio.TimerHandle | None = None

    def note(self, what: str, loop: asyncio.AbstractEventLoop) -> None:
        self.counts[what] += 1
        if self.pending is None:
            wait = self.last + self.interval_s - loop.time()
            if wait <= 0:
                self.report(loop)
            else:
                self.pending = loop.call_later(wait, self.report, loop)

    def report(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pending = None
        self.last = loop.time()
        log.warning("HTTP connections: %s", "; ".join(f"{n} {self.labels[k]}" for k, n in self.counts.items()))
        self.counts.clear()


def guarded_protocol(max_connections: int, header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, with a connection limit and a deadline for request headers.

    uvicorn (0.54) has neither. Its `limit_concurrency` counts idle connections too and answers
    503 to any request beyond it, also on the connections already open: idle sockets would lock
    the served clients out. And its h11 protocol keeps a connection that sends nothing, or sends
    a request line a byte at a time, for ever: `timeout_keep_alive` only starts after a response.
    So, per connection (one asyncio protocol each, so no extra task or lock):

    - one beyond `max_connections` makes room by closing a connection that is not serving a
      request (first one that never completed a request, then the longest idle); when all are
      serving one, the new connection gets 503 and is closed;
    - from its opening, and from the first byte of each later request, the client has
      `header_timeout_s` to send the request's headers; once they are in, the request is the
      application's and no deadline applies (the MCP event stream, wait_for_call's 50 s). The
      same deadline covers anything sent after a response that is not a new request (the rest
      of a body refused with 401).
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    tally = _Tally(max_connections, header_timeout_s)

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.idle_since = self.loop.time()
            self.served = 0
            self.header_timer: asyncio.TimerHandle | None = None

        def serving(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's H11Protocol has it
            live = [c for c in self.connections if not c.transport.is_closing()]
            if len(live) >= max_connections:
                idle = [c for c in live if isinstance(c, GuardedH11Protocol) and not c.serving()]
                if not idle:
                    self.transport = transport
                    transport.write(_BUSY_RESPONSE)
                    transport.close()
                    tally.note("refused", self.loop)
                    return
                min(idle, key=lambda c: (c.served > 0, c.idle_since)).transport.close()
                tally.note("evicted", self.loop)
            super().connection_made(transport)
            self.sync_header_timer()

        def data_received(self, data: bytes) -> None:
            # The keep-alive timer runs from a response to the next byte: this byte starts a new
            # request, whose header deadline starts now.
            next_request = self.timeout_keep_alive_task is not None
            super().data_received(data)
            if next_request:
                self.cancel_header_timer()
            self.sync_header_timer()

        def on_response_complete(self) -> None:
            self.served += 1
            self.idle_since = self.loop.time()
            super().on_response_complete()
            self.sync_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_header_timer()
            super().connection_lost(exc)

        def sync_header_timer(self) -> None:
            if self.transport.is_closing() or self.serving():
                self.cancel_header_timer()
            elif self.header_timer is None:
                self.header_timer = self.loop.call_later(header_timeout_s, self.header_timeout)

        def cancel_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def header_timeout(self) -> None:
            self.header_timer = None
            if not self.serving() and not self.transport.is_closing():
                self.transport.close()
                tally.note("timeout", self.loop)

    return GuardedH11Protocol


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
    from callagent.settings import SettingsProblem, load_profiles

    try:
        tenants = {t.name: t.token_sha256 for t in load_profiles(settings).tenants.values()}
    except SettingsProblem as exc:
        print(f"callagent: {exc}", file=sys.stderr)
        return 2
    problem = bind_problem(host, token, no_auth, bool(tenants))
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
        tenants=tenants,
    )
    shown = f"[{host}]" if ":" in host else host
    if tenants:
        log.info("serving MCP for %d tenant(s) and %s", len(tenants), "the operator" if token else "no operator token")
    if token is None and not tenants:
        log.warning("serving MCP on http://%s:%d%s WITHOUT authentication (loopback only)", shown, port, path)
    else:
        log.info("serving MCP on http://%s:%d%s; clients must send the bearer token", shown, port, path)
    log.info("accepted Host headers: %s", ", ".join(hosts))
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryStrings) for f in access.filters):
        access.addFilter(DropQueryStrings())
    max_connections, backlog = connection_budget(settings.mcp_http_max_connections)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=settings.log_level.lower(),
        # Not uvicorn's `limit_concurrency`: see guarded_protocol. An explicit h11 class also
        # keeps httptools out, should it get installed. Its header size cap stays h11's 16 KiB.
        http=guarded_protocol(max_connections, settings.mcp_http_header_timeout_s),
        ws="none",  # MCP has no WebSocket; an upgraded connection would escape the limits
        timeout_keep_alive=settings.mcp_http_keepalive_timeout_s,  # type: ignore[arg-type]  # a float works
        backlog=backlog,
    )
    uvicorn.Server(config).run()
    return 0
