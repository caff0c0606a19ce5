"""Offline, OpenAI-compatible model server for the devstack.

The worker talks to "OpenAI" through livekit-plugins-openai; in the bed it talks to this server
instead, so a whole call runs without internet and without real models:

- chat completions are scripted: the callee's line (the STT transcript the worker sends back as
  the user message) is looked up in scenarios.json and the scripted reply (text or tool call)
  is returned (after a tool call, the text that follows it: the line's after_tool_error for a
  result starting with "Not done:"); a `response_format` request is the end-of-call summary and
  gets the scenario's outcome as JSON;
- speech is real audio rendered by espeak-ng, so the phone side gets something to hear and the
  agent's speaking latency is measurable; in the language of the call where the server can
  tell (a scripted sentence's scenario, the request's instructions, the call's STT hint);
- transcription does not listen at all: the phone posts each line it starts saying on the
  Board, and the STT endpoint hands out the oldest line of that call not yet heard.

Every handler is stateless apart from the Board (and a note of each call's language), so
concurrent calls don't disturb each other.

What each request asked for is logged, one JSON object a line, to `<log_dir>/requests.jsonl`
(the bed's `$DEVSTACK_RUN_DIR/models/requests.jsonl`; read it with devstack.phonelog), keyed by
the call (the X-Callagent-Call-Id header): for speech the text, voice and model; for a
transcription the language hint; for chat the languages the instructions name, the names of the
tools offered, the tool outputs the request carries (name and first 200 characters) and the
answer.

A call whose scripted agent said an after_tool_error is noted on the Board: from then on the phone
says the if_tool_failed line of each line that has one (see devstack.scenarios.Line).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import struct
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from typing import IO, Any

import numpy as np
from aiohttp import web

from devstack.board import Board
from devstack.scenarios import (
    CALL_ID_HEADER,
    DEFAULT_LANGUAGE,
    ESPEAK_VOICES,
    Line,
    Reply,
    Scenario,
    ToolCall,
    espeak_voice,
    reply_to,
    scenarios,
)

logger = logging.getLogger("devstack.models")

# Ids GET /v1/models lists; any model name is accepted on the other endpoints.
MODEL_IDS = (
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o-mini",
    "gpt-4o-mini-tts",
    "tts-1",
    "gpt-4o-mini-transcribe",
    "whisper-1",
)

GREETING = "Hello, this is an AI assistant."
GENERIC_REPLY = "I see. Could you tell me a bit more?"
NOT_HEARD_REPLY = "Sorry, I did not catch that."
AFTER_UNKNOWN_TOOL_REPLY = "Okay."
NO_CONVERSATION_SUMMARY = "No conversation took place."
TOOL_FAILED_PREFIX = "not done:"  # a tool result starting so (any case) is a failure

WORDS_PER_CHUNK = 4  # streamed text: a few words per SSE chunk, like a real model
ARGS_PER_CHUNK = 24  # streamed tool-call arguments: characters per chunk

TTS_SAMPLE_RATE = 24000  # what OpenAI's pcm/wav speech is, and what the plugin assumes
ESPEAK_WPM = 175  # espeak-ng's default speaking rate, scaled by the request's `speed`
# A WAV upload whose RMS (full scale = 1.0) is below this is silence, about -54 dBFS: the
# phone's espeak speech sits around -20 dBFS, a quiet SIP line near zero.
SILENCE_RMS = 0.002
# Streaming WAV headers can't know the data length; 0xFFFFFFFF is the customary "unknown".
WAV_UNKNOWN_SIZE = 0xFFFFFFFF
MAX_UPLOAD_BYTES = 64 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_LOG = "requests.jsonl"  # in the server's log_dir: one JSON object per request
KEEP_REQUESTS = 2000  # requests kept in memory too (ModelServer.requests)
KEEP_CALL_LANGUAGES = 256  # calls whose language the server remembers (for its speech voice)

# The languages the bed knows (devstack.scenarios.ESPEAK_VOICES), by the names instructions
# may call them: English and native.
LANGUAGE_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("English",),
    "es": ("Spanish", "Español", "Espanol"),
    "fr": ("French", "Français", "Francais"),
    "de": ("German", "Deutsch"),
    "hi": ("Hindi", "हिन्दी", "हिंदी"),
    "ta": ("Tamil", "தமிழ்"),
}


# ---------------------------------------------------------------------------------------------
# Chat: the scripted model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedAnswer:
    """What the scripted model answers: text, or a call to one tool. `error_branch`: the text
    is a reply's after_tool_error (the call goes on in its error branch, see Board)."""

    content: str | None
    tool: ToolCall | None = None
    error_branch: bool = field(default=False, compare=False)


def message_text(content: Any) -> str:
    """Text of an OpenAI message `content`: a string, or a list of parts of which the text
    parts count (images, audio etc. are ignored)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts)
    return ""


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def match_line(callee_text: str) -> tuple[Scenario, Line] | None:
    """The scenario line the callee said.

    Exact (case/space-insensitive) match first, via scenarios.reply_to. Failing that, the line
    contained in the text that ends last (then the longest), so a transcript that picked up an
    extra word or two around a line still gets its scripted reply.
    """
    found = reply_to(callee_text)
    if found is not None:
        return found
    norm = _norm(callee_text)
    best: tuple[int, int] | None = None
    best_match: tuple[Scenario, Line] | None = None
    for sc in scenarios().values():
        for line in sc.spoken():
            needle = _norm(line.text)
            pos = norm.rfind(needle) if needle else -1
            if pos < 0:
                continue
            key = (pos + len(needle), len(needle))
            if best is None or key > best:
                best, best_match = key, (sc, line)
    return best_match


TOOL_OUTPUT_CHARS = 200  # of each tool output a chat request carries, what its log entry keeps


def offered_tools(body: dict[str, Any]) -> set[str]:
    """Names of the function tools the request offers (the `tools` array)."""
    names: set[str] = set()
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            fn = tool.get("function")
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                names.add(fn["name"])
    return names


def tool_arguments_json(tool: ToolCall) -> str:
    """A scripted tool call's arguments as OpenAI's API gives them: a JSON object, compact,
    non-ASCII characters as they are."""
    return json.dumps(tool.arguments, ensure_ascii=False, separators=(",", ":"))


def tool_outputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool outputs in a chat request's messages, oldest first: {"id" (the tool call's),
    "name" (the function the assistant message with that id called, else null), "output" (its
    first TOOL_OUTPUT_CHARS characters), "failed" (it starts with "Not done:")}."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        if m.get("role") == "assistant":
            for call in m.get("tool_calls") or []:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(call.get("id"), str) and isinstance(fn.get("name"), str):
                    names[call["id"]] = fn["name"]
        elif m.get("role") == "tool":
            text = message_text(m.get("content"))
            call_id = m.get("tool_call_id") if isinstance(m.get("tool_call_id"), str) else None
            out.append(
                {
                    "id": call_id,
                    "name": names.get(call_id) if call_id else None,
                    "output": text[:TOOL_OUTPUT_CHARS],
                    "failed": tool_failed(text),
                }
            )
    return out


def tool_failed(result: str) -> bool:
    """Whether a tool's result says it did not do its job: the worker's tools start such a
    result with "Not done:" (a transfer nobody took, ...)."""
    return result.strip().lower().startswith(TOOL_FAILED_PREFIX)


def _after_tool(reply: Reply, *, failed: bool) -> ScriptedAnswer:
    """What the script says once a tool call is over: `after_tool_error` when the tool failed
    (if the line has one: the error branch), else `after_tool`."""
    if failed and reply.after_tool_error is not None:
        return ScriptedAnswer(reply.after_tool_error, error_branch=True)
    return ScriptedAnswer(reply.after_tool or "")


def _answer_line(line: Line | None, tools: set[str]) -> ScriptedAnswer:
    """The scripted reply to a callee line, given which tools the request offers."""
    reply = line.reply if line is not None else None
    if reply is None:
        return ScriptedAnswer(GENERIC_REPLY)
    if reply.tool is not None:
        if reply.tool.name in tools:
            return ScriptedAnswer(None, reply.tool)
        # the worker didn't offer the tool: say what follows it not being done
        return _after_tool(reply, failed=True)
    if reply.text is not None:
        return ScriptedAnswer(reply.text)
    return ScriptedAnswer(GENERIC_REPLY)


def answer_chat(body: dict[str, Any]) -> ScriptedAnswer:
    """The scripted answer to a (non-summary) chat request, from its messages alone."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    # instructions (system/developer) may come anywhere; the turn is decided by the rest
    turns = [m for m in messages if m.get("role") not in ("system", "developer")]
    if not any(m.get("role") == "user" for m in turns):
        return ScriptedAnswer(GREETING)

    last = turns[-1]
    # A tool may speak while it runs ("please hold"): its words land after the tool call in the
    # history, and the turn still answers the tool's result.
    tail = len(turns) - 1
    while tail > 0 and turns[tail].get("role") == "assistant" and not turns[tail].get("tool_calls"):
        tail -= 1
    if tail < len(turns) - 1 and turns[tail].get("role") == "tool":
        turns, last = turns[: tail + 1], turns[tail]
    if last.get("role") == "user":
        text = message_text(last.get("content"))
        if not text.strip():
            return ScriptedAnswer(NOT_HEARD_REPLY)
        found = match_line(text)
        return _answer_line(found[1] if found else None, offered_tools(body))

    if last.get("role") == "tool":
        # the tool's result is in: say what the script says follows the call (or its failure);
        # the line is the one the user said before the assistant message that made the call
        i = len(turns) - 1
        while i >= 0 and not (turns[i].get("role") == "assistant" and turns[i].get("tool_calls")):
            i -= 1
        user_text = next(
            (message_text(m.get("content")) for m in reversed(turns[: max(i, 0)]) if m.get("role") == "user"),
            "",
        )
        found = match_line(user_text) if i >= 0 and user_text.strip() else None
        if found is None or found[1].reply is None:
            return ScriptedAnswer(AFTER_UNKNOWN_TOOL_REPLY)
        failed = tool_failed(message_text(last.get("content")))
        return _after_tool(found[1].reply, failed=failed)

    # the assistant spoke last (e.g. asked to continue): nothing scripted to key on
    return ScriptedAnswer(GENERIC_REPLY)


def is_summary_request(body: dict[str, Any]) -> bool:
    """The worker's end-of-call summary is the only request asking for structured output."""
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object")


def languages_named(text: str) -> list[str]:
    """The codes of the languages `text` names (by English or native name, any case), in the
    order of LANGUAGE_NAMES."""
    found = []
    for code, names in LANGUAGE_NAMES.items():
        if any(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE) for name in names):
            found.append(code)
    return found


def instructions_text(body: dict[str, Any]) -> str:
    """The system and developer messages of a chat request, joined."""
    return "\n".join(
        message_text(m.get("content"))
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    )


def scripted_language(text: str) -> str | None:
    """The language of the scenarios whose scripted agent says `text`, or a sentence of it (the
    worker sends a reply to speech a sentence at a time): in a reply, in what follows a tool, or
    a tool's argument (a voicemail message). None when no script says it, or scripts in
    different languages do."""
    norm = _norm(text)
    if not norm:
        return None
    found: set[str] = set()
    for sc in scenarios().values():
        for line in sc.spoken():
            reply = line.reply
            if reply is None:
                continue
            said = (
                reply.text,
                reply.after_tool,
                reply.after_tool_error,
                *(reply.tool.arguments.values() if reply.tool else ()),
            )
            if any(isinstance(t, str) and norm in _norm(t) for t in said):
                found.add(line.language or sc.language)
    return found.pop() if len(found) == 1 else None


def requested_data(body: dict[str, Any]) -> list[str] | None:
    """The fields of `data` the summary request's schema asks for (a call's result_schema), or
    None when it asks for no data."""
    fmt = body.get("response_format")
    schema = fmt.get("json_schema", {}).get("schema", {}) if isinstance(fmt, dict) else {}
    data = schema.get("properties", {}).get("data") if isinstance(schema, dict) else None
    if not isinstance(data, dict):
        return None
    shape = next((arm for arm in data.get("anyOf", [data]) if isinstance(arm, dict) and "properties" in arm), data)
    return list(shape.get("properties", {}))


def summarize(messages: list[Any], data_fields: list[str] | None = None) -> dict[str, Any]:
    """The summary of the call whose transcript the messages carry.

    The scenario is the one with the most (then the longest) callee lines found in the
    messages; its `outcome` gives goal_achieved, key_facts and follow_ups, unless a line said
    carries an outcome of its own (the last such line's wins). With `data_fields`, `data`
    holds the outcome's data for those fields, null where the scenario does not know them.
    """
    haystack = "\n".join(_norm(message_text(m.get("content"))) for m in messages if isinstance(m, dict))
    best_key: tuple[int, int] | None = None
    best: tuple[Scenario, list[Line]] | None = None
    for sc in scenarios().values():
        found: list[tuple[int, Line]] = []
        for line in sc.spoken():
            pos = haystack.find(_norm(line.text))
            if line.text.strip() and pos >= 0:
                found.append((pos, line))
        if not found:
            continue
        key = (len(found), sum(len(line.text) for _, line in found))
        if best_key is None or key > best_key:
            best_key = key
            best = (sc, [line for _, line in sorted(found, key=lambda f: f[0])])  # in the order they were said

    if best is None:
        empty: dict[str, Any] = {
            "summary": NO_CONVERSATION_SUMMARY,
            "goal_achieved": "no",
            "key_facts": [],
            "follow_ups": [],
        }
        if data_fields is not None:
            empty["data"] = dict.fromkeys(data_fields)
        return empty
    sc, said_lines = best
    outcome = next((line.outcome for line in reversed(said_lines) if line.outcome), None) or sc.outcome or {}
    said = [line.text for line in said_lines]
    goal = outcome.get("goal_achieved")
    key_facts = [str(f) for f in outcome.get("key_facts") or []]
    follow_ups = [str(f) for f in outcome.get("follow_ups") or []]
    summary = "The callee said: " + ", then ".join(f"'{text}'" for text in said) + "."
    if key_facts:
        summary += " " + " ".join(key_facts)
    answer: dict[str, Any] = {
        "summary": summary,
        "goal_achieved": goal if goal in ("yes", "partly", "no") else "no",
        "key_facts": key_facts,
        "follow_ups": follow_ups,
    }
    if data_fields is not None:
        known = outcome.get("data") or {}
        answer["data"] = {name: known.get(name) for name in data_fields}
    return answer


def _text_pieces(text: str, words_per_piece: int = WORDS_PER_CHUNK) -> list[str]:
    """Split text into pieces of a few words, keeping every character (so JSON survives)."""
    words = [w for w in re.findall(r"\S*\s*", text) if w]
    return ["".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)]


def _count_tokens(text: str) -> int:
    """A rough token count for the usage block (words, plus one so it is never zero)."""
    return len(text.split()) + 1


# ---------------------------------------------------------------------------------------------
# Audio helpers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WavAudio:
    sample_rate: int
    channels: int
    bits: int
    pcm: bytes

    @property
    def duration(self) -> float:
        frame = self.channels * self.bits // 8
        return len(self.pcm) / frame / self.sample_rate if frame and self.sample_rate else 0.0

    def rms(self) -> float:
        """RMS with full scale = 1.0 (16-bit PCM only; anything else counts as loud)."""
        if self.bits != 16:
            return 1.0
        samples = np.frombuffer(self.pcm[: len(self.pcm) // 2 * 2], dtype="<i2")
        if samples.size == 0:
            return 0.0
        return float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) / 32768.0


def parse_wav(data: bytes) -> WavAudio | None:
    """The PCM payload of a RIFF/WAVE file, or None if `data` isn't one we can read."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    fmt: tuple[int, int, int, int] | None = None  # format tag, channels, rate, bits
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        pos += 8
        if chunk_id == b"fmt " and size >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, pos)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None or fmt[0] != 1:  # PCM only
                return None
            # streamed WAVs carry a placeholder size: take what is there
            return WavAudio(fmt[2], fmt[1], fmt[3], data[pos : pos + size])
        pos += size + (size & 1)
    return None


def wav_header(sample_rate: int, channels: int = 1, data_size: int = WAV_UNKNOWN_SIZE) -> bytes:
    """A 44-byte 16-bit PCM WAV header; the default sizes mean "streamed, length unknown"."""
    riff_size = WAV_UNKNOWN_SIZE if data_size == WAV_UNKNOWN_SIZE else 36 + data_size
    block_align = channels * 2
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + struct.pack(
            "<4sIHHIIHH",
            b"fmt ",
            16,
            1,
            channels,
            sample_rate,
            sample_rate * block_align,
            block_align,
            16,
        )
        + struct.pack("<4sI", b"data", data_size)
    )


class LinearResampler:
    """Streaming linear-interpolation resampler for mono int16, exact across chunk borders.

    Output sample n sits at input position n * src/dst; it is interpolated between the two
    input samples around it. Linear interpolation is plenty for espeak's 22.05 kHz -> 24 kHz,
    and being incremental it lets speech go out while espeak is still rendering.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        g = gcd(src_rate, dst_rate)
        self._down = src_rate // g  # input step per output sample, in units of 1/_up
        self._up = dst_rate // g
        self._buf = np.zeros(0, dtype=np.float64)  # input from global index _base on
        self._base = 0
        self._n = 0  # next output sample

    def push(self, samples: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._buf, samples.astype(np.float64)])
        total = self._base + len(buf)
        # output n needs inputs floor(n*down/up) and the one after it, i.e. n*down < (total-1)*up
        n_end = ((total - 1) * self._up + self._down - 1) // self._down
        return self._emit(buf, n_end)

    def flush(self) -> np.ndarray:
        """The outputs up to the end of the input (the last sample held)."""
        if len(self._buf) == 0:
            return np.zeros(0, dtype="<i2")
        total = self._base + len(self._buf)
        n_end = (total * self._up + self._down - 1) // self._down
        return self._emit(np.concatenate([self._buf, self._buf[-1:]]), n_end)

    def _emit(self, buf: np.ndarray, n_end: int) -> np.ndarray:
        n_end = max(n_end, self._n)
        pos = np.arange(self._n, n_end, dtype=np.int64) * self._down
        idx = pos // self._up - self._base
        frac = (pos % self._up) / self._up
        out = buf[idx] * (1.0 - frac) + buf[idx + 1] * frac if len(idx) else np.zeros(0)
        self._n = n_end
        keep = (n_end * self._down) // self._up - self._base  # first input still needed
        self._buf = buf[keep:]
        self._base += keep
        return np.clip(np.rint(out), -32768, 32767).astype("<i2")


async def _read_wav_stream_header(stream: asyncio.StreamReader) -> tuple[int, int, int]:
    """Read a WAV header off a stream up to the start of the data: (rate, channels, bits)."""
    head = await stream.readexactly(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    fmt: tuple[int, int, int] | None = None
    while True:
        chunk_id, size = struct.unpack("<4sI", await stream.readexactly(8))
        if chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data before fmt")
            return fmt
        body = await stream.readexactly(size + (size & 1))
        if chunk_id == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag != 1 or bits != 16:
                raise ValueError(f"unsupported WAV format tag={tag} bits={bits}")
            fmt = (rate, channels, bits)


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> web.Response:
    """An OpenAI-style error body, which the openai client turns into APIStatusError."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status)


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ModelServer:
    """The offline OpenAI-compatible server (chat, speech, transcription, models) on host:port.

    `port=0` picks a free port; `port` and `base_url` give the real one once started. What each
    request asked for is in `requests` (the latest KEEP_REQUESTS) and, with `log_dir`, appended
    to `log_dir/requests.jsonl` (see _record).
    """

    def __init__(self, *, board: Board, host: str, port: int, log_dir: Path | None = None) -> None:
        self._board = board
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._log: IO[str] | None = None
        self.requests: deque[dict[str, Any]] = deque(maxlen=KEEP_REQUESTS)
        # call key -> the language its requests asked for (STT hint, instructions), latest last
        self._languages: OrderedDict[str, str] = OrderedDict()

    @property
    def base_url(self) -> str:
        """What to give an OpenAI client as base_url."""
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            # Opened once at start-up, line-buffered (a reader sees whole lines), closed on stop.
            self._log = open(self.log_dir / REQUEST_LOG, "a", buffering=1, encoding="utf-8")  # noqa: ASYNC230, SIM115
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model}", self._model)
        # our middleware logs requests (and never headers); no aiohttp access log
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        if self.port == 0:
            self.port = runner.addresses[0][1]
        logger.info("model server listening on %s", self.base_url)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- what was asked ---------------------------------------------------------------------

    def _record(self, request: web.Request, kind: str, **fields: Any) -> dict[str, Any]:
        """Note a request: {"at", "call" (the call key, or null), "kind" ("stt", "tts" or
        "chat"), ...its fields}; in `requests` and, with a log_dir, requests.jsonl."""
        entry = {"at": time.time(), "call": request.headers.get(CALL_ID_HEADER) or None, "kind": kind, **fields}
        self.requests.append(entry)
        if self._log is not None:
            self._log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def _note_language(self, call_key: str | None, language: str | None) -> None:
        """Remember the language a call's requests asked for (the bed's languages only)."""
        if not call_key or language not in ESPEAK_VOICES:
            return
        self._languages[call_key] = language
        self._languages.move_to_end(call_key)
        while len(self._languages) > KEEP_CALL_LANGUAGES:
            self._languages.popitem(last=False)

    def speech_language(self, call_key: str | None, text: str, instructions: str = "") -> str:
        """The language to render speech in: the script's, for a sentence the script gives the
        agent; else the one the request's instructions name (not English); else the one the
        call's transcriptions and chat asked for; else English."""
        named = [code for code in languages_named(instructions) if code != DEFAULT_LANGUAGE]
        return (
            scripted_language(text)
            or (named[0] if named else None)
            or (self._languages.get(call_key) if call_key else None)
            or DEFAULT_LANGUAGE
        )

    # --- plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Log each request, and answer every failure (404s included) OpenAI-style."""
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except _BadRequest as exc:
            status = 400
            return _error(400, str(exc), param=exc.param)
        except web.HTTPException as exc:
            status = exc.status
            message = f"Invalid URL ({request.method} {request.path})" if exc.status == 404 else exc.reason
            return _error(exc.status, message)
        except Exception:
            logger.exception("%s %s failed", request.method, request.path)
            return _error(500, "internal error in the devstack model server", type_="server_error")
        finally:
            logger.info(
                "%s %s %d %.1fms",
                request.method,
                request.path,
                status,
                (time.perf_counter() - started) * 1000,
            )

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _BadRequest("We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise _BadRequest("The request body must be a JSON object.")
        return body

    # --- /v1/models ---------------------------------------------------------------------------

    @staticmethod
    def _model_obj(model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "devstack"}

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [self._model_obj(m) for m in MODEL_IDS]})

    async def _model(self, request: web.Request) -> web.Response:
        return web.json_response(self._model_obj(request.match_info["model"]))

    # --- /v1/chat/completions -----------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("'messages' must be a non-empty array.", param="messages")

        answer = (
            ScriptedAnswer(json.dumps(summarize(messages, requested_data(body))))
            if is_summary_request(body)
            else answer_chat(body)
        )
        model = str(body.get("model") or "devstack-scripted")
        prompt_tokens = sum(_count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict))
        tool_call: dict[str, Any] | None = None
        if answer.tool is not None:
            # As OpenAI sends them: an id "call_" + 24 characters, and the arguments as one
            # JSON object in a string, compact and in UTF-8 (the LiveKit plugin parses it).
            tool_call = {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": answer.tool.name, "arguments": tool_arguments_json(answer.tool)},
            }
        completion_text = answer.content or (tool_call["function"]["arguments"] if tool_call else "")
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _count_tokens(completion_text),
            "total_tokens": prompt_tokens + _count_tokens(completion_text),
        }
        logger.debug("chat reply: %s", tool_call["function"]["name"] if tool_call else answer.content)
        asked = languages_named(instructions_text(body))
        non_default = [code for code in asked if code != DEFAULT_LANGUAGE]
        call_key = request.headers.get(CALL_ID_HEADER) or None
        if len(non_default) == 1:
            self._note_language(call_key, non_default[0])
        if answer.error_branch and call_key:
            self._board.took_error_branch(call_key)  # the phone says the if_tool_failed lines
        self._record(
            request,
            "chat",
            model=model,
            summary=is_summary_request(body),
            instructions_languages=asked,
            reply=answer.content if tool_call is None else None,
            tool=tool_call["function"]["name"] if tool_call else None,
            tool_arguments=answer.tool.arguments if answer.tool is not None else None,
            tools=sorted(offered_tools(body)),
            tool_outputs=tool_outputs(body),
            error_branch=answer.error_branch,
        )

        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        finish = "tool_calls" if tool_call else "stop"

        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": answer.content,
                "refusal": None,
            }
            if tool_call:
                message["tool_calls"] = [tool_call]
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                    "usage": usage,
                }
            )

        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            obj: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
            if include_usage:
                obj["usage"] = None  # as OpenAI: only the last chunk carries usage
            return obj

        events: list[dict[str, Any]] = []
        if tool_call:
            args = tool_call["function"]["arguments"]
            events.append(
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": tool_call["id"],
                                "type": "function",
                                "function": {"name": tool_call["function"]["name"], "arguments": ""},
                            }
                        ],
                    }
                )
            )
            for i in range(0, len(args), ARGS_PER_CHUNK):
                events.append(
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "function": {"arguments": args[i : i + ARGS_PER_CHUNK]},
                                }
                            ]
                        }
                    )
                )
        else:
            events.append(chunk({"role": "assistant", "content": ""}))
            events.extend(chunk({"content": piece}) for piece in _text_pieces(answer.content or ""))
        events.append(chunk({}, finish))
        if include_usage:
            events.append(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        try:
            for event in events:
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            logger.debug("chat client went away mid-stream")
        return response

    # --- /v1/audio/speech -----------------------------------------------------------------------

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        """Speech rendered by espeak-ng, streamed out as espeak produces it.

        pcm -> raw 24 kHz s16le mono; everything else -> a 24 kHz WAV declared as audio/wav
        (we have no mp3/opus encoder; the livekit plugin decodes by the Content-Type we send).
        """
        body = await self._json_body(request)
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise _BadRequest("'input' must be a non-empty string.", param="input")
        response_format = str(body.get("response_format") or "mp3").lower()
        try:
            speed = float(body.get("speed") or 1.0)
        except (TypeError, ValueError):
            raise _BadRequest("'speed' must be a number.", param="speed") from None
        wpm = int(min(max(ESPEAK_WPM * speed, 80), 500))
        instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else None
        language = self.speech_language(request.headers.get(CALL_ID_HEADER), text, instructions or "")
        voice = espeak_voice(language)
        self._record(
            request,
            "tts",
            model=str(body.get("model") or ""),
            voice=str(body.get("voice") or ""),
            text=text,
            instructions=instructions,
            speed=speed,
            response_format=response_format,
            espeak_voice=voice,
        )

        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "espeak-ng",
            "-v",
            voice,
            "-s",
            str(wpm),
            "--stdout",
            "--stdin",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            # text via stdin so input starting with "-" is never taken for an option
            proc.stdin.write(text.encode())
            await proc.stdin.drain()
            proc.stdin.close()
            try:
                src_rate, channels, _ = await _read_wav_stream_header(proc.stdout)
            except (asyncio.IncompleteReadError, ValueError) as exc:
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                logger.error("espeak-ng produced no audio (%s): %s", exc, err)
                return _error(500, "speech rendering failed", type_="server_error")
            if channels != 1:
                return _error(500, f"espeak-ng gave {channels} channels", type_="server_error")

            is_pcm = response_format == "pcm"
            response = web.StreamResponse(
                headers={
                    "Content-Type": "audio/pcm" if is_pcm else "audio/wav",
                    # OpenAI sends one; the livekit TTS plugin warns when it is missing.
                    "x-request-id": f"req_{uuid.uuid4().hex[:24]}",
                }
            )
            response.enable_chunked_encoding()
            await response.prepare(request)
            if not is_pcm:
                await response.write(wav_header(TTS_SAMPLE_RATE))

            resampler = LinearResampler(src_rate, TTS_SAMPLE_RATE)
            first_audio: float | None = None
            out_samples = 0
            carry = b""
            try:
                while data := await proc.stdout.read(16384):
                    data = carry + data
                    even = len(data) // 2 * 2
                    carry = data[even:]
                    out = resampler.push(np.frombuffer(data[:even], dtype="<i2"))
                    if out.size:
                        first_audio = first_audio or time.perf_counter()
                        out_samples += out.size
                        await response.write(out.tobytes())
                out = resampler.flush()
                out_samples += out.size
                if out.size:
                    await response.write(out.tobytes())
                await response.write_eof()
            except ConnectionResetError:
                logger.debug("speech client went away mid-stream")
                return response
            await proc.wait()
            done = time.perf_counter()
            logger.debug(
                "speech %r: %.2fs of audio (%s) rendered in %.0fms, first audio after %.0fms",
                text[:40],
                out_samples / TTS_SAMPLE_RATE,
                "pcm" if is_pcm else "wav",
                (done - started) * 1000,
                ((first_audio or done) - started) * 1000,
            )
            return response
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    # --- /v1/audio/transcriptions ----------------------------------------------------------------

    async def _transcriptions(self, request: web.Request) -> web.Response:
        """The phone's next unheard line on this call; the audio is only checked for silence."""
        if not request.content_type.startswith("multipart/"):
            raise _BadRequest("Expected a multipart/form-data body.")
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise _BadRequest("'file' is required.", param="file")
        audio = upload.file.read()
        response_format = str(form.get("response_format") or "json")
        call_key = request.headers.get(CALL_ID_HEADER) or None
        # The hint: `language`, or (the newest models) a `languages` list; the scripted
        # transcript does not depend on it, and is in whatever language the phone spoke.
        language = str(form.get("language") or "") or None
        languages = [str(v) for key in ("languages", "languages[]") for v in form.getall(key, []) if str(v)]
        self._note_language(call_key, language or (languages[0] if languages else None))

        wav = parse_wav(audio)
        silent = len(audio) == 0 or (wav is not None and wav.rms() < SILENCE_RMS)
        # silence must not use up a line the phone is about to say
        text = "" if silent else (self._board.next_unheard(call_key) or "")
        logger.debug("transcription call=%s language=%s silent=%s -> %r", call_key, language, silent, text)
        self._record(
            request,
            "stt",
            model=str(form.get("model") or ""),
            language=language,
            languages=languages or None,
            response_format=response_format,
            silent=silent,
            text=text,
        )

        if response_format == "text" or response_format in ("srt", "vtt"):
            return web.Response(text=text, content_type="text/plain")
        if response_format == "verbose_json":
            return web.json_response(
                {
                    "task": "transcribe",
                    # the hint back (the plugin takes this over its own hint), else English
                    "language": language or (languages[0] if languages else DEFAULT_LANGUAGE),
                    "duration": round(wav.duration, 3) if wav else 0.0,
                    "text": text,
                    "segments": [],
                }
            )
        return web.json_response({"text": text})
