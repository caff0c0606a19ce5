"""Recorded calls on the bed: an MCP client over stdio → server.py → LiveKit → SIP → the phone,
with the real calling worker recording through LiveKit's RecorderIO. The recording is checked
against what the phone itself logged: its own utterances are the callee's turns, the agent
speech it heard the agent's, both in epoch time, mapped onto the file by recording.started_at.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import av
import numpy as np
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import BlobResourceContents, CallToolResult, ResourceLink

from callagent.calls import TERMINAL_STATUSES
from devstack import phonelog
from helpers import ROOT, Worker, bed_env, phone_call

T = TypeVar("T")
TERMINAL = {s.value for s in TERMINAL_STATUSES}
RATE = 48_000
SPEECH_RMS = 0.01  # float samples: espeak speech on the line is around 0.05-0.1, a quiet line ~0.001


@pytest.fixture(scope="module")
def env(bed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return bed_env(tmp_path_factory.mktemp("recording"), CALLAGENT_WORKER_PORT="0", CALLAGENT_RECORDING="on_request")


# -- an MCP client over stdio, as Claude Desktop runs the server --------------------------------------


def mcp(env: dict[str, str], session: Callable[[Client], Awaitable[T]]) -> T:
    async def run() -> T:
        params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "server.py")], env=env, cwd=str(ROOT))
        async with Client(stdio_client(params), mode="legacy") as client:
            return await session(client)

    return anyio.run(run)


async def follow(client: Client, record: dict[str, Any]) -> tuple[dict[str, Any], CallToolResult]:
    """wait_for_call until the call has ended: its final record and result."""
    deadline = time.monotonic() + 240
    result: CallToolResult | None = None
    while record["status"] not in TERMINAL:
        assert time.monotonic() < deadline, record
        result = await client.call_tool(
            "wait_for_call", {"call_id": record["call_id"], "timeout_s": 30, "last_status": record["status"]}
        )
        assert not result.is_error, result
        record = result.structured_content or record
    if result is None:
        result = await client.call_tool("get_call", {"call_id": record["call_id"]})
    return record, result


async def place_recorded(client: Client, number: str, goal: str) -> dict[str, Any]:
    result = await client.call_tool("make_phone_call", {"phone_number": number, "goal": goal, "record": True})
    assert not result.is_error, result
    record = result.structured_content or {}
    assert record["record"] is True
    return record


async def read_recording(client: Client, call_id: str) -> bytes:
    read = await client.read_resource(f"calls://{call_id}/recording")
    (content,) = read.contents
    assert isinstance(content, BlobResourceContents) and content.mime_type == "audio/ogg"
    return base64.b64decode(content.blob)


# -- the file -----------------------------------------------------------------------------------------


def recording_path(env: dict[str, str], call_id: str) -> Path:
    return Path(env["CALLAGENT_DB_URL"].removeprefix("sqlite:///")).parent / "recordings" / f"{call_id}.ogg"


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def level(audio: np.ndarray, channel: int, start: float, end: float) -> float:
    """RMS of `channel` between two moments (seconds into the recording)."""
    part = audio[channel, max(0, int(start * RATE)) : max(0, int(end * RATE))].astype(np.float64)
    return float(np.sqrt(np.mean(part**2))) if part.size else 0.0


def started_at(record: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(record["recording"]["started_at"]).timestamp()


# -- a recorded conversation ----------------------------------------------------------------------------


def test_a_recorded_call_keeps_each_party_on_its_channel(env: dict[str, str], worker: Worker) -> None:
    async def session(client: Client) -> tuple[dict[str, Any], CallToolResult, bytes]:
        placed = await place_recorded(client, "+14155550100", "Confirm the appointment tomorrow at 10 am")
        record, result = await follow(client, placed)
        return record, result, await read_recording(client, record["call_id"])

    record, result, served = mcp(env, session)
    assert record["status"] == "completed", record
    rec = record["recording"]
    assert rec["state"] == "complete" and rec["channels"] == ["callee", "agent"], rec

    # The callee was told first: the disclosure the phone heard says the call is recorded.
    first = record["transcript"][0]
    assert first["role"] == "agent" and "AI assistant" in first["text"] and "this call is recorded" in first["text"]

    # A private file in the recordings folder, next to the store, the same bytes as the resource.
    path = recording_path(env, record["call_id"])
    data = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert hashlib.sha256(data).hexdigest() == rec["sha256"] == hashlib.sha256(served).hexdigest()
    assert rec["bytes"] == len(data)
    (link,) = [c for c in result.content if isinstance(c, ResourceLink)]
    assert str(link.uri) == f"calls://{record['call_id']}/recording" and link.size == len(data)

    # From the answer to the hang-up.
    assert abs(rec["duration_s"] - record["duration_s"]) <= 2.0, (rec["duration_s"], record["duration_s"])
    audio = decode(path)
    assert audio.shape[0] == 2 and abs(audio.shape[1] / RATE - rec["duration_s"]) < 0.5

    # Each party on its channel, where the phone says they spoke.
    call = phone_call(record)
    t0 = started_at(record)
    assert abs(t0 - call["answered_at"]) < 1.5, (t0, call["answered_at"])
    callee_turns = [u for u in call["utterances"] if u["end"] and u["end"] - u["start"] > 1.0]
    agent_turns = [s for s in call["agent_speech"] if s["end"] and s["end"] - s["start"] > 1.0]
    assert len(callee_turns) >= 2 and len(agent_turns) >= 2, call
    levels = {
        "callee": [
            (
                level(audio, 0, u["start"] - t0 + 0.3, u["end"] - t0),
                level(audio, 1, u["start"] - t0 + 0.3, u["end"] - t0),
            )
            for u in callee_turns
        ],
        "agent": [
            (
                level(audio, 0, s["start"] - t0, s["end"] - t0 - 0.3),
                level(audio, 1, s["start"] - t0, s["end"] - t0 - 0.3),
            )
            for s in agent_turns
        ],
    }
    print(json.dumps(levels))
    for callee, agent in levels["callee"]:
        assert callee > SPEECH_RMS and callee > 3 * agent, levels
    for callee, agent in levels["agent"]:
        assert agent > SPEECH_RMS and agent > 3 * callee, levels

    # The operator's export is the same file, private too.
    out = path.parent.parent / "export.ogg"
    res = subprocess.run(
        [sys.executable, "-m", "callagent.cli", "recording", record["call_id"], "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == data and stat.S_IMODE(out.stat().st_mode) == 0o600


def test_an_unrecorded_call_has_no_recording(env: dict[str, str], worker: Worker) -> None:
    async def session(client: Client) -> tuple[dict[str, Any], str]:
        result = await client.call_tool("make_phone_call", {"phone_number": "+14155550106"})
        record, _ = await follow(client, result.structured_content or {})
        try:
            await client.read_resource(f"calls://{record['call_id']}/recording")
        except Exception as exc:  # noqa: BLE001 - the error is what is checked
            return record, str(exc)
        return record, ""

    record, error = mcp(env, session)
    assert record["record"] is False and record["recording"] is None
    assert "was not recorded" in error and "CALLAGENT_RECORDING" in error
    assert not recording_path(env, record["call_id"]).exists()
    assert "this call is recorded" not in record["transcript"][0]["text"]


# -- a worker killed: the recording survives, or the record says why ---------------------------------------


@pytest.fixture
def doomed(bed: None, tmp_path: Path) -> Iterator[tuple[dict[str, str], Callable[[], Worker]]]:
    env = bed_env(
        tmp_path,
        CALLAGENT_AGENT_NAME="doomed-recorder",
        CALLAGENT_RECORDING="on_request",
        CALLAGENT_STALE_AFTER_S="10",
        CALLAGENT_SILENCE_TIMEOUT_S="120",
        CALLAGENT_WORKER_PORT="0",
    )
    started: list[Worker] = []

    def start() -> Worker:
        w = Worker(env, tmp_path / f"worker-{len(started)}.log")
        started.append(w)
        w.wait_registered()
        return w

    yield env, start
    for w in started:
        w.stop()


def test_a_worker_killed_mid_call_leaves_a_playable_recording(
    doomed: tuple[dict[str, str], Callable[[], Worker]],
) -> None:
    env, start = doomed
    worker = start()

    async def session(client: Client) -> tuple[dict[str, Any], float, bytes]:
        placed = await place_recorded(client, "+14155550101", "Ask about opening hours")
        call_id = placed["call_id"]
        call = await anyio.to_thread.run_sync(
            lambda: phonelog.wait_for(call_id, lambda c: bool(c.get("answered_at")), timeout=30)
        )
        await anyio.sleep(max(0.0, call["answered_at"] + 12 - time.time()))  # greeting, then silence
        killed_at = time.time()
        await anyio.to_thread.run_sync(worker.kill)
        record, _ = await follow(client, placed)  # the server's reaper ends it
        return record, killed_at, await read_recording(client, call_id)

    record, killed_at, served = mcp(env, session)
    assert record["status"] == "failed" and record["end_reason"] == "worker_lost", record
    rec = record["recording"]
    assert rec["state"] == "incomplete" and "worker was lost mid-recording" in rec["note"], rec
    path = recording_path(env, record["call_id"])
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == rec["sha256"] == hashlib.sha256(served).hexdigest()
    # All but the last few seconds before the kill are in it, and it plays.
    answered = phone_call(record)["answered_at"]
    print(f"killed {killed_at - answered:.1f} s after the answer; {rec['duration_s']:.1f} s kept")
    assert killed_at - answered - 6 <= rec["duration_s"] <= killed_at - answered + 0.5, rec
    audio = decode(path)
    greeting = phone_call(record)["agent_speech"][0]
    t0 = started_at(record)
    assert level(audio, 1, greeting["start"] - t0, greeting["end"] - t0 - 0.3) > SPEECH_RMS


def test_a_worker_killed_as_a_recorded_call_ends_keeps_it(
    doomed: tuple[dict[str, str], Callable[[], Worker]],
) -> None:
    env, start = doomed
    worker = start()

    async def session(client: Client) -> tuple[dict[str, Any], bytes]:
        placed = await place_recorded(client, "+14155550106", "Confirm the appointment tomorrow at 10 am")
        call_id = placed["call_id"]
        await anyio.to_thread.run_sync(lambda: phonelog.wait_for(call_id, lambda c: bool(c.get("ended")), timeout=120))
        await anyio.to_thread.run_sync(worker.kill)  # the job's temporary folder goes with it
        record, _ = await follow(client, placed)
        return record, await read_recording(client, call_id)

    record, served = mcp(env, session)
    rec = record["recording"]
    print(f"{record['status']}: recording {rec['state']} ({rec['note']})")
    assert rec["state"] in ("complete", "incomplete"), record
    path = recording_path(env, record["call_id"])
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == rec["sha256"] == hashlib.sha256(served).hexdigest()
    assert decode(path).shape[1] / RATE >= rec["duration_s"] - 0.5 >= 3.0
