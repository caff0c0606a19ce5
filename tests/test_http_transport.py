"""`server.py --transport http`: bearer token, DNS-rebinding protection, refusing unsafe binds.

The server runs as a subprocess on 127.0.0.1, as an operator would start it. Only 127.0.0.1 is
ever sent traffic; the non-loopback bind is only checked to be refused before binding.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from callagent.calls import CallRecord, CallStatus, new_call_id
from callagent.store import CallStore

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
WRONG = "tok-00000000000000000000000000000000"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_HTTP_", "LIVEKIT_", "SIP_", "DIAL_"))}
    env.update({"CALLAGENT_DB_URL": f"sqlite:///{tmp / 'calls.db'}", "CALLAGENT_LOG_LEVEL": "INFO", **extra})
    return env


class HttpServer:
    def __init__(self, tmp: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.log = tmp / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "--transport", "http", "--host", "127.0.0.1",
             "--port", str(self.port), *args],
            cwd=tmp, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
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

    def post(self, headers: dict[str, str], body: dict[str, Any] = INIT) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            all_headers = {
                "Host": f"127.0.0.1:{self.port}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                **headers,
            }
            conn.request("POST", "/mcp", body=json.dumps(body), headers=all_headers)
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
    [f"Bearer {WRONG}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer ", f"bearer{TOKEN}"],
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
    with CallStore(f"sqlite:///{tmp / 'calls.db'}") as store:
        existing = store.create(CallRecord(
            call_id=new_call_id(), phone_number="+14155550100", status=CallStatus.completed, goal="earlier",
            caller_name="Test Operator", max_duration_s=300, ring_timeout_s=30,
        ))
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
        cwd=tmp, env=env, capture_output=True, text=True, timeout=60,
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
        tmp, MCP_HTTP_TOKEN=TOKEN, DIAL_CONFIRM="always", DIAL_QUIET_HOURS="off",
        CALLAGENT_DB_URL=f"sqlite:///{tmp / f'confirm-{mode}.db'}",
        LIVEKIT_URL=f"http://127.0.0.1:{free_port()}", LIVEKIT_API_KEY="devkey",
        LIVEKIT_API_SECRET="s" * 32, SIP_OUTBOUND_TRUNK_ID="ST_test",
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
