"""Telling subscribers that a call changed, whichever process changed it.

The worker, other server processes and the console write the call store; this process learns of
their changes by polling it: one query for the calls changed lately, every POLL_S, and only
while somebody listens (a client subscribed to `calls://{call_id}`, or holding a
`subscriptions/listen` stream). A call's subscribers hear of it when its status changes.

Transport-free: a subscriber is an async callable taking the resource URI; the MCP door makes
one per session (handshake-era `resources/subscribe`) and one for the SDK's subscription bus
(2026-07-28 `subscriptions/listen`, which filters by URI itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from callagent.calls import utcnow

if TYPE_CHECKING:
    from callagent.service import CallService

__all__ = ["POLL_S", "CallWatcher", "call_id_of"]

log = logging.getLogger(__name__)

POLL_S = 0.5
# Rows are stamped by each writer's clock and committed a moment later: look back this far,
# and let the remembered statuses drop what was seen already.
OVERLAP = timedelta(seconds=5)
_URI = re.compile(r"calls://([A-Za-z0-9_-]{1,64})")

Notify = Callable[[str], Awaitable[None]]


def call_id_of(uri: str) -> str | None:
    """The call id in `calls://{call_id}`, else None."""
    m = _URI.fullmatch(uri)
    return m[1] if m else None


class CallWatcher:
    """Who listens for which call, and the poll that tells them."""

    def __init__(self) -> None:
        self._service: CallService | None = None
        self._by_uri: dict[str, dict[object, Notify]] = {}  # uri -> {subscriber key: notify}
        self._everyone: dict[object, Notify] = {}  # told of every call (listen streams)
        self._status: dict[str, str] = {}  # call id -> status last seen
        self._tenant: dict[str, str | None] = {}  # call id -> whose it is (None: the operator's)
        self._since: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def attach(self, service: CallService) -> None:
        self._service = service

    async def aclose(self) -> None:
        self._by_uri.clear()
        self._everyone.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    # -- who listens -------------------------------------------------------------------------

    async def subscribe(self, uri: str, key: object, notify: Notify, *, tenant: str | None = None) -> None:
        """`notify(uri)` from now on whenever the call at `uri` changes status. The call's
        status now is remembered, so only what comes after is told. A tenant may subscribe to
        its own calls only: another's is NotFound, as an unknown one."""
        call_id = call_id_of(uri)
        if call_id is None or self._service is None:
            raise ValueError(f"only calls://{{call_id}} can be subscribed to, not {uri!r}")
        record = await self._service.get(call_id, tenant=tenant)  # NotFound for an unknown call
        self._tenant.setdefault(call_id, record.tenant)
        self._status.setdefault(call_id, record.status.value)
        self._by_uri.setdefault(uri, {})[key] = notify
        self._run()

    def unsubscribe(self, uri: str, key: object) -> None:
        subs = self._by_uri.get(uri)
        if subs is not None:
            subs.pop(key, None)
            if not subs:
                del self._by_uri[uri]

    def forget(self, key: object) -> None:
        """A subscriber gone (its session closed): every subscription of it ends."""
        for uri in list(self._by_uri):
            self.unsubscribe(uri, key)
        self._everyone.pop(key, None)

    def listen_all(self, key: object, notify: Notify) -> None:
        self._everyone[key] = notify
        self._run()

    def owner(self, uri: str) -> str | bool | None:
        """The tenant whose call `uri` is (None: the operator's); False when not known yet."""
        call_id = call_id_of(uri)
        return self._tenant.get(call_id, False) if call_id is not None else False

    @property
    def listening(self) -> bool:
        return bool(self._by_uri or self._everyone)

    # -- the poll ----------------------------------------------------------------------------

    def _run(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="callagent-watch")

    async def _loop(self) -> None:
        while self.listening:
            try:
                await self.poll()
            except Exception:  # a store hiccup: tell later, never end the watch for it
                log.exception("watching the calls failed; trying again")
            await asyncio.sleep(POLL_S)

    async def poll(self) -> list[str]:
        """One look at the store: the URIs whose call changed status, after telling their
        subscribers."""
        service = self._service
        if service is None:
            return []
        now = utcnow()
        since = (self._since or now) - OVERLAP
        self._since = now
        changed = await service.run(service.db.calls.changed_since, since)
        told = []
        for call_id, status, tenant in changed:
            self._tenant[call_id] = tenant
            if self._status.get(call_id) == status:
                continue
            self._status[call_id] = status
            uri = f"calls://{call_id}"
            # Listen streams may hear of a change from just before they opened: a notification
            # only says "read it again", so one too many does no harm; one too few would.
            listeners = [*self._by_uri.get(uri, {}).items(), *self._everyone.items()]
            for key, notify in listeners:
                try:
                    await notify(uri)
                except Exception as exc:  # noqa: BLE001 - a closed session: it subscribes no more
                    log.debug("a subscriber went away (%s); dropping it", exc)
                    self.forget(key)
            told.append(uri)
        return told
