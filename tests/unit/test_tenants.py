"""Tenants (callagent.toml [tenants]): each client of the HTTP transport, known by its bearer
token, sees and ends only its own calls, calls only under its own profiles, within its own
limits; the operator sees everything. First the service on its own (real SQLite store, the fake
LiveKit), then `server.py --transport http` with the MCP client SDK, as tenants would use it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from test_http_transport import INIT, HttpServer, base_env, bearer, run_server

from callagent.calls import CallStatus
from callagent.errors import BadArgument, NotFound, Refused
from callagent.policy import Rule
from callagent.profiles import hash_token
from callagent.service import CallArgs, CallService, Placed
from callagent.store import Database
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, text

# Settings built here must not take the bed's DIAL_* and CALLAGENT_* variables.
pytestmark = pytest.mark.usefixtures("no_operator_env")

SECRET = "tenants-test-secret-long-enough-for-hmac"
NUMBER = "+14155550142"
OPERATOR_TOKEN = "op-1f2e3d4c5b6a79880716253443526170"
TOKEN_A = "alpha-5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"
TOKEN_B = "beta-0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a"

TENANTS = f"""
[profiles.a_sales]
caller_name = "Alpha Sales"

[profiles.b_support]
caller_name = "Beta Support"
description = "Beta's support line"

[profiles.b_other]
caller_name = "Beta Other"

[tenants.alpha]
token_sha256 = "{hash_token(TOKEN_A)}"
profiles = ["a_sales"]
max_concurrent = 1

[tenants.beta]
token_sha256 = "{hash_token(TOKEN_B)}"
profiles = ["b_support", "b_other"]
"""


def write_toml(folder: Path) -> Path:
    path = folder / "callagent.toml"
    path.write_text(TENANTS, encoding="utf-8")
    return path


# -- the service -----------------------------------------------------------------------------------

pytestmark = pytest.mark.anyio


@pytest.fixture
async def service(db_url: str, livekit: FakeLiveKit, tmp_path: Path) -> AsyncIterator[CallService]:
    settings = fake_livekit_settings(
        db_url, livekit.url, SECRET, CALLAGENT_PROFILES_FILE=str(write_toml(tmp_path)), DIAL_MAX_CONCURRENT="3"
    )
    s = CallService(settings)
    try:
        yield s
    finally:
        await s.aclose()


async def test_a_tenant_sees_and_ends_only_its_own_calls(
    service: CallService, store: Database, livekit: FakeLiveKit
) -> None:
    placed = await service.place(CallArgs(NUMBER, goal="Confirm the order"), tenant="alpha")
    assert isinstance(placed, Placed)
    call_id = placed.record.call_id
    assert placed.record.tenant == "alpha" and placed.record.profile == "a_sales"  # alpha's first profile
    assert placed.record.caller_name == "Alpha Sales"
    live = placed.record.status
    assert live not in (CallStatus.failed, CallStatus.canceled)

    unknown = "no call with call_id 'nosuchcall0'"
    with pytest.raises(NotFound) as unknown_info:
        await service.get("nosuchcall0", tenant="beta")
    assert unknown in str(unknown_info.value)
    # To beta, alpha's call is no call at all: the same answer as for an id that does not exist.
    same = str(unknown_info.value).replace("nosuchcall0", call_id)
    for attempt in (
        service.get(call_id, tenant="beta"),
        service.wait(call_id, 0.5, tenant="beta"),
        service.end(call_id, tenant="beta"),
        service.recording(call_id, tenant="beta"),
    ):
        with pytest.raises(NotFound) as info:
            await attempt
        assert str(info.value) == same
    calls, _ = await service.list_calls(tenant="beta")
    assert calls == []
    assert "DeleteRoom" not in livekit.calls()  # beta's end_call hung nothing up
    assert (await service.get(call_id, tenant="alpha")).status == live

    # alpha and the operator see it.
    assert (await service.get(call_id, tenant="alpha")).call_id == call_id
    assert (await service.get(call_id)).tenant == "alpha"
    assert [c.call_id for c in (await service.list_calls(tenant="alpha"))[0]] == [call_id]
    assert call_id in [c.call_id for c in (await service.list_calls())[0]]
    with pytest.raises(NotFound, match="was not recorded"):  # its own: the real reason
        await service.recording(call_id, tenant="alpha")
    waited = await service.wait(call_id, 0.2, tenant="alpha")
    assert waited.record.call_id == call_id

    # beta's own call is beta's; alpha does not see it.
    theirs = await service.place(CallArgs("+14155550143"), tenant="beta")
    assert isinstance(theirs, Placed) and theirs.record.tenant == "beta" and theirs.record.profile == "b_support"
    assert [c.call_id for c in (await service.list_calls(tenant="beta"))[0]] == [theirs.record.call_id]
    with pytest.raises(NotFound):
        await service.get(theirs.record.call_id, tenant="alpha")
    assert {c.call_id for c in (await service.list_calls())[0]} == {call_id, theirs.record.call_id}

    # alpha ends its own call.
    ended = await service.end(call_id, tenant="alpha")
    assert ended.record.status is CallStatus.canceled and "DeleteRoom" in livekit.calls()


async def test_a_tenant_calls_only_under_its_own_profiles(
    service: CallService, store: Database, livekit: FakeLiveKit
) -> None:
    for profile in ("a_sales", "default", "nosuch"):
        with pytest.raises(Refused) as info:
            await service.place(CallArgs(NUMBER, profile=profile), tenant="beta")
        refusal = info.value.refusal
        assert refusal.rule is Rule.profile and "it may use: b_support, b_other" in refusal.message
        assert "dial_policy shows them" in refusal.message  # the tool that lists them
        if profile != "a_sales":
            assert "a_sales" not in refusal.message  # another tenant's profile names are not told
    assert store.calls.page()[0] == [] and livekit.count == 0
    placed = await service.place(CallArgs(NUMBER, profile="b_other"), tenant="beta")
    assert isinstance(placed, Placed) and placed.record.profile == "b_other"
    assert placed.record.caller_name == "Beta Other"
    # The operator may use any profile, a tenant's too.
    mine = await service.place(CallArgs("+14155550143", profile="a_sales"))
    assert isinstance(mine, Placed) and mine.record.tenant is None and mine.record.profile == "a_sales"


async def test_refusals_are_kept_with_the_tenant_whose_client_was_refused(
    service: CallService, store: Database
) -> None:
    with pytest.raises(Refused):
        await service.place(CallArgs(NUMBER, profile="b_support"), tenant="alpha")
    with pytest.raises(Refused):
        await service.place(CallArgs("911"), tenant="beta")
    with pytest.raises(Refused):
        await service.place(CallArgs("+1 800 273 8255"))
    (alpha,) = store.refusals.recent(tenant="alpha")
    assert alpha.rule == "profile" and alpha.tenant == "alpha"
    (beta,) = store.refusals.recent(tenant="beta")
    assert beta.rule == "emergency_number" and beta.tenant == "beta"
    every = store.refusals.recent()
    assert {(r.rule, r.tenant) for r in every} == {
        ("profile", "alpha"),
        ("emergency_number", "beta"),
        ("sensitive_number", None),
    }


async def test_a_tenants_limit_counts_its_own_calls(service: CallService, store: Database) -> None:
    first = await service.place(CallArgs("+14155550150"), tenant="alpha")
    assert isinstance(first, Placed)
    with pytest.raises(Refused) as info:
        await service.place(CallArgs("+14155550151"), tenant="alpha")
    refusal = info.value.refusal
    assert refusal.rule is Rule.max_concurrent
    assert refusal.setting == "callagent.toml [tenants.alpha] max_concurrent"
    assert refusal.message.startswith("tenant: 1 calls are already live and at most 1")
    (kept,) = store.refusals.recent(tenant="alpha")
    assert kept.setting == "callagent.toml [tenants.alpha] max_concurrent"
    # Others are not held to alpha's limit: beta and the operator still call (3 live of 3).
    assert isinstance(await service.place(CallArgs("+14155550152"), tenant="beta"), Placed)
    assert isinstance(await service.place(CallArgs("+14155550153")), Placed)
    # The deployment's limit holds for everyone.
    with pytest.raises(Refused) as info:
        await service.place(CallArgs("+14155550154"), tenant="beta")
    assert info.value.refusal.setting == "DIAL_MAX_CONCURRENT"


async def test_another_tenants_idempotency_key_gives_nothing_away(service: CallService) -> None:
    placed = await service.place(CallArgs(NUMBER, idempotency_key="order-1"), tenant="alpha")
    assert isinstance(placed, Placed)
    with pytest.raises(BadArgument) as info:
        await service.place(CallArgs(NUMBER, idempotency_key="order-1"), tenant="beta")
    assert "already taken" in str(info.value) and placed.record.call_id not in str(info.value)
    again = await service.place(CallArgs(NUMBER, idempotency_key="order-1"), tenant="alpha")
    assert isinstance(again, Placed) and again.existing and again.record.call_id == placed.record.call_id


async def test_policy_info_shows_a_tenant_its_own_profiles(service: CallService) -> None:
    beta = await service.policy_info(tenant="beta")
    assert beta["tenant"] == "beta" and beta["profile"] == "b_support"
    assert [p["name"] for p in beta["profiles"]] == ["b_support", "b_other"]
    assert beta["profiles"][0]["description"] == "Beta's support line"
    alpha = await service.policy_info(tenant="alpha")
    assert [p["name"] for p in alpha["profiles"]] == ["a_sales"]
    operator = await service.policy_info()
    assert "tenant" not in operator and operator["profile"] == "default"
    assert [p["name"] for p in operator["profiles"]] == ["default", "a_sales", "b_support", "b_other"]


async def test_policy_info_tells_a_tenant_its_own_usage_against_its_own_limits(service: CallService) -> None:
    assert isinstance(await service.place(CallArgs("+14155550150"), tenant="alpha"), Placed)
    assert isinstance(await service.place(CallArgs("+14155550151"), tenant="beta"), Placed)
    alpha = await service.policy_info(tenant="alpha")
    assert alpha["usage"]["concurrent_slots_left"] == 0  # a call now is refused: tenant max_concurrent
    assert alpha["usage"]["active_calls"] == 1  # its own, not beta's


# -- over HTTP -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tenants-http")


@pytest.fixture(scope="module")
def http_livekit() -> Iterator[FakeLiveKit]:
    lk = FakeLiveKit("ok", hang_s=10)
    try:
        yield lk
    finally:
        lk.close()


def server_env(tmp: Path, livekit_url: str, **extra: str) -> dict[str, str]:
    return base_env(
        tmp,
        CALLAGENT_PROFILES_FILE=str(write_toml(tmp)),
        # Nothing from the user's own configuration.
        XDG_CONFIG_HOME=str(tmp / "no-user-config"),
        CALLAGENT_ENV_FILE="",
        LIVEKIT_URL=livekit_url,
        LIVEKIT_API_KEY="devkey",
        LIVEKIT_API_SECRET=SECRET,
        SIP_OUTBOUND_TRUNK_ID="ST_test",
        CALLAGENT_AGENT_JOIN_TIMEOUT_S="2",
        CALLAGENT_LIVEKIT_TIMEOUT_S="1",
        DIAL_QUIET_HOURS="off",
        **extra,
    )


@pytest.fixture(scope="module")
def server(http_tmp: Path, http_livekit: FakeLiveKit) -> Iterator[HttpServer]:
    srv = HttpServer(http_tmp, server_env(http_tmp, http_livekit.url, MCP_HTTP_TOKEN=OPERATOR_TOKEN))
    try:
        yield srv
    finally:
        srv.stop()


@asynccontextmanager
async def mcp_as(url: str, token: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers=bearer(token), timeout=30) as http_client:
        async with Client(streamable_http_client(url, http_client=http_client), mode="legacy") as client:
            yield client


@pytest.fixture(scope="module")
def alpha_call(server: HttpServer) -> str:
    """The id of a call alpha placed over HTTP (against the fake LiveKit)."""

    async def place() -> str:
        async with mcp_as(server.url, TOKEN_A) as client:
            result = await client.call_tool("make_phone_call", {"phone_number": NUMBER, "goal": "Confirm the order"})
            assert not result.is_error, text(result)
            record = result.structured_content or {}
            assert record["profile"] == "a_sales" and record["status"] not in ("failed", "canceled"), record
            return str(record["call_id"])

    return anyio.run(place)


async def test_over_http_another_tenants_call_is_no_call(
    server: HttpServer, alpha_call: str, http_livekit: FakeLiveKit
) -> None:
    assert len(http_livekit.sip_requests) >= 1  # alpha's call reached LiveKit
    async with mcp_as(server.url, TOKEN_B) as beta:
        for tool, arguments in (
            ("get_call", {"call_id": alpha_call}),
            ("wait_for_call", {"call_id": alpha_call, "timeout_s": 1}),
            ("end_call", {"call_id": alpha_call}),
        ):
            result = await beta.call_tool(tool, arguments)
            assert result.is_error, (tool, text(result))
            assert f"no call with call_id '{alpha_call}'" in text(result), (tool, text(result))
            assert NUMBER not in text(result) and "0142" not in text(result)
        with pytest.raises(MCPError, match=f"no call with call_id '{alpha_call}'"):
            await beta.read_resource(f"calls://{alpha_call}")
        with pytest.raises(MCPError, match=f"no call with call_id '{alpha_call}'"):
            await beta.read_resource(f"calls://{alpha_call}/recording")
        listed = await beta.call_tool("list_calls", {})
        assert not listed.is_error, text(listed)
        assert alpha_call not in [c["call_id"] for c in (listed.structured_content or {})["calls"]]
        policy = await beta.call_tool("dial_policy", {})
        assert not policy.is_error, text(policy)
        info = policy.structured_content or {}
        assert info["profile"] == "b_support"
        assert [p["name"] for p in info["profiles"]] == ["b_support", "b_other"]
        assert "a_sales" not in text(policy) and "Alpha Sales" not in text(policy)
        refused = await beta.call_tool("make_phone_call", {"phone_number": NUMBER, "profile": "a_sales"})
        assert refused.is_error and "rule 'profile'" in text(refused)
    # Untouched by beta's end_call; alpha and the operator see it.
    assert "DeleteRoom" not in http_livekit.calls()
    async with mcp_as(server.url, TOKEN_A) as alpha:
        got = await alpha.call_tool("get_call", {"call_id": alpha_call})
        assert not got.is_error and (got.structured_content or {})["tenant"] == "alpha"
        assert (got.structured_content or {})["status"] not in ("canceled", "failed")
        resource = await alpha.read_resource(f"calls://{alpha_call}")
        assert alpha_call in str(resource.contents[0])
        mine = await alpha.call_tool("list_calls", {})
        assert [c["call_id"] for c in (mine.structured_content or {})["calls"]] == [alpha_call]
        policy = await alpha.call_tool("dial_policy", {})
        assert [p["name"] for p in (policy.structured_content or {})["profiles"]] == ["a_sales"]
    async with mcp_as(server.url, OPERATOR_TOKEN) as operator:
        everything = await operator.call_tool("list_calls", {})
        assert alpha_call in [c["call_id"] for c in (everything.structured_content or {})["calls"]]
        got = await operator.call_tool("get_call", {"call_id": alpha_call})
        assert not got.is_error and (got.structured_content or {})["tenant"] == "alpha"
        policy = await operator.call_tool("dial_policy", {})
        assert [p["name"] for p in (policy.structured_content or {})["profiles"]] == [
            "default",
            "a_sales",
            "b_support",
            "b_other",
        ]


@pytest.mark.filterwarnings("ignore:resources/subscribe is removed")
async def test_over_http_another_tenant_cannot_subscribe_to_a_call(server: HttpServer, alpha_call: str) -> None:
    async with mcp_as(server.url, TOKEN_B) as beta:
        with pytest.raises(MCPError, match="nosuchcall"):  # an unknown call: refused
            await beta.subscribe_resource("calls://nosuchcall")
        with pytest.raises(MCPError, match=f"no call with call_id '{alpha_call}'"):
            await beta.subscribe_resource(f"calls://{alpha_call}")


def test_over_http_an_unknown_token_is_401_and_each_tenants_token_is_served(server: HttpServer) -> None:
    for token in ("not-a-tenant-0123456789abcdef", TOKEN_A[:-1], TOKEN_A + "x", hash_token(TOKEN_A)):
        status, headers, _ = server.post(bearer(token))
        assert status == 401, token
        assert headers["www-authenticate"].startswith("Bearer")
    for token in (TOKEN_A, TOKEN_B, OPERATOR_TOKEN):
        status, _, body = server.post(bearer(token))
        assert status == 200, body
    log = server.log.read_text()
    assert TOKEN_A not in log and TOKEN_B not in log and OPERATOR_TOKEN not in log


def test_over_http_a_session_belongs_to_the_token_that_opened_it(server: HttpServer) -> None:
    status, headers, body = server.post(bearer(TOKEN_A))
    assert status == 200, body
    session = headers["mcp-session-id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    with_session = {"mcp-session-id": session, "mcp-protocol-version": INIT["params"]["protocolVersion"]}  # type: ignore[index]
    for other in (TOKEN_B, OPERATOR_TOKEN):
        status, _, _ = server.post({**bearer(other), **with_session}, ping)
        assert status == 404, other
    status, _, body = server.post({**bearer(TOKEN_A), **with_session}, ping)
    assert status == 200, body


@pytest.mark.parametrize("opt_out", [("--no-auth",), ()], ids=["--no-auth", "MCP_HTTP_NO_AUTH"])
def test_no_auth_with_tenants_refuses_to_start(http_tmp: Path, opt_out: tuple[str, ...]) -> None:
    extra: dict[str, Any] = {} if opt_out else {"MCP_HTTP_NO_AUTH": "1"}
    env = server_env(http_tmp, "http://127.0.0.1:9", **extra)
    out = run_server(http_tmp, env, "--host", "127.0.0.1", *opt_out)
    assert out.returncode == 2
    assert "callagent.toml names tenants" in out.stderr and "a client without a token would act as the operator" in (
        out.stderr
    )
    assert "Uvicorn running" not in out.stderr + out.stdout


async def test_a_waiting_call_whose_profile_is_gone_ends_when_approved(service: CallService) -> None:
    from callagent.calls import CallStatus, EndReason
    from callagent.errors import Refused
    from helpers import make_record

    waiting = make_record(status=CallStatus.awaiting_approval, call_id="gone1", profile="no_longer_there")
    await service.run(service.db.calls.create, waiting)
    with pytest.raises(Refused, match="which is gone"):
        await service.approve("gone1", by="alice")
    ended = await service.get("gone1")
    assert (ended.status, ended.end_reason) == (CallStatus.failed, EndReason.policy_refused)
