"""One call as the worker holds it: the LiveKit job from joining the room to the written record."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from livekit import api, rtc
from livekit.agents import AgentSession, CloseEvent, JobContext
from livekit.agents.voice.room_io import AudioInputOptions, RoomOptions, TextOutputOptions

from callagent.agent import timers
from callagent.agent.conversation import CallAgent
from callagent.agent.ending import Ending
from callagent.agent.opening import end_unless_disclosed, play_opening, prepare_opening
from callagent.agent.recording import CallRecorder, session_record
from callagent.agent.session import build_session
from callagent.agent.summary import print_summary, summarize, transcript_from
from callagent.agent.tooluse import ToolBox, note_event
from callagent.calls import CallEvent, CallRecord, CallRequest, CallStatus, EndReason, ToolUse, Transfer, utcnow
from callagent.dialer import HANG_UP_ATTEMPTS, HANG_UP_BACKOFF_S
from callagent.numbers import mask, mask_numbers_in_text
from callagent.settings import Settings, get_settings

if TYPE_CHECKING:
    from callagent.agent.bridge import Bridge
    from callagent.agent.transfer import Consult
    from callagent.store import Database

log = logging.getLogger(__name__)

SIP_STATUS_ATTR = "sip.callStatus"
RING_WAIT_MARGIN_S = 15  # on top of the ring timeout, for the SIP participant to join the room
DO_NOT_CALL_FOLLOW_UP = "The callee asked not to be called again; the number is on the do-not-call list."


class CallJob:
    """One call as the worker sees it: answer gating, the session, and the final record."""

    def __init__(self, ctx: JobContext, request: CallRequest, settings: Settings, db: Database) -> None:
        self.ctx = ctx
        self.request = request
        self.settings = settings
        self.db = db  # this job's own; closed when the job finishes
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.session: AgentSession[Any] | None = None
        self.ending = Ending()
        self.do_not_call_requested = False
        self.on_hold = False  # music or a queue's announcements: the agent waits, silently
        self.recorder: CallRecorder | None = None  # a recorded call's (callagent.agent.recording)
        self.callee: rtc.RemoteParticipant | None = None  # the phone line, once it joined
        self.transferring = False  # the callee is on hold while the agent reaches a person for them
        self.transfers: list[Transfer] = []  # every attempt, as the record keeps them
        self.handover: tuple[Bridge, Consult] | None = None  # handed over: the worker only bridges now
        self.written: CallRecord | None = None  # the final record, once written
        self._hold_timer: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Future[Any]] = []
        self._answered_mono: float | None = None
        self.events: list[CallEvent] = []  # the line's timeline, as the record keeps it
        self._events_lock = asyncio.Lock()
        self.toolbox = ToolBox(self)  # the operator's MCP tools (callagent.toml [tools])

    def settle(self, status: CallStatus, end_reason: EndReason, reason: str) -> None:
        self.ending.settle(status, end_reason, reason)

    def hold(self) -> None:
        """On hold: silent, no silence timeout, and at most max_hold_s before giving up."""
        if not self.on_hold:
            self.on_hold = True
            log.info("on hold; waiting up to %d s for a person", self.request.max_hold_s)
            self.note("hold", f"waiting up to {self.request.max_hold_s} s for a person")
            self._hold_timer = asyncio.ensure_future(timers.hold_timeout(self))
            self._tasks.append(self._hold_timer)

    def unhold(self) -> None:
        if self.on_hold:
            self.on_hold = False
            log.info("off hold: a person picked up")
            self.note("off_hold", "a person picked up")
            if self._hold_timer is not None:
                self._hold_timer.cancel()

    def note(self, kind: str, detail: str | None = None) -> None:
        """Put an event on the call's timeline (numbers masked); written off the event loop."""
        self.events.append(CallEvent(at=utcnow(), kind=kind, detail=mask_numbers_in_text(detail) if detail else None))
        self.spawn(self._save_events())

    async def _save_events(self) -> None:
        # One write at a time, each of the whole list as it is then: the last one has them all.
        async with self._events_lock:
            await asyncio.to_thread(self.db.calls.update, self.request.call_id, events=list(self.events))

    def note_tool(self, use: ToolUse) -> None:
        """An operator's tool was used: on the timeline, with what was asked and what came back."""
        self.events.append(note_event(use))
        self.spawn(self._save_events())

    def _on_tools_executed(self, ev: Any) -> None:
        for call in ev.function_calls:
            if call.name not in self.toolbox.names:  # those are noted in full by the toolbox
                self.note("tool", f"{call.name}({call.arguments})"[:300])

    def seconds_since_answer(self) -> float:
        return time.monotonic() - self._answered_mono if self._answered_mono is not None else 0.0

    # -- transfers (callagent.agent.transfer does them; the job keeps their record) --------------

    async def begin_transfer(self) -> None:
        assert self.request.transfer_to is not None
        self.transfers.append(
            Transfer(to=self.request.transfer_to, mode=self.request.transfer_mode, started_at=utcnow())
        )
        await self._save_transfers()

    def transfer_answered(self) -> None:
        self.transfers[-1] = self.transfers[-1].model_copy(update={"answered_at": utcnow()})
        self.spawn(self._save_transfers())

    async def end_transfer(self, outcome: str, reason: str, sip_status_code: int | None = None) -> None:
        update = {"outcome": outcome, "reason": reason, "sip_status_code": sip_status_code, "ended_at": utcnow()}
        self.transfers[-1] = Transfer.model_validate({**self.transfers[-1].model_dump(), **update})
        await self._save_transfers()

    async def _save_transfers(self) -> None:
        await asyncio.to_thread(self.db.calls.update, self.request.call_id, transfers=self.transfers)

    async def handed_over(self, bridge: Bridge, consult: Consult, reason: str) -> None:
        """The callee and the person now hear each other: the agent's part is over. The record
        is written now (transcript up to the handover); the job stays, as the bridge, until
        either side hangs up or the call's maximum duration."""
        target = mask(self.request.transfer_to or "")
        self.handover = (bridge, consult)
        await self.end_transfer("connected", reason)
        self.settle(CallStatus.transferred, EndReason.transferred, f"handed to {target} (warm transfer): {reason}")
        log.info("handed over to %s; bridging until either side hangs up", target)
        self.written = await self._write_record("handed over")
        if self.written is not None:
            # The operator sees the handover now, not when the bridge ends.
            print_summary(self.written, self.settings.log_format)
        self.spawn(self._end_with_either_side(consult))

    async def _end_with_either_side(self, consult: Consult) -> None:
        callee_gone = asyncio.ensure_future(self.ended.wait())
        target_gone = asyncio.ensure_future(consult.left.wait())
        try:
            await asyncio.wait({callee_gone, target_gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            callee_gone.cancel()
            target_gone.cancel()
        log.info("the transferred call ended (%s hung up)", "the callee" if self.ended.is_set() else "the target")
        await self.hang_up()
        self.ctx.shutdown("transferred call ended")

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run `coro` alongside the call; it is cancelled when the job finishes."""
        self._tasks.append(asyncio.ensure_future(coro))

    async def hang_up(self) -> bool:
        """Delete the call's room (the phone gets a BYE); a few bounded tries. True once done
        (a room already gone counts). On failure the final record says the line may have
        stayed open: the job ends anyway, but a result never claims a hang-up that failed."""
        problem = ""
        for attempt in range(HANG_UP_ATTEMPTS):
            try:
                await asyncio.wait_for(
                    self.ctx.api.room.delete_room(api.DeleteRoomRequest(room=self.ctx.room.name)),
                    self.settings.livekit_timeout_s,
                )
                return True
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then reported in the record
                if isinstance(exc, api.TwirpError) and (exc.status == 404 or exc.code == "not_found"):
                    return True
                problem = f"{exc.__class__.__name__}: {exc}"
                log.warning("hanging up failed (try %d of %d): %s", attempt + 1, HANG_UP_ATTEMPTS, problem)
            await asyncio.sleep(HANG_UP_BACKOFF_S * 2**attempt)
        self.ending.hangup_problem = problem
        return False

    async def add_to_do_not_call(self) -> None:
        """The callee asked not to be called again: on the list of whoever placed the call (a
        tenant's own list for a tenant's call; the global list for the operator's)."""
        request = self.request

        def add() -> None:
            record = self.db.calls.get(request.call_id)
            tenant = record.tenant if record is not None else None
            self.db.do_not_call.add(request.phone_number, "asked during a call", request.call_id, tenant=tenant)

        await asyncio.to_thread(add)

    def _on_sip_status(self, participant: rtc.Participant) -> None:
        status = participant.attributes.get(SIP_STATUS_ATTR)
        call_id = self.request.call_id
        # Store writes go to a thread: the event loop carries the call's audio.
        if status == "ringing":
            self.spawn(asyncio.to_thread(self.db.calls.transition, call_id, CallStatus.ringing))
        elif status == "active" and not self.answered.is_set():
            self.answered.set()
            self._answered_mono = time.monotonic()
            answered_at = time.time()
            log.info(
                "answered: the callee picked up (sip.callStatus active)",
                extra={"event": "answered", "answered_at": answered_at},
            )
            self.spawn(
                asyncio.to_thread(self.db.calls.transition, call_id, CallStatus.in_progress, answered_at=utcnow())
            )
            if self.request.dtmf:  # LiveKit keys them in now that the line is answered
                self.note("dtmf", f"keyed in {self.request.dtmf} after the answer")

    def _on_attributes_changed(self, _: dict[str, str], participant: rtc.Participant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
            self._on_sip_status(participant)

    def _on_callee_gone(self, participant: rtc.RemoteParticipant) -> None:
        if participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
            return
        self.ending.callee_left(answered=self.answered.is_set(), disconnect_reason=participant.disconnect_reason)
        self.ended.set()

    def _on_room_closed(self) -> None:
        self.ending.room_closed(answered=self.answered.is_set())
        self.ended.set()
        self.ctx.shutdown("room closed")

    def _on_session_close(self, ev: CloseEvent) -> None:
        self.ending.session_closed(ev.error)
        self.ended.set()
        # The call is over: end the job now (finish() runs as its shutdown callback) rather
        # than holding a process slot until LiveKit empties the room.
        self.ctx.shutdown("call ended")

    async def run(self) -> None:
        ctx, req = self.ctx, self.request
        ctx.add_shutdown_callback(self.finish)
        self.spawn(timers.heartbeat(self))
        session = build_session(self.settings, req, ctx.proc.userdata.get("vad"))
        self.session = session
        # Render the greeting while the phone rings, so it plays the instant the callee answers;
        # in realtime mode too: the disclosure is audio of the operator's text, never the model's.
        greeting, greeting_audio = prepare_opening(self.settings, req, session)

        await ctx.connect()
        # The operator's tool servers are reached while the phone rings, after the greeting's
        # synthesis and the room's connection have started.
        tools_ready = asyncio.ensure_future(self.toolbox.open())

        ctx.room.on("participant_attributes_changed", self._on_attributes_changed)
        ctx.room.on("participant_disconnected", self._on_callee_gone)
        ctx.room.on("disconnected", lambda *_: self._on_room_closed())

        try:
            callee = await asyncio.wait_for(
                ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP),
                req.ring_timeout_s + RING_WAIT_MARGIN_S,
            )
        except TimeoutError:
            self.settle(CallStatus.failed, EndReason.not_placed, "the phone line never joined the call")
            tools_ready.cancel()
            ctx.shutdown("no SIP participant")
            return
        self.callee = callee
        mcp_tools = await tools_ready
        self._on_sip_status(callee)

        await session.start(
            agent=CallAgent(self, mcp_tools),
            room=ctx.room,
            room_options=RoomOptions(
                participant_identity=callee.identity,
                close_on_disconnect=True,
                # A phone line carries 8 kHz; 16 kHz is what the VAD and the end-of-turn model
                # take, so nothing is resampled twice. 20 ms frames: the end of speech is seen
                # sooner than with LiveKit's 50 ms.
                audio_input=AudioInputOptions(sample_rate=16000, frame_size_ms=20),
                # Nobody reads live captions on a phone call, and syncing them to the audio
                # stalled the event loop for 100-550 ms right on the answer path.
                text_output=TextOutputOptions(sync_transcription=False),
            ),
            record=session_record(ctx.job.enable_recording),  # never the session's own audio recording
        )
        if req.record:  # wraps the session's audio now; records from the answer on
            self.recorder = CallRecorder(session, self.settings, req.call_id, self.db)
        session.on("close", self._on_session_close)
        session.on("user_state_changed", lambda ev: timers.on_user_state(self, ev))
        session.on("function_tools_executed", self._on_tools_executed)

        # Never speak before the callee has answered.
        answered = asyncio.ensure_future(self.answered.wait())
        ended = asyncio.ensure_future(self.ended.wait())
        await asyncio.wait({answered, ended}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        if not self.answered.is_set():
            answered.cancel()
            ctx.shutdown("not answered")
            return

        if self.recorder is not None:
            await self.recorder.start()
        play_opening(session, greeting, greeting_audio)
        self.spawn(end_unless_disclosed(self, greeting_audio))
        self.spawn(timers.max_duration(self))

    async def finish(self, reason: str = "") -> None:
        """Shutdown callback: write transcript, summary, outcome and the final status, then
        release the store."""
        self.ended.set()
        for task in self._tasks:
            task.cancel()
        try:
            await self.toolbox.aclose()
            if self.handover is not None:
                bridge, consult = self.handover
                await consult.aclose()  # the target's line goes with the call
                await bridge.aclose()
            if self.written is not None:
                return  # written (and shown) at the handover
            record = await self._write_record(reason)
        finally:
            await asyncio.to_thread(self.db.close)
        print_summary(record, self.settings.log_format)

    async def _write_record(self, shutdown_reason: str) -> CallRecord | None:
        req = self.request
        if self.recorder is not None:  # the agent's part is over: the file is closed into the record first
            await self.recorder.finish()
        stored = None
        if self.ending.final is None:  # not decided here: was a hang-up asked for elsewhere?
            stored = await asyncio.to_thread(self.db.calls.get, req.call_id)
        status, end_reason, ended_reason = self.ending.for_record(shutdown_reason, stored)
        transcript = transcript_from(self.session, self.toolbox.transcript_line) if self.session else []
        summary, outcome = await summarize(self.settings, req, transcript, status, ended_reason)
        if self.do_not_call_requested and outcome is not None:
            outcome = outcome.model_copy(update={"follow_ups": [*outcome.follow_ups, DO_NOT_CALL_FOLLOW_UP]})
        await asyncio.to_thread(
            self.db.calls.update, req.call_id, transcript=transcript, summary=summary, outcome=outcome
        )
        await asyncio.to_thread(
            self.db.calls.transition, req.call_id, status, ended_reason=ended_reason, end_reason=end_reason
        )
        return await asyncio.to_thread(self.db.calls.get, req.call_id)


def open_store(settings: Settings) -> Database:
    # Imported on use: the store loads SQLAlchemy, which the worker's import need not pay for.
    from callagent.store import Database

    return Database(settings.db_url)


async def entrypoint(ctx: JobContext) -> None:
    settings = get_settings()
    try:
        request = CallRequest.from_metadata(ctx.job.metadata)
    except ValueError as exc:
        log.error("refusing a job with invalid call metadata: %s", exc)
        ctx.shutdown("invalid metadata")
        return
    # Every log record of this job, LiveKit's included, carries the call's id.
    ctx.log_context_fields["call_id"] = request.call_id
    log.info("joining a call to %s", mask(request.phone_number), extra={"event": "joining"})
    await CallJob(ctx, request, settings, open_store(settings)).run()
