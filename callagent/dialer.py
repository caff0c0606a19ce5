"""Placing a call through LiveKit: room, agent dispatch, SIP participant.

The order is what keeps callees from hearing silence: the agent must have joined the call's
room before the phone rings, else nothing is dialed and nothing is left behind. After the
phone rings, one `wait_until_answered` request stays in flight, because that is where LiveKit
reports the SIP status code that tells busy (486) from declined (603) from no answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from callagent.calls import (  # CALL_ID_HEADER re-exported
    CALL_ID_HEADER,
    CallRecord,
    CallRequest,
    CallStatus,
    EndReason,
    utcnow,
)
from callagent.numbers import mask

if TYPE_CHECKING:
    from livekit import api

    from callagent.settings import Settings
    from callagent.store import Database

log = logging.getLogger("callagent.dialer")

T = TypeVar("T")

# How a failed `wait_until_answered` maps to a call's fate, by SIP status code.
_SIP_OUTCOMES: dict[int, tuple[CallStatus, EndReason, str]] = {
    486: (CallStatus.busy, EndReason.busy, "the line was busy"),
    600: (CallStatus.busy, EndReason.busy, "the callee is busy everywhere"),
    603: (CallStatus.declined, EndReason.declined, "the callee declined the call"),
    408: (CallStatus.no_answer, EndReason.no_answer, "nobody answered before the ring timeout"),
    480: (CallStatus.no_answer, EndReason.no_answer, "the callee was temporarily unavailable (no answer)"),
    487: (CallStatus.no_answer, EndReason.no_answer, "nobody answered before the ring timeout"),
}

# How often to look for the agent and then the SIP participant in the room: each look is one
# small API request, and every poll interval is added to make_phone_call's return time.
_POLL_S = 0.02
_SIP_POLL_S = 0.01
_RINGING_WITHIN_S = 10.0
CLEAN_UP_TIMEOUT_S = 5.0
# Hanging up: a few tries, backing off, all within a bound (a client waits for end_call).
HANG_UP_ATTEMPTS = 3
HANG_UP_BACKOFF_S = 0.5
HANG_UP_DEADLINE_S = 12.0


class DialError(Exception):
    """The call could not be placed; the message names the problem and the setting to check."""


class HangUpFailed(Exception):
    """LiveKit did not confirm the hang-up: the line may still be up. The message says why."""


def _is_not_found(exc: BaseException) -> bool:
    from livekit.api import TwirpError

    return isinstance(exc, TwirpError) and (exc.status == 404 or exc.code == "not_found")


def _is_auth_error(exc: BaseException) -> bool:
    from livekit.api import TwirpError

    return isinstance(exc, TwirpError) and (
        exc.status in (401, 403) or exc.code in ("unauthenticated", "permission_denied")
    )


def outcome_for_sip_code(code: int | None) -> tuple[CallStatus, EndReason, str]:
    if code is not None and code in _SIP_OUTCOMES:
        return _SIP_OUTCOMES[code]
    return CallStatus.failed, EndReason.sip_error, f"the call failed (SIP {code})" if code else "the call failed"


class Dialer:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._lk: api.LiveKitAPI | None = None
        self._waits: set[asyncio.Task[None]] = set()

    def _api(self) -> api.LiveKitAPI:
        if self._lk is None:
            import aiohttp
            from livekit import api

            s = self.settings
            secret = s.livekit_api_secret.get_secret_value() if s.livekit_api_secret else None
            self._lk = api.LiveKitAPI(s.livekit_url, s.livekit_api_key, secret, timeout=aiohttp.ClientTimeout(total=10))
        return self._lk

    def _explain(self, exc: BaseException) -> str:
        """Turn a LiveKit/transport error into a sentence naming the setting to check."""
        import aiohttp
        from livekit.api import TwirpError

        url = self.settings.livekit_url
        if isinstance(exc, TwirpError):
            if _is_auth_error(exc):
                return (
                    f"LiveKit at {url} refused the credentials ({exc.message}); "
                    "check LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
                )
            if "trunk" in exc.message.lower():
                return f"LiveKit could not use the SIP trunk ({exc.message}); check SIP_OUTBOUND_TRUNK_ID"
            return f"LiveKit at {url} answered with an error: {exc.code}: {exc.message}"
        # Before OSError: TimeoutError is one.
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return (
                f"LiveKit at LIVEKIT_URL={url} did not answer within "
                f"CALLAGENT_LIVEKIT_TIMEOUT_S={self.settings.livekit_timeout_s:g} s"
            )
        if isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
            return f"cannot reach LiveKit at LIVEKIT_URL={url} ({exc.__class__.__name__}: {exc})"
        return f"placing the call failed: {exc.__class__.__name__}: {exc}"

    async def _rpc(self, request: Awaitable[T]) -> T:
        """One LiveKit API request, bounded by CALLAGENT_LIVEKIT_TIMEOUT_S: livekit-api passes
        no timeout of its own per request, so a LiveKit that accepts and never answers would
        otherwise hold the caller for as long as it likes."""
        return await asyncio.wait_for(request, self.settings.livekit_timeout_s)

    async def place(self, record: CallRecord, request: CallRequest) -> CallRecord:
        """Dial the call; returns once the phone is ringing (or the call already ended).

        Raises DialError when the call could not be placed, also when LiveKit refused the SIP
        call itself: the record is failed with the reason either way. Busy, declined and not
        answered are outcomes of a placed call, returned as records.
        """
        from livekit import api

        lk = self._api()
        call_id, room = record.call_id, record.room_name
        await self._transition(call_id, CallStatus.dialing, dialed_at=utcnow())
        dispatch_id: str | None = None
        try:
            await self._rpc(
                lk.room.create_room(
                    api.CreateRoomRequest(
                        name=room,
                        # A room outlives nobody: it closes soon after the last participant leaves.
                        empty_timeout=max(request.ring_timeout_s, 30) + 30,
                        departure_timeout=5,
                    )
                )
            )
            dispatch = await self._rpc(
                lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=self.settings.agent_name,
                        room=room,
                        metadata=request.to_metadata(),
                    )
                )
            )
            dispatch_id = dispatch.id
            joined_after, taken = await self._wait_for_agent(lk, room, dispatch_id)
            if joined_after is None:
                s = self.settings
                if taken:
                    raise DialError(
                        f"a calling worker took the call but did not join it within "
                        f"CALLAGENT_AGENT_JOIN_TIMEOUT_S + CALLAGENT_AGENT_START_TIMEOUT_S = "
                        f"{s.agent_join_timeout_s:g} + {s.agent_start_timeout_s:g} s: it is overloaded or "
                        "stuck starting the job; nothing was dialed"
                    )
                raise DialError(
                    f"no calling worker is online for agent name '{s.agent_name}' "
                    f"(none took the call within CALLAGENT_AGENT_JOIN_TIMEOUT_S="
                    f"{s.agent_join_timeout_s:g} s); start one with "
                    "`uv run calling_agent.py start`, with the same CALLAGENT_AGENT_NAME and LiveKit settings"
                )
            log.info(
                "call %s: agent joined after %.0f ms; dialing %s",
                call_id,
                joined_after * 1000,
                mask(request.phone_number),
                extra={"call_id": call_id, "agent_joined_ms": round(joined_after * 1000)},
            )
            wait = asyncio.create_task(self._dial_and_wait(request, room))
            self._waits.add(wait)
            wait.add_done_callback(self._waits.discard)
            # Until the SIP participant exists (the INVITE is out) or the dial already ended.
            rang = await self._wait_for(lk, room, api.ParticipantInfo.Kind.SIP, _RINGING_WITHIN_S, _SIP_POLL_S, wait)
            if rang is None and not wait.done():
                wait.cancel()  # the room's deletion below takes back an INVITE that is still on its way
                raise DialError(
                    f"LiveKit did not start the SIP call within {_RINGING_WITHIN_S:g} s; check LiveKit's SIP bridge "
                    f"and the trunk SIP_OUTBOUND_TRUNK_ID={self.settings.sip_outbound_trunk_id}"
                )
            placed = await asyncio.to_thread(self.db.calls.get, call_id) or record
            if placed.status is CallStatus.failed:  # LiveKit refused the SIP call itself
                raise DialError(placed.ended_reason or "the call failed")
        except BaseException as exc:
            if isinstance(exc, DialError):
                reason = str(exc)
            elif isinstance(exc, asyncio.CancelledError):
                reason = "placing the call was interrupted before the phone rang"
            else:
                reason = self._explain(exc)
            await self._clean_up(room, dispatch_id)
            await self._transition(call_id, CallStatus.failed, ended_reason=reason, end_reason=EndReason.not_placed)
            log.warning("call %s not placed: %s", call_id, reason)
            if isinstance(exc, DialError):
                raise
            if isinstance(exc, Exception):  # cancellation and exits propagate as they are
                raise DialError(reason) from exc
            raise
        return placed

    async def _wait_for_agent(self, lk: api.LiveKitAPI, room: str, dispatch_id: str) -> tuple[float | None, bool]:
        """Seconds until the agent joined the room (None if it did not), and whether a worker
        took the job. A job nobody took is given up after CALLAGENT_AGENT_JOIN_TIMEOUT_S; one a
        worker took (LiveKit's dispatch lists the job, with its worker) gets
        CALLAGENT_AGENT_START_TIMEOUT_S more to join: a loaded worker starts jobs slowly."""
        from livekit import api

        s = self.settings
        started = time.monotonic()
        taken = False
        while time.monotonic() < started + s.agent_join_timeout_s + (s.agent_start_timeout_s if taken else 0):
            res = await self._rpc(lk.room.list_participants(api.ListParticipantsRequest(room=room)))
            if any(p.kind == api.ParticipantInfo.Kind.AGENT for p in res.participants):
                return time.monotonic() - started, True
            if not taken:
                dispatch = await self._rpc(lk.agent_dispatch.get_dispatch(dispatch_id, room))
                taken = dispatch is not None and any(
                    job.state.worker_id and job.state.status in (api.JobStatus.JS_PENDING, api.JobStatus.JS_RUNNING)
                    for job in dispatch.state.jobs
                )
                if taken:
                    log.info("the call's job was taken by a worker after %.0f ms", (time.monotonic() - started) * 1000)
            await asyncio.sleep(_POLL_S)
        return None, taken

    async def _wait_for(
        self,
        lk: api.LiveKitAPI,
        room: str,
        kind: int,
        timeout_s: float,
        every_s: float,
        until: asyncio.Task[None] | None = None,
    ) -> float | None:
        """Seconds until a participant of `kind` was in the room; None if none came within
        `timeout_s`, or `until` finished first (then its error, if any, is raised)."""
        from livekit import api

        started = time.monotonic()
        while time.monotonic() < started + timeout_s and not (until is not None and until.done()):
            res = await self._rpc(lk.room.list_participants(api.ListParticipantsRequest(room=room)))
            if any(p.kind == kind for p in res.participants):
                return time.monotonic() - started
            await asyncio.sleep(every_s)
        if until is not None and until.done() and (error := until.exception()):
            raise error
        return None

    async def _dial_and_wait(self, request: CallRequest, room: str) -> None:
        """Create the SIP participant and wait for the answer; record busy/declined/no answer."""
        from google.protobuf.duration_pb2 import Duration
        from livekit import api
        from livekit.api import SipCallError

        lk = self._api()
        call_id = request.call_id
        try:
            await lk.sip.create_sip_participant(
                api.CreateSIPParticipantRequest(
                    # The profile's trunk and caller ID (callagent.toml), else the settings' trunk
                    # and LiveKit's pick among the trunk's own numbers.
                    sip_trunk_id=request.sip_trunk_id or self.settings.sip_outbound_trunk_id,
                    sip_number=request.caller_id or "",
                    sip_call_to=request.phone_number,
                    room_name=room,
                    participant_identity=f"callee-{call_id}",
                    participant_name="callee",
                    headers={CALL_ID_HEADER: call_id},
                    # LiveKit sends these as RFC 4733 tones once answered; its pause is w (0.5 s).
                    dtmf=(request.dtmf or "").replace("W", "ww"),
                    ringing_timeout=Duration(seconds=request.ring_timeout_s),
                    # LiveKit's own cap, a margin above the worker's, in case the worker is gone.
                    max_call_duration=Duration(seconds=request.max_duration_s + 60),
                    wait_until_answered=True,
                )
            )
        except SipCallError as exc:
            code = exc.sip_status_code
            status, end_reason, reason = outcome_for_sip_code(code)
            await self._transition(call_id, status, sip_status_code=code, ended_reason=reason, end_reason=end_reason)
            log.info("call %s: %s (SIP %s)", call_id, status, code)
            await self._clean_up(room, None)
            return
        except asyncio.CancelledError:
            raise
        except api.ServerError as exc:
            # The ring timeout comes back as a 408 "sip request timed out" with no SIP code.
            if exc.status == 408:
                status, end_reason = CallStatus.no_answer, EndReason.no_answer
                reason = f"nobody answered within {request.ring_timeout_s} s"
            else:
                status, end_reason, reason = CallStatus.failed, EndReason.not_placed, self._explain(exc)
            await self._transition(call_id, status, ended_reason=reason, end_reason=end_reason)
            log.info("call %s: %s", call_id, reason)
            await self._clean_up(room, None)
            return
        except Exception as exc:
            reason = self._explain(exc)
            if await self._transition(call_id, CallStatus.failed, ended_reason=reason, end_reason=EndReason.not_placed):
                await self._clean_up(room, None)
            raise
        # Answered. The worker marks the call in progress too (whichever is first wins).
        await self._transition(call_id, CallStatus.in_progress, answered_at=utcnow())

    async def _transition(self, call_id: str, status: CallStatus, **fields: Any) -> CallRecord | None:
        # The store is synchronous; keep it off the event loop that carries other calls.
        return await asyncio.to_thread(self.db.calls.transition, call_id, status, **fields)

    async def _clean_up(self, room: str, dispatch_id: str | None) -> None:
        """Remove the dispatch and the room after a call that was not placed; bounded, as
        LiveKit may be the thing that failed. A dispatch whose id never came back (its request
        failed or timed out after LiveKit made it) is found by its room."""
        from livekit import api

        lk = self._api()

        async def remove() -> None:
            ids = [dispatch_id] if dispatch_id else []
            if not ids:
                try:
                    ids = [d.id for d in await self._rpc(lk.agent_dispatch.list_dispatch(room))]
                except Exception as exc:  # noqa: BLE001 - best-effort clean-up: the room is removed anyway
                    log.debug("listing the dispatches of room %s failed: %r", room, exc)
            for found in ids:
                try:
                    await self._rpc(lk.agent_dispatch.delete_dispatch(found, room))
                except Exception as exc:  # noqa: BLE001 - best-effort clean-up: the room is removed anyway
                    log.debug("deleting dispatch %s failed: %r", found, exc)
            try:
                await self._rpc(lk.room.delete_room(api.DeleteRoomRequest(room=room)))
            except Exception as exc:  # noqa: BLE001 - best-effort clean-up: LiveKit closes an empty room itself
                if not _is_not_found(exc):
                    log.warning("could not remove room %s (%s); LiveKit closes it when empty", room, self._explain(exc))

        try:
            await asyncio.wait_for(remove(), CLEAN_UP_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "could not remove room %s within %.0f s; LiveKit closes it when empty", room, CLEAN_UP_TIMEOUT_S
            )

    async def hang_up(self, room: str) -> None:
        """End a call now: deleting its room makes LiveKit send the phone a BYE.

        Returns only once LiveKit confirmed it (a room already gone counts: nobody is on the
        line). Otherwise raises HangUpFailed after at most HANG_UP_ATTEMPTS tries within
        HANG_UP_DEADLINE_S: the line may still be up, and the caller must say so.
        """
        from livekit import api

        lk = self._api()
        deadline = time.monotonic() + HANG_UP_DEADLINE_S
        problem = "no attempt was made"
        for attempt in range(HANG_UP_ATTEMPTS):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(
                    lk.room.delete_room(api.DeleteRoomRequest(room=room)), min(left, self.settings.livekit_timeout_s)
                )
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then raised as HangUpFailed
                if _is_not_found(exc):
                    return
                problem = self._explain(exc)
                log.warning(
                    "hanging up room %s failed (try %d of %d): %s", room, attempt + 1, HANG_UP_ATTEMPTS, problem
                )
                if _is_auth_error(exc):
                    break  # the same credentials will not work on the next try either
            await asyncio.sleep(min(HANG_UP_BACKOFF_S * 2**attempt, max(0.0, deadline - time.monotonic())))
        raise HangUpFailed(problem)

    async def aclose(self) -> None:
        for task in list(self._waits):
            task.cancel()
        if self._waits:
            await asyncio.gather(*self._waits, return_exceptions=True)
        if self._lk is not None:
            await self._lk.aclose()
            self._lk = None
