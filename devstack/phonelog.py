"""Reading the simulated phone's per-call logs, for tests and benchmarks.

The phone rewrites one JSON file per call in `$DEVSTACK_PHONE_DIR` at every event; these helpers
find a call by its call key (the X-Callagent-Call-Id header, else the SIP Call-ID) and wait for
a condition on it.
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
