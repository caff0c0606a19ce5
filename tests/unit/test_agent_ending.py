"""How the worker ends a call, without LiveKit: the end-of-call decision, the hang-up and its
honest failure note, the record written at the end, and the heartbeat that hears of ends
decided elsewhere. Stand-ins replace the job context, the session and the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from livekit import api, rtc

from callagent.agent import GOODBYE_MAX_S, timers
from callagent.agent import job as job_module
from callagent.agent.ending import Ending
from callagent.agent.job import CallJob
from callagent.agent.timers import heartbeat_verdict
from callagent.calls import CallRecord, CallRequest, CallStatus, EndReason, Outcome, utcnow
from callagent.dialer import HANG_UP_ATTEMPTS
from callagent.languages import PHRASES

REQUEST = CallRequest(
    call_id="abc123",
    phone_number="+14155550100",
    goal="Confirm the appointment",
    caller_name="Dr. Smith's office",
    max_duration_s=300,
    ring_timeout_s=30,
)


# -- the decision -------------------------------------------------------------------------------


def test_the_first_decision_stands() -> None:
    ending = Ending()
    voicemail = (CallStatus.voicemail, EndReason.voicemail_left, "reached voicemail")
    assert ending.settle(*voicemail) == voicemail
    assert ending.settle(CallStatus.completed, EndReason.callee_hung_up, "the callee hung up") == voicemail
    ending.room_closed(answered=True)
    ending.session_closed(RuntimeError("boom"))
    assert ending.final == voicemail
    assert ending.for_record("room closed") == voicemail


@pytest.mark.parametrize(
    ("reason", "status", "code", "text"),
    [
        (rtc.DisconnectReason.USER_REJECTED, CallStatus.declined, EndReason.declined, "the callee declined the call"),
        (rtc.DisconnectReason.USER_UNAVAILABLE, CallStatus.no_answer, EndReason.no_answer, "the callee did not answer"),
        (
            rtc.DisconnectReason.SIP_TRUNK_FAILURE,
            CallStatus.failed,
            EndReason.sip_error,
            "the SIP trunk failed to place the call",
        ),
        (
            rtc.DisconnectReason.CLIENT_INITIATED,
            CallStatus.failed,
            EndReason.sip_error,
            "the call ended before it was answered",
        ),
        (None, CallStatus.failed, EndReason.sip_error, "the call ended before it was answered"),
    ],
)
def test_the_line_leaving_before_the_answer_maps_its_disconnect_reason(
    reason: int | None, status: CallStatus, code: EndReason, text: str
) -> None:
    ending = Ending()
    ending.callee_left(answered=False, disconnect_reason=reason)
    assert ending.final == (status, code, text)


@pytest.mark.parametrize("reason", [rtc.DisconnectReason.USER_REJECTED, rtc.DisconnectReason.CLIENT_INITIATED, None])
def test_the_line_leaving_after_the_answer_is_the_callee_hanging_up(reason: int | None) -> None:
    ending = Ending()
    ending.callee_left(answered=True, disconnect_reason=reason)
    assert ending.final == (CallStatus.completed, EndReason.callee_hung_up, "the callee hung up")


def test_a_closed_room_is_only_the_fallback() -> None:
    before, after = Ending(), Ending()
    before.room_closed(answered=False)
    after.room_closed(answered=True)
    assert before.final is None and after.final is None  # the store may know better
    assert before.for_record("room closed") == (
        CallStatus.canceled,
        EndReason.room_closed,
        "the call was ended before it was answered",
    )
    assert after.for_record("room closed") == (
        CallStatus.completed,
        EndReason.room_closed,
        "the call's room was closed",
    )


def test_a_hang_up_asked_for_in_the_store_explains_a_closed_room() -> None:
    """end_call notes the request, then deletes the room: the worker's record says why."""
    ending = Ending()
    ending.callee_left(answered=True, disconnect_reason=rtc.DisconnectReason.ROOM_DELETED)  # not a hang-up
    assert ending.final is None
    asked = record(
        hangup_requested_at=utcnow(), hangup_reason="ended by the MCP client", hangup_status=CallStatus.canceled
    )
    assert ending.for_record("room closed", asked) == (
        CallStatus.canceled,
        EndReason.canceled,
        "ended by the MCP client",
    )
    decided = Ending()
    done = (CallStatus.completed, EndReason.agent_ended, "the agent ended the call")
    decided.settle(*done)  # a decision made here stands
    assert decided.for_record("x", asked) == done


def test_a_closed_session_decides_only_when_it_failed() -> None:
    clean, broken = Ending(), Ending()
    clean.session_closed(None)
    broken.session_closed(RuntimeError("the LLM is gone"))
    assert clean.final is None
    assert broken.final == (CallStatus.failed, EndReason.pipeline_error, "the voice pipeline failed: the LLM is gone")


def test_a_job_ending_undecided_is_a_failure_saying_why() -> None:
    assert Ending().for_record("room closed") == (
        CallStatus.failed,
        EndReason.worker_error,
        "the worker ended the call unexpectedly (room closed)",
    )
    assert Ending().for_record("") == (
        CallStatus.failed,
        EndReason.worker_error,
        "the worker ended the call unexpectedly (shutdown)",
    )


def test_a_failed_hang_up_is_noted_in_the_record() -> None:
    ending = Ending()
    ending.settle(CallStatus.completed, EndReason.max_duration, "reached the maximum call duration (300 s)")
    ending.hangup_problem = "TwirpError: internal"
    status, _, reason = ending.for_record("")
    assert status == CallStatus.completed
    assert reason.startswith(
        "reached the maximum call duration (300 s) (hanging up through LiveKit failed: "
        "TwirpError: internal; the line may have stayed open"
    )
    assert "LiveKit's own limit" in reason
    assert ending.final == (CallStatus.completed, EndReason.max_duration, "reached the maximum call duration (300 s)")


# -- the job, with stand-ins --------------------------------------------------------------------


class FakeStore:
    """The store methods the worker calls, recorded; `beats` are the heartbeat's answers in
    turn (an exception is raised)."""

    def __init__(self, beats: list[CallRecord | Exception | None] | None = None) -> None:
        self.beats = list(beats or [])
        self.made: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        # The Database's repositories the worker uses: one fake stands for both.
        self.calls = self.do_not_call = self
        self.closed = False
        self.fail_on: str | None = None

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        assert not self.closed, f"{name} after close"
        self.made.append((name, args, kwargs))
        if name == self.fail_on:
            raise RuntimeError(f"{name} failed")

    def heartbeat(self, call_id: str) -> CallRecord | None:
        self._call("heartbeat", call_id)
        beat = self.beats.pop(0) if self.beats else record()
        if isinstance(beat, Exception):
            raise beat
        return beat

    def transition(self, call_id: str, status: CallStatus, **fields: Any) -> None:
        self._call("transition", call_id, status, **fields)

    def update(self, call_id: str, **fields: Any) -> None:
        self._call("update", call_id, **fields)

    def get(self, call_id: str) -> CallRecord | None:
        self._call("get", call_id)
        return record(status=CallStatus.completed)

    def add(self, number: str, reason: str, call_id: str) -> None:
        self._call("add_do_not_call", number, reason, call_id)

    def close(self) -> None:
        self.closed = True


class FakeRooms:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.deleted: list[str] = []

    async def delete_room(self, req: api.DeleteRoomRequest) -> None:
        self.deleted.append(req.room)
        if self.errors:
            raise self.errors.pop(0)


class FakeSession:
    def __init__(self) -> None:
        self.said: list[str] = []

    def say(self, text: str, **kwargs: object) -> object:
        self.said.append(text)

        async def played() -> None:
            return None

        return SimpleNamespace(wait_for_playout=played)


def record(**fields: Any) -> CallRecord:
    return CallRecord(**{**CallRecord.from_request(REQUEST).model_dump(), "status": CallStatus.in_progress, **fields})


class FakeContext:
    """What CallJob touches of its JobContext outside `run`."""

    def __init__(self, delete_errors: list[Exception]) -> None:
        self.rooms = FakeRooms(delete_errors)
        self.api = SimpleNamespace(room=self.rooms)
        self.room = SimpleNamespace(name="call-abc123")
        self.shutdowns: list[str] = []

    def shutdown(self, reason: str = "") -> None:
        self.shutdowns.append(reason)


def make_job(store: FakeStore | None = None, delete_errors: list[Exception] | None = None) -> CallJob:
    # log_format text: the summary is the printed block (the worker in a terminal)
    settings = SimpleNamespace(livekit_timeout_s=1.0, silence_timeout_s=20.0, llm_model="gpt-test", log_format="text")
    return CallJob(FakeContext(delete_errors or []), REQUEST, settings, store or FakeStore())  # type: ignore[arg-type]


def deleted(job: CallJob) -> list[str]:
    """The rooms the job deleted (hung up)."""
    return cast(FakeContext, job.ctx).rooms.deleted


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_module, "HANG_UP_BACKOFF_S", 0.0)
    monkeypatch.setattr(timers, "HEARTBEAT_S", 0.01)


def test_a_hang_up_livekit_refuses_is_retried_then_reported() -> None:
    job = make_job(delete_errors=[api.TwirpError("internal", "boom", status=500)] * 5)
    job.settle(CallStatus.completed, EndReason.callee_hung_up, "the callee hung up")
    assert asyncio.run(job.hang_up()) is False
    assert len(deleted(job)) == HANG_UP_ATTEMPTS
    status, _, reason = job.ending.for_record("")
    assert status == CallStatus.completed and reason.startswith(
        "the callee hung up (hanging up through LiveKit failed:"
    )
    assert "boom" in reason and "the line may have stayed open" in reason


def test_a_room_already_gone_counts_as_hung_up() -> None:
    job = make_job(delete_errors=[TimeoutError(), api.TwirpError("not_found", "no room", status=404)])
    assert asyncio.run(job.hang_up()) is True
    assert len(deleted(job)) == 2 and job.ending.hangup_problem == ""


def test_the_room_closing_ends_the_job() -> None:
    job = make_job()
    job._on_room_closed()
    assert job.ended.is_set() and cast(FakeContext, job.ctx).shutdowns == ["room closed"]
    assert job.ending.final is None
    assert job.ending.closed_from_outside == (
        CallStatus.canceled,
        EndReason.room_closed,
        "the call was ended before it was answered",
    )


def test_finish_writes_the_record_and_closes_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    given = Outcome(goal_achieved="yes", key_facts=["Tuesday 10 am"], follow_ups=["Send a reminder"])

    async def summarize(*args: object) -> tuple[str, Outcome]:
        return "They confirmed.", given

    monkeypatch.setattr(job_module, "summarize", summarize)
    store = FakeStore()
    job = make_job(store)
    job.settle(CallStatus.completed, EndReason.callee_hung_up, "the callee hung up")
    job.do_not_call_requested = True
    asyncio.run(job.finish("room closed"))

    names = [name for name, _, _ in store.made]
    assert names == ["update", "transition", "get"] and store.closed
    written = store.made[0][2]["outcome"]
    assert written.follow_ups == ["Send a reminder", job_module.DO_NOT_CALL_FOLLOW_UP]
    assert written.key_facts == ["Tuesday 10 am"] and written.goal_achieved == "yes"
    assert given.follow_ups == ["Send a reminder"]  # the model's Outcome is never mutated
    assert store.made[1][1] == ("abc123", CallStatus.completed)
    assert store.made[1][2] == {"ended_reason": "the callee hung up", "end_reason": EndReason.callee_hung_up}


def test_finish_closes_the_store_when_a_write_fails(capsys: pytest.CaptureFixture[str]) -> None:
    store = FakeStore()
    store.fail_on = "transition"
    job = make_job(store)
    with pytest.raises(RuntimeError, match="transition failed"):
        asyncio.run(job.finish("shutdown"))
    assert store.closed and capsys.readouterr().out == ""


def test_finish_with_nobody_on_the_line_prints_the_record(capsys: pytest.CaptureFixture[str]) -> None:
    store = FakeStore()
    job = make_job(store)
    job.ending.room_closed(answered=False)
    asyncio.run(job.finish("room closed"))
    (looked, _, _), (_, _, update), (_, transition, _), _ = store.made
    assert looked == "get"  # undecided here: the store is asked whether a hang-up was requested
    assert update["summary"] == "No conversation took place: the call was ended before it was answered."
    assert update["outcome"] == Outcome(goal_achieved="no") and update["transcript"] == []
    assert transition == ("abc123", CallStatus.canceled)
    assert "Call abc123 to" in capsys.readouterr().out


# -- the heartbeat ------------------------------------------------------------------------------


def test_a_live_call_carries_on() -> None:
    assert heartbeat_verdict(record()) is None
    assert heartbeat_verdict(record(status=CallStatus.ringing)) is None


def test_a_call_ended_elsewhere_ends_as_the_store_says() -> None:
    assert heartbeat_verdict(
        record(status=CallStatus.canceled, ended_reason="ended by another server", end_reason=EndReason.canceled)
    ) == (CallStatus.canceled, EndReason.canceled, "ended by another server")
    assert heartbeat_verdict(record(status=CallStatus.failed, end_reason=EndReason.worker_lost)) == (
        CallStatus.failed,
        EndReason.worker_lost,
        "ended elsewhere",
    )


def test_a_missing_record_fails_the_call() -> None:
    assert heartbeat_verdict(None) == (
        CallStatus.failed,
        EndReason.worker_error,
        "the call's record disappeared from the call store",
    )


def test_a_hang_up_request_ends_the_call_with_its_status() -> None:
    asked = utcnow() - timedelta(seconds=1)
    assert heartbeat_verdict(
        record(hangup_requested_at=asked, hangup_status=CallStatus.completed, hangup_reason="ended by the MCP client")
    ) == (CallStatus.completed, EndReason.canceled, "ended by the MCP client")
    assert heartbeat_verdict(record(hangup_requested_at=asked)) == (
        CallStatus.canceled,
        EndReason.canceled,
        "ended elsewhere",
    )
    # A terminal record says how it ended, whatever hang-up was asked before.
    assert heartbeat_verdict(
        record(
            status=CallStatus.failed, ended_reason="the worker died", hangup_requested_at=asked, hangup_reason="stale"
        )
    ) == (CallStatus.failed, EndReason.canceled, "the worker died")


def test_the_heartbeat_hangs_up_with_a_goodbye_when_the_store_says_so() -> None:
    store = FakeStore(
        [
            record(),
            RuntimeError("database is locked"),
            record(status=CallStatus.canceled, ended_reason="ended by another server", end_reason=EndReason.canceled),
        ]
    )
    job = make_job(store)
    session = FakeSession()
    job.session = session  # type: ignore[assignment]
    job.answered.set()
    asyncio.run(beat_until(job, lambda: bool(deleted(job))))
    assert [name for name, _, _ in store.made][:3] == ["heartbeat"] * 3  # a failed beat is no reason to stop
    assert job.ending.final == (CallStatus.canceled, EndReason.canceled, "ended by another server")
    assert session.said == [PHRASES["en"]["ended_elsewhere"]] and GOODBYE_MAX_S > 0
    assert deleted(job) == ["call-abc123"]


def test_the_heartbeat_hangs_up_a_call_not_yet_answered_without_a_word() -> None:
    store = FakeStore(
        [
            record(
                status=CallStatus.ringing,
                hangup_requested_at=utcnow(),
                hangup_status=CallStatus.canceled,
                hangup_reason="ended by the MCP client",
            )
        ]
    )
    job = make_job(store)
    session = FakeSession()
    job.session = session  # type: ignore[assignment]
    asyncio.run(beat_until(job, lambda: bool(deleted(job))))
    assert session.said == [] and deleted(job) == ["call-abc123"]
    assert job.ending.final == (CallStatus.canceled, EndReason.canceled, "ended by the MCP client")


async def beat_until(job: CallJob, cond: Callable[[], bool], timeout: float = 5) -> None:
    """Run the heartbeat until `cond` holds, then stop it as CallJob.finish does (it never stops
    by itself while the job lives)."""
    beating = asyncio.ensure_future(timers.heartbeat(job))
    try:
        async with asyncio.timeout(timeout):
            while not cond():
                await asyncio.sleep(0.01)
    finally:
        beating.cancel()


def test_the_heartbeat_goes_on_after_the_call_ended_until_the_record_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timers, "HEARTBEAT_S", 0.02)
    # After the end, the store would say "hang up" (the line is already down): nobody acts on it.
    store = FakeStore([record(), record(hangup_requested_at=utcnow()), record(hangup_requested_at=utcnow())])
    job = make_job(store)

    async def main() -> None:
        beating = asyncio.ensure_future(timers.heartbeat(job))
        await asyncio.sleep(0.01)
        job.ended.set()
        beats = len(store.made)
        # LiveKit winds the job down (session, room) before finish() writes the record: a job
        # still alive says so meanwhile, or the reaper would fail a call that ended well.
        async with asyncio.timeout(2):
            while len(store.made) < beats + 3:
                await asyncio.sleep(0.01)
        assert not beating.done()
        beating.cancel()

    asyncio.run(main())
    assert {name for name, _, _ in store.made} == {"heartbeat"}
    assert job.ending.final is None and deleted(job) == []


# -- every log line of the job carries its call id ----------------------------------------------


def test_the_job_tags_its_log_lines_with_the_call_id(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[CallJob] = []

    async def run(self: CallJob) -> None:
        ran.append(self)

    monkeypatch.setattr(CallJob, "run", run)
    monkeypatch.setattr(job_module, "open_store", lambda settings: FakeStore())
    monkeypatch.setattr(job_module, "get_settings", lambda: SimpleNamespace(db_url="sqlite://"))
    ctx = SimpleNamespace(job=SimpleNamespace(metadata=REQUEST.to_metadata()), log_context_fields={})
    with caplog.at_level(logging.INFO, logger="callagent.agent"):
        asyncio.run(job_module.entrypoint(ctx))  # type: ignore[arg-type]
    assert ctx.log_context_fields == {"call_id": "abc123"} and ran
    joining = [r.getMessage() for r in caplog.records if "joining" in r.getMessage()]
    assert joining and "abc123" not in joining[0]


def test_on_hold_silence_does_not_end_the_call_but_max_hold_s_does() -> None:
    async def scenario() -> CallJob:
        job = make_job()
        job.request = REQUEST.model_copy(update={"max_hold_s": 1})
        job.answered.set()
        job.hold()
        timers.on_user_state(job, SimpleNamespace(new_state="away"))  # type: ignore[arg-type]
        assert job.ending.final is None  # silence on hold is waiting, not the end
        await asyncio.sleep(1.3)
        return job

    job = asyncio.run(scenario())
    assert job.ending.final is not None and job.ending.final[:2] == (CallStatus.failed, EndReason.hold_timeout)
    assert deleted(job) == ["call-abc123"]


def test_a_person_after_hold_ends_the_wait() -> None:
    async def scenario() -> CallJob:
        job = make_job()
        job.request = REQUEST.model_copy(update={"max_hold_s": 1})
        job.hold()
        job.unhold()
        await asyncio.sleep(1.3)
        return job

    job = asyncio.run(scenario())
    assert job.ending.final is None and not job.on_hold and deleted(job) == []


def test_a_menu_heard_three_times_is_a_dead_end() -> None:
    from livekit.agents import StopResponse, llm

    from callagent.agent.conversation import MENU_LOOP_ROUNDS, CallAgent

    async def scenario() -> CallJob:
        job = make_job()
        agent = CallAgent(job)
        menu = "For appointments, press 1. For billing, press 2."
        for _ in range(MENU_LOOP_ROUNDS - 1):
            await agent.on_user_turn_completed(llm.ChatContext(), llm.ChatMessage(role="user", content=[menu]))
        assert job.ending.final is None  # twice is a menu, not yet a loop
        with pytest.raises(StopResponse):
            await agent.on_user_turn_completed(llm.ChatContext(), llm.ChatMessage(role="user", content=[menu]))
        await asyncio.sleep(0.1)
        return job

    job = asyncio.run(scenario())
    assert job.ending.final is not None and job.ending.final[:2] == (CallStatus.failed, EndReason.ivr_dead_end)
    assert deleted(job) == ["call-abc123"]
