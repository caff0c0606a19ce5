"""Two phone lines in two rooms, hearing each other: each side's audio republished into the
other's room by the worker.

Why not LiveKit's MoveParticipant (what livekit-agents' warm-transfer workflow uses): the
open-source livekit-server does not implement it (v1.13.5 answers "not implemented"), and a
self-hosted deployment is exactly what callagent must work on. A bridge costs the worker two
audio streams per transferred call until either side hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from livekit import rtc

log = logging.getLogger(__name__)

RATE = 48000  # LiveKit's native rate: no resampling on either side
CLOSE_S = 2.0


class Bridge:
    """`a` hears `b` and `b` hears `a`, where each is a participant of its own room."""

    def __init__(self, room_a: rtc.Room, a: rtc.RemoteParticipant, room_b: rtc.Room, b: rtc.RemoteParticipant) -> None:
        self._legs = ((a, room_b, "bridge-from-callee"), (b, room_a, "bridge-from-target"))
        self._tasks: list[asyncio.Task[None]] = []
        self._published: list[tuple[rtc.Room, str]] = []

    async def start(self) -> None:
        for speaker, into, name in self._legs:
            source = rtc.AudioSource(RATE, 1)
            track = rtc.LocalAudioTrack.create_audio_track(name, source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            publication = await into.local_participant.publish_track(track, options)
            self._published.append((into, publication.sid))
            self._tasks.append(asyncio.create_task(self._pump(speaker, source), name=name))
        log.info("bridge up: the callee and the transfer target hear each other")

    @staticmethod
    async def _pump(speaker: rtc.RemoteParticipant, source: rtc.AudioSource) -> None:
        stream = rtc.AudioStream.from_participant(
            participant=speaker, track_source=rtc.TrackSource.SOURCE_MICROPHONE, sample_rate=RATE, num_channels=1
        )
        try:
            async for event in stream:
                await source.capture_frame(event.frame)
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        """Stop both directions; bounded, since it runs while the job shuts down."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_S)
        for room, sid in self._published:
            if room.isconnected():
                with contextlib.suppress(Exception):  # the room may be going away
                    await asyncio.wait_for(room.local_participant.unpublish_track(sid), CLOSE_S)
        self._tasks.clear()
        self._published.clear()
