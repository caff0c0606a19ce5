"""Call recordings: the file (real Ogg/Opus written by PyAV and by LiveKit's RecorderIO), what
the record says of it, the reaper's verdict when the worker died, retention, the MCP resource
and its links, the CLI export, and the refusal when recording is off. A real SQLite store, the
MCP SDK's in-memory client, the fake LiveKit API where a request could be made."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice import io
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import BlobResourceContents, ResourceLink

from callagent import recordings
from callagent import settings as settings_module
from callagent.agent import recording as worker_recording
from callagent.calls import CallRecord, CallStatus, EndReason, Recording, utcnow
from callagent.cli import main
from callagent.service import CallService
from callagent.settings import Settings, get_settings, recordings_dir
from callagent.store import Database
from callagent.tools import create_server
from fake_livekit import FakeLiveKit
from helpers import NUMBER, fake_livekit_settings, make_record, text

SECRET = "recording-test-secret-never-shown-00000"
RATE = 48_000


# -- audio ---------------------------------------------------------------------------------------


def tone(seconds: float, hz: float, *, rate: int = RATE, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * level).astype(np.float32)


def write_ogg(path: Path, seconds: float) -> bytes:
    """A stereo Ogg/Opus file as RecorderIO writes them: a tone for the callee, another for the agent."""
    with av.open(str(path), mode="w", format="ogg") as container:
        stream: Any = container.add_stream("libopus", rate=RATE, layout="stereo")
        block = np.stack([tone(seconds, 440), tone(seconds, 880)])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path.read_bytes()


def decode(path: Path) -> np.ndarray:
    """The file's audio, (channels, samples) float32."""
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


# -- the file --------------------------------------------------------------------------------------


def test_a_file_tells_its_channels_and_length(tmp_path: Path) -> None:
    data = write_ogg(tmp_path / "a.ogg", 3.0)
    channels, seconds = recordings.ogg_facts(data)
    assert channels == 2 and seconds == pytest.approx(3.0, abs=0.03)
    facts = recordings.inspect(tmp_path / "a.ogg")
    assert facts == recordings.FileFacts(len(data), hashlib.sha256(data).hexdigest(), 2, seconds)


def test_a_file_cut_short_is_read_up_to_its_last_whole_page_and_still_plays(tmp_path: Path) -> None:
    data = write_ogg(tmp_path / "a.ogg", 4.0)
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(data[: len(data) * 2 // 3])  # a worker killed mid-page
    channels, seconds = recordings.ogg_facts(cut.read_bytes())
    assert channels == 2 and seconds is not None and 1.0 < seconds < 3.5
    assert decode(cut).shape[1] / RATE == pytest.approx(seconds, abs=0.5)  # a player plays it


@pytest.mark.parametrize("data", [b"", b"OggS", b"not an ogg file at all, just bytes" * 10])
def test_a_file_without_audio_has_no_length(data: bytes) -> None:
    assert recordings.ogg_facts(data)[1] is None


def test_only_callagents_files_expire_and_only_when_old() -> None:
    now = 10 * recordings.DAY_S
    day = recordings.DAY_S
    files = [
        ("0123456789ab.ogg", now - 31 * day),
        ("ba9876543210.ogg", now - 29 * day),  # younger than the retention period
        ("notes.ogg", now - 99 * day),  # not a recording of callagent's
        ("0123456789ab.wav", now - 99 * day),
        ("0123456789AB.ogg", now - 99 * day),
    ]
    assert recordings.expired(files, now=now, days=30) == ["0123456789ab.ogg"]
    assert recordings.call_id_of("0123456789ab.ogg") == "0123456789ab"
    assert recordings.call_id_of("../0123456789ab.ogg") is None


# -- what the record says ----------------------------------------------------------------------------


def test_the_record_of_a_recording_through_its_life(tmp_path: Path) -> None:
    at = utcnow()
    rec = recordings.started("0123456789ab", at)
    assert (rec.file, rec.state, rec.started_at, rec.channels) == (
        "0123456789ab.ogg",
        "recording",
        at,
        ["callee", "agent"],
    )
    assert not recordings.available(rec)

    write_ogg(tmp_path / "a.ogg", 2.0)
    facts = recordings.inspect(tmp_path / "a.ogg")
    done = recordings.completed(rec, facts)
    assert facts is not None and done.state == "complete" and done.note is None
    assert (done.bytes, done.sha256, done.duration_s) == (facts.size, facts.sha256, pytest.approx(2.0, abs=0.03))
    assert recordings.available(done)

    troubled = recordings.completed(rec, facts, problem="closing the recording failed (TimeoutError: )")
    assert troubled.state == "incomplete" and "closing" in (troubled.note or "") and recordings.available(troubled)

    lost = recordings.completed(rec, None)
    assert lost.state == "lost" and "missing" in (lost.note or "") and not recordings.available(lost)
    silent = recordings.completed(rec, recordings.FileFacts(129, "x", 2, None))
    assert silent.state == "lost" and "no audio" in (silent.note or "")

    gone = recordings.deleted(done, 30)
    assert gone.state == "deleted" and "CALLAGENT_RECORDING_RETENTION_DAYS=30" in (gone.note or "")
    assert gone.sha256 == done.sha256 and not recordings.available(gone)

    cut = recordings.lost_with_worker(rec, facts)
    assert cut.state == "incomplete" and "worker was lost mid-recording" in (cut.note or "") and cut.bytes
    nothing = recordings.lost_with_worker(rec, None)
    assert nothing.state == "lost" and "no file" in (nothing.note or "")


def test_files_and_the_folder_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "loose"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    recordings.private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    target = folder / "0123456789ab.ogg"
    target.write_bytes(b"old")
    target.chmod(0o644)
    recordings.create_private_file(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_bytes() == b""


# -- the worker's recorder: LiveKit's RecorderIO around a session's audio ------------------------------


class PhoneLine(io.AudioInput):
    """The callee: 20 ms frames of a 440 Hz tone, in real time."""

    def __init__(self) -> None:
        super().__init__(label="phone")
        self._t = 0

    async def __anext__(self) -> rtc.AudioFrame:
        await asyncio.sleep(0.02)
        samples = (tone(0.02, 440, level=0.25) * 32767).astype(np.int16)
        return rtc.AudioFrame(samples.tobytes(), RATE, 1, len(samples))


class Speaker(io.AudioOutput):
    """Where the agent's audio goes; reports nothing but its segments' start and end, like a sink
    that does not own a playback device."""

    def __init__(self) -> None:
        super().__init__(label="speaker", capabilities=io.AudioOutputCapabilities(pause=False))

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)

    def flush(self) -> None:
        super().flush()

    def clear_buffer(self) -> None:
        pass


class Calls:
    """The store's calls repository as the recorder uses it."""

    def __init__(self) -> None:
        self.written: list[Recording] = []

    def update(self, call_id: str, **fields: Any) -> None:
        self.written.append(fields["recording"])


async def _a_recorded_call(tmp_path: Path) -> tuple[worker_recording.CallRecorder, Calls, float, float, Path]:
    settings = Settings(_env_file=None, CALLAGENT_DB_URL=f"sqlite:///{tmp_path}/calls.db")
    speaker = Speaker()
    session: Any = SimpleNamespace(input=SimpleNamespace(audio=PhoneLine()), output=SimpleNamespace(audio=speaker))
    calls = Calls()
    recorder = worker_recording.CallRecorder(session, settings, "0123456789ab", SimpleNamespace(calls=calls))  # type: ignore[arg-type]
    assert session.input.audio is not recorder  # wrapped
    callee_line = session.input.audio

    async def listen() -> None:
        async for _ in callee_line:
            pass

    listening = asyncio.create_task(listen())
    await recorder.start()
    await asyncio.sleep(1.0)
    # The agent speaks for one second, as the session plays a reply.
    spoke_at = time.time()
    speaker.on_playback_started(created_at=spoke_at)
    samples = (tone(1.0, 880, level=0.25) * 32767).astype(np.int16)
    for i in range(0, len(samples), 960):
        chunk = samples[i : i + 960]
        await session.output.audio.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))
    session.output.audio.flush()
    await asyncio.sleep(1.0)
    speaker.on_playback_finished(playback_position=1.0, interrupted=False)
    await asyncio.sleep(3.5)
    mid_call = recordings.inspect(recorder.path)
    partial = tmp_path / "partial.ogg"
    partial.write_bytes(recorder.path.read_bytes())
    await recorder.finish()
    listening.cancel()
    assert recorder.record is not None and mid_call is not None and mid_call.duration_s
    return recorder, calls, spoke_at, mid_call.duration_s, partial


def test_the_worker_records_each_party_on_its_channel_into_a_private_file(tmp_path: Path) -> None:
    recorder, calls, spoke_at, mid_call_s, partial = asyncio.run(_a_recorded_call(tmp_path))
    path = recorder.path
    assert path == recordings_dir(Settings(_env_file=None, CALLAGENT_DB_URL=f"sqlite:///{tmp_path}/calls.db")) / (
        "0123456789ab.ogg"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # The record said "recording" from the start, then what the file holds.
    first, final = calls.written
    assert first.state == "recording" and first.started_at == final.started_at
    data = path.read_bytes()
    assert final.state == "complete" and final.bytes == len(data) and final.sha256 == hashlib.sha256(data).hexdigest()
    assert final.duration_s == pytest.approx(5.5, abs=0.6)
    # Written as the call went (a killed worker leaves audio behind), and that partial file plays.
    assert mid_call_s >= 2.0 and decode(partial).shape[1] > RATE
    audio = decode(path)
    assert audio.shape[0] == 2
    started = final.started_at.timestamp()

    def window(channel: int, start: float, end: float) -> float:
        a, b = int((start - started) * RATE), int((end - started) * RATE)
        return rms(audio[channel, a:b])

    # Channel 1, the callee, throughout; channel 2, the agent, only while it spoke.
    assert window(0, started + 0.2, started + 5.0) > 0.05
    assert window(1, spoke_at + 0.1, spoke_at + 0.9) > 0.05
    assert window(1, started + 0.1, spoke_at - 0.2) < 0.01
    assert window(1, spoke_at + 1.3, spoke_at + 3.0) < 0.01
    # finish() runs once: a second call (the handover, then the job's end) changes nothing.
    assert asyncio.run(recorder.finish()) == final and len(calls.written) == 2


def test_the_session_never_records_audio_itself() -> None:
    assert worker_recording.session_record(False) is False
    assert worker_recording.session_record(True) == {"audio": False}


def test_an_unanswered_call_has_no_recording(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, CALLAGENT_DB_URL=f"sqlite:///{tmp_path}/calls.db")
    calls = Calls()

    async def ring_and_give_up() -> worker_recording.CallRecorder:
        session: Any = SimpleNamespace(
            input=SimpleNamespace(audio=PhoneLine()), output=SimpleNamespace(audio=Speaker())
        )
        recorder = worker_recording.CallRecorder(session, settings, "0123456789ab", SimpleNamespace(calls=calls))  # type: ignore[arg-type]
        assert await recorder.finish() is None
        return recorder

    recorder = asyncio.run(ring_and_give_up())
    assert calls.written == [] and not recorder.path.exists()


# -- the server: MCP resource, links, the reaper, retention --------------------------------------------


@pytest.fixture
def settings(db_url: str, livekit: FakeLiveKit) -> Settings:
    return fake_livekit_settings(db_url, livekit.url, SECRET, CALLAGENT_RECORDING="on_request")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(create_server(settings)) as c:
        yield c


def recorded(store: Database, settings: Settings, seconds: float = 2.0, **fields: Any) -> tuple[CallRecord, bytes]:
    """An ended, recorded call and its file in the recordings folder."""
    record = make_record(CallStatus.completed, end_reason=EndReason.agent_ended, record=True, **fields)
    folder = recordings.private_dir(recordings_dir(settings))
    path = folder / recordings.file_name(record.call_id)
    data = write_ogg(path, seconds)
    rec = recordings.completed(recordings.started(record.call_id, utcnow()), recordings.inspect(path))
    return store.calls.create(record.model_copy(update={"recording": rec})), data


def links(result: Any) -> list[ResourceLink]:
    return [c for c in result.content if isinstance(c, ResourceLink)]


@pytest.mark.anyio
async def test_the_recording_is_a_resource_with_its_mime_type(
    client: Client, store: Database, settings: Settings
) -> None:
    record, data = recorded(store, settings)
    result = await client.read_resource(f"calls://{record.call_id}/recording")
    (content,) = result.contents
    assert isinstance(content, BlobResourceContents) and content.mime_type == "audio/ogg"
    import base64

    assert base64.b64decode(content.blob) == data
    assert record.recording is not None and hashlib.sha256(data).hexdigest() == record.recording.sha256


@pytest.mark.anyio
async def test_results_link_to_the_recording(client: Client, store: Database, settings: Settings) -> None:
    record, data = recorded(store, settings, idempotency_key="retry-1")
    uri = f"calls://{record.call_id}/recording"
    for result in (
        await client.call_tool("get_call", {"call_id": record.call_id}),
        await client.call_tool("wait_for_call", {"call_id": record.call_id, "timeout_s": 1}),
        # A retry with the same key returns the ended call, link and all.
        await client.call_tool("make_phone_call", {"phone_number": NUMBER, "idempotency_key": "retry-1"}),
    ):
        assert not result.is_error, text(result)
        (link,) = links(result)
        assert (str(link.uri), link.mime_type, link.size) == (uri, "audio/ogg", len(data))
        assert "callee" in (link.description or "") and "Recording: complete" in text(result)
    plain = store.calls.create(make_record(CallStatus.completed, end_reason=EndReason.agent_ended))
    assert links(await client.call_tool("get_call", {"call_id": plain.call_id})) == []


@pytest.mark.anyio
async def test_no_recording_to_read_says_why(client: Client, store: Database, settings: Settings) -> None:
    with pytest.raises(MCPError, match="no call with call_id 'nosuchcall'"):
        await client.read_resource("calls://nosuchcall/recording")

    plain = store.calls.create(make_record(CallStatus.completed, end_reason=EndReason.agent_ended))
    with pytest.raises(MCPError, match=r"was not recorded.*CALLAGENT_RECORDING=on_request"):
        await client.read_resource(f"calls://{plain.call_id}/recording")

    unanswered = store.calls.create(make_record(CallStatus.no_answer, end_reason=EndReason.no_answer, record=True))
    with pytest.raises(MCPError, match="never answered"):
        await client.read_resource(f"calls://{unanswered.call_id}/recording")

    live = store.calls.create(
        make_record(
            CallStatus.in_progress,
            record=True,
            heartbeat_at=utcnow(),
            recording=recordings.started("0123456789ab", utcnow()),
        )
    )
    with pytest.raises(MCPError, match="still being recorded"):
        await client.read_resource(f"calls://{live.call_id}/recording")

    old, _ = recorded(store, settings)
    assert old.recording is not None
    store.calls.update(old.call_id, recording=recordings.deleted(old.recording, 30))
    with pytest.raises(MCPError, match=r"deleted: deleted after 30 day.*CALLAGENT_RECORDING_RETENTION_DAYS"):
        await client.read_resource(f"calls://{old.call_id}/recording")
    assert links(await client.call_tool("get_call", {"call_id": old.call_id})) == []

    moved, _ = recorded(store, settings)
    (recordings_dir(settings) / recordings.file_name(moved.call_id)).unlink()
    with pytest.raises(MCPError, match=r"missing from the recordings folder.*CALLAGENT_RECORDINGS_DIR"):
        await client.read_resource(f"calls://{moved.call_id}/recording")


def _stale_recorded_call(store: Database, livekit: FakeLiveKit, settings: Settings, *, with_file: bool) -> CallRecord:
    """A call whose worker stopped sending heartbeats mid-recording; its line still up in LiveKit."""
    from livekit.protocol import room as pr

    quiet = utcnow() - timedelta(minutes=5)
    record = make_record(CallStatus.in_progress, record=True, heartbeat_at=quiet, dialed_at=utcnow(), answered_at=quiet)
    record = record.model_copy(update={"recording": recordings.started(record.call_id, quiet)})
    if with_file:
        path = recordings.private_dir(recordings_dir(settings)) / recordings.file_name(record.call_id)
        data = write_ogg(path, 4.0)
        path.write_bytes(data[: len(data) // 2])  # what a killed worker left
    livekit._handle("CreateRoom", pr.CreateRoomRequest(name=record.room_name).SerializeToString())
    return store.calls.create(record)


@pytest.mark.anyio
async def test_the_reaper_keeps_what_a_dead_worker_recorded_and_says_why(
    client: Client, store: Database, livekit: FakeLiveKit, settings: Settings
) -> None:
    cut = _stale_recorded_call(store, livekit, settings, with_file=True)
    empty = _stale_recorded_call(store, livekit, settings, with_file=False)
    result = await client.call_tool("get_call", {"call_id": cut.call_id})
    assert result.structured_content["status"] == "failed" and result.structured_content["end_reason"] == "worker_lost"
    rec = store.calls.get(cut.call_id).recording  # type: ignore[union-attr]
    path = recordings_dir(settings) / recordings.file_name(cut.call_id)
    assert rec is not None and rec.state == "incomplete" and "worker was lost mid-recording" in (rec.note or "")
    assert rec.bytes == path.stat().st_size and rec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert rec.duration_s is not None and 0.5 < rec.duration_s < 4.0
    (link,) = links(result)  # what is there can be read
    assert link.size == rec.bytes

    lost = store.calls.get(empty.call_id).recording  # type: ignore[union-attr]
    assert lost is not None and lost.state == "lost" and "no file was left" in (lost.note or "")
    with pytest.raises(MCPError, match="lost: the worker was lost mid-recording"):
        await client.read_resource(f"calls://{empty.call_id}/recording")


@pytest.mark.anyio
async def test_a_recording_its_worker_never_closed_is_settled_once_the_call_is_long_over(
    client: Client, store: Database, settings: Settings
) -> None:
    """The call ended elsewhere (end_call), then its worker died before closing the file."""
    long_ago = utcnow() - timedelta(minutes=10)
    record = make_record(
        CallStatus.canceled, end_reason=EndReason.canceled, record=True, answered_at=long_ago, ended_at=long_ago
    )
    path = recordings.private_dir(recordings_dir(settings)) / recordings.file_name(record.call_id)
    write_ogg(path, 2.0)
    store.calls.create(record.model_copy(update={"recording": recordings.started(record.call_id, long_ago)}))
    await client.call_tool("get_call", {"call_id": record.call_id})
    rec = store.calls.get(record.call_id).recording  # type: ignore[union-attr]
    assert rec is not None and rec.state == "incomplete" and rec.duration_s == pytest.approx(2.0, abs=0.05)


def _age(path: Path, days: float) -> None:
    then = time.time() - days * recordings.DAY_S
    os.utime(path, (then, then))


def test_retention_deletes_old_recordings_and_marks_their_records(store: Database, settings: Settings) -> None:
    old, _ = recorded(store, settings)
    young, _ = recorded(store, settings)
    folder = recordings_dir(settings)
    orphan = folder / "a1b2c3d4e5f6.ogg"  # a call the store no longer knows
    other = folder / "notes.ogg"  # not callagent's
    for path in (orphan, other):
        path.write_bytes(b"x")
    for path in (folder / recordings.file_name(old.call_id), orphan, other):
        _age(path, 31)
    _age(folder / recordings.file_name(young.call_id), 29)

    names = recordings.due(folder, 30)
    assert names == sorted([recordings.file_name(old.call_id), orphan.name])
    assert sorted(recordings.expire(folder, names, store, 30)) == sorted([old.call_id, orphan.stem])
    assert sorted(p.name for p in folder.iterdir()) == sorted([recordings.file_name(young.call_id), "notes.ogg"])
    gone = store.calls.get(old.call_id).recording  # type: ignore[union-attr]
    assert gone is not None and gone.state == "deleted" and "CALLAGENT_RECORDING_RETENTION_DAYS=30" in (gone.note or "")
    assert store.calls.get(young.call_id).recording.state == "complete"  # type: ignore[union-attr]
    assert recordings.due(tmp := folder / "nowhere", 30) == [] and not tmp.exists()


@pytest.mark.anyio
async def test_the_server_applies_retention_at_most_hourly(store: Database, settings: Settings) -> None:
    folder = recordings_dir(settings)
    first, _ = recorded(store, settings)
    _age(folder / recordings.file_name(first.call_id), 31)
    service = CallService(settings)
    try:
        await service.get(first.call_id)
        assert not (folder / recordings.file_name(first.call_id)).exists()
        assert store.calls.get(first.call_id).recording.state == "deleted"  # type: ignore[union-attr]
        second, _ = recorded(store, settings)
        _age(folder / recordings.file_name(second.call_id), 31)
        service._last_reap = -1e9  # the reaper itself may run again; retention waits its hour
        await service.get(second.call_id)
        assert (folder / recordings.file_name(second.call_id)).exists()
    finally:
        await service.aclose()


def test_the_worker_applies_retention_when_it_starts(store: Database, settings: Settings) -> None:
    old, _ = recorded(store, settings)
    path = recordings_dir(settings) / recordings.file_name(old.call_id)
    _age(path, 31)
    worker_recording.expire_in_background(settings)
    deadline = time.monotonic() + 10
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists()
    deadline = time.monotonic() + 5
    while store.calls.get(old.call_id).recording.state != "deleted" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    assert store.calls.get(old.call_id).recording.state == "deleted"  # type: ignore[union-attr]


# -- placing a recorded call: refused when off, nothing reaches LiveKit ---------------------------------


@pytest.mark.anyio
async def test_record_is_refused_when_recording_is_off_and_nothing_reaches_livekit(
    db_url: str, store: Database, livekit: FakeLiveKit
) -> None:
    async with Client(create_server(fake_livekit_settings(db_url, livekit.url, SECRET))) as c:
        result = await c.call_tool("make_phone_call", {"phone_number": NUMBER, "record": True})
    assert result.is_error
    assert "rule 'recording'" in text(result) and "CALLAGENT_RECORDING" in text(result), text(result)
    assert livekit.count == 0  # not one LiveKit request
    assert store.calls.page()[0] == []
    (refusal,) = store.refusals.recent(5)
    assert refusal.rule == "recording"


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "asked", "recorded_"), [("on_request", True, True), ("always", None, True)])
async def test_a_recorded_call_tells_the_worker(
    db_url: str, store: Database, livekit: FakeLiveKit, mode: str, asked: bool | None, recorded_: bool
) -> None:
    import json

    arguments: dict[str, Any] = {"phone_number": NUMBER}
    if asked is not None:
        arguments["record"] = asked
    settings = fake_livekit_settings(db_url, livekit.url, SECRET, CALLAGENT_RECORDING=mode)
    async with Client(create_server(settings)) as c:
        result = await c.call_tool("make_phone_call", arguments)
    assert not result.is_error, text(result)
    assert result.structured_content["record"] is recorded_
    (room,) = livekit.rooms.values()
    (dispatch,) = room.dispatches
    assert json.loads(dispatch.metadata)["record"] is recorded_  # the worker records, and says so first


# -- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[None]:
    for name in [str(f.validation_alias) for f in Settings.model_fields.values() if f.validation_alias]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(settings_module, "ENV_FILE", tmp_path / "no-project" / ".env")
    monkeypatch.setenv("CALLAGENT_DB_URL", db_url)
    monkeypatch.setenv("CALLAGENT_RECORDING", "on_request")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_cli_exports_a_recording_privately(
    cli_env: None, store: Database, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record, data = recorded(store, settings)
    target = tmp_path / "out" / "call.ogg"
    target.parent.mkdir()
    target.write_bytes(b"an older export")
    target.chmod(0o644)
    assert main(["recording", record.call_id, "-o", str(target)]) == 0
    out, err = capsys.readouterr()
    assert target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert f"Call {record.call_id}'s recording (complete)" in out and "channels: callee, agent" in out, out
    assert str(target) in out and err == ""


def test_the_cli_exports_to_stdout(
    cli_env: None, store: Database, settings: Settings, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    record, data = recorded(store, settings)
    assert main(["recording", record.call_id, "-o", "-"]) == 0
    out, err = capfdbinary.readouterr()
    assert out == data and b"channels: callee, agent" in err


def test_the_cli_says_why_there_is_nothing_to_export(
    cli_env: None, store: Database, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recording", "nosuchcall", "-o", str(tmp_path / "x.ogg")]) == 8
    assert "no call with call_id 'nosuchcall'" in capsys.readouterr().err
    plain = store.calls.create(make_record(CallStatus.completed, end_reason=EndReason.agent_ended))
    assert main(["recording", plain.call_id, "-o", str(tmp_path / "x.ogg")]) == 8
    assert "CALLAGENT_RECORDING" in capsys.readouterr().err
    record, _ = recorded(store, settings)
    assert main(["recording", record.call_id, "-o", str(tmp_path / "no" / "such" / "dir.ogg")]) == 1
    assert "could not export the recording" in capsys.readouterr().err
    assert not (tmp_path / "x.ogg").exists()
