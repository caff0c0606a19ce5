"""Reading the bed's logs of each call, for tests and benchmarks.

The phone rewrites one JSON file per call in `$DEVSTACK_PHONE_DIR` at every event (among its
fields `from_number`: the caller id it saw, the user part of the INVITE's From URI); these
helpers find a call by its call key (the X-Callagent-Call-Id header, else the SIP Call-ID) and
wait for a condition on it.

The offline model server appends what each request asked for to
`$DEVSTACK_RUN_DIR/models/requests.jsonl`, one JSON object a line, with the same call key in
`call`: `kind` "tts" (`text`, `voice`, `model`, `instructions`, `espeak_voice`), "stt"
(`language`, the hint; `languages`; `text`, the transcript) or "chat" (`instructions_languages`,
the language codes the instructions name; `summary`; `reply` or `tool`); see model_requests.
"""

from __future__ import annotations

import json
import os
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def phone_dir() -> Path:
    path = os.environ.get("DEVSTACK_PHONE_DIR")
    if not path:
        raise RuntimeError("DEVSTACK_PHONE_DIR is not set: run this on the bed (`devstack run -- …`)")
    return Path(path)


def calls() -> list[dict[str, Any]]:
    out = []
    for f in sorted(phone_dir().glob("*.json")):
        try:
            out.append(json.loads(f.read_text()))
        except (json.JSONDecodeError, FileNotFoundError):
            continue  # being rewritten; the next look will see it
    return out


def find(call_key: str) -> dict[str, Any] | None:
    for call in calls():
        if call.get("call_key") == call_key:
            return call
    return None


def wait_for(call_key: str, cond: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
    """The call's log once `cond` holds; raises TimeoutError with the last log seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = find(call_key)
        if last is not None and cond(last):
            return last
        time.sleep(0.05)
    raise TimeoutError(f"phone call {call_key!r} did not reach the expected state in {timeout} s; last log: {last}")


def models_log() -> Path:
    """The model server's request log (devstack.models.REQUEST_LOG)."""
    run = os.environ.get("DEVSTACK_RUN_DIR")
    return (Path(run) if run else phone_dir().parent) / "models" / "requests.jsonl"


def model_requests(call_key: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """The model server's requests, oldest first: of one call (its key) and of one kind
    ("tts", "stt", "chat") when given."""
    try:
        text = models_log().read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        if (call_key is None or entry.get("call") == call_key) and (kind is None or entry.get("kind") == kind):
            out.append(entry)
    return out


def wait_for_model_requests(
    call_key: str,
    kind: str | None = None,
    cond: Callable[[list[dict[str, Any]]], bool] = bool,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """The call's model requests (of `kind`) once `cond` holds on them (default: there is one);
    raises TimeoutError with the last seen."""
    deadline = time.monotonic() + timeout
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = model_requests(call_key, kind)
        if cond(last):
            return last
        time.sleep(0.05)
    raise TimeoutError(f"model requests of call {call_key!r} ({kind or 'any'}) not as expected in {timeout} s: {last}")


def greeting_speech(call_key: str, timeout: float = 30.0) -> dict[str, Any]:
    """The call's first speech request: the greeting (disclosure) the worker had rendered, with
    its `text`, `voice` and `model`."""
    return wait_for_model_requests(call_key, "tts", timeout=timeout)[0]


def stt_language_hints(call_key: str) -> list[str | None]:
    """The language hint of each of the call's transcription requests, in order."""
    return [entry.get("language") for entry in model_requests(call_key, "stt")]


def recording(call: dict[str, Any]) -> tuple[np.ndarray, int]:
    """The phone's recording of what it heard: int16 samples and the sample rate."""
    with wave.open(str(phone_dir() / call["recording"]), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def speech_seconds(samples: np.ndarray, rate: int, threshold: float = 300.0) -> float:
    """Seconds of 20 ms frames whose RMS is over `threshold` (speech, not line noise)."""
    n = rate // 50
    frames = samples[: len(samples) // n * n].astype(np.float64).reshape(-1, n)
    if not len(frames):
        return 0.0
    loud = np.sqrt((frames**2).mean(axis=1)) > threshold
    return float(loud.sum()) * 0.02
