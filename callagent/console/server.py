"""Running the console: what must hold before it serves, then uvicorn.

It refuses to start without an operator secret (CALLAGENT_CONSOLE_TOKEN), on any address:
the console places and ends calls. It binds 127.0.0.1 unless told otherwise; behind a reverse
proxy that terminates TLS, `--proxy-headers` trusts the proxy's X-Forwarded-Proto/-For (from
the addresses in FORWARDED_ALLOW_IPS, 127.0.0.1 by default), so cookies are marked Secure.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from callagent.console.auth import MIN_TOKEN_CHARS
from callagent.http_transport import DropQueryStrings, allowed_hosts, is_loopback

if TYPE_CHECKING:
    from callagent.settings import Settings

__all__ = ["DEFAULT_PORT", "console_hosts", "serve", "start_problem"]

log = logging.getLogger("callagent.console")

DEFAULT_PORT = 8766


def start_problem(settings: Settings, host: str) -> str | None:
    """Why the console must not start with these settings, or None when it may."""
    token = settings.console_token.get_secret_value() if settings.console_token else None
    where = "" if is_loopback(host) else f" (it would serve on {host}, reachable from other machines)"
    if token is None:
        return (
            f"the console needs an operator secret to sign in with{where}: set CALLAGENT_CONSOLE_TOKEN, e.g. "
            "`export CALLAGENT_CONSOLE_TOKEN=$(openssl rand -hex 32)`, or put it in .env"
        )
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        return (
            f"CALLAGENT_CONSOLE_TOKEN must be at least {MIN_TOKEN_CHARS} characters without spaces "
            "(generate one with: openssl rand -hex 32)"
        )
    return None


def console_hosts(host: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """The Host header values the console answers: its own address with the port, and each
    `extra` name; a name given without a port also as browsers send it through a proxy on the
    scheme's default port (no port at all)."""
    names = allowed_hosts(host, port, extra)
    for entry in extra:
        entry = entry.strip().lower()
        if entry and not entry.rsplit(":", 1)[-1].isdigit():
            names.append(entry)
    return list(dict.fromkeys(names))


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    proxy_headers: bool = False,
    extra_hosts: Iterable[str] = (),
) -> int:
    """Serve the console until interrupted. Returns an exit status: 2, with the reason on
    stderr, when the settings make serving unsafe (nothing is bound)."""
    problem = start_problem(settings, host)
    if problem:
        print(f"callagent: {problem}", file=sys.stderr)
        return 2

    import uvicorn

    from callagent import logs
    from callagent.console.app import create_app

    logs.configure(settings)
    hosts = console_hosts(host, port, extra_hosts)
    app = create_app(settings, hosts=hosts)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryStrings) for f in access.filters):
        access.addFilter(DropQueryStrings())  # the calls page's filters hold numbers
    shown = f"[{host}]" if ":" in host else host
    log.info("console on http://%s:%d/ (sign in with CALLAGENT_CONSOLE_TOKEN)", shown, port)
    if not is_loopback(host):
        log.warning("the console serves on %s: put it behind TLS (see the README's Console section)", host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=settings.log_level.lower(),
        proxy_headers=proxy_headers,  # uvicorn trusts them by default; only when asked here
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=3,  # live pages hold event streams open
    )
    uvicorn.Server(config).run()
    return 0
