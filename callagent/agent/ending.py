"""How a call ended, decided once: the first decision stands, whoever makes it (the agent's
tools, the timers, the callee hanging up, the room or the session closing, the store)."""

from __future__ import annotations

import logging

from livekit import rtc

from callagent.calls import CallRecord, CallStatus, EndReason

log = logging.getLogger(__name__)

# How a call ended: its terminal status, the code of why, and the words for people.
Fate = tuple[CallStatus, EndReason, str]

# Why the phone line left before the call was answered, as LiveKit's SIP bridge reports it.
DISCONNECT_OUTCOMES: dict[int | None, Fate] = {
    rtc.DisconnectReason.USER_REJECTED: (CallStatus.declined, EndReason.declined, "the callee declined the call"),
    rtc.DisconnectReason.USER_UNAVAILABLE: (CallStatus.no_answer, EndReason.no_answer, "the callee did not answer"),
    rtc.DisconnectReason.SIP_TRUNK_FAILURE: (
        CallStatus.failed,
        EndReason.sip_error,
        "the SIP trunk failed to place the call",
    ),
}
_UNANSWERED: Fate = (CallStatus.failed, EndReason.sip_error, "the call ended before it was answered")


class Ending:
    """The call's terminal status and reason, and what the record must add to them."""

    def __init__(self) -> None:
        self.final: Fate | None = None
        self.hangup_problem = ""  # why a hang-up failed, if one did
        # The room was closed from outside: how the call ended unless the store knows better
        # (who closed it asked for the hang-up there first, with its reason).
        self.closed_from_outside: Fate | None = None

    def settle(self, status: CallStatus, end_reason: EndReason, reason: str) -> Fate:
        """Decide how the call ended; the first decision stands (and is returned)."""
        if self.final is None:
            self.final = (status, end_reason, reason)
            log.info(
                "the call ends as %s (%s): %s",
                status,
                end_reason,
                reason,
                extra={"event": "ended", "status": str(status), "end_reason": str(end_reason)},
            )
        return self.final

    def callee_left(self, *, answered: bool, disconnect_reason: int | None) -> None:
        """The phone line left the room: a hang-up once answered, else what SIP says it was.
        A line that left because the room was deleted did not hang up: the room closed."""
        if disconnect_reason == rtc.DisconnectReason.ROOM_DELETED:
            self.room_closed(answered=answered)
        elif answered:
            self.settle(CallStatus.completed, EndReason.callee_hung_up, "the callee hung up")
        else:
            self.settle(*DISCONNECT_OUTCOMES.get(disconnect_reason, _UNANSWERED))

    def room_closed(self, *, answered: bool) -> None:
        """The room was deleted: end_call, a hang-up by the server, or the dialer cleaning up
        after busy/no answer. Whoever deleted it wrote the status; this is only the fallback."""
        if self.closed_from_outside is None:
            self.closed_from_outside = (
                (CallStatus.completed, EndReason.room_closed, "the call's room was closed")
                if answered
                else (CallStatus.canceled, EndReason.room_closed, "the call was ended before it was answered")
            )

    def session_closed(self, error: object | None) -> None:
        if error is not None:
            self.settle(CallStatus.failed, EndReason.pipeline_error, f"the voice pipeline failed: {error}")

    def for_record(self, shutdown_reason: str, stored: CallRecord | None = None) -> Fate:
        """The status and reason the call's record gets: the decision; else the hang-up asked
        for in the store (`stored`, the record as it is), or the room closing from outside;
        else the job ending under it. And a note when hanging up failed, since the line may
        then have stayed open: a result never claims a hang-up that did not happen."""
        if stored is not None and stored.hangup_requested_at is not None:
            self.settle(*asked_fate(stored))
        if self.closed_from_outside is not None:
            self.settle(*self.closed_from_outside)
        status, end_reason, reason = self.settle(
            CallStatus.failed,
            EndReason.worker_error,
            f"the worker ended the call unexpectedly ({shutdown_reason or 'shutdown'})",
        )
        if self.hangup_problem:
            reason += (
                f" (hanging up through LiveKit failed: {self.hangup_problem}; the line may have "
                "stayed open until the callee hung up or LiveKit's own limit)"
            )
        return status, end_reason, reason


def asked_fate(record: CallRecord) -> Fate:
    """The fate a hang-up request in the store asks for (end_call: canceled; the reaper: failed)."""
    return (
        record.hangup_status or CallStatus.canceled,
        record.hangup_end_reason or EndReason.canceled,
        record.hangup_reason or "ended elsewhere",
    )
