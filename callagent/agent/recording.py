"""Recording a call in the worker: LiveKit Agents' own RecorderIO around the session's audio,
writing straight into the operator's recordings folder.

RecorderIO writes one stereo Ogg/Opus file, channel 1 what came in (the callee), channel 2
what the agent played, both on one absolute timeline (silence where nobody spoke, hold music
where it played), flushed every 2.5 s. The session's built-in use of it
(`AgentSession.start(record=True)`) is not used: it writes into the job's temporary folder,
which LiveKit removes when the job ends, and is meant for upload to LiveKit Cloud. Here the
file is ours from the first byte: created 0600 in the recordings folder before the recorder
opens it, so a worker killed mid-call leaves a playable file (all but its last seconds).

The record says `recording` from the answer on, so a call whose worker dies is visible as
such (the server's reaper then marks it incomplete or lost); at the end it says `complete`
with the file's length, size and hash.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import av
from livekit.agents import AgentSession
from livekit.agents.voice.agent_session import RecordingOptions
from livekit.agents.voice.recorder_io import RecorderIO
from livekit.agents.voice.recorder_io import recorder_io as _recorder_module

from callagent import recordings
from callagent.calls import Recording
from callagent.settings import Settings, recordings_dir

if TYPE_CHECKING:
    from callagent.store import Database

__all__ = ["CallRecorder", "expire_in_background", "session_record"]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 10.0  # the encoder has at most 2.5 s of audio left to write
EXPIRE_EVERY_S = 3600.0


def session_record(enable_recording: bool) -> bool | RecordingOptions:
    """`AgentSession.start(record=...)`: the session never records audio itself. Not given, it
    follows the job's `enable_recording` (LiveKit Cloud's observability) and would record every
    call into the job's temporary folder for upload, also calls the callee was not told were
    recorded. The rest of the observability stays as the project has it."""
    return RecordingOptions(audio=False) if enable_recording else False


class _FlushingAv:
    """PyAV as RecorderIO sees it: the same, except that the recording is opened with FFmpeg's
    `flush_packets`, so every finished Ogg page (one a second) reaches the disk at once.
    Without it FFmpeg kept a whole 12 s test recording in its buffers until the file was
    closed: a worker killed mid-call would have left an empty file."""

    def __getattr__(self, name: str) -> Any:
        return getattr(av, name)

    @staticmethod
    def open(file: Any, mode: str | None = None, **kwargs: Any) -> Any:
        if mode == "w":
            kwargs["container_options"] = {**(kwargs.get("container_options") or {}), "flush_packets": "1"}
        opener: Any = av.open  # typed per mode; this passes the caller's mode on as it is
        return opener(file, mode, **kwargs)


def _flush_every_page() -> None:
    names = vars(_recorder_module)  # the module's global `av`, which its encoder thread opens the file with
    if not isinstance(names["av"], _FlushingAv):
        names["av"] = _FlushingAv()


class CallRecorder:
    """One call's recording. Made once the session has started (the call is ringing): it
    wraps the session's audio input and output, which pass through untouched until `start`."""

    def __init__(self, session: AgentSession[Any], settings: Settings, call_id: str, db: Database) -> None:
        self.call_id = call_id
        self.db = db
        self.path = recordings_dir(settings) / recordings.file_name(call_id)
        self.record: Recording | None = None  # set at the answer
        self._written: asyncio.Future[Any] | None = None
        self._finished: Recording | None = None  # once closed: finish() runs once
        self._io: RecorderIO | None = None
        if session.input.audio is None or session.output.audio is None:
            log.error("recording: the session has no audio input or output; nothing can be recorded")
            return
        _flush_every_page()
        self._io = RecorderIO(agent_session=session)
        session.input.audio = self._io.record_input(session.input.audio)
        session.output.audio = self._io.record_output(session.output.audio)

    async def start(self) -> None:
        """At the answer: open the file and start writing. A failure is logged and kept for the
        record (lost, with the reason); the call goes on."""
        now = datetime.now(UTC)
        problem = None
        if self._io is None:
            problem = "the session had no audio to record"
        else:
            try:
                recordings.private_dir(self.path.parent)
                recordings.create_private_file(self.path)
                await self._io.start(output_path=self.path)
                started_at = self._io.recording_started_at
                now = datetime.fromtimestamp(started_at, UTC) if started_at else now
            except Exception as exc:  # noqa: BLE001 - the call goes on; the record says why nothing was kept
                problem = f"the recorder could not start ({exc.__class__.__name__}: {exc})"
                log.error("recording: %s", problem)
                self._io = None
        self.record = recordings.started(self.call_id, now)
        if problem is not None:
            self.record = recordings.completed(self.record, None, problem=problem)
        else:
            log.info("recording to %s", self.path)
        # Off the answer path: the opening plays meanwhile.
        self._written = asyncio.ensure_future(
            asyncio.to_thread(self.db.calls.update, self.call_id, recording=self.record)
        )

    async def finish(self) -> Recording | None:
        """When the agent's part of the call is over, before the final record is written: close
        the file and write what it holds into the record. Once; never raises; None when the call
        was never answered."""
        if self.record is None or self._finished is not None:
            return self._finished
        rec = self._finished = self.record
        try:
            problem = None
            if self._io is not None:
                try:
                    await asyncio.wait_for(self._io.aclose(), CLOSE_TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 - what was written is kept; the record says what went wrong
                    problem = f"closing the recording failed ({exc.__class__.__name__}: {exc})"
                    log.error("recording: %s", problem)
                facts = await asyncio.to_thread(recordings.inspect, self.path)
                rec = recordings.completed(rec, facts, problem=problem)
                if rec.state == "lost":
                    await asyncio.to_thread(self.path.unlink, missing_ok=True)
            if self._written is not None:
                await asyncio.shield(self._written)  # the "recording" write must not land after this one
            self._finished = rec
            await asyncio.to_thread(self.db.calls.update, self.call_id, recording=rec)
            log.info(
                "recording %s: %s",
                rec.state,
                f"{rec.duration_s:.1f} s, {rec.bytes} bytes" if rec.duration_s is not None else rec.note,
                extra={"recording_state": rec.state, "recording_s": rec.duration_s},
            )
        except Exception:
            log.exception("recording: could not write the recording into the record")
        return rec


def expire_in_background(settings: Settings) -> threading.Thread:
    """Apply the retention period from the worker: at its start, then every hour, in a daemon
    thread. The store is opened only when a file is due."""

    def run() -> None:
        directory = recordings_dir(settings)
        days = settings.recording_retention_days
        while True:
            try:
                names = recordings.due(directory, days)
                if names:
                    from callagent.store import Database

                    with Database(settings.db_url) as db:
                        recordings.expire(directory, names, db, days)
            except Exception:
                log.exception("recordings: applying the retention period failed; trying again in an hour")
            time.sleep(EXPIRE_EVERY_S)

    thread = threading.Thread(target=run, name="callagent-recordings-retention", daemon=True)
    thread.start()
    return thread
