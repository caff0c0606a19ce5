"""The operator's approval queue (DIAL_CONFIRM_BY=operator), through the real MCP server and
service (in-process client, real SQLite store) and the fake LiveKit that counts every request.

A call that needs confirmation is recorded as awaiting_approval and nothing is dialed; the
operator approves it (the dial policy is asked again, then the call is placed from the
approver's process), denies it (the client reads the note), or lets it lapse (expired).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from mcp.client import Client

from callagent.calls import CallStatus, utcnow
from callagent.errors import BadArgument, Refused
from callagent.service import CallArgs, CallService, Placed
from callagent.settings import Settings
from callagent.store import Database
from callagent.tools import create_server
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, text

pytestmark = pytest.mark.anyio

SECRET = "approvals-test-secret-long-enough-for-hs256"
NUMBER = "+14155550142"
OPERATOR = {"DIAL_CONFIRM": "always", "DIAL_CONFIRM_BY": "operator", "DIAL_QUIET_HOURS": "off"}


def settings_for(db_url: str, livekit: FakeLiveKit, **env: Any) -> Settings:
    return fake_livekit_settings(db_url, livekit.url, SECRET, **{**OPERATOR, **env})


@pytest.fixture
async def service(db_url: str, livekit: FakeLiveKit) -> AsyncIterator[CallService]:
    s = CallService(settings_for(db_url, livekit))
    try:
        yield s
    finally:
        await s.aclose()


async def waiting(service: CallService, **args: Any) -> str:
    placed = await service.place(CallArgs(NUMBER, goal="Confirm the appointment", **args))
    assert isinstance(placed, Placed) and placed.record.status is CallStatus.awaiting_approval
    return placed.record.call_id


async def test_a_call_awaits_the_operator_and_nothing_is_dialed(
    db_url: str, store: Database, livekit: FakeLiveKit
) -> None:
    async with Client(create_server(settings_for(db_url, livekit))) as c:
        result = await c.call_tool(
            "make_phone_call", {"phone_number": NUMBER, "reasoning": "The user asked me to confirm their booking."}
        )
        assert not result.is_error, text(result)
        record = result.structured_content or {}
        assert record["status"] == "awaiting_approval"
        assert record["reasoning"] == "The user asked me to confirm their booking."
        assert record["approval_expires_at"]
        assert "Waiting for the operator's approval" in text(result)
        waited = await c.call_tool("wait_for_call", {"call_id": record["call_id"], "timeout_s": 0.5})
        assert (waited.structured_content or {})["status"] == "awaiting_approval"
    assert livekit.count == 0
    # It holds no line: not counted toward the limits.
    assert store.calls.counts().active == 0 and store.calls.counts().last_hour == 0


async def test_approving_places_the_call_from_the_approvers_process(
    service: CallService, store: Database, livekit: FakeLiveKit
) -> None:
    call_id = await waiting(service)
    assert [r.call_id for r in await service.approvals()] == [call_id]
    placed = await service.approve(call_id, by="ops@example")
    assert placed.approved_by == "ops@example" and placed.approved_at is not None
    assert placed.status not in (CallStatus.awaiting_approval, CallStatus.failed), placed
    (sip,) = livekit.sip_requests
    assert sip.sip_call_to == NUMBER
    assert await service.approvals() == []
    with pytest.raises(BadArgument, match="not awaiting approval"):
        await service.approve(call_id, by="ops@example")


async def test_denying_ends_the_call_with_the_note_the_client_reads(
    db_url: str, livekit: FakeLiveKit, service: CallService
) -> None:
    async with Client(create_server(settings_for(db_url, livekit))) as c:
        result = await c.call_tool("make_phone_call", {"phone_number": NUMBER})
        call_id = (result.structured_content or {})["call_id"]
        await service.deny(call_id, by="ops@example", note="Not during the holidays.")
        waited = await c.call_tool("wait_for_call", {"call_id": call_id, "timeout_s": 2})
    record = waited.structured_content or {}
    assert record["status"] == "denied" and record["end_reason"] == "denied"
    assert record["denial_note"] == "Not during the holidays." and record["denied_by"] == "ops@example"
    assert "Not during the holidays." in text(waited)
    assert livekit.count == 0


async def test_an_approval_nobody_gives_expires(service: CallService, store: Database, livekit: FakeLiveKit) -> None:
    call_id = await waiting(service)
    store.calls.update(call_id, approval_expires_at=utcnow() - timedelta(seconds=1))
    service._last_reap = float("-inf")
    record = await service.get(call_id)
    assert record.status is CallStatus.expired and record.end_reason == "approval_expired"
    assert "DIAL_APPROVAL_TTL_S" in (record.ended_reason or "")
    assert livekit.count == 0


async def test_approval_asks_the_policy_again(service: CallService, store: Database, livekit: FakeLiveKit) -> None:
    """Put on the do-not-call list while it waited: approving refuses, and the call ends."""
    call_id = await waiting(service)
    store.do_not_call.add(NUMBER, "asked meanwhile")
    with pytest.raises(Refused) as refused:
        await service.approve(call_id, by="ops@example")
    assert refused.value.refusal.rule == "do_not_call"
    record = await service.get(call_id)
    assert record.status is CallStatus.failed and record.end_reason == "policy_refused"
    assert livekit.count == 0


async def test_allow_always_puts_the_number_on_the_allow_list(
    db_url: str, store: Database, livekit: FakeLiveKit
) -> None:
    s = CallService(settings_for(db_url, livekit, DIAL_CONFIRM="unlisted"))
    try:
        call_id = await waiting(s)
        await s.approve(call_id, by="ops@example", always=True)
        (entry,) = await s.allowed_numbers()
        assert entry.number == NUMBER and entry.added_by == "ops@example" and entry.call_id == call_id
        # Allowed for good: the next call to it is placed without waiting.
        again = await s.place(CallArgs(NUMBER, goal="Follow up", idempotency_key="second"))
        assert isinstance(again, Placed) and again.record.status is not CallStatus.awaiting_approval
    finally:
        await s.aclose()


async def test_a_waiting_call_can_be_withdrawn_without_touching_livekit(
    service: CallService, livekit: FakeLiveKit
) -> None:
    call_id = await waiting(service)
    ended = await service.end(call_id)
    assert ended.record.status is CallStatus.canceled
    assert livekit.count == 0


async def test_reasoning_can_be_required(db_url: str, livekit: FakeLiveKit) -> None:
    s = CallService(settings_for(db_url, livekit, DIAL_REQUIRE_REASONING="true"))
    try:
        with pytest.raises(BadArgument, match="DIAL_REQUIRE_REASONING"):
            await s.place(CallArgs(NUMBER))
        call_id = await waiting(s, reasoning="Booking check requested by the user.")
        assert (await s.get(call_id)).reasoning == "Booking check requested by the user."
    finally:
        await s.aclose()
    assert livekit.count == 0


async def test_the_client_confirming_is_unchanged(db_url: str, livekit: FakeLiveKit) -> None:
    """DIAL_CONFIRM_BY=client (the default): a confirmation token, no queue."""
    s = CallService(settings_for(db_url, livekit, DIAL_CONFIRM_BY="client"))
    try:
        issued = await s.place(CallArgs(NUMBER))
        assert not isinstance(issued, Placed) and issued.token
        assert await s.approvals() == []
    finally:
        await s.aclose()
