"""The promises under faults and attack, through the real MCP server (in-process client, real
SQLite store) and the fake LiveKit whose every method can be made to fail.

- end_call says "Hung up." only when LiveKit confirmed it; otherwise an error that says the line
  may still be up, the record stays live (and counts toward the limits) with a hang-up request
  the worker acts on. The reaper of dead workers' calls holds to the same rule.
- Every failure to place a call is an error result, the record failed with its reason, and
  nothing is left behind in LiveKit (room, dispatch).
- A hung LiveKit is given up on after CALLAGENT_LIVEKIT_TIMEOUT_S, not after the whole deadline.
- Bad arguments (unknown names, booleans for numbers, hostile cursors, extensions) are refused
  by name, with the input echoed only in part.
- Numbers and secrets never reach the logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client

from callagent.calls import CallRecord, CallStatus, EndReason, new_call_id, utcnow
from callagent.dialer import HANG_UP_ATTEMPTS
from callagent.service import PLACE_DEADLINE_S
from callagent.settings import Settings
from callagent.store import Database
from callagent.tools import create_server
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, text

pytestmark = pytest.mark.anyio

SECRET = "promises-test-secret-never-shown"
NUMBER = "+14155550142"
FAILING = ["500", "401", "hang", "close", "garbage"]


def settings_for(db_url: str, livekit: FakeLiveKit, **env: Any) -> Settings:
    return fake_livekit_settings(db_url, livekit.url, SECRET, **env)


@pytest.fixture
async def client(db_url: str, livekit: FakeLiveKit) -> AsyncIterator[Client]:
    async with Client(create_server(settings_for(db_url, livekit))) as c:
        yield c


def live_call(
    store: Database, livekit: FakeLiveKit, status: CallStatus = CallStatus.in_progress, **fields: Any
) -> CallRecord:
    """A call as a worker would be holding it: its room exists in LiveKit."""
    now = utcnow()
    fields.setdefault("heartbeat_at", now)
    fields.setdefault("dialed_at", now)
    record = store.calls.create(
        CallRecord(
            call_id=new_call_id(),
            phone_number=NUMBER,
            status=status,
            goal="Ask about opening hours",
            caller_name="Test Operator",
            max_duration_s=300,
            ring_timeout_s=30,
            **fields,
        )
    )
    livekit._handle("CreateRoom", _room_request(record.room_name))
    return record


def _room_request(name: str) -> bytes:
    from livekit.protocol import room as pr

    return pr.CreateRoomRequest(name=name).SerializeToString()


# -- 1. end_call: "Hung up." only when it was -------------------------------------------------------


async def test_end_call_hangs_up_and_says_so(client: Client, store: Database, livekit: FakeLiveKit) -> None:
    record = live_call(store, livekit)
    result = await client.call_tool("end_call", {"call_id": record.call_id})
    assert not result.is_error, text(result)
    assert text(result).startswith("Hung up.")
    assert result.structured_content["status"] == "canceled"
    assert result.structured_content["ended_reason"] == "ended by the MCP client"
    assert livekit.deleted_rooms == [record.room_name]


async def test_end_call_on_a_room_already_gone_is_hung_up(
    client: Client, store: Database, livekit: FakeLiveKit
) -> None:
    record = live_call(store, livekit)
    livekit.rooms.clear()  # the line is gone already: LiveKit answers 404 for the room
    result = await client.call_tool("end_call", {"call_id": record.call_id})
    assert not result.is_error, text(result)
    assert result.structured_content["status"] == "canceled"


@pytest.mark.parametrize("fault", FAILING)
async def test_end_call_that_cannot_hang_up_is_an_error_and_the_call_stays_live(
    client: Client, store: Database, livekit: FakeLiveKit, fault: str
) -> None:
    record = live_call(store, livekit)
    livekit.set(DeleteRoom=fault)
    result = await client.call_tool("end_call", {"call_id": record.call_id})
    assert result.is_error, text(result)
    message = text(result)
    assert "may still be up" in message and "end_call again" in message and "asked to hang up" in message
    assert "Hung up" not in message and SECRET not in message
    after = store.calls.get(record.call_id)
    assert after is not None and after.status is CallStatus.in_progress  # not claimed canceled
    assert after.hangup_requested_at is not None and after.hangup_reason == "ended by the MCP client"
    assert after.hangup_status is CallStatus.canceled
    assert store.calls.counts().active == 1  # still counts toward DIAL_MAX_CONCURRENT
    tries = len(livekit.calls("DeleteRoom"))
    assert 1 <= tries <= HANG_UP_ATTEMPTS  # bounded; credentials refused are not retried
    if fault == "401":
        assert tries == 1 and "LIVEKIT_API_KEY" in message
    elif fault != "hang":
        assert tries == HANG_UP_ATTEMPTS
    # The worker sees the request at its next heartbeat; and once LiveKit works, end_call does.
    beat = store.calls.heartbeat(record.call_id)
    assert beat is not None and beat.hangup_requested_at is not None
    livekit.set(DeleteRoom="ok")
    again = await client.call_tool("end_call", {"call_id": record.call_id})
    assert not again.is_error and again.structured_content["status"] == "canceled", text(again)


async def test_end_call_without_livekit_settings_is_an_error_not_a_cancel(
    db_url: str, store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "SIP_OUTBOUND_TRUNK_ID"):
        monkeypatch.delenv(name, raising=False)  # the bed's environment sets them
    settings = Settings(_env_file=None, CALLAGENT_DB_URL=db_url)
    record = store.calls.create(
        CallRecord(
            call_id=new_call_id(),
            phone_number=NUMBER,
            status=CallStatus.in_progress,
            goal="x",
            caller_name="Test Operator",
            max_duration_s=300,
            ring_timeout_s=30,
            heartbeat_at=utcnow(),
        )
    )
    async with Client(create_server(settings)) as c:
        result = await c.call_tool("end_call", {"call_id": record.call_id})
    assert result.is_error and "LIVEKIT_URL" in text(result) and "may still be up" in text(result)
    after = store.calls.get(record.call_id)
    assert after is not None and after.status is CallStatus.in_progress and after.hangup_requested_at is not None


# -- 1. the reaper of calls whose worker died ------------------------------------------------------


@pytest.mark.parametrize("fault", ["ok", *FAILING])
async def test_a_dead_workers_call_is_failed_only_once_hung_up(
    db_url: str, store: Database, livekit: FakeLiveKit, fault: str
) -> None:
    quiet = utcnow() - timedelta(minutes=5)
    record = live_call(store, livekit, heartbeat_at=quiet)  # dialed just now: LiveKit's own limit is far off
    livekit.set(DeleteRoom=fault)
    async with Client(create_server(settings_for(db_url, livekit))) as c:
        result = await c.call_tool("get_call", {"call_id": record.call_id})
    assert not result.is_error, text(result)
    after = result.structured_content
    if fault == "ok":
        assert after["status"] == "failed"
        assert "worker stopped responding" in after["ended_reason"] and "hung up the line" in after["ended_reason"]
        assert livekit.deleted_rooms == [record.room_name]
        return
    assert after["status"] == "in_progress", after  # the line may be up: not reported as ended
    assert after["hangup_requested_at"] is not None and "worker stopped responding" in after["hangup_reason"]
    assert after["hangup_status"] == "failed"
    assert "may still be up" in text(result)
    # Tried again at the next reap (a new server process here), and settled once it works.
    livekit.set(DeleteRoom="ok")
    async with Client(create_server(settings_for(db_url, livekit))) as c:
        result = await c.call_tool("get_call", {"call_id": record.call_id})
    assert result.structured_content["status"] == "failed", text(result)
    assert "hung up the line" in result.structured_content["ended_reason"]


async def test_a_running_server_reaps_a_dead_workers_call_with_no_request_coming_in(
    db_url: str, store: Database, livekit: FakeLiveKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callagent import service as service_module

    monkeypatch.setattr(service_module, "REAP_INTERVAL_S", 0.2)
    record = live_call(store, livekit, heartbeat_at=utcnow() - timedelta(minutes=5))
    livekit.set(DeleteRoom="ok")
    async with Client(create_server(settings_for(db_url, livekit))):
        # The client only holds the session open: no tool call, no resource read.
        for _ in range(100):
            after = store.calls.get(record.call_id)
            assert after is not None
            if after.status is CallStatus.failed:
                break
            await anyio.sleep(0.1)
    assert after.status is CallStatus.failed and after.end_reason is EndReason.worker_lost, after
    assert livekit.deleted_rooms == [record.room_name]


async def test_a_dead_workers_call_past_livekits_own_limit_is_failed_and_says_why(
    db_url: str, store: Database, livekit: FakeLiveKit
) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    record = live_call(store, livekit, heartbeat_at=long_ago, dialed_at=long_ago)
    livekit.set(DeleteRoom="500")
    async with Client(create_server(settings_for(db_url, livekit))) as c:
        result = await c.call_tool("get_call", {"call_id": record.call_id})
    reason = result.structured_content["ended_reason"]
    assert result.structured_content["status"] == "failed"
    assert "hanging up failed" in reason and "LiveKit's own limit" in reason


async def test_a_call_orphaned_mid_dial_stops_counting_soon(db_url: str, store: Database, livekit: FakeLiveKit) -> None:
    """A server killed while dialing leaves a `dialing` record without any heartbeat: it is
    failed after the placing deadline, not after CALLAGENT_STALE_AFTER_S."""
    from callagent.service import ORPHAN_AFTER_S

    then = utcnow() - timedelta(seconds=ORPHAN_AFTER_S + 1)
    record = live_call(store, livekit, CallStatus.dialing, heartbeat_at=None, created_at=then, updated_at=then)
    settings = settings_for(db_url, livekit, CALLAGENT_STALE_AFTER_S="600")
    async with Client(create_server(settings)) as c:
        result = await c.call_tool("get_call", {"call_id": record.call_id})
    assert result.structured_content["status"] == "failed"
    assert "before a worker took it" in result.structured_content["ended_reason"]


# -- 4. every failure to place a call is an error result ---------------------------------------------


@pytest.mark.parametrize("method", ["CreateRoom", "CreateDispatch", "ListParticipants", "CreateSIPParticipant"])
@pytest.mark.parametrize("fault", FAILING)
async def test_a_call_that_could_not_be_placed_is_an_error_and_leaves_nothing(
    client: Client, store: Database, livekit: FakeLiveKit, method: str, fault: str
) -> None:
    livekit.set(**{method: fault})
    started = time.monotonic()
    result = await client.call_tool("make_phone_call", {"phone_number": NUMBER})
    took = time.monotonic() - started
    assert result.is_error, text(result)
    (record,) = store.calls.page()[0]
    assert record.status is CallStatus.failed and record.ended_reason
    assert record.call_id in text(result) and SECRET not in text(result)
    if fault == "401":
        assert "LIVEKIT_API_KEY" in text(result)
    if fault == "hang":  # given up after CALLAGENT_LIVEKIT_TIMEOUT_S, not the 30 s deadline
        assert "CALLAGENT_LIVEKIT_TIMEOUT_S" in text(result) or method == "CreateSIPParticipant"
        assert took < PLACE_DEADLINE_S
    assert livekit.live_rooms() == []  # nothing left behind
    assert all(not room.dispatches for room in livekit.rooms.values())


async def test_a_dispatch_whose_answer_was_lost_is_deleted(db_url: str, store: Database) -> None:
    """LiveKit made the dispatch but its answer came too late: the id is unknown, so the
    clean-up finds it by its room."""
    livekit = FakeLiveKit("ok", agent_joins=False, hold_s={"CreateDispatch": 2.5})
    try:
        async with Client(create_server(settings_for(db_url, livekit))) as c:
            result = await c.call_tool("make_phone_call", {"phone_number": NUMBER})
        assert result.is_error and "CALLAGENT_LIVEKIT_TIMEOUT_S" in text(result), text(result)
        assert livekit.calls("ListDispatch") and len(livekit.deleted_dispatches) == 1
        assert livekit.live_rooms() == []
    finally:
        livekit.close()


# -- 9. arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"phone_number": NUMBER, "greting": "Hi"}, "no argument 'greting'"),
        ({"phone_number": NUMBER, "transfer_number": "+14155550112"}, "no argument 'transfer_number'"),
        ({"phone_number": NUMBER, "max_duration_s": True}, "max_duration_s"),
        ({"phone_number": NUMBER, "ring_timeout_s": False}, "ring_timeout_s"),
        ({"phone_number": NUMBER, "max_duration_s": "60"}, "max_duration_s"),
        ({"phone_number": "+1 415 555 0142 x12"}, "rule 'extension'"),
    ],
)
async def test_bad_arguments_are_refused_by_name_and_nothing_is_dialed(
    client: Client, store: Database, livekit: FakeLiveKit, args: dict[str, Any], fragment: str
) -> None:
    result = await client.call_tool("make_phone_call", args)
    assert result.is_error and fragment in text(result), text(result)
    assert livekit.count == 0 and store.calls.page()[0] == []


async def test_an_allowed_extension_is_dialed_after_the_answer(
    db_url: str, store: Database, livekit: FakeLiveKit
) -> None:
    """The main number rings, and the extension goes as DTMF once answered, never dropped."""
    async with Client(create_server(settings_for(db_url, livekit, DIAL_ALLOW_EXTENSIONS="true"))) as c:
        result = await c.call_tool("make_phone_call", {"phone_number": "+1 415 555 0142 ext. 123"})
        both = await c.call_tool("make_phone_call", {"phone_number": "+1 415 555 0143 x1", "dtmf": "2"})
    assert not result.is_error, text(result)
    (sip,) = livekit.sip_requests
    assert sip.sip_call_to == NUMBER and sip.dtmf == "ww123"  # a one-second pause, then the extension
    assert result.structured_content["dtmf"] == "W123"
    assert both.is_error and "give the digits in one place" in text(both)


@pytest.mark.parametrize("dtmf", ["", "12a", "1" * 33, "1 2", "１２", "12\n", "#*ww", "W9#"])
async def test_dtmf_is_digits_and_pauses_only(client: Client, livekit: FakeLiveKit, dtmf: str) -> None:
    result = await client.call_tool("make_phone_call", {"phone_number": NUMBER, "dtmf": dtmf})
    if dtmf in ("#*ww", "W9#"):
        assert not result.is_error, text(result)
        assert livekit.sip_requests[-1].dtmf == dtmf.replace("W", "ww")
    else:
        assert result.is_error and "dtmf" in text(result), text(result)
        assert livekit.sip_requests == []


async def test_every_tool_refuses_unknown_arguments_and_publishes_that(client: Client) -> None:
    tools = (await client.list_tools()).tools
    assert all(t.input_schema.get("additionalProperties") is False for t in tools)
    for tool in tools:
        result = await client.call_tool(tool.name, {"no_such_argument": 1})
        assert result.is_error and "no argument 'no_such_argument'" in text(result), (tool.name, text(result))


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("list_calls", {"cursor": "W1s" * 60}),
        ("list_calls", {"status": "x" * 10_000}),
        ("get_call", {"call_id": "y" * 10_000}),
        ("wait_for_call", {"call_id": "nosuchcall", "last_status": "z" * 10_000}),
    ],
)
async def test_hostile_input_is_echoed_only_in_part(
    client: Client, db_url: str, tool: str, args: dict[str, Any]
) -> None:
    result = await client.call_tool(tool, args)
    assert result.is_error
    assert len(text(result)) < 600, text(result)[:300]
    assert "calls.db" not in text(result)  # a bad input is not a call-store failure


# -- 5, 7. numbers and secrets never reach the logs ---------------------------------------------------


async def test_logs_never_hold_a_full_number_or_a_secret(
    tmp_path: Path, livekit: FakeLiveKit, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'calls.db'}", livekit)
    raw = "+1 (415) 555-0142"
    with caplog.at_level(logging.DEBUG):
        async with Client(create_server(settings)) as c:
            for args in (
                {"phone_number": f"{raw} x77"},  # extension refused, quoting the input
                {"phone_number": "+1 415 555 01 42 99 99 99 99"},  # invalid, quoting the input
                {"phone_number": f"{raw}; rm -rf /"},  # invalid characters, quoting the input
                {"phone_number": NUMBER, "caller_id": "+1 415 555 0199 9"},
                {"phone_number": NUMBER},  # placed, fake LiveKit answers
            ):
                await c.call_tool("make_phone_call", args)
            await c.call_tool("list_calls", {"phone_number": "+1 415 555 0177"})
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert logged  # the SDK and callagent did log these requests
    for full in ("4155550142", "415) 555-0142", "415 555 0199", "4155550177", "415 555 0177", "555-0142"):
        assert full not in logged, full
    assert SECRET not in logged


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://callagent:{SECRET}@127.0.0.1:1/calls",
        f"postgresql://callagent@127.0.0.1:1/calls?password={SECRET}",
        f"postgresql://callagent@127.0.0.1:1/calls?sslmode=disable&sslpassword={SECRET}&password={SECRET}",
    ],
)
async def test_a_database_password_is_never_shown(
    url: str, livekit: FakeLiveKit, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with Client(create_server(settings_for(url, livekit))) as c:
            result = await c.call_tool("list_calls", {})
    assert result.is_error and "CALLAGENT_DB_URL=" in text(result) and "127.0.0.1:1" in text(result), text(result)
    assert SECRET not in text(result)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "call store error" in logged and SECRET not in logged


# -- 10. a worker that is slow, not absent ------------------------------------------------------------


async def test_a_worker_that_took_the_call_gets_time_to_join(db_url: str, store: Database) -> None:
    """LiveKit assigned the job to a worker at once, but the worker joins after the join timeout
    (a loaded machine): the call is placed, not refused as "no calling worker is online"."""
    livekit = FakeLiveKit("ok", job_taken=True, agent_joins_after_s=1.5)
    try:
        settings = settings_for(db_url, livekit, CALLAGENT_AGENT_JOIN_TIMEOUT_S="0.5")
        async with Client(create_server(settings)) as c:
            result = await c.call_tool("make_phone_call", {"phone_number": NUMBER})
        assert not result.is_error, text(result)
        assert len(livekit.sip_requests) == 1
    finally:
        livekit.close()


@pytest.mark.parametrize(("taken", "says"), [(False, "no calling worker is online"), (True, "took the call but")])
async def test_no_worker_and_a_stuck_worker_are_told_apart(
    db_url: str, store: Database, taken: bool, says: str
) -> None:
    livekit = FakeLiveKit("ok", agent_joins=False, job_taken=taken)
    try:
        settings = settings_for(
            db_url, livekit, CALLAGENT_AGENT_JOIN_TIMEOUT_S="0.3", CALLAGENT_AGENT_START_TIMEOUT_S="0.5"
        )
        async with Client(create_server(settings)) as c:
            result = await c.call_tool("make_phone_call", {"phone_number": NUMBER})
        assert result.is_error and says in text(result), text(result)
        assert (
            "CALLAGENT_AGENT_START_TIMEOUT_S" in text(result)
            if taken
            else "CALLAGENT_AGENT_JOIN_TIMEOUT_S" in text(result)
        )
        assert livekit.sip_requests == [] and livekit.live_rooms() == []
    finally:
        livekit.close()
