"""Resource notifications: a client subscribed to calls://{call_id} hears `resources/updated`
when the call's status changes, whichever process wrote the change (here: the store, directly,
as the worker does). Both protocol eras: the handshake wire's resources/subscribe, and the
2026-07-28 subscriptions/listen stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from mcp.client import Client

from callagent.calls import CallStatus
from callagent.store import Database
from callagent.tools import create_server
from callagent.watch import CallWatcher, call_id_of
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, make_record

pytestmark = pytest.mark.anyio

SECRET = "watch-test-secret-long-enough-for-hs256"


@pytest.fixture
async def client(db_url: str, livekit: FakeLiveKit) -> AsyncIterator[Client]:
    async with Client(create_server(fake_livekit_settings(db_url, livekit.url, SECRET))) as c:
        yield c


def test_only_call_uris_are_watched() -> None:
    assert call_id_of("calls://abc123") == "abc123"
    assert call_id_of("calls://abc123/recording") is None and call_id_of("https://x") is None


async def test_a_listen_stream_hears_each_status_change(client: Client, store: Database) -> None:
    record = store.calls.create(make_record(CallStatus.dialing))
    uri = f"calls://{record.call_id}"
    seen: list[str] = []
    async with client.listen(resource_subscriptions=[uri]) as sub:
        with anyio.fail_after(15):
            for status in (CallStatus.ringing, CallStatus.in_progress, CallStatus.completed):
                await anyio.sleep(0.7)
                fields = {"end_reason": "agent_ended"} if status is CallStatus.completed else {}
                store.calls.transition(record.call_id, status, **fields)
                async for event in sub:
                    if getattr(event, "uri", None) == uri:
                        seen.append((await client.read_resource(uri)).contents[0].text)  # type: ignore[union-attr]
                        if f'"status": "{status.value}"' in seen[-1]:
                            break
    assert len(seen) >= 3
    assert '"status": "completed"' in seen[-1]


async def test_a_subscription_on_the_handshake_wire(store: Database, db_url: str, livekit: FakeLiveKit) -> None:
    """The watcher as the resources/subscribe handler drives it: told once per change."""
    from callagent.service import CallService

    record = store.calls.create(make_record(CallStatus.ringing))
    service = CallService(fake_livekit_settings(db_url, livekit.url, SECRET))
    watcher = CallWatcher()
    watcher.attach(service)
    told: list[str] = []

    async def notify(uri: str) -> None:
        told.append(uri)

    uri = f"calls://{record.call_id}"

    async def told_once() -> None:
        with anyio.fail_after(10):
            while told.count(uri) < 1:
                await anyio.sleep(0.05)

    try:
        await watcher.subscribe(uri, "session-1", notify)  # the watch runs from now on
        await anyio.sleep(1.2)  # a few polls: nothing changed since it subscribed
        assert told == []
        store.calls.transition(record.call_id, CallStatus.in_progress)
        await told_once()
        await anyio.sleep(1.2)  # more polls: told once per change
        assert told == [uri]
        watcher.unsubscribe(uri, "session-1")
        store.calls.transition(record.call_id, CallStatus.completed, end_reason="agent_ended")
        await anyio.sleep(1.2)
        assert told == [uri]
        with pytest.raises(ValueError, match="only calls://"):
            await watcher.subscribe("calls://x/recording", "session-1", notify)
    finally:
        await watcher.aclose()
        await service.aclose()
