"""The MCP server, driven with the MCP client SDK: over stdio (server.py in a subprocess, as an
MCP client spawns it) and in-process (the SDK's in-memory client), against a real SQLite store.

No LiveKit runs here, and none is mocked: LIVEKIT_URL points at a closed port on 127.0.0.1, so
the one path that reaches LiveKit is the "LiveKit unreachable" path, taken for real.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents

from callagent.calls import CallRecord, CallStatus, EndReason, Outcome, TranscriptLine, utcnow
from callagent.settings import Settings
from callagent.store import Database
from callagent.tools import create_server
from helpers import make_record, text

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"make_phone_call", "wait_for_call", "get_call", "list_calls", "end_call", "dial_policy"}
SECRET = "s3cr3t-value-that-must-never-be-logged"
NUMBER = "+14155550100"

pytestmark = pytest.mark.anyio


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def livekit_env(closed_port: int) -> dict[str, str]:
    return {
        "LIVEKIT_URL": f"http://127.0.0.1:{closed_port}",
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": SECRET,
        "SIP_OUTBOUND_TRUNK_ID": "ST_test",
        "DIAL_QUIET_HOURS": "off",  # these tests run at any hour; quiet hours are tested in test_policy_mcp.py
    }


@pytest.fixture
def settings(db_url: str, livekit_env: dict[str, str]) -> Settings:
    return Settings(_env_file=None, CALLAGENT_DB_URL=db_url, CALLAGENT_AGENT_JOIN_TIMEOUT_S=1, **livekit_env)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(create_server(settings)) as c:
        yield c


# -- over stdio, as an MCP client spawns it -------------------------------------------------------


async def test_stdio_server_lists_tools_and_fails_cleanly_when_livekit_is_unreachable(
    tmp_path: Path, db_url: str, livekit_env: dict[str, str]
) -> None:
    env = {**os.environ, **livekit_env, "CALLAGENT_DB_URL": db_url, "CALLAGENT_AGENT_JOIN_TIMEOUT_S": "1"}
    params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "server.py")], env=env, cwd=tmp_path)
    stderr_path = tmp_path / "server-stderr.log"
    with stderr_path.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            listed = await client.list_tools()
            assert {t.name for t in listed.tools} == TOOLS

            started = time.monotonic()
            result = await client.call_tool("make_phone_call", {"phone_number": "+1 (415) 555-0100"})
            elapsed = time.monotonic() - started
            assert result.is_error, text(result)
            assert "LIVEKIT_URL" in text(result)
            assert elapsed < 20, f"make_phone_call took {elapsed:.1f} s"

            page = await client.call_tool("list_calls", {})
            assert not page.is_error, text(page)
            calls = page.structured_content["calls"]
            assert len(calls) == 1
            assert calls[0]["status"] == "failed"
            assert calls[0]["phone_number"] == NUMBER
            assert "LIVEKIT_URL" in calls[0]["ended_reason"]

            got = await client.call_tool("get_call", {"call_id": calls[0]["call_id"]})
            assert got.structured_content["status"] == "failed"

    log = stderr_path.read_text()
    assert SECRET not in log
    assert NUMBER not in log and "4155550100" not in log  # numbers are masked in logs
    assert "0100" in log  # ... but the call was logged (masked)


def test_server_module_imports_no_voice_stack_or_database_up_front() -> None:
    probe = (
        "import sys, asyncio\n"
        "sys.argv = ['server.py']\n"
        "import server\n"
        "from callagent.tools import create_server\n"
        "tools = asyncio.run(create_server().list_tools())\n"
        "heavy = ('livekit', 'onnxruntime', 'sqlalchemy', 'aiohttp', 'callagent.dialer', 'callagent.agent')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- in process --------------------------------------------------------------------------------------


async def test_tools_are_listed_with_annotations_and_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS

    make = tools["make_phone_call"]
    assert make.annotations.read_only_hint is False
    assert make.annotations.destructive_hint is True  # a call to a person cannot be taken back
    assert make.annotations.idempotent_hint is False
    assert make.annotations.open_world_hint is True
    assert make.input_schema["required"] == ["phone_number"]
    assert set(make.input_schema["properties"]) == {
        "phone_number",
        "goal",
        "context",
        "greeting",
        "dtmf",
        "result_schema",
        "max_hold_s",
        "ring_timeout_s",
        "max_duration_s",
        "idempotency_key",
        "confirmation_token",
        "transfer_to",
        "transfer_when",
        "transfer_mode",
        "record",
        "reasoning",
        "profile",
        "caller_id",
    }
    assert "wait_for_call" in make.description

    end = tools["end_call"]
    assert end.annotations.read_only_hint is False
    assert end.annotations.destructive_hint is True
    assert end.annotations.open_world_hint is True
    assert end.input_schema["required"] == ["call_id"]

    for name in ("wait_for_call", "get_call", "list_calls"):
        assert tools[name].annotations.read_only_hint is True, name
        assert tools[name].annotations.open_world_hint is False, name
    assert tools["wait_for_call"].input_schema["properties"]["timeout_s"]["default"] == 30
    assert set(tools["wait_for_call"].input_schema["properties"]) == {"call_id", "timeout_s", "last_status"}
    assert tools["wait_for_call"].input_schema["required"] == ["call_id"]
    assert set(tools["list_calls"].input_schema["properties"]) == {
        "status",
        "end_reason",
        "phone_number",
        "limit",
        "cursor",
    }
    assert "required" not in tools["list_calls"].input_schema

    # Structured output: every tool publishes the schema of what it returns.
    for name in ("make_phone_call", "wait_for_call", "get_call", "end_call"):
        props = tools[name].output_schema["properties"]
        assert {"call_id", "status", "transcript", "summary", "outcome", "ended_reason"} <= set(props), name
    assert set(tools["list_calls"].output_schema["properties"]) == {"calls", "next_cursor"}
    assert "note" in tools["end_call"].output_schema["properties"]

    templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["calls://{call_id}", "calls://{call_id}/recording"]
    assert templates[1].mime_type == "audio/ogg"


async def test_invalid_number_is_an_error_naming_the_problem(client: Client, store: Database) -> None:
    result = await client.call_tool("make_phone_call", {"phone_number": "call mom"})
    assert result.is_error
    assert "'call mom'" in text(result) and "phone number" in text(result)

    result = await client.call_tool("make_phone_call", {"phone_number": "12"})
    assert result.is_error
    assert "too short" in text(result) and "CALLAGENT_DEFAULT_REGION" in text(result)
    assert store.calls.page()[0] == []  # nothing recorded


async def test_missing_livekit_settings_are_named(db_url: str, store: Database) -> None:
    settings = Settings(
        _env_file=None,
        CALLAGENT_DB_URL=db_url,
        LIVEKIT_URL="http://127.0.0.1:1",
        LIVEKIT_API_KEY=None,
        LIVEKIT_API_SECRET=None,
        SIP_OUTBOUND_TRUNK_ID=None,
    )
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("make_phone_call", {"phone_number": NUMBER})
    assert result.is_error
    message = text(result)
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "SIP_OUTBOUND_TRUNK_ID"):
        assert name in message
    assert "LIVEKIT_URL" not in message  # it is set
    assert store.calls.page()[0] == []


async def test_livekit_unreachable_fails_the_call_without_leaving_it_dialing(client: Client, store: Database) -> None:
    started = time.monotonic()
    result = await client.call_tool(
        "make_phone_call", {"phone_number": "4155550100", "goal": "Book a table", "idempotency_key": "k-1"}
    )
    assert time.monotonic() - started < 20
    assert result.is_error
    assert "LIVEKIT_URL" in text(result)
    assert SECRET not in text(result)

    calls, _ = store.calls.page()
    assert len(calls) == 1
    record = calls[0]
    assert record.status == CallStatus.failed
    assert "LIVEKIT_URL" in (record.ended_reason or "")
    assert record.ended_at is not None
    assert record.call_id in text(result)

    got = await client.call_tool("get_call", {"call_id": record.call_id})
    assert not got.is_error
    assert got.structured_content["status"] == "failed"
    assert got.structured_content["goal"] == "Book a table"
    for status in ("queued", "dialing", "ringing", "in_progress"):
        page = await client.call_tool("list_calls", {"status": status})
        assert page.structured_content["calls"] == [], status

    # A retry with the same idempotency key returns that call; it is not dialed again.
    again = await client.call_tool("make_phone_call", {"phone_number": NUMBER, "idempotency_key": "k-1"})
    assert not again.is_error, text(again)
    assert again.structured_content["call_id"] == record.call_id
    assert "not dialed again" in text(again)
    assert len(store.calls.page()[0]) == 1


async def test_unresponsive_livekit_is_abandoned_in_bounded_time(
    db_url: str, livekit_env: dict[str, str], store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LiveKit that accepts connections and never answers: the call is given up, not left dialing."""
    import callagent.service as service_module

    monkeypatch.setattr(service_module, "PLACE_DEADLINE_S", 1.0)

    async def silent(reader: Any, writer: Any) -> None:
        await reader.read()  # until the client goes away
        writer.close()

    import asyncio

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    settings = Settings(
        _env_file=None, CALLAGENT_DB_URL=db_url, **{**livekit_env, "LIVEKIT_URL": f"http://127.0.0.1:{port}"}
    )
    try:
        async with Client(create_server(settings)) as client:
            started = time.monotonic()
            result = await client.call_tool("make_phone_call", {"phone_number": NUMBER})
            elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert result.is_error
    assert "took longer than 1 s" in text(result) and f"LIVEKIT_URL=http://127.0.0.1:{port}" in text(result)
    assert elapsed < 30
    (record,), _ = store.calls.page()
    assert record.status == CallStatus.failed
    assert "took longer than 1 s" in record.ended_reason


async def test_idempotency_key_returns_the_existing_call(client: Client, store: Database) -> None:
    existing = store.calls.create(make_record(CallStatus.ringing, idempotency_key="order-42"))
    result = await client.call_tool(
        "make_phone_call", {"phone_number": "+1 415-555-0100", "idempotency_key": "order-42"}
    )
    assert not result.is_error, text(result)
    assert result.structured_content["call_id"] == existing.call_id
    assert result.structured_content["status"] == "ringing"

    other = await client.call_tool("make_phone_call", {"phone_number": "+14155550101", "idempotency_key": "order-42"})
    assert other.is_error
    assert "order-42" in text(other) and "another number" in text(other)
    assert len(store.calls.page()[0]) == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"ring_timeout_s": 4}, "ring_timeout_s must be between 5 and 120"),
        ({"ring_timeout_s": 121}, "ring_timeout_s must be between 5 and 120"),
        ({"max_duration_s": 0}, "rule 'max_duration' (setting CALLAGENT_MAX_DURATION_CAP_S)"),
        ({"max_duration_s": 1801}, "between 1 and 1800 seconds, not 1801"),
        ({"goal": "x" * 4001}, "rule 'text_too_long'"),
        # Only a profile's own caller IDs (callagent.toml), and the default profile has none.
        ({"caller_id": "+14155550199"}, "rule 'caller_id' (setting callagent.toml [profiles.default] caller_ids)"),
    ],
)
async def test_call_limits_are_validated(
    client: Client, store: Database, arguments: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("make_phone_call", {"phone_number": NUMBER, **arguments})
    assert result.is_error
    assert expected in text(result)
    assert store.calls.page()[0] == []


async def test_get_call_unknown_id_is_an_error(client: Client) -> None:
    result = await client.call_tool("get_call", {"call_id": "nosuchcall"})
    assert result.is_error
    assert "'nosuchcall'" in text(result)


async def test_get_call_returns_record_and_readable_text(client: Client, store: Database) -> None:
    record = store.calls.create(make_record(CallStatus.completed, summary="They open at nine.", ended_reason="done"))
    result = await client.call_tool("get_call", {"call_id": record.call_id})
    assert not result.is_error
    assert CallRecord.model_validate(result.structured_content) == record
    assert "They open at nine." in text(result)
    assert NUMBER not in text(result)  # the text masks the number


@pytest.mark.parametrize("timeout_s", [0, -1, 50.5, 600])
async def test_wait_for_call_timeout_bounds(client: Client, store: Database, timeout_s: float) -> None:
    record = store.calls.create(make_record(CallStatus.ringing))
    result = await client.call_tool("wait_for_call", {"call_id": record.call_id, "timeout_s": timeout_s})
    assert result.is_error
    assert "timeout_s must be more than 0 and at most 50" in text(result)


async def test_wait_for_call_returns_on_status_change_with_progress(client: Client, store: Database) -> None:
    record = store.calls.create(make_record(CallStatus.ringing))
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def answer_later() -> None:
        await anyio.sleep(1.5)
        store.calls.transition(record.call_id, CallStatus.in_progress)

    async with anyio.create_task_group() as tg:
        tg.start_soon(answer_later)
        started = time.monotonic()
        result = await client.call_tool(
            "wait_for_call", {"call_id": record.call_id, "timeout_s": 20}, progress_callback=on_progress
        )
        elapsed = time.monotonic() - started
    assert not result.is_error, text(result)
    assert result.structured_content["status"] == "in_progress"
    assert 1.4 < elapsed < 5
    assert progress, "no progress notifications"
    assert all(total == 20 for _, total, _ in progress)
    assert all(message and message.startswith("ringing (") for _, _, message in progress)
    values = [value for value, _, _ in progress]
    assert values == sorted(values)


async def test_wait_for_call_times_out_unchanged_and_returns_at_once_when_ended(
    client: Client, store: Database
) -> None:
    live = store.calls.create(make_record(CallStatus.in_progress, heartbeat_at=utcnow()))
    started = time.monotonic()
    result = await client.call_tool("wait_for_call", {"call_id": live.call_id, "timeout_s": 1})
    elapsed = time.monotonic() - started
    assert not result.is_error
    assert result.structured_content["status"] == "in_progress"
    assert "Still in_progress" in text(result)
    assert 0.9 < elapsed < 4

    ended = store.calls.create(make_record(CallStatus.busy, sip_status_code=486, ended_reason="the line was busy"))
    started = time.monotonic()
    result = await client.call_tool("wait_for_call", {"call_id": ended.call_id, "timeout_s": 30})
    assert time.monotonic() - started < 2
    assert result.structured_content["status"] == "busy"
    assert result.structured_content["sip_status_code"] == 486

    # A change that happened between two waits is not missed: the caller says what it last saw.
    moved = store.calls.create(make_record(CallStatus.in_progress, heartbeat_at=utcnow()))
    started = time.monotonic()
    result = await client.call_tool(
        "wait_for_call", {"call_id": moved.call_id, "timeout_s": 30, "last_status": "ringing"}
    )
    assert time.monotonic() - started < 2
    assert result.structured_content["status"] == "in_progress"
    bad = await client.call_tool("wait_for_call", {"call_id": moved.call_id, "last_status": "ringed"})
    assert bad.is_error and "last_status" in text(bad)

    missing = await client.call_tool("wait_for_call", {"call_id": "nosuchcall", "timeout_s": 1})
    assert missing.is_error and "'nosuchcall'" in text(missing)


async def test_a_call_whose_worker_went_quiet_is_failed(client: Client, store: Database) -> None:
    long_ago = utcnow() - timedelta(minutes=10)
    record = store.calls.create(
        make_record(CallStatus.in_progress, created_at=long_ago, heartbeat_at=long_ago, answered_at=long_ago)
    )
    result = await client.call_tool("get_call", {"call_id": record.call_id})
    assert result.structured_content["status"] == "failed"
    assert "worker stopped responding" in result.structured_content["ended_reason"]


async def test_list_calls_pages_with_a_cursor_and_filters(client: Client, store: Database) -> None:
    t0 = utcnow() - timedelta(minutes=5)
    created = []
    for i in range(5):
        status = CallStatus.completed if i % 2 == 0 else CallStatus.no_answer
        number = NUMBER if i < 3 else "+14155550105"
        created.append(
            store.calls.create(make_record(status, phone_number=number, created_at=t0 + timedelta(seconds=i)))
        )
    newest_first = [r.call_id for r in reversed(created)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        args: dict[str, Any] = {"limit": 2}
        if cursor:
            args["cursor"] = cursor
        result = await client.call_tool("list_calls", args)
        assert not result.is_error, text(result)
        page = result.structured_content
        seen += [c["call_id"] for c in page["calls"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor in text(result)
    assert seen == newest_first
    assert pages == 3

    completed = await client.call_tool("list_calls", {"status": "completed"})
    assert [c["call_id"] for c in completed.structured_content["calls"]] == [
        r.call_id for r in reversed(created) if r.status == CallStatus.completed
    ]
    by_number = await client.call_tool("list_calls", {"phone_number": "(415) 555-0105"})
    assert [c["call_id"] for c in by_number.structured_content["calls"]] == newest_first[:2]
    assert "+*******0105" in text(by_number)

    bad_status = await client.call_tool("list_calls", {"status": "ringing-ish"})
    assert bad_status.is_error and "no_answer" in text(bad_status)
    bad_cursor = await client.call_tool("list_calls", {"cursor": "not-a-cursor"})
    assert bad_cursor.is_error and "cursor" in text(bad_cursor)
    bad_limit = await client.call_tool("list_calls", {"limit": 0})
    assert bad_limit.is_error and "limit" in text(bad_limit)


async def test_end_call_on_an_ended_call_changes_nothing(client: Client, store: Database) -> None:
    record = store.calls.create(make_record(CallStatus.completed, ended_reason="the agent ended the call"))
    result = await client.call_tool("end_call", {"call_id": record.call_id})
    assert not result.is_error, text(result)
    assert result.structured_content["status"] == "completed"
    assert result.structured_content["ended_reason"] == "the agent ended the call"
    assert "already ended" in result.structured_content["note"]
    assert "already ended" in text(result)
    assert store.calls.get(record.call_id) == record

    missing = await client.call_tool("end_call", {"call_id": "nosuchcall"})
    assert missing.is_error and "'nosuchcall'" in text(missing)


async def test_end_call_with_livekit_unreachable_is_an_error_and_the_call_stays_live(
    client: Client, store: Database
) -> None:
    record = store.calls.create(make_record(CallStatus.queued))
    result = await client.call_tool("end_call", {"call_id": record.call_id})
    assert result.is_error, text(result)
    assert "cannot reach LiveKit" in text(result) and "may still be up" in text(result)
    stored = store.calls.get(record.call_id)
    assert stored.status == CallStatus.queued and stored.ended_at is None
    assert stored.hangup_reason == "ended by the MCP client"  # what the worker acts on


async def test_call_resource(client: Client, store: Database) -> None:
    record = store.calls.create(make_record(CallStatus.voicemail, summary="Left a message."))
    result = await client.read_resource(f"calls://{record.call_id}")
    (content,) = result.contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "application/json"
    data = json.loads(content.text)
    assert data["call_id"] == record.call_id
    assert data["status"] == "voicemail"
    assert data["summary"] == "Left a message."

    with pytest.raises(MCPError, match="nosuchcall"):
        await client.read_resource("calls://nosuchcall")


async def test_legacy_handshake_in_process(settings: Settings, store: Database) -> None:
    """The initialize handshake (what today's desktop clients do), in process."""
    record = store.calls.create(make_record(CallStatus.ringing))
    async with Client(create_server(settings), mode="legacy") as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        result = await client.call_tool("get_call", {"call_id": record.call_id})
        assert result.structured_content["status"] == "ringing"
        assert re.search(rf"Call {record.call_id} to \+\*+0100: ringing", text(result))


# -- test_mcp_client.py, the operator's and CI's client -------------------------------------------


def run_client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "test_mcp_client.py"), *args],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def client_env(db_url: str, livekit_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **livekit_env, "CALLAGENT_DB_URL": db_url, "CALLAGENT_AGENT_JOIN_TIMEOUT_S": "1"}


def test_client_script_lists_tools(client_env: dict[str, str]) -> None:
    out = run_client(client_env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert {line.split()[0] for line in lines} == TOOLS
    assert any(line.startswith("make_phone_call") and "phone call" in line for line in lines)


def test_client_script_follows_a_call_to_its_end(client_env: dict[str, str], store: Database) -> None:
    """`call` with the idempotency key of a ringing call: the server returns that call instead of
    dialing, and the client follows it through wait_for_call, printing each status change, until
    it ends; the last stdout line is the final record."""
    record = store.calls.create(make_record(CallStatus.ringing, idempotency_key="ci-1"))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "test_mcp_client.py"), "call", NUMBER, "--idempotency-key", "ci-1", "--json"],
        env=client_env,
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killer = threading.Timer(120, proc.kill)
    killer.start()
    try:
        status_lines = []

        def wait_for_line(pattern: str) -> None:
            while line := proc.stderr.readline():
                status_lines.append(line)
                if re.search(pattern, line):
                    return
            raise AssertionError(f"the client ended before printing {pattern!r}: {status_lines}")

        wait_for_line(r"^\[\d\d:\d\d:\d\d\] ringing")  # the call as make_phone_call returned it
        store.calls.transition(record.call_id, CallStatus.in_progress)
        wait_for_line(r"^\[\d\d:\d\d:\d\d\] in_progress")
        time.sleep(1.2)
        store.calls.update(
            record.call_id,
            transcript=[
                TranscriptLine(role="agent", text="Hi, this is an AI assistant calling for Test Operator."),
                TranscriptLine(role="callee", text="We open at nine."),
            ],
            summary="They open at nine.",
            outcome=Outcome(goal_achieved="yes", key_facts=["opens at 9"]),
        )
        store.calls.transition(
            record.call_id,
            CallStatus.completed,
            ended_reason="the agent ended the call",
            end_reason=EndReason.agent_ended,
        )
        wait_for_line(r"^\[\d\d:\d\d:\d\d\] completed \(the agent ended the call\)")
        stdout, _ = proc.communicate(timeout=60)
    finally:
        killer.cancel()
        proc.kill()
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "".join(status_lines))
    assert out.returncode == 0, out.stderr
    final = json.loads(out.stdout.strip().splitlines()[-1])
    assert final["call_id"] == record.call_id
    assert final["status"] == "completed"
    assert final["ended_reason"] == "the agent ended the call"
    assert final["sip_status_code"] is None
    assert [(t["role"], t["text"]) for t in final["transcript"]] == [
        ("agent", "Hi, this is an AI assistant calling for Test Operator."),
        ("callee", "We open at nine."),
    ]
    assert final["summary"] == "They open at nine."
    assert final["outcome"]["goal_achieved"] == "yes"
    timings = final["timings"]
    assert timings["created_at"] and timings["answered_at"] and timings["ended_at"]
    assert 1.0 < timings["duration_s"] < 10
    assert "Callee: We open at nine." in out.stdout


def test_client_script_reports_tool_errors(client_env: dict[str, str], store: Database) -> None:
    out = run_client(client_env, "call", NUMBER, "--json")
    assert out.returncode == 1
    assert "LIVEKIT_URL" in out.stderr
    assert out.stdout.strip() == ""
    (record,), _ = store.calls.page()
    assert record.status == CallStatus.failed

    out = run_client(client_env, "end", record.call_id, "--json")
    assert out.returncode == 0, out.stderr
    assert "already ended" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1])["status"] == "failed"


async def test_an_unreachable_call_store_is_named_without_its_password(
    closed_port: int, livekit_env: dict[str, str]
) -> None:
    url = f"postgresql://callagent:hunter2@127.0.0.1:{closed_port}/calls"
    settings = Settings(_env_file=None, CALLAGENT_DB_URL=url, **livekit_env)
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("get_call", {"call_id": "abc"})
    assert result.is_error
    assert f"CALLAGENT_DB_URL=postgresql://callagent:***@127.0.0.1:{closed_port}/calls" in text(result)
    assert "hunter2" not in text(result)
