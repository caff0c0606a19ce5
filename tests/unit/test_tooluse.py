"""Tools during the call (callagent.agent.tooluse, callagent.toml [tools]): what is offered, when
a side-effecting tool may run, and what the record keeps. The bed test (tests/bed/test_tools_bed.py)
holds a real call with the calendar server."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from livekit.agents import llm
from livekit.agents.llm.tool_context import get_raw_function_info
from mcp.server.mcpserver import MCPServer

from callagent.agent import tooluse
from callagent.agent.tooluse import NOT_DONE, ToolBox, callee_agreed, resolve_headers
from callagent.calls import CallRequest, ToolServer, ToolUse
from callagent.profiles import ProfilesProblem, load
from callagent.settings import Settings

# Settings built here must not take the bed's DIAL_* and CALLAGENT_* variables.
pytestmark = pytest.mark.usefixtures("no_operator_env")

# -- did the callee agree? ----------------------------------------------------------------------

ASKED = ("agent", "Thursday at 10 is free. Shall I book it for you?")


@pytest.mark.parametrize(
    ("answer", "language"),
    [
        ("Yes, Thursday at ten works, please book it.", "en"),
        ("Sure.", "en"),
        ("okay go ahead", "en"),
        ("Sí, perfecto, resérvelo.", "es"),
        ("Oui, d'accord.", "fr"),
        ("Ja, gerne.", "de"),
        ("हाँ, ठीक है।", "hi"),
        ("சரி, பதிவு செய்யுங்கள்.", "ta"),
        ("Yes please", "es"),  # English is understood on every call
    ],
)
def test_an_answer_to_the_agents_question_agrees(answer: str, language: str) -> None:
    assert callee_agreed([("callee", "Hello?"), ASKED, ("callee", answer)], language)


@pytest.mark.parametrize(
    "turns",
    [
        [ASKED, ("callee", "No, not Thursday.")],
        [ASKED, ("callee", "Yes, but no, wait, not Thursday.")],
        [ASKED, ("callee", "Hmm, what else is there?")],
        [("agent", "Thursday at 10 is free."), ("callee", "Yes.")],  # the agent asked nothing
        [ASKED],  # the callee has not answered yet
        [("callee", "Yes, book anything you like.")],  # a yes to nothing asked
        [ASKED, ("callee", "Yes."), ("agent", "What name shall I put?")],  # the yes is no longer the last answer
    ],
)
def test_anything_else_is_no_agreement(turns: list[tuple[str, str]]) -> None:
    assert not callee_agreed(turns, "en")


def test_a_spanish_no_is_a_no() -> None:
    assert not callee_agreed([("agent", "¿Le reservo el jueves a las diez?"), ("callee", "No, gracias.")], "es")


# -- headers -------------------------------------------------------------------------------------


def test_header_secrets_come_from_the_workers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAL_TOKEN", "s3cr3t")
    assert resolve_headers({"Authorization": "Bearer ${CAL_TOKEN}", "X-App": "callagent"}) == {
        "Authorization": "Bearer s3cr3t",
        "X-App": "callagent",
    }
    monkeypatch.delenv("CAL_TOKEN")
    with pytest.raises(KeyError, match="CAL_TOKEN"):
        resolve_headers({"Authorization": "Bearer ${CAL_TOKEN}"})


# -- the configuration ---------------------------------------------------------------------------


def settings_with(tmp_path: Path, body: str) -> Settings:
    path = tmp_path / "callagent.toml"
    path.write_text(body, encoding="utf-8")
    return Settings(_env_file=None, CALLAGENT_PROFILES_FILE=str(path))  # type: ignore[call-arg]


CALENDAR = """
[tools.calendar]
url = "http://127.0.0.1:8790/mcp"
headers = { Authorization = "Bearer ${CAL_TOKEN}" }
allow = ["find_slots", "book_slot"]
side_effects = ["book_slot"]
timeout_s = 5

[profiles.clinic]
tools = ["calendar"]
"""


def test_a_profiles_tools_travel_in_the_request_without_secrets(tmp_path: Path) -> None:
    profiles = load(settings_with(tmp_path, CALENDAR))
    clinic = profiles.profiles["clinic"]
    (server,) = clinic.tools
    assert (server.name, server.allow, server.side_effects, server.timeout_s) == (
        "calendar",
        ["find_slots", "book_slot"],
        ["book_slot"],
        5.0,
    )
    request = clinic.apply(
        CallRequest(
            call_id="c1", phone_number="+14155550117", goal="g", caller_name="x", max_duration_s=60, ring_timeout_s=20
        )
    )
    assert request.tools == [server] and "${CAL_TOKEN}" in request.to_metadata()
    assert profiles.default.tools == ()  # the default profile uses no tools unless the file says so
    assert clinic.listing()["tools"] == {"calendar": ["find_slots", "book_slot"]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[tools.cal]\nurl = "http://127.0.0.1:1/mcp"\n', "[tools.cal] allow: list the tools"),
        ('[tools.cal]\nurl = "http://127.0.0.1:1/mcp"\nallow = ["a"]\nside_effects = ["b"]\n', "'b' is not in allow"),
        ('[tools.cal]\nurl = "http://x/mcp"\ncommand = ["x"]\nallow = ["a"]\n', "either url"),
        ('[tools.cal]\nurl = "ftp://x/mcp"\nallow = ["a"]\n', "not an http"),
        (
            '[tools.cal]\nurl = "http://x/mcp"\nallow = ["a"]\nheaders = { Authorization = "Bearer abc" }\n',
            "must come from the environment",
        ),
        ('[profiles.p]\ntools = ["nope"]\n', "no [tools.nope] section"),
    ],
)
def test_a_bad_tool_server_stops_the_start(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(ProfilesProblem, match=None) as info:
        load(settings_with(tmp_path, body))
    assert expected in str(info.value)


# -- a real MCP server on loopback ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A small MCP server (streamable HTTP on 127.0.0.1) with a lookup, an action, a slow tool
    and one nobody allows; and the calls it got."""
    calls: list[tuple[str, dict[str, Any]]] = []
    server = MCPServer("shop")

    @server.tool()
    def find_order(order_id: str) -> str:
        """Look up an order."""
        calls.append(("find_order", {"order_id": order_id}))
        return f"order {order_id}: shipped, call +14155550100 with questions"

    @server.tool()
    def cancel_order(order_id: str) -> str:
        """Cancel an order."""
        calls.append(("cancel_order", {"order_id": order_id}))
        return "cancelled"

    @server.tool()
    async def slow_lookup() -> str:
        """Takes long."""
        calls.append(("slow_lookup", {}))
        await asyncio.sleep(5)
        return "late"

    @server.tool()
    def delete_everything() -> str:
        """Never allowed."""
        calls.append(("delete_everything", {}))
        return "gone"

    port = _free_port()
    config = uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp", calls
    finally:
        uv.should_exit = True
        thread.join(5)


class FakeSession:
    """What a tool sees of the AgentSession: the history and say()."""

    def __init__(self, turns: list[tuple[str, str]]) -> None:
        self.said: list[str] = []
        self.history = llm.ChatContext()
        for role, text in turns:
            self.history.add_message(role="assistant" if role == "agent" else "user", content=text)

    def say(self, text: str, **_: Any) -> None:
        self.said.append(text)


class FakeCall:
    def __init__(self, request: CallRequest) -> None:
        self.request = request
        self.noted: list[ToolUse] = []

    def note_tool(self, use: ToolUse) -> None:
        self.noted.append(use)


class Context:
    def __init__(self, session: FakeSession, call_id: str = "fc1") -> None:
        self.session = session
        self.function_call = llm.FunctionCall(call_id=call_id, name="x", arguments="{}")


def request_with(url: str, **server: Any) -> CallRequest:
    tools = ToolServer(
        name="shop",
        url=url,
        **{
            "allow": ["find_order", "cancel_order", "slow_lookup"],
            "side_effects": ["cancel_order"],
            "timeout_s": 1.0,
            **server,
        },
    )
    return CallRequest(
        call_id="c1",
        phone_number="+14155550117",
        goal="g",
        caller_name="x",
        max_duration_s=60,
        ring_timeout_s=20,
        tools=[tools],
        max_tool_actions=1,
    )


def by_name(tools: list[Any]) -> dict[str, Any]:
    return {get_raw_function_info(t).name: t for t in tools}


@pytest.mark.anyio
async def test_only_allowed_tools_are_offered_and_each_use_goes_on_the_record(shop: Any) -> None:
    url, calls = shop
    call = FakeCall(request_with(url))
    box = ToolBox(call)  # type: ignore[arg-type]  # the parts of a CallJob it uses
    try:
        tools = by_name(await box.open())
        assert set(tools) == {"find_order", "cancel_order", "slow_lookup"}  # never delete_everything
        session = FakeSession([("callee", "Hello?")])
        out = await tools["find_order"](raw_arguments={"order_id": "A7"}, context=Context(session, "f1"))
        assert "shipped" in out and session.said == ["One moment, let me check."]
        (use,) = call.noted
        assert (use.server, use.tool, use.outcome, use.side_effect) == ("shop", "find_order", "ok", False)
        assert use.arguments == {"order_id": "A7"} and "+14155550100" not in (use.result or "")
        assert box.transcript_line(
            "f1",
        ) is not None and "shop.find_order" in (box.transcript_line("f1") or "")
    finally:
        await box.aclose()
    assert ("delete_everything", {}) not in calls


@pytest.mark.anyio
async def test_a_side_effect_needs_the_callees_yes_and_counts_toward_the_limit(shop: Any) -> None:
    url, calls = shop
    call = FakeCall(request_with(url))
    box = ToolBox(call)  # type: ignore[arg-type]
    try:
        cancel = by_name(await box.open())["cancel_order"]
        before = len(calls)
        unasked = await cancel(
            raw_arguments={"order_id": "A7"}, context=Context(FakeSession([("callee", "Cancel it.")]))
        )
        assert unasked.startswith(NOT_DONE) and len(calls) == before  # never reached the server
        assert call.noted[-1].outcome == "refused"
        agreed = FakeSession([("agent", "Shall I cancel order A7?"), ("callee", "Yes, please.")])
        assert await cancel(raw_arguments={"order_id": "A7"}, context=Context(agreed)) == "cancelled"
        assert calls[-1] == ("cancel_order", {"order_id": "A7"})
        again = await cancel(raw_arguments={"order_id": "A8"}, context=Context(agreed))  # max_tool_actions=1
        assert again.startswith(NOT_DONE) and "CALLAGENT_MAX_TOOL_ACTIONS" in again
        assert calls[-1] == ("cancel_order", {"order_id": "A7"})
    finally:
        await box.aclose()


@pytest.mark.anyio
async def test_a_slow_tool_times_out_and_says_so(shop: Any) -> None:
    url, _ = shop
    call = FakeCall(request_with(url))
    box = ToolBox(call)  # type: ignore[arg-type]
    try:
        slow = by_name(await box.open())["slow_lookup"]
        started = time.monotonic()
        out = await slow(raw_arguments={}, context=Context(FakeSession([])))
        assert out.startswith(NOT_DONE) and "did not answer within 1 s" in out
        assert time.monotonic() - started < 4
        assert call.noted[-1].outcome == "failed"
    finally:
        await box.aclose()


@pytest.mark.anyio
async def test_a_server_that_cannot_be_reached_still_answers_not_done() -> None:
    call = FakeCall(request_with(f"http://127.0.0.1:{_free_port()}/mcp"))
    box = ToolBox(call)  # type: ignore[arg-type]
    try:
        tools = by_name(await box.open())
        assert set(tools) == {"find_order", "cancel_order", "slow_lookup"}  # stand-ins, offered all the same
        out = await tools["find_order"](raw_arguments={"order_id": "A7"}, context=Context(FakeSession([])))
        assert out.startswith(NOT_DONE) and "could not be reached" in out
        assert call.noted[-1].outcome == "failed" and call.noted[-1].error
    finally:
        await box.aclose()


def test_the_module_keeps_no_secret_in_what_it_records() -> None:
    assert tooluse.RESULT_CHARS <= 500


def test_the_summarizer_reads_a_tool_use_as_the_agents_not_the_callees() -> None:
    from callagent.agent.summary import summary_messages
    from callagent.calls import CallStatus, TranscriptLine

    req = CallRequest(
        call_id="c1", phone_number="+14155550117", goal="g", caller_name="x", max_duration_s=60, ring_timeout_s=20
    )
    transcript = [
        TranscriptLine(role="callee", text="Tuesday does not work."),
        TranscriptLine(role="event", text='calendar.book_slot(slot_id="thu-1000") → booked Thursday at 10:00'),
    ]
    user = summary_messages(req, transcript, CallStatus.completed, "done")[1]["content"]
    assert "Agent's tool use: calendar.book_slot" in user and "Callee: calendar" not in user
