"""The bed's calendar MCP server (devstack.calendar): its tools, one calendar a call, its log.

In-process through the MCP SDK's client, then as the bed runs it (`python -m devstack.calendar`
on a free port of 127.0.0.1) through streamable HTTP: with the SDK's client, and with the
MCPServerHTTP of LiveKit Agents that the worker uses.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents import llm as lk_llm
from livekit.agents.llm.mcp import MCPServerHTTP, MCPToolset
from livekit.plugins import openai as lk_openai
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from devstack import calendar, phonelog
from devstack.board import Board
from devstack.calendar import CALLS_LOG, Calendars, create_server, free_slots
from devstack.models import ModelServer
from devstack.scenarios import CALL_ID_HEADER, scenario_for

pytestmark = pytest.mark.anyio

FREE_THIS_WEEK = [
    {"slot_id": "thu-1000", "label": "Thursday at 10:00"},
    {"slot_id": "fri-1500", "label": "Friday at 15:00"},
]


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    data: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == data  # one text part: the same, as JSON
    return data


def error_text(result: Any) -> str:
    assert result.is_error and result.structured_content is None
    return str(result.content[0].text)


async def test_the_tools_are_described_as_a_calendar_would_describe_them() -> None:
    async with Client(create_server()) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"find_slots", "book_slot", "cancel_all_appointments"}
    find, book, cancel = tools["find_slots"], tools["book_slot"], tools["cancel_all_appointments"]
    assert find.input_schema["required"] == ["date_range"]
    assert set(book.input_schema["required"]) == {"slot_id", "name"}
    assert "properties" in cancel.input_schema and not cancel.input_schema.get("required")
    for tool in tools.values():
        assert tool.description and not tool.description.startswith(" ") and "\n    " not in tool.description
        assert "ctx" not in tool.input_schema["properties"]
    assert "free" in (find.description or "") and "agreed" in (book.description or "")
    assert find.annotations and find.annotations.read_only_hint is True
    assert book.annotations and book.annotations.destructive_hint is False and book.annotations.read_only_hint is False
    assert cancel.annotations and cancel.annotations.destructive_hint is True
    assert "cannot be undone" in (cancel.description or "")


async def test_find_book_and_the_errors_of_booking() -> None:
    cals = Calendars()
    async with Client(create_server(cals)) as client:
        found = structured(await client.call_tool("find_slots", {"date_range": "this week"}))
        assert found == {"date_range": "this week", "free_slots": FREE_THIS_WEEK}  # Tuesday 15:00 is taken
        # the days a range names, when it names any
        friday = structured(await client.call_tool("find_slots", {"date_range": "Friday afternoon"}))
        assert friday["free_slots"] == FREE_THIS_WEEK[1:]
        assert structured(await client.call_tool("find_slots", {"date_range": "tuesday"}))["free_slots"] == []

        booked = structured(await client.call_tool("book_slot", {"slot_id": "thu-1000", "name": "Jamie"}))
        assert booked == {"booked": True, "slot_id": "thu-1000", "label": "Thursday at 10:00", "name": "Jamie"}
        after = structured(await client.call_tool("find_slots", {"date_range": "this week"}))
        assert after["free_slots"] == FREE_THIS_WEEK[1:]

        assert "already booked" in error_text(await client.call_tool("book_slot", {"slot_id": "thu-1000", "name": "X"}))
        assert "already booked" in error_text(
            await client.call_tool("book_slot", {"slot_id": "tue-1500", "name": "Jamie"})
        )
        assert "no slot 'sat-0900'" in error_text(
            await client.call_tool("book_slot", {"slot_id": "sat-0900", "name": "Jamie"})
        )
        assert "name" in error_text(await client.call_tool("book_slot", {"slot_id": "fri-1500", "name": "  "}))

        cancelled = structured(await client.call_tool("cancel_all_appointments", {}))
        assert cancelled == {"cancelled": 2, "slot_ids": ["thu-1000", "tue-1500"]}
        assert len(structured(await client.call_tool("find_slots", {"date_range": "this week"}))["free_slots"]) == 3

    tools = [c["tool"] for c in cals.calls]
    assert tools == ["find_slots"] * 3 + ["book_slot", "find_slots"] + ["book_slot"] * 4 + [
        "cancel_all_appointments",
        "find_slots",
    ]
    assert all(c["call"] is None for c in cals.calls)  # in-process: no headers
    first, book_ok, book_taken = cals.calls[0], cals.calls[3], cals.calls[5]
    assert first["arguments"] == {"date_range": "this week"} and first["result"]["free_slots"] == FREE_THIS_WEEK
    assert book_ok["arguments"] == {"slot_id": "thu-1000", "name": "Jamie"} and book_ok["result"]["booked"] is True
    assert "result" not in book_taken and book_taken["error"] == "Thursday at 10:00 is already booked."


def test_free_slots_is_the_week_minus_its_bookings() -> None:
    assert [s.slot_id for s in free_slots({})] == ["tue-1500", "thu-1000", "fri-1500"]
    assert [s.slot_id for s in free_slots({"fri-1500": "x"}, "Thursday or Friday")] == ["thu-1000"]
    assert [s.slot_id for s in free_slots({}, "next Thursdays")] == ["tue-1500", "thu-1000", "fri-1500"]  # no day


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The calendar as the bed starts it: its own process on a free port of 127.0.0.1."""
    port = free_port()
    log = open(tmp_path / "calendar.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.calendar", "--host", "127.0.0.1", "--port", str(port),
         "--log-dir", str(tmp_path / "calendar")],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "calendar.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the calendar did not come up"
                time.sleep(0.05)
        yield calendar.url("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


async def test_over_http_each_call_has_its_own_calendar_and_each_tool_call_is_logged(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert served.startswith("http://127.0.0.1:") and served.endswith("/mcp")

    async def book(call_id: str | None) -> Any:
        headers = {CALL_ID_HEADER: call_id} if call_id else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(served, http_client=http), mode="legacy") as client:
                return await client.call_tool("book_slot", {"slot_id": "thu-1000", "name": "Jamie"})

    # the same slot, booked on two calls: each call's calendar starts the same week
    assert structured(await book("call-a"))["booked"] is True
    assert structured(await book("call-b"))["booked"] is True
    # without a call id each MCP session (the worker has one a call) has its calendar
    assert structured(await book(None))["booked"] is True

    monkeypatch.setenv("DEVSTACK_RUN_DIR", str(tmp_path))
    assert phonelog.calendar_log() == tmp_path / "calendar" / CALLS_LOG
    logged = phonelog.calendar_calls()
    assert [(c["call"], c["tool"]) for c in logged] == [
        ("call-a", "book_slot"),
        ("call-b", "book_slot"),
        (None, "book_slot"),
    ]
    [only_a] = phonelog.calendar_calls("call-a")
    assert only_a["arguments"] == {"slot_id": "thu-1000", "name": "Jamie"}
    assert only_a["result"] == {"booked": True, "slot_id": "thu-1000", "label": "Thursday at 10:00", "name": "Jamie"}
    assert isinstance(only_a["at"], float) and set(only_a) == {"at", "call", "tool", "arguments", "result"}
    assert phonelog.calendar_calls("call-nobody") == []


async def test_livekit_mcp_client_sees_the_allowed_tools_only_and_errors_as_tool_errors(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the worker does: LiveKit's MCPServerHTTP with the operator's allowed tools and the
    call's id in a header. The destructive tool is not listed; a failed booking is a ToolError."""
    server = MCPServerHTTP(
        served, allowed_tools=["find_slots", "book_slot"], headers={CALL_ID_HEADER: "call-lk"}, timeout=10
    )
    await server.initialize()
    try:
        tools = {t.id: t for t in await server.list_tools()}
        assert set(tools) == {"find_slots", "book_slot"}
        out = await tools["find_slots"]({"date_range": "this week"})
        assert "thu-1000" in out and "Thursday at 10:00" in out and "tue-1500" not in out
        assert "booked" in await tools["book_slot"]({"slot_id": "thu-1000", "name": "Jamie"})
        with pytest.raises(lk_llm.ToolError, match="already booked"):
            await tools["book_slot"]({"slot_id": "thu-1000", "name": "Jamie"})
    finally:
        await server.aclose()

    monkeypatch.setenv("DEVSTACK_RUN_DIR", str(tmp_path))
    assert [(c["tool"], "error" in c) for c in phonelog.calendar_calls("call-lk")] == [
        ("find_slots", False),
        ("book_slot", False),
        ("book_slot", True),
    ]
    assert not any(c["tool"] == "cancel_all_appointments" for c in phonelog.calendar_calls())


async def test_an_agent_session_books_through_the_calendar_with_the_scripted_model(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool loop as the worker runs it, without a room: the bed's scripted model calls
    find_slots and book_slot of an MCPToolset on the calendar (the operator's allowed tools
    only), and speaks what its script says once each output is in."""
    sc = scenario_for("+14155550117")
    assert sc is not None
    _, not_tuesday, book_it, thanks = sc.lines
    assert not_tuesday.reply and book_it.reply and thanks.reply
    models = ModelServer(board=Board(), host="127.0.0.1", port=0, log_dir=tmp_path / "models")
    await models.start()
    headers = {CALL_ID_HEADER: "call-session"}
    client = openai.AsyncClient(base_url=models.base_url, api_key="sk-test", max_retries=0, default_headers=headers)
    calendar_tools = MCPToolset(
        id="calendar",
        mcp_server=MCPServerHTTP(served, allowed_tools=["find_slots", "book_slot"], headers=headers, timeout=10),
    )
    ended: list[bool] = []

    class Caller(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You are a polite caller.", tools=[calendar_tools])

        @function_tool
        async def end_call(self, ctx: RunContext) -> str:
            """End the call."""
            ended.append(True)
            return "call ending"

    try:
        async with AgentSession(llm=lk_openai.LLM(model="gpt-4.1", client=client)) as session:
            await session.start(Caller())
            for line in (not_tuesday, book_it, thanks):
                turn = await session.run(user_input=line.text)
                assert [e.type for e in turn.events] == ["function_call", "function_call_output", "message"]
                assert turn.events[-1].item.content == [line.reply.after_tool]  # type: ignore[union-attr]
    finally:
        await calendar_tools.aclose()
        await client.close()
        await models.stop()
    assert ended == [True]

    monkeypatch.setenv("DEVSTACK_RUN_DIR", str(tmp_path))
    calls = phonelog.calendar_calls("call-session")
    assert [(c["tool"], c["arguments"]) for c in calls] == [
        ("find_slots", {"date_range": "this week"}),
        ("book_slot", {"slot_id": "thu-1000", "name": "Jamie"}),
    ]
    assert calls[1]["result"]["booked"] is True
    assert phonelog.offered_tools("call-session") == {"find_slots", "book_slot", "end_call"}
    outputs = phonelog.tool_outputs("call-session")
    assert [o["name"] for o in outputs] == ["find_slots", "book_slot", "end_call"]
    assert "thu-1000" in outputs[0]["output"] and not any(o["failed"] for o in outputs)
