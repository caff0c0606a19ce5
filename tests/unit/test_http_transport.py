"""`server.py --transport http`: bearer token, DNS-rebinding protection, refusing unsafe binds.

The server runs as a subprocess on 127.0.0.1, as an operator would start it. Only 127.0.0.1 is
ever sent traffic; the non-loopback bind is only checked to be refused before binding.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from callagent.calls import CallRecord, CallStatus, new_call_id
from callagent.http_transport import DropQueryStrings, loggable_path
from callagent.store import Database

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
WRONG = "tok-00000000000000000000000000000000"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_HTTP_", "LIVEKIT_", "SIP_", "DIAL_"))}
    env.update({"CALLAGENT_DB_URL": f"sqlite:///{tmp / 'calls.db'}", "CALLAGENT_LOG_LEVEL": "INFO", **extra})
    return env


# server.py under an open-file limit (soft and hard): `python -c UNDER_NOFILE N server.py ARGS...`
UNDER_NOFILE = (
    "import resource, runpy, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


class HttpServer:
    def __init__(self, tmp: Path, env: dict[str, str], *args: str, nofile: int | None = None) -> None:
        self.port = free_port()
        self.log = tmp / f"server-{self.port}.log"
        command = [
            sys.executable,
            str(ROOT / "server.py"),
            "--transport",
            "http",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *args,
        ]
        if nofile is not None:
            command[1:1] = ["-c", UNDER_NOFILE, str(nofile)]
        self.proc = subprocess.Popen(
            command,
            cwd=tmp,
            env=env,
            stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited:\n{self.log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"server did not listen within 30 s:\n{self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def post(
        self,
        headers: dict[str, str],
        body: dict[str, Any] | None = INIT,
        *,
        method: str = "POST",
        target: str = "/mcp",
        timeout: float = 10,
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            all_headers = {
                "Host": f"127.0.0.1:{self.port}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                **headers,
            }
            conn.request(method, target, body=None if body is None else json.dumps(body), headers=all_headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log.read_text()


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("http")


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[HttpServer]:
    srv = HttpServer(tmp, base_env(tmp, MCP_HTTP_TOKEN=TOKEN))
    try:
        yield srv
    finally:
        srv.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_is_401(server: HttpServer) -> None:
    status, headers, _ = server.post({})
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {WRONG}",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
        f"bearer{TOKEN}",
    ],
)
def test_wrong_token_is_401(server: HttpServer, authorization: str) -> None:
    status, headers, _ = server.post({"Authorization": authorization})
    assert status == 401
    assert "Bearer" in headers["www-authenticate"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1:1"])
def test_foreign_host_is_421(server: HttpServer, host: str) -> None:
    host = host.format(port=server.port)
    status, _, _ = server.post({"Host": host, **bearer(TOKEN)})
    assert status == 421
    status, _, _ = server.post({"Host": host})  # the Host is looked at before the token
    assert status == 421


def test_foreign_origin_is_refused(server: HttpServer) -> None:
    status, _, _ = server.post({"Origin": "http://evil.example", **bearer(TOKEN)})
    assert status == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}"])
def test_good_token_and_host_are_served(server: HttpServer, host: str) -> None:
    status, _, body = server.post({"Host": host.format(port=server.port), **bearer(TOKEN)})
    assert status == 200, body
    assert '"serverInfo"' in body and "callagent" in body


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_client_end_to_end_with_the_token(server: HttpServer, tmp: Path, mode: str) -> None:
    with Database(f"sqlite:///{tmp / 'calls.db'}") as store:
        existing = store.calls.create(
            CallRecord(
                call_id=new_call_id(),
                phone_number="+14155550100",
                status=CallStatus.completed,
                goal="earlier",
                caller_name="Test Operator",
                max_duration_s=300,
                ring_timeout_s=30,
            )
        )
    async with httpx2.AsyncClient(headers=bearer(TOKEN), timeout=30) as http_client:
        async with Client(streamable_http_client(server.url, http_client=http_client), mode=mode) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"make_phone_call", "list_calls", "dial_policy"} <= tools
            page = await client.call_tool("list_calls", {})
            assert not page.is_error
            assert existing.call_id in [c["call_id"] for c in page.structured_content["calls"]]
            text = "\n".join(c.text for c in page.content if isinstance(c, TextContent))
            assert "+*******0100" in text


@pytest.mark.anyio
async def test_mcp_client_with_a_wrong_token_gets_nothing(server: HttpServer) -> None:
    statuses: list[int] = []

    async def seen(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    async with httpx2.AsyncClient(headers=bearer(WRONG), timeout=10, event_hooks={"response": [seen]}) as http_client:
        with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the HTTP error in task groups
            async with Client(streamable_http_client(server.url, http_client=http_client), mode="legacy") as client:
                await client.list_tools()
    assert statuses and set(statuses) == {401}


def test_the_token_is_never_logged(server: HttpServer) -> None:
    server.post(bearer(TOKEN))
    server.post(bearer(WRONG))
    log = server.log.read_text()
    assert "401" in log and "421" in log  # refusals are logged...
    assert TOKEN not in log and WRONG not in log  # ...without any token
    assert TOKEN[4:20] not in log


# -- refusing to start -----------------------------------------------------------------------


def run_server(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """server.py expected to refuse: it must exit at once, before binding anything."""
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "--transport", "http", "--port", str(free_port()), *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_a_non_loopback_bind_without_a_token(tmp: Path) -> None:
    out = run_server(tmp, base_env(tmp), "--host", "0.0.0.0")
    assert out.returncode == 2
    assert "requires a bearer token" in out.stderr and "MCP_HTTP_TOKEN" in out.stderr
    assert "Uvicorn running" not in out.stderr + out.stdout


@pytest.mark.parametrize("opt_out", [("--no-auth",), ()])
def test_refuses_to_opt_out_of_auth_on_a_non_loopback_bind(tmp: Path, opt_out: tuple[str, ...]) -> None:
    env = base_env(tmp, **({} if opt_out else {"MCP_HTTP_NO_AUTH": "1"}))
    out = run_server(tmp, env, "--host", "0.0.0.0", *opt_out)
    assert out.returncode == 2
    assert "refusing to serve without authentication on 0.0.0.0" in out.stderr
    assert "loopback" in out.stderr


def test_refuses_loopback_without_a_token_unless_opted_out(tmp: Path) -> None:
    out = run_server(tmp, base_env(tmp), "--host", "127.0.0.1")
    assert out.returncode == 2 and "--no-auth" in out.stderr


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"MCP_HTTP_TOKEN": "short"}, (), "at least 16 characters"),
        ({"MCP_HTTP_TOKEN": "has a space in it, sixteen+"}, (), "without spaces"),
        ({"MCP_HTTP_TOKEN": TOKEN}, ("--no-auth",), "use one or the other"),
    ],
)
def test_refuses_unsafe_token_settings(tmp: Path, env: dict[str, str], args: tuple[str, ...], expected: str) -> None:
    out = run_server(tmp, base_env(tmp, **env), "--host", "127.0.0.1", *args)
    assert out.returncode == 2
    assert expected in out.stderr
    assert TOKEN not in out.stderr


def test_no_auth_on_loopback_serves_without_a_token_but_still_checks_the_host(tmp: Path) -> None:
    srv = HttpServer(tmp, base_env(tmp), "--no-auth")
    try:
        status, _, body = srv.post({})
        assert status == 200, body
        status, _, _ = srv.post({"Host": "evil.example"})
        assert status == 421
    finally:
        log = srv.stop()
    assert "WITHOUT authentication" in log


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_confirmation_over_http(tmp: Path, mode: str) -> None:
    """DIAL_CONFIRM=always over HTTP: a client that can be asked is asked (2026-07-28
    input-required round trip, or the 2025 back-channel); one that cannot gets a token."""
    env = base_env(
        tmp,
        MCP_HTTP_TOKEN=TOKEN,
        DIAL_CONFIRM="always",
        DIAL_QUIET_HOURS="off",
        CALLAGENT_DB_URL=f"sqlite:///{tmp / f'confirm-{mode}.db'}",
        LIVEKIT_URL=f"http://127.0.0.1:{free_port()}",
        LIVEKIT_API_KEY="devkey",
        LIVEKIT_API_SECRET="s" * 32,
        SIP_OUTBOUND_TRUNK_ID="ST_test",
    )
    srv = HttpServer(tmp, env)
    asked: list[str] = []

    async def approve(ctx: Any, params: Any) -> Any:
        from mcp_types import ElicitResult

        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    try:
        async with httpx2.AsyncClient(headers=bearer(TOKEN), timeout=30) as http_client:
            transport = streamable_http_client(srv.url, http_client=http_client)
            async with Client(transport, mode=mode, elicitation_callback=approve) as client:
                placed = await client.call_tool("make_phone_call", {"phone_number": "+14155550142"})
            async with Client(streamable_http_client(srv.url, http_client=http_client), mode=mode) as client:
                pending = await client.call_tool("make_phone_call", {"phone_number": "+14155550143"})
    finally:
        srv.stop()
    assert len(asked) == 1 and "+1 415-555-0142" in asked[0]
    placed_text = "\n".join(c.text for c in placed.content if isinstance(c, TextContent))
    assert placed.is_error and "cannot reach LiveKit at LIVEKIT_URL" in placed_text  # approved, then dialed
    assert not pending.is_error and pending.structured_content["status"] == "confirmation_required"


# -- idle and slow clients, and query strings ------------------------------------------------

LIMIT = 20  # MCP_HTTP_MAX_CONNECTIONS of the servers below
KEEPALIVE_S = 1
HEADER_S = 2
SECRET = "qs-secret-7c1e9a2b4d5f"


def limits_env(tmp: Path, name: str, *, header_s: float = HEADER_S, **extra: str) -> dict[str, str]:
    return base_env(
        tmp,
        MCP_HTTP_TOKEN=TOKEN,
        CALLAGENT_DB_URL=f"sqlite:///{tmp / f'{name}.db'}",
        MCP_HTTP_MAX_CONNECTIONS=str(LIMIT),
        MCP_HTTP_KEEPALIVE_TIMEOUT_S=str(KEEPALIVE_S),
        MCP_HTTP_HEADER_TIMEOUT_S=str(header_s),
        **extra,
    )


@pytest.fixture(scope="module")
def tight(tmp: Path) -> Iterator[HttpServer]:
    """Small limits, short timeouts, and every log line (DEBUG)."""
    srv = HttpServer(tmp, limits_env(tmp, "tight", CALLAGENT_LOG_LEVEL="DEBUG"))
    try:
        yield srv
    finally:
        srv.stop()


def open_idle(port: int, n: int) -> list[socket.socket]:
    """`n` connections that send nothing."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setblocking(False)
            socks.append(sock)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed `sock` (end of stream or reset); what it sent first is dropped."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def still_open(socks: list[socket.socket], at_most: int, within_s: float) -> list[socket.socket]:
    """The sockets the server has not closed, once at most `at_most` are left or after `within_s`."""
    deadline = time.monotonic() + within_s
    left = [s for s in socks if not closed_by_server(s)]
    while len(left) > at_most and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [s for s in left if not closed_by_server(s)]
    return left


def trickle_until_closed(sock: socket.socket, chunk: bytes, within_s: float) -> float | None:
    """Send `chunk` every 0.25 s until the server closes the connection: seconds that took, or
    None when it was still open after `within_s`."""
    start = time.monotonic()
    while time.monotonic() - start < within_s:
        if closed_by_server(sock):
            return time.monotonic() - start
        try:
            sock.send(chunk)
        except BlockingIOError:
            pass
        except OSError:
            return time.monotonic() - start
        time.sleep(0.25)
    return None


def read_head(sock: socket.socket, timeout: float = 10) -> bytes:
    """A response's status line and headers (blocking, bounded by `timeout` and 64 KiB)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def mcp_tools(url: str) -> set[str]:
    """initialize and tools/list with the bearer token, as an MCP client does."""

    async def round_trip() -> set[str]:
        async with httpx2.AsyncClient(headers=bearer(TOKEN), timeout=30) as http_client:
            async with Client(streamable_http_client(url, http_client=http_client), mode="legacy") as client:
                return {t.name for t in (await client.list_tools()).tools}

    return anyio.run(round_trip)


def test_idle_connections_are_closed_and_never_lock_a_client_out(tmp: Path) -> None:
    header_s = 5  # long enough for the client to be served while the idle connections are held
    srv = HttpServer(tmp, limits_env(tmp, "flood", header_s=header_s))
    socks: list[socket.socket] = []
    try:
        socks = open_idle(srv.port, 3 * LIMIT)
        # Beyond the limit the oldest idle ones are closed at once: the server holds LIMIT.
        assert len(still_open(socks, LIMIT, 10)) <= LIMIT
        # Meanwhile an authenticated client is served: its connections make room too.
        assert "make_phone_call" in mcp_tools(srv.url)
        status, _, body = srv.post(bearer(TOKEN))
        assert status == 200, body
        assert still_open(socks, LIMIT, 0), "no idle connection was left while the client was served"
        # The idle ones are closed after the header timeout...
        assert not still_open(socks, 0, 3 * header_s + 5)
        # ...and the client is served afterwards too.
        assert "make_phone_call" in mcp_tools(srv.url)
    finally:
        for sock in socks:
            sock.close()
        log = srv.stop()
    assert f"closed to stay within {LIMIT} connections" in log
    assert "Exceeded concurrency limit" not in log and '" 503' not in log


def test_a_flood_within_a_small_open_file_limit(tmp: Path) -> None:
    """The probe: 200 idle sockets took all 128 descriptors, and then no client got in."""
    env = limits_env(tmp, "nofile", header_s=3)
    del env["MCP_HTTP_MAX_CONNECTIONS"]  # the default, 100, does not fit in 128 descriptors
    srv = HttpServer(tmp, env, nofile=128)
    socks: list[socket.socket] = []
    try:
        socks = open_idle(srv.port, 200)
        status, _, body = srv.post(bearer(TOKEN), timeout=30)
        assert status == 200, body
        assert not still_open(socks, 0, 3 * 3 + 10)
        status, _, body = srv.post(bearer(TOKEN), timeout=30)
        assert status == 200, body
    finally:
        for sock in socks:
            sock.close()
        log = srv.stop()
    assert "the open-file limit (128) is short for MCP_HTTP_MAX_CONNECTIONS=100" in log
    assert "out of system resource" not in log and "Too many open files" not in log


@pytest.mark.parametrize(
    ("opening", "trickle"),
    [
        (b"GET /", b"a"),  # a request line that never ends
        (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n", b"X-Slow: 1\r\n"),
    ],
    ids=["request-line", "headers"],
)
def test_slow_request_headers_are_cut(tight: HttpServer, opening: bytes, trickle: bytes) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=10) as sock:
        sock.sendall(opening.replace(b"{port}", str(tight.port).encode()).replace(b"{token}", TOKEN.encode()))
        took = trickle_until_closed(sock, trickle, 3 * HEADER_S + 5)
    assert took is not None, "the server kept a client that never finished its request headers"
    assert took >= HEADER_S / 2  # cut by the header timeout, not at once


def test_a_refused_request_cannot_trickle_its_body_for_ever(tight: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=10) as sock:
        sock.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{" % tight.port
        )
        assert read_head(sock).startswith(b"HTTP/1.1 401 ")
        took = trickle_until_closed(sock, b" ", 3 * (KEEPALIVE_S + HEADER_S) + 5)
    assert took is not None, "the server kept reading the body of a refused request"


def test_an_idle_keep_alive_connection_is_closed(tight: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=10) as sock:
        sock.sendall(b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % tight.port)
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 401 ") and b"connection: close" not in head.lower()
        assert not still_open([sock], 0, 3 * KEEPALIVE_S + 5)


def test_requests_being_served_are_never_cut_and_one_more_connection_gets_503(tight: HttpServer) -> None:
    """LIMIT authenticated requests whose bodies are still coming: they are being served, so
    no timeout cuts them and none is closed to make room; a new connection gets 503."""
    body = json.dumps(INIT).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{tight.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    held: list[socket.socket] = []
    try:
        for _ in range(LIMIT):
            held.append(socket.create_connection(("127.0.0.1", tight.port), timeout=10))
            held[-1].sendall(head + body[:10])
        time.sleep(2 * (HEADER_S + KEEPALIVE_S))
        assert not [s for s in held if closed_by_server(s)], "a request being served was cut"
        with socket.create_connection(("127.0.0.1", tight.port), timeout=10) as extra:
            assert read_head(extra).startswith(b"HTTP/1.1 503 ")
            assert not still_open([extra], 0, 10)
        held[0].setblocking(True)
        held[0].sendall(body[10:])  # one of them finishes: it is answered
        assert read_head(held[0]).startswith(b"HTTP/1.1 200 ")
        assert not [s for s in held[1:] if closed_by_server(s)]
    finally:
        for sock in held:
            sock.close()
    status, _, text = tight.post(bearer(TOKEN), timeout=30)
    assert status == 200, text


@pytest.mark.parametrize("which", ["server", "tight"])
def test_a_token_in_the_query_string_is_refused_and_never_logged(request: pytest.FixtureRequest, which: str) -> None:
    srv: HttpServer = request.getfixturevalue(which)
    for target in (
        f"/mcp?token={SECRET}",
        f"/mcp?access_token={SECRET}",
        f"/mcp/?a=1&token={SECRET}",
        f"/mcp%3Ftoken%3D{SECRET}",
        f"/?access_token={SECRET}",
    ):
        for method, body in (("GET", None), ("POST", INIT)):
            status, headers, text = srv.post({}, body, method=method, target=target)
            assert status == 401, (method, target)
            assert SECRET not in text and SECRET not in json.dumps(headers)
    # With the bearer token it is served, the query ignored; a foreign Host is still refused.
    status, _, text = srv.post(bearer(TOKEN), target=f"/mcp?token={SECRET}")
    assert status == 200 and SECRET not in text
    status, _, _ = srv.post({"Host": "evil.example", **bearer(TOKEN)}, target=f"/mcp?token={SECRET}")
    assert status == 421
    log = srv.log.read_text()  # the server's stderr
    assert SECRET not in log and SECRET[:12] not in log
    assert '"GET /mcp HTTP/1.1" 401' in log and '"POST /mcp HTTP/1.1" 200' in log  # logged, without queries


def test_log_lines_never_carry_a_query_string() -> None:
    keep = DropQueryStrings()
    line = '%s - "%s %s HTTP/%s" %d'
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        line,
        ("127.0.0.1:5000", "GET", f"/mcp?token={SECRET}", "1.1", 401),
        None,
    )
    assert keep.filter(record) and record.getMessage() == '127.0.0.1:5000 - "GET /mcp HTTP/1.1" 401'
    # Already formatted by a record factory (callagent.redact does that): the line is cut.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        f'127.0.0.1:5000 - "GET /mcp%3Faccess_token%3D{SECRET} HTTP/1.1" 401',
        None,
        None,
    )
    assert keep.filter(record) and record.getMessage() == '127.0.0.1:5000 - "GET /mcp HTTP/1.1" 401'
    assert loggable_path(f"/mcp?token={SECRET}") == "/mcp"
    assert loggable_path("/mcp\n2026-01-01 INFO forged") == "/mcp\\n2026-01-01 INFO forged"
    assert loggable_path("/" + "a" * 500) == "/" + "a" * 199 + "..."


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCP_HTTP_MAX_CONNECTIONS", "3"),
        ("MCP_HTTP_MAX_CONNECTIONS", "many"),
        ("MCP_HTTP_KEEPALIVE_TIMEOUT_S", "0"),
        ("MCP_HTTP_HEADER_TIMEOUT_S", "301"),
        ("MCP_HTTP_HEADER_TIMEOUT_S", "nan"),
    ],
)
def test_refuses_bad_limits_naming_the_setting(tmp: Path, name: str, value: str) -> None:
    out = run_server(tmp, base_env(tmp, MCP_HTTP_TOKEN=TOKEN, **{name: value}), "--host", "127.0.0.1")
    assert out.returncode == 2
    assert "invalid settings" in out.stderr and name in out.stderr
    assert TOKEN not in out.stderr
