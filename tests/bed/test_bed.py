"""The telephony bed itself, driven with nothing but the raw LiveKit clients.

These run inside `devstack run` (the README's test command): real livekit-server, real
livekit-sip, the simulated phone on the other side of a SIP trunk.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid

import numpy as np
import pytest
from google.protobuf.duration_pb2 import Duration
from livekit import api, rtc

from devstack import phonelog
from devstack.phone import parse_wav, resample
from devstack.scenarios import CALL_ID_HEADER

pytestmark = pytest.mark.bed


def _lk() -> api.LiveKitAPI:
    return api.LiveKitAPI(os.environ["LIVEKIT_URL"], os.environ["LIVEKIT_API_KEY"], os.environ["LIVEKIT_API_SECRET"])


async def _dial(number: str, key: str, room: str, *, ring_s: int = 20) -> api.SIPParticipantInfo:
    async with _lk() as lk:
        return await lk.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(
                sip_trunk_id=os.environ["SIP_OUTBOUND_TRUNK_ID"],
                sip_call_to=number,
                room_name=room,
                participant_identity=f"phone-{key}",
                headers={CALL_ID_HEADER: key},
                ringing_timeout=Duration(seconds=ring_s),
                wait_until_answered=True,
            )
        )


async def _delete_room(room: str) -> None:
    async with _lk() as lk:
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))


def test_answered_call_is_answered(bed: None) -> None:
    key, room = uuid.uuid4().hex, f"bed-{uuid.uuid4().hex[:8]}"
    info = asyncio.run(_dial("+14155550100", key, room))
    assert info.room_name == room
    call = phonelog.wait_for(key, lambda c: c.get("answered_at") is not None, timeout=5)
    assert call["final_status"] == 200
    assert call["answered_at"] - call["invite_at"] >= 0.9  # it rings once (1 s) first
    asyncio.run(_delete_room(room))
    call = phonelog.wait_for(key, lambda c: c.get("ended"), timeout=10)
    assert call["hangup_by"] == "remote"


@pytest.mark.parametrize(("number", "code"), [("+14155550103", 486), ("+14155550104", 603)])
def test_rejected_call_reports_sip_code(bed: None, number: str, code: int) -> None:
    key, room = uuid.uuid4().hex, f"bed-{uuid.uuid4().hex[:8]}"
    with pytest.raises(api.SipCallError) as err:
        asyncio.run(_dial(number, key, room))
    assert err.value.sip_status_code == code
    assert phonelog.wait_for(key, lambda c: c.get("ended"), timeout=5)["final_status"] == code


def test_unanswered_call_rings_until_timeout(bed: None) -> None:
    key, room = uuid.uuid4().hex, f"bed-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    # LiveKit reports the ring timeout as a 408 "sip request timed out", with no SIP code.
    with pytest.raises(api.ServerError) as err:
        asyncio.run(_dial("+14155550105", key, room, ring_s=3))
    took = time.monotonic() - started
    assert err.value.status == 408
    assert 2.5 <= took <= 12, took
    call = phonelog.wait_for(key, lambda c: c.get("ended"), timeout=5)
    assert call["answered_at"] is None
    assert call["hangup_by"] == "canceled" and call["final_status"] == 487


def _speech_16k(text: str) -> np.ndarray:
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], check=True, capture_output=True).stdout
    pcm, rate = parse_wav(wav)
    return resample(pcm, rate, 16000).astype(np.int16)


async def _audio_both_ways(key: str, room: str) -> tuple[float, dict]:
    token = (
        api.AccessToken(os.environ["LIVEKIT_API_KEY"], os.environ["LIVEKIT_API_SECRET"])
        .with_identity("tester")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )
    heard: list[float] = []  # seconds of loud audio received from the phone
    readers: list[asyncio.Task[None]] = []

    async def read(track: rtc.Track) -> None:
        async for ev in rtc.AudioStream(track, sample_rate=16000, num_channels=1):
            samples = np.frombuffer(ev.frame.data, dtype=np.int16).astype(np.float64)
            if np.sqrt((samples**2).mean()) > 300:
                heard.append(ev.frame.samples_per_channel / 16000)

    room_ = rtc.Room()

    @room_.on("track_subscribed")
    def _sub(track: rtc.Track, *_: object) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            readers.append(asyncio.create_task(read(track)))

    await room_.connect(os.environ["LIVEKIT_URL"], token)
    try:
        source = rtc.AudioSource(16000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("speech", source)
        await room_.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        await _dial("+14155550100", key, room)
        speech = _speech_16k("Hello, this is the test bed speaking to the phone. Can you hear me?")
        silence = np.zeros(16000 * 2, dtype=np.int16)
        for chunk in np.array_split(np.concatenate([speech, silence]), (len(speech) + len(silence)) // 160):
            frame = rtc.AudioFrame(chunk.tobytes(), 16000, 1, len(chunk))
            await source.capture_frame(frame)
        # The phone answers our speech with its first line once we have gone quiet.
        deadline = time.monotonic() + 15
        while sum(heard) < 1.0 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        call = phonelog.wait_for(key, lambda c: bool(c.get("utterances")), timeout=1)
    finally:
        await room_.disconnect()
        for t in readers:
            t.cancel()
        await _delete_room(room)
    return sum(heard), call


def test_audio_flows_both_ways(bed: None) -> None:
    key, room = uuid.uuid4().hex, f"bed-{uuid.uuid4().hex[:8]}"
    heard_s, call = asyncio.run(_audio_both_ways(key, room))
    # The participant received the phone's spoken line: real audio, not just an event.
    assert heard_s >= 1.0, heard_s
    assert call["first_audio_at"] is not None and call["first_audio_at"] >= call["answered_at"]
    call = phonelog.wait_for(key, lambda c: c.get("ended"), timeout=10)
    samples, rate = phonelog.recording(call)
    # The phone's recording holds our speech (espeak's line lasts about 4 s).
    assert phonelog.speech_seconds(samples, rate) >= 1.5
