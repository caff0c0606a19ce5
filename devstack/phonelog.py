"""Reading the bed's logs of each call, for tests and benchmarks.

The phone rewrites one JSON file per call in `$DEVSTACK_PHONE_DIR` at every event (among its
fields `from_number`: the caller id it saw, the user part of the INVITE's From URI); these
helpers find a call by its call key (the X-Callagent-Call-Id header, else the SIP Call-ID) and
wait for a condition on it.

The offline model server appends what each request asked for to
`$DEVSTACK_RUN_DIR/models/requests.jsonl`, one JSON object a line, with the same call key in
`call`: `kind` "tts" (`text`, `voice`, `model`, `instructions`, `espeak_voice`), "stt"
(`language`, the hint; `languages`; `text`, the transcript) or "chat" (`instructions_languages`,
the language codes the instructions name; `summary`; `reply` or `tool` and `tool_arguments`;
`tools`, the names of the tools offered; `tool_outputs`, each tool output the request carries as
{"id", "name", "output" (its first 200 characters), "failed" (starts with "Not done:")};
`error_branch`, the reply is an after_tool_error); see model_requests, offered_tools and
tool_outputs.

The bed's calendar MCP server (devstack.calendar) appends each tool call to
`$DEVSTACK_RUN_DIR/calendar/calls.jsonl`: {"at", "call" (the X-Callagent-Call-Id header, or
null), "tool", "arguments", "result" or "error"}; see calendar_calls.
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


def run_dir() -> Path:
    run = os.environ.get("DEVSTACK_RUN_DIR")
    return Path(run) if run else phone_dir().parent


def models_log() -> Path:
    """The model server's request log (devstack.models.REQUEST_LOG)."""
    return run_dir() / "models" / "requests.jsonl"


def calendar_log() -> Path:
    """The calendar MCP server's log of tool calls (devstack.calendar.CALLS_LOG)."""
    return run_dir() / "calendar" / "calls.jsonl"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a log, one a line, oldest first (none when there is no log yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        if isinstance(entry, dict):
            out.append(entry)
    return out


def model_requests(call_key: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """The model server's requests, oldest first: of one call (its key) and of one kind
    ("tts", "stt", "chat") when given."""
    return [
        entry
        for entry in _jsonl(models_log())
        if (call_key is None or entry.get("call") == call_key) and (kind is None or entry.get("kind") == kind)
    ]


def offered_tools(call_key: str) -> set[str]:
    """The names of the tools the call's chat requests offered the model, all of them together."""
    return {name for entry in model_requests(call_key, "chat") for name in entry.get("tools") or []}


def tool_outputs(call_key: str) -> list[dict[str, Any]]:
    """The tool outputs the model received on the call, each once (a chat request carries the
    whole conversation), in order: {"id", "name", "output" (first 200 characters), "failed"}."""
    seen: set[str] = set()
    out = []
    for entry in model_requests(call_key, "chat"):
        for output in entry.get("tool_outputs") or []:
            key = output.get("id") or json.dumps(output, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(output)
    return out


def calendar_calls(call_id: str | None = None) -> list[dict[str, Any]]:
    """The calendar MCP server's tool calls, oldest first: {"at", "call", "tool", "arguments",
    "result" or "error"}; of one call (the X-Callagent-Call-Id its worker sent) when given."""
    return [entry for entry in _jsonl(calendar_log()) if call_id is None or entry.get("call") == call_id]


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
