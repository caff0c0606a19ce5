"""What ends a call from the worker's side: its maximum duration, a silent line, and the store
saying (at each heartbeat) that the call was ended elsewhere or is to be hung up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from livekit.agents import AgentSession, UserStateChangedEvent

from callagent.agent.ending import Fate, asked_fate
from callagent.calls import HEARTBEAT_S, TERMINAL_STATUSES, CallRecord, CallStatus, EndReason
from callagent.languages import phrase

if TYPE_CHECKING:
    from callagent.agent.job import CallJob

log = logging.getLogger(__name__)

# The goodbyes are the call's phrases (callagent.languages): "out_of_time" at the maximum
# duration; "ended_elsewhere" when the call is ended from outside (end_call, the reaper), then
# the line closes.
OUT_OF_TIME_MAX_S = 10.0
GOODBYE_MAX_S = 6.0


async def say_goodbye(session: AgentSession[Any], text: str, max_s: float) -> None:
    """Say `text` without interruption, waiting at most `max_s` for it: the hang-up comes next
    either way."""
    handle = session.say(text, allow_interruptions=False)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(handle.wait_for_playout(), max_s)


async def max_duration(call: CallJob) -> None:
    await asyncio.sleep(call.request.max_duration_s)
    call.settle(
        CallStatus.completed,
        EndReason.max_duration,
        f"reached the maximum call duration ({call.request.max_duration_s} s)",
    )
    if call.session is not None:
        req = call.request
        await say_goodbye(call.session, phrase("out_of_time", req.language, req.phrases), OUT_OF_TIME_MAX_S)
    await call.hang_up()


def on_user_state(call: CallJob, ev: UserStateChangedEvent) -> None:
    # "away": neither side spoke for the session's user_away_timeout (CALLAGENT_SILENCE_TIMEOUT_S);
    # on hold, silence is what waiting sounds like (max_hold_s bounds it instead); while the
    # callee waits for a transfer, the agent does not listen.
    if ev.new_state == "away" and call.answered.is_set() and not call.on_hold and not call.transferring:
        call.settle(
            CallStatus.completed,
            EndReason.silence,
            f"the line stayed silent for {call.settings.silence_timeout_s:g} s; the agent hung up",
        )
        call.spawn(call.hang_up())


async def hold_timeout(call: CallJob) -> None:
    await asyncio.sleep(call.request.max_hold_s)
    call.settle(
        CallStatus.failed,
        EndReason.hold_timeout,
        f"nobody picked up within {call.request.max_hold_s} s on hold (max_hold_s)",
    )
    await call.hang_up()


def heartbeat_verdict(record: CallRecord | None) -> Fate | None:
    """What the store's answer to a heartbeat means for the call: None while it is live and
    nobody asked to hang up, else how it ends."""
    if record is None:
        return CallStatus.failed, EndReason.worker_error, "the call's record disappeared from the call store"
    if record.status in TERMINAL_STATUSES:
        return record.status, record.end_reason or EndReason.canceled, record.ended_reason or "ended elsewhere"
    if record.hangup_requested_at:
        return asked_fate(record)
    return None


async def heartbeat(call: CallJob) -> None:
    """Report to the store every HEARTBEAT_S, and end the call when the store says it was
    ended elsewhere (end_call in any server process, the reaper) or is to be hung up.

    It goes on after the call has ended, until the job writes the final record (CallJob.finish
    stops it): LiveKit closes the session and leaves the room before that, which took over a
    minute when the job's connection to livekit-server had dropped under load, and a job that
    fell silent meanwhile had a call that ended well failed as worker_lost by the reaper."""
    asked = False
    # Once handed over, the record is final (transferred) and the worker only bridges the lines.
    while call.handover is None:
        try:
            record = await asyncio.to_thread(call.db.calls.heartbeat, call.request.call_id)
        except Exception as exc:  # noqa: BLE001 - a store hiccup is no reason to drop a call: next beat
            log.warning("heartbeat failed: %s", exc)
        else:
            if not (asked or call.ended.is_set()) and (verdict := heartbeat_verdict(record)) is not None:
                asked = True
                await end_as_asked(call, verdict)
        if call.ended.is_set():
            await asyncio.sleep(HEARTBEAT_S)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.ended.wait(), HEARTBEAT_S)


async def end_as_asked(call: CallJob, verdict: Fate) -> None:
    """The call was ended or is to be hung up elsewhere: a short goodbye if someone is on the
    line, then hang up."""
    call.settle(*verdict)
    log.info("ended elsewhere; hanging up")
    if call.answered.is_set() and call.session is not None:
        req = call.request
        await say_goodbye(call.session, phrase("ended_elsewhere", req.language, req.phrases), GOODBYE_MAX_S)
    await call.hang_up()
