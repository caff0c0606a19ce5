"""The use cases on their own: no MCP anywhere, a real SQLite store, the fake LiveKit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callagent.calls import CallStatus, utcnow
from callagent.errors import BadArgument, HangUpNotConfirmed, NotFound, PlacementFailed, Refused
from callagent.policy import Allowed, NeedsConfirmation, Refusal, Rule
from callagent.service import CallArgs, CallService, ConfirmationIssued, Placed, Prepared
from callagent.settings import Settings
from callagent.store import Database
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, make_record

pytestmark = pytest.mark.anyio

NUMBER = "+14155550142"


def settings(db_url: str, livekit: FakeLiveKit, **env: str) -> Settings:
    return fake_livekit_settings(db_url, livekit.url, "service-test-secret-long-enough-for-hmac", **env)


@pytest.fixture
async def service(db_url: str, livekit: FakeLiveKit) -> AsyncIterator[CallService]:
    s = CallService(settings(db_url, livekit))
    try:
        yield s
    finally:
        await s.aclose()


async def test_preflight_says_what_would_be_dialed_and_writes_nothing(
    service: CallService, store: Database, livekit: FakeLiveKit
) -> None:
    prepared = await service.preflight(CallArgs("(415) 555-0142", goal="Confirm Tuesday"))
    assert isinstance(prepared, Prepared) and isinstance(prepared.decision, Allowed)
    assert prepared.target.e164 == NUMBER and prepared.request.goal == "Confirm Tuesday"
    refused = await service.preflight(CallArgs("911"))
    assert isinstance(refused, Refusal) and refused.rule is Rule.emergency_number
    assert store.calls.page()[0] == [] and store.refusals.recent() == [] and livekit.count == 0


async def test_place_dials_and_returns_the_ringing_call(service: CallService, store: Database) -> None:
    placed = await service.place(CallArgs(NUMBER, goal="Confirm Tuesday", idempotency_key="k1"))
    assert isinstance(placed, Placed) and not placed.existing
    assert placed.record.status in (CallStatus.dialing, CallStatus.in_progress)  # ringing: the fake answers at once
    again = await service.place(CallArgs(NUMBER, goal="Confirm Tuesday", idempotency_key="k1"))
    assert isinstance(again, Placed) and again.existing and again.record.call_id == placed.record.call_id
    with pytest.raises(BadArgument, match="another number"):
        await service.place(CallArgs("+14155550143", idempotency_key="k1"))
    assert len(store.calls.page()[0]) == 1


async def test_a_refusal_is_raised_and_kept_for_audit(service: CallService, store: Database) -> None:
    with pytest.raises(Refused) as info:
        await service.place(CallArgs("+1 800 273 8255"))
    assert info.value.refusal.rule is Rule.sensitive_number
    assert "rule 'sensitive_number'" in str(info.value)
    (kept,) = store.refusals.recent()
    assert kept.rule == "sensitive_number" and kept.number is not None and "8255" in kept.number
    assert "800" not in kept.number  # masked


async def test_a_call_that_needs_confirmation(db_url: str, livekit: FakeLiveKit, store: Database) -> None:
    service = CallService(settings(db_url, livekit, DIAL_CONFIRM="always"))
    try:
        prepared = await service.preflight(CallArgs(NUMBER))
        assert isinstance(prepared, Prepared) and isinstance(prepared.decision, NeedsConfirmation)
        issued = await service.place(CallArgs(NUMBER))
        assert isinstance(issued, ConfirmationIssued) and livekit.count == 0
        placed = await service.place(CallArgs(NUMBER), confirmation_token=issued.token)
        assert isinstance(placed, Placed)
        with pytest.raises(Refused, match="already used"):
            await service.place(CallArgs(NUMBER), confirmation_token=issued.token)
        with pytest.raises(Refused, match="did not approve"):
            await service.place(CallArgs("+14155550143"), approved=False)
        assert isinstance(await service.place(CallArgs("+14155550144"), approved=True), Placed)
    finally:
        await service.aclose()


async def test_a_failed_placement_is_an_error_with_the_failed_record(
    service: CallService, livekit: FakeLiveKit
) -> None:
    livekit.set(CreateSIPParticipant="500")
    with pytest.raises(PlacementFailed) as info:
        await service.place(CallArgs(NUMBER))
    assert info.value.record is not None and info.value.record.status is CallStatus.failed
    assert livekit.live_rooms() == []


async def test_wait_reports_progress_and_returns_on_a_change(service: CallService, store: Database) -> None:
    live = store.calls.create(make_record(CallStatus.ringing, heartbeat_at=utcnow()))
    seen: list[tuple[float, str]] = []

    async def progress(elapsed: float, message: str) -> None:
        seen.append((elapsed, message))
        if len(seen) == 2:
            store.calls.transition(live.call_id, CallStatus.in_progress)

    waited = await service.wait(live.call_id, 10, progress=progress)
    assert waited.changed and waited.record.status is CallStatus.in_progress
    assert [m.split(" ")[0] for _, m in seen] == ["ringing", "ringing"]
    with pytest.raises(BadArgument, match="timeout_s"):
        await service.wait(live.call_id, 51)
    with pytest.raises(NotFound):
        await service.get("nosuchcall")


async def test_end_confirms_the_hang_up_or_says_it_could_not(
    service: CallService, store: Database, livekit: FakeLiveKit
) -> None:
    placed = await service.place(CallArgs(NUMBER))
    assert isinstance(placed, Placed)
    livekit.set(DeleteRoom="500")
    with pytest.raises(HangUpNotConfirmed, match="may still be up"):
        await service.end(placed.record.call_id)
    livekit.set(DeleteRoom="ok")
    ended = await service.end(placed.record.call_id)
    assert ended.record.status is CallStatus.canceled and ended.note is None
    again = await service.end(placed.record.call_id)
    assert again.note is not None and "already ended" in again.note


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"status": "ringed"}, "unknown status"),
        ({"phone_number": "call mom"}, "phone number"),
        ({"limit": 0}, "limit"),
        ({"cursor": "garbage!"}, "invalid cursor"),
    ],
)
async def test_list_calls_refuses_bad_arguments(service: CallService, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadArgument, match=fragment):
        await service.list_calls(**kwargs)


async def test_policy_info_lists_every_rule(service: CallService) -> None:
    info = await service.policy_info()
    assert set(info["settings"]) == {rule.value for rule in Rule}
    assert info["usage"]["active_calls"] == 0
