"""callagent's benchmarks, measured side by side on the local telephony bed.

    uv run devstack run -- uv run python bench/run.py            # the full run (~10 min on 2 cores)
    uv run devstack run -- uv run python bench/run.py --quick    # CI smoke run (~2 min), no speed asserts
    uv run devstack run -- python bench/run.py                   # the same, with the venv's python

Prints one JSON line per measure on stdout (progress goes to stderr):

- server_cold_start         spawn server.py over stdio → initialize → tools/list, against
                            bench/bare_server.py (a hello-world MCPServer of the same SDK), A/B alternated
- make_phone_call_latency   the MCP tool call → its result, against the raw LiveKit calls it wraps
                            (create_room + create_dispatch + wait for the agent + create_sip_participant)
                            made directly from here, A/B alternated; the agent-join wait on its own
- answer_to_first_audio     the phone's answer → the first non-silent audio it receives (phone's clock)
- turn_latency              the phone's end of utterance → the first agent audio after it
- false_end_of_turn         callees who pause mid-sentence (+1 415 555 0116): how often the agent
                            started talking inside a callee's sentence, and the turn latency there
- concurrent_calls          N conversations at once on one worker: completed, lost, CPU and memory
- scale_out                 calls across two workers and two MCP servers on one store (bench/scale_out.py)

The run starts its own calling worker (own agent name, own SQLite store in the run directory, so
nothing else on the bed can take its calls) and its own MCP servers, and ends every process it
started, also on errors and Ctrl-C. Artifacts (worker log, server log, call store) stay in
$DEVSTACK_RUN_DIR/bench-<time>/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` from anywhere
    sys.path.insert(0, str(ROOT))

from devstack import phonelog  # noqa: E402
from devstack.worker import WorkerProcess  # noqa: E402

BED_VARS = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "SIP_OUTBOUND_TRUNK_ID", "DEVSTACK_PHONE_DIR")
SERVER = ROOT / "server.py"
BARE_SERVER = ROOT / "bench" / "bare_server.py"
WORKER = ROOT / "calling_agent.py"

CONVERSATION = "+14155550100"  # answers after one ring, scripted three-turn conversation
SILENT = "+14155550101"  # answers after one ring, says nothing
PAUSED = "+14155550116"  # 0100's kind of conversation, with 0.3-0.6 s pauses mid-sentence
GOAL = "Confirm the appointment tomorrow at 10 am"
T = TypeVar("T")
MEASURES = {"cold", "call", "conversation", "false_eot", "concurrent", "scale_out"}
TERMINAL = {"completed", "voicemail", "no_answer", "busy", "declined", "failed", "canceled"}
TOOL_TIMEOUT_S = 70.0
POLL_S = 0.05  # the dialer's own poll interval for the agent join (callagent/dialer.py)
SETTLE_S = 0.5  # between make_phone_call rounds, once the previous call's job has ended


@dataclass(frozen=True)
class Counts:
    cold_rounds: int
    call_rounds: int
    conversations: int
    paused_calls: int  # 4 paused callee sentences each
    concurrent: int
    # time bounds (s) per measure
    cold_budget: float
    call_budget: float
    conversation_budget: float
    paused_budget: float
    concurrent_budget: float


FULL = Counts(
    cold_rounds=20,
    call_rounds=12,
    conversations=10,
    paused_calls=6,
    concurrent=10,
    cold_budget=150,
    call_budget=180,
    conversation_budget=480,
    paused_budget=360,
    concurrent_budget=240,
)
QUICK = Counts(
    cold_rounds=3,
    call_rounds=2,
    conversations=1,
    paused_calls=1,
    concurrent=2,
    cold_budget=40,
    call_budget=60,
    conversation_budget=90,
    paused_budget=90,
    concurrent_budget=150,
)


class BenchError(Exception):
    pass


# -- output ------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def emit(metric: str, n: int, unit: str, **fields: Any) -> dict[str, Any]:
    line = {"metric": metric, "n": n, "unit": unit, **fields}
    print(json.dumps(line), flush=True)
    return line


def pct(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (linear interpolation, like numpy's default); None when empty."""
    xs = sorted(values)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 1)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def p50s(rows: list[dict[str, float]]) -> dict[str, float | None]:
    """Per-key medians (ms) of a list of {step: seconds}."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: ms(pct([r[k] for r in rows if k in r], 50)) for k in keys}


# -- processes -------------------------------------------------------------------------------


class Worker(WorkerProcess):
    """The calling worker, with what the benchmark reads from its JSON log records."""

    def wait_registered(self, timeout: float = 120) -> float:
        try:
            return super().wait_registered(timeout)
        except RuntimeError as exc:
            raise BenchError(str(exc)) from None

    def records(self) -> list[dict[str, Any]]:
        """The worker's JSON log lines (its summary blocks are plain text, skipped)."""
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def job_pids(self) -> dict[str, int]:
        """call_id → pid of the job process that held it (the job's "joining" record)."""
        return {
            str(rec["call_id"]): int(rec["pid"])
            for rec in self.records()
            if rec.get("event") == "joining" and "call_id" in rec and "pid" in rec
        }

    def loop_blocks(self) -> list[tuple[int, float, float]]:
        """(pid, wall-clock end, seconds) of every "event loop blocked" warning LiveKit Agents
        logged (its loop monitor's `duration` and `threshold` fields): synchronous work that
        held up a job's audio."""
        out = []
        for rec in self.records():
            if "threshold" not in rec or not isinstance(rec.get("duration"), (int, float)) or "pid" not in rec:
                continue
            try:
                end = datetime.fromisoformat(rec["timestamp"]).timestamp()
            except (KeyError, ValueError):
                continue
            out.append((int(rec["pid"]), end, float(rec["duration"])))
        return out

    def agent_answered_at(self) -> dict[str, float]:
        """call_id → when the agent saw sip.callStatus=active (the record's `answered_at`)."""
        return {
            str(rec["call_id"]): float(rec["answered_at"])
            for rec in self.records()
            if "answered_at" in rec and "call_id" in rec
        }

    def wait_job_done(self, call_id: str, timeout: float = 15) -> bool:
        """Until the job process that held the call has exited (or `timeout`)."""
        deadline = time.monotonic() + timeout
        room = f"call-{call_id}"  # callagent.calls.room_name_for, without importing callagent here
        while time.monotonic() < deadline:
            if any(rec.get("room") == room and rec.get("message") == "process exiting" for rec in self.records()):
                return True
            time.sleep(0.1)
        log(f"warning: the job for call {call_id} was still running {timeout:g} s after the hang-up")
        return False


def reap_own_children() -> None:
    """Last line of defence: end every process this one started that is still there (the MCP
    SDK starts servers in their own sessions; a crash mid-measure could leave one)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        ppid, pgrp = int(fields[1]), int(fields[2])
        if ppid != me:
            continue
        pid = int(entry.name)
        try:
            if pgrp == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# -- /proc sampling (no psutil) -----------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _read_proc(pid: int) -> dict[str, Any] | None:
    base = Path(f"/proc/{pid}")
    try:
        fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
        out: dict[str, Any] = {
            "pgrp": int(fields[2]),
            # own CPU + that of children it has reaped (job processes are reaped by the forkserver)
            "cpu_s": sum(int(f) for f in fields[11:15]) / CLK_TCK,
            "rss_kb": int(fields[21]) * PAGE_KB,
        }
        for line in (base / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["hwm_kb"] = int(line.split()[1])
        try:
            for line in (base / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    out["pss_kb"] = int(line.split()[1])
                    break
        except (PermissionError, OSError):
            pass
        return out
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError, PermissionError):
        return None


def group_snapshot(pgid: int) -> dict[int, dict[str, Any]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _read_proc(int(entry.name))
            if info is not None and info["pgrp"] == pgid:
                out[int(entry.name)] = info
    return out


class GroupSampler(threading.Thread):
    """Samples a process group's CPU seconds, summed RSS/PSS and per-process peak RSS."""

    def __init__(self, pgid: int, interval: float = 0.25) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.pgid = pgid
        self.interval = interval
        self._halt = threading.Event()
        self.samples: list[tuple[float, float, int, int, int]] = []  # t, cpu_s, rss_kb, pss_kb, nprocs
        self.hwm_kb: dict[int, int] = {}

    def sample(self) -> tuple[float, float, int, int, int]:
        snap = group_snapshot(self.pgid)
        for pid, info in snap.items():
            if "hwm_kb" in info:
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), info["hwm_kb"])
        row = (
            time.monotonic(),
            sum(i["cpu_s"] for i in snap.values()),
            sum(i["rss_kb"] for i in snap.values()),
            sum(i.get("pss_kb", 0) for i in snap.values()),
            len(snap),
        )
        self.samples.append(row)
        return row

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.sample()


# -- logs of the bed ---------------------------------------------------------------------------

_MODELS_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) devstack\.models INFO POST (/v1/\S+) \d{3} ([\d.]+)ms"
)


def model_requests() -> list[tuple[float, str]]:
    """(wall-clock start, path) of every POST to the offline model server, from its log."""
    run_dir = os.environ.get("DEVSTACK_RUN_DIR")
    path = Path(run_dir) / "fakes.log" if run_dir else None
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = _MODELS_LINE.match(line)
        if m:
            end = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
            out.append((end - float(m.group(4)) / 1000, m.group(3)))  # logged when the request ended
    return sorted(out)


def _zap_fields(text: str) -> dict[str, Any]:
    """The structured fields of a Go (zap) log line: its last tab-separated part is JSON."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return fields if isinstance(fields, dict) else {}


def sip_events(rooms: set[str]) -> dict[str, dict[str, float]]:
    """room → {message: first wall-clock time} for the SIP bridge's answer-path milestones."""
    run_dir = os.environ.get("DEVSTACK_RUN_DIR")
    path = Path(run_dir) / "livekit-sip.log" if run_dir else None
    wanted = ("Outbound SIP call established", "track subscribed")
    out: dict[str, dict[str, float]] = {}
    if path is None or not path.exists():
        return out
    with open(path, errors="replace") as f:
        for line in f:
            if '"room": "' not in line or not any(w in line for w in wanted):
                continue
            parts = line.split("\t")
            if len(parts) < 6 or parts[4] not in wanted:
                continue
            room = _zap_fields(parts[5]).get("room")
            if room not in rooms:
                continue
            try:
                at = datetime.strptime(parts[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
            except ValueError:
                continue
            out.setdefault(room, {}).setdefault(parts[4], at)
    return out


def tts_leading_silence(text: str) -> float | None:
    """Seconds of silence (by the phone's own rule: 20 ms frames at RMS <= 300) at the start of
    the offline TTS's rendering of `text`: time the callee hears nothing however fast the rest is."""
    import urllib.request

    import numpy as np

    base = os.environ.get("OPENAI_BASE_URL")
    if not base or not text:
        return None
    body = json.dumps({"model": "gpt-4o-mini-tts", "voice": "alloy", "input": text, "response_format": "pcm"})
    req = urllib.request.Request(
        f"{base.rstrip('/')}/audio/speech",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            pcm = np.frombuffer(resp.read(), dtype="<i2").astype(np.float64)
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        log(f"TTS leading-silence probe failed: {exc}")
        return None
    frame = 24000 // 50  # the model server's speech is 24 kHz
    frames = pcm[: len(pcm) // frame * frame].reshape(-1, frame)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 300)
    return float(loud[0]) * 0.02 if len(loud) else None


def first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


_GO_UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def _iso(ts: str) -> float | None:
    try:
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def livekit_room_events(rooms: set[str]) -> dict[str, dict[str, float]]:
    """room → when CreateRoom started and when the SIP participant joined, from livekit-server's log."""
    run_dir = os.environ.get("DEVSTACK_RUN_DIR")
    path = Path(run_dir) / "livekit-server.log" if run_dir else None
    out: dict[str, dict[str, float]] = {}
    if path is None or not path.exists():
        return out
    with open(path, errors="replace") as f:
        for line in f:
            if "API RoomService.CreateRoom" not in line and "starting RTC session" not in line:
                continue
            fields = _zap_fields(line.rsplit("\t", 1)[-1])
            room = fields.get("room")
            at = _iso(line.split("\t", 1)[0])
            if room not in rooms or at is None:
                continue
            ev = out.setdefault(room, {})
            if "API RoomService.CreateRoom" in line:
                d = re.fullmatch(r"([\d.]+)(ns|µs|us|ms|s)", str(fields.get("duration", "")))
                ev.setdefault("create_room_start", at - (float(d.group(1)) * _GO_UNITS[d.group(2)] if d else 0.0))
            elif str(fields.get("participant", "")).startswith("callee-"):
                ev.setdefault("sip_participant_joined", at)
    return out


# -- phone-log analysis --------------------------------------------------------------------------


def answer_to_first_audio(call: dict[str, Any]) -> float | None:
    if call.get("answered_at") and call.get("first_audio_at"):
        took: float = call["first_audio_at"] - call["answered_at"]
        return took
    return None


def turns(call: dict[str, Any]) -> tuple[list[tuple[float, float]], int]:
    """[(utterance end, first agent speech start after it)] for every phone line the agent
    answered before the phone's next line; and how many lines got no answer in that window."""
    utts = sorted(call.get("utterances") or [], key=lambda u: u["start"])
    speech = sorted(s["start"] for s in call.get("agent_speech") or [])
    out, unanswered = [], 0
    for i, u in enumerate(utts):
        if u.get("end") is None:
            continue
        limit = utts[i + 1]["start"] if i + 1 < len(utts) else float("inf")
        nxt = next((s for s in speech if s > u["end"]), None)
        if nxt is not None and nxt < limit:
            out.append((u["end"], nxt))
        else:
            unanswered += 1
    return out, unanswered


def false_ends(call: dict[str, Any], paused: set[str]) -> tuple[int, list[str]]:
    """How many of the callee's paused sentences (texts in `paused`) the phone said, and those
    inside which it heard the agent start talking: a turn taken while the callee was mid-sentence."""
    starts = [s["start"] for s in call.get("agent_speech") or []]
    said, cut = 0, []
    for u in call.get("utterances") or []:
        if u.get("text") not in paused or u.get("end") is None:
            continue
        said += 1
        if any(u["start"] < t < u["end"] for t in starts):
            cut.append(u["text"])
    return said, cut


def blocked(blocks: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds the job's event loop was reported blocked by stalls that ended in (start, end]."""
    return sum(d for t, d in blocks if start < t <= end)


def turn_breakdown(
    pairs: list[tuple[float, float]], requests: list[tuple[float, str]], blocks: list[tuple[float, float]]
) -> list[dict[str, float]]:
    """Where each turn's time went, from the model server's request log (sequential calls only)."""
    rows = []
    for end, heard in pairs:

        def first(path: str, after: float) -> float | None:
            # Called only within this iteration, so the late binding of `heard` is harmless.
            return next((t for t, p in requests if p == path and after <= t <= heard), None)  # noqa: B023

        stt = first("/v1/audio/transcriptions", end - 0.05)
        llm = first("/v1/chat/completions", stt) if stt is not None else None
        tts = first("/v1/audio/speech", llm) if llm is not None else None
        if stt is None or llm is None or tts is None:  # (tts is None whenever one before it is)
            continue
        rows.append(
            {
                "utterance_end_to_stt_request": stt - end,  # VAD end of speech + endpointing, then the upload
                "stt_request_to_llm_request": llm - stt,  # transcription + end-of-turn bookkeeping
                "llm_request_to_tts_request": tts - llm,  # first sentence of the streamed reply
                "tts_request_to_phone_audio": heard - tts,  # TTS first bytes → agent audio out → SFU → SIP → RTP
                "agent_loop_blocked": blocked(blocks, end, heard),  # (overlaps the steps above)
            }
        )
    return rows


def answer_breakdown(
    call: dict[str, Any],
    sip: dict[str, float],
    requests: list[tuple[float, str]],
    blocks: list[tuple[float, float]],
    agent_active: float | None,
) -> dict[str, float]:
    row: dict[str, float] = {}
    answered, heard = call.get("answered_at"), call.get("first_audio_at")
    if not answered or not heard:
        return row
    if agent_active is not None:
        row["answer_to_agent_sees_active"] = agent_active - answered
    row["agent_loop_blocked"] = blocked(blocks, answered, heard)
    est, sub = sip.get("Outbound SIP call established"), sip.get("track subscribed")
    if est is not None:
        row["answer_to_sip_established"] = est - answered
        if sub is not None:
            row["sip_established_to_agent_track_subscribed"] = sub - est
            row["agent_track_subscribed_to_phone_audio"] = heard - sub
    # The greeting is synthesized when the job starts, before the phone even rings: the last
    # speech request before the answer is this call's (the calls are sequential).
    tts = max(
        (t for t, p in requests if p == "/v1/audio/speech" and call["invite_at"] - 10 <= t <= answered), default=None
    )
    if tts is not None:
        row["greeting_tts_request_before_answer"] = answered - tts
    return row


# -- MCP ------------------------------------------------------------------------------------------


@asynccontextmanager
async def mcp_client(script: Path, env: dict[str, str], errlog: Any) -> AsyncIterator[Any]:
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=[str(script)], env=env, cwd=ROOT)
    async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
        yield client


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def tool(client: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, args, read_timeout_seconds=TOOL_TIMEOUT_S)
    if result.is_error:
        raise BenchError(f"{name} failed: {_text(result)}")
    return result.structured_content or {}


async def follow(client: Any, record: dict[str, Any], deadline: float) -> dict[str, Any]:
    """wait_for_call until the call has ended or the deadline has passed."""
    while record["status"] not in TERMINAL:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        record = await tool(
            client,
            "wait_for_call",
            {
                "call_id": record["call_id"],
                "timeout_s": round(min(30.0, max(1.0, left)), 1),
                "last_status": record["status"],
            },
        )
    return record


async def phone_call(
    call_id: str,
    timeout: float = 15,  # noqa: ASYNC109 - passed on to the thread that polls the phone's log
    cond: Callable[[dict[str, Any]], bool] = lambda c: bool(c.get("ended")),
) -> dict[str, Any] | None:
    """The phone's log of the call once `cond` holds (default: the call has ended)."""
    try:
        return await asyncio.to_thread(phonelog.wait_for, call_id, cond, timeout)
    except TimeoutError as exc:
        log(f"warning: {exc}"[:300])
        return None


# -- the measures -----------------------------------------------------------------------------------


async def measure_cold_start(env: dict[str, str], counts: Counts, workdir: Path) -> dict[str, Any]:
    arms = {"server": SERVER, "bare": BARE_SERVER}
    times: dict[str, list[float]] = {"server": [], "bare": []}
    tools_seen: dict[str, int] = {}
    deadline = time.monotonic() + counts.cold_budget
    # Both arms start from compiled bytecode, as a user's second start does: the bare server's
    # modules in site-packages have theirs, and with PYTHONDONTWRITEBYTECODE set (as on the CI
    # machines) callagent's own would otherwise be compiled from source on every spawn.
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "callagent"), str(ROOT / "server.py"), str(BARE_SERVER)],
        check=True,
    )
    with open(workdir / "cold-start.stderr.log", "a") as errlog:  # noqa: ASYNC230 - a local log, once per run

        async def once(arm: str) -> float:
            t0 = time.perf_counter()
            async with mcp_client(arms[arm], env, errlog) as client:
                listed = await client.list_tools()
                took = time.perf_counter() - t0
            tools_seen[arm] = len(listed.tools)
            return took

        # One unmeasured round each: the first spawn pays for a cold page cache.
        for arm in ("server", "bare"):
            await once(arm)
        rounds = 0
        for i in range(counts.cold_rounds):
            if time.monotonic() > deadline:
                log(f"cold start: time bound reached after {rounds} rounds")
                break
            for arm in ("server", "bare") if i % 2 == 0 else ("bare", "server"):
                times[arm].append(await once(arm))
            rounds += 1
    if tools_seen.get("server", 0) < 5 or tools_seen.get("bare") != 1:
        raise BenchError(f"unexpected tool lists: {tools_seen}")
    a, b = pct(times["server"], 50), pct(times["bare"], 50)
    return emit(
        "server_cold_start",
        rounds,
        "ms",
        p50_ms=ms(a),
        baseline_ms=ms(b),
        ratio=ratio(a, b),
        p95_ms=ms(pct(times["server"], 95)),
        baseline_p95_ms=ms(pct(times["bare"], 95)),
        min_ms=ms(min(times["server"], default=None)),
        baseline_min_ms=ms(min(times["bare"], default=None)),
        tools=tools_seen["server"],
    )


class RawDialer:
    """The LiveKit calls make_phone_call wraps, made directly: the baseline."""

    def __init__(self, env: dict[str, str]) -> None:
        from livekit import api

        self.api = api
        self.env = env
        self.lk = api.LiveKitAPI(env["LIVEKIT_URL"], env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"])
        from callagent.store import Database

        self.store = Database(env["CALLAGENT_DB_URL"])

    async def place(self, number: str) -> tuple[str, dict[str, float]]:
        """Returns the call id and the seconds each step took."""
        from google.protobuf.duration_pb2 import Duration

        from callagent.calls import CALL_ID_HEADER, CallRecord, CallRequest, new_call_id, room_name_for

        api = self.api
        req = CallRequest(
            call_id=new_call_id(),
            phone_number=number,
            goal=GOAL,
            caller_name="the callagent operator",
            max_duration_s=300,
            ring_timeout_s=30,
        )
        room = room_name_for(req.call_id)
        # Untimed: a record in the store, so the worker treats this call as it would any other.
        self.store.calls.create(CallRecord.from_request(req))
        steps: dict[str, float] = {}
        t0 = t = time.perf_counter()
        await self.lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=60, departure_timeout=5))
        steps["create_room"], t = time.perf_counter() - t, time.perf_counter()
        await self.lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=self.env["CALLAGENT_AGENT_NAME"], room=room, metadata=req.to_metadata()
            )
        )
        steps["create_dispatch"], t = time.perf_counter() - t, time.perf_counter()
        join_deadline = time.monotonic() + 10
        while True:
            res = await self.lk.room.list_participants(api.ListParticipantsRequest(room=room))
            if any(p.kind == api.ParticipantInfo.Kind.AGENT for p in res.participants):
                break
            if time.monotonic() > join_deadline:
                await self.hang_up(req.call_id)
                raise BenchError("baseline: no agent joined within 10 s")
            await asyncio.sleep(POLL_S)
        steps["agent_join"], t = time.perf_counter() - t, time.perf_counter()
        await self.lk.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(
                sip_trunk_id=self.env["SIP_OUTBOUND_TRUNK_ID"],
                sip_call_to=number,
                room_name=room,
                participant_identity=f"callee-{req.call_id}",
                participant_name="callee",
                headers={CALL_ID_HEADER: req.call_id},
                ringing_timeout=Duration(seconds=30),
                max_call_duration=Duration(seconds=360),
                wait_until_answered=False,
            )
        )
        steps["create_sip_participant"] = time.perf_counter() - t
        steps["total"] = time.perf_counter() - t0
        return req.call_id, steps

    async def hang_up(self, call_id: str) -> None:
        from callagent.calls import room_name_for

        try:
            await self.lk.room.delete_room(self.api.DeleteRoomRequest(room=room_name_for(call_id)))
        except Exception as exc:  # noqa: BLE001 - already gone is fine
            log(f"baseline: delete_room: {exc}")

    async def aclose(self) -> None:
        await self.lk.aclose()
        self.store.close()


def joined_ms(server_log: Path, call_id: str) -> float | None:
    """Seconds until the agent joined the call's room, from the server's JSON log record."""
    for line in server_log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("call_id") == call_id and "agent_joined_ms" in rec:
            return float(rec["agent_joined_ms"]) / 1000
    return None


async def measure_make_phone_call(
    client: Any, worker: Worker, env: dict[str, str], counts: Counts, server_log: Path
) -> dict[str, Any]:
    raw = RawDialer(env)
    spans: dict[str, tuple[float, float]] = {}  # call_id → wall-clock (request, result)
    tool_rows: list[dict[str, Any]] = []
    raw_rows: list[dict[str, Any]] = []
    errors: list[str] = []
    deadline = time.monotonic() + counts.call_budget

    async def after(call_id: str, hang_up: Callable[[], Any]) -> None:
        """Untimed: let the phone answer, hang up, and wait until the worker's job is over, so
        every round starts from the same idle worker. (Hanging up before the agent's media
        connection is up leaves its job process waiting about a minute: not what is measured here.)"""
        await phone_call(call_id, timeout=10, cond=lambda c: bool(c.get("answered_at") or c.get("ended")))
        await hang_up()
        await phone_call(call_id)
        await asyncio.to_thread(worker.wait_job_done, call_id)
        await asyncio.sleep(SETTLE_S)

    async def via_tool() -> dict[str, Any]:
        wall0, t0 = time.time(), time.perf_counter()
        rec = await tool(client, "make_phone_call", {"phone_number": SILENT, "goal": GOAL})
        took = time.perf_counter() - t0
        call_id = rec["call_id"]
        spans[call_id] = (wall0, wall0 + took)
        await after(call_id, lambda: tool(client, "end_call", {"call_id": call_id}))
        row: dict[str, Any] = {"total": took, "call_id": call_id}
        join = joined_ms(server_log, call_id)
        if join is not None:
            row["agent_join"] = join
        return row

    async def via_raw() -> dict[str, Any]:
        wall0 = time.time()
        call_id, steps = await raw.place(SILENT)
        spans[call_id] = (wall0, wall0 + steps["total"])
        await after(call_id, lambda: raw.hang_up(call_id))
        return {**steps, "call_id": call_id}

    try:
        # One unmeasured round each (first use of the connection pools on both sides).
        first_call = (await via_tool())["total"]
        await via_raw()
        rounds = 0
        for i in range(counts.call_rounds):
            if time.monotonic() > deadline:
                log(f"make_phone_call: time bound reached after {rounds} rounds")
                break
            for arm in ("tool", "raw") if i % 2 == 0 else ("raw", "tool"):
                try:
                    if arm == "tool":
                        tool_rows.append(await via_tool())
                    else:
                        raw_rows.append(await via_raw())
                except BenchError as exc:
                    errors.append(f"{arm}: {exc}"[:300])
                    log(f"make_phone_call {arm}: {exc}"[:300])
            rounds += 1  # noqa: SIM113 - finished rounds, also read after the time-bound break
            if tool_rows and raw_rows:
                log(
                    f"make_phone_call round {rounds}: tool {tool_rows[-1]['total'] * 1000:.0f} ms, "
                    f"raw {raw_rows[-1]['total'] * 1000:.0f} ms"
                )
    finally:
        await raw.aclose()

    # Where the time outside the agent-join wait goes, from LiveKit's own log: before the first
    # LiveKit request (MCP round trip, validation, dial policy, store writes), and from the SIP
    # participant joining the room to the result (make_phone_call polls for it; the raw call
    # returns when create_sip_participant does).
    events = livekit_room_events({f"call-{cid}" for cid in spans})

    def split(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
        out = []
        for r in rows:
            ev, (w0, w1) = events.get(f"call-{r['call_id']}", {}), spans[r["call_id"]]
            row = {}
            if "create_room_start" in ev:
                row["before_first_livekit_request"] = ev["create_room_start"] - w0
            if "sip_participant_joined" in ev:
                row["sip_participant_joined_to_result"] = w1 - ev["sip_participant_joined"]
            out.append(row)
        return out

    a = pct([r["total"] for r in tool_rows], 50)
    b = pct([r["total"] for r in raw_rows], 50)
    a_join = pct([r["agent_join"] for r in tool_rows if "agent_join" in r], 50)
    b_join = pct([r["agent_join"] for r in raw_rows], 50)
    a_ex = pct([r["total"] - r["agent_join"] for r in tool_rows if "agent_join" in r], 50)
    b_ex = pct([r["total"] - r["agent_join"] for r in raw_rows], 50)
    return emit(
        "make_phone_call_latency",
        min(len(tool_rows), len(raw_rows)),
        "ms",
        p50_ms=ms(a),
        baseline_ms=ms(b),
        ratio=ratio(a, b),
        agent_join_ms=ms(a_join),
        baseline_agent_join_ms=ms(b_join),
        p50_excl_join_ms=ms(a_ex),
        baseline_excl_join_ms=ms(b_ex),
        ratio_excl_join=ratio(a_ex, b_ex),
        p95_ms=ms(pct([r["total"] for r in tool_rows], 95)),
        baseline_p95_ms=ms(pct([r["total"] for r in raw_rows], 95)),
        first_call_ms=ms(first_call),
        baseline_steps_p50_ms=p50s([{k: v for k, v in r.items() if k != "call_id"} for r in raw_rows]),
        breakdown_p50_ms=p50s(split(tool_rows)),
        baseline_breakdown_p50_ms=p50s(split(raw_rows)),
        number=SILENT,
        errors=errors,
    )


async def measure_conversations(client: Any, worker: Worker, counts: Counts) -> list[dict[str, Any]]:
    deadline = time.monotonic() + counts.conversation_budget
    calls: list[dict[str, Any]] = []
    statuses: dict[str, int] = {}
    first_transcript: list[dict[str, Any]] = []
    for i in range(counts.conversations):
        if time.monotonic() > deadline:
            log(f"conversations: time bound reached after {i}")
            break
        t0 = time.monotonic()
        rec = await tool(client, "make_phone_call", {"phone_number": CONVERSATION, "goal": GOAL})
        rec = await follow(client, rec, deadline + 60)
        statuses[rec["status"]] = statuses.get(rec["status"], 0) + 1
        first_transcript = first_transcript or rec.get("transcript") or []
        call = await phone_call(rec["call_id"])
        if call is not None:
            calls.append(call)
            first_audio = answer_to_first_audio(call)
            log(
                f"conversation {i + 1}/{counts.conversations}: {rec['status']} in {time.monotonic() - t0:.0f} s, "
                f"answer→first audio {first_audio * 1000:.0f} ms"
                if first_audio is not None
                else "no audio"
            )
    requests = model_requests()
    sip = sip_events({f"call-{c['call_key']}" for c in calls})

    # What the callee hears first: the greeting, then (first sentence of) the first reply.
    greeting = next((t["text"] for t in first_transcript if t["role"] == "agent"), "")
    reply = next((t["text"] for t in first_transcript[1:] if t["role"] == "agent"), "")
    greeting_silence = await asyncio.to_thread(tts_leading_silence, greeting)
    reply_silence = await asyncio.to_thread(tts_leading_silence, first_sentence(reply))

    pids, active = worker.job_pids(), worker.agent_answered_at()
    all_blocks = worker.loop_blocks()

    def blocks_of(call: dict[str, Any]) -> list[tuple[float, float]]:
        pid = pids.get(call["call_key"])
        return [(t, d) for p, t, d in all_blocks if p == pid]

    a2f = [x for x in (answer_to_first_audio(c) for c in calls) if x is not None]
    a2f_rows = [
        answer_breakdown(c, sip.get(f"call-{c['call_key']}", {}), requests, blocks_of(c), active.get(c["call_key"]))
        for c in calls
    ]
    pairs, unanswered, turn_rows = [], 0, []
    for c in calls:
        p, u = turns(c)
        pairs += p
        unanswered += u
        turn_rows += turn_breakdown(p, requests, blocks_of(c))
    lat = [heard - end for end, heard in pairs]
    return [
        emit(
            "answer_to_first_audio",
            len(a2f),
            "ms",
            p50_ms=ms(pct(a2f, 50)),
            p95_ms=ms(pct(a2f, 95)),
            min_ms=ms(min(a2f, default=None)),
            max_ms=ms(max(a2f, default=None)),
            calls=len(calls),
            statuses=statuses,
            breakdown_p50_ms=p50s([r for r in a2f_rows if r]),
            greeting_tts_leading_silence_ms=ms(greeting_silence),
        ),
        emit(
            "turn_latency",
            len(lat),
            "ms",
            p50_ms=ms(pct(lat, 50)),
            p95_ms=ms(pct(lat, 95)),
            min_ms=ms(min(lat, default=None)),
            max_ms=ms(max(lat, default=None)),
            unanswered=unanswered,
            calls=len(calls),
            breakdown_p50_ms=p50s(turn_rows),
            reply_tts_leading_silence_ms=ms(reply_silence),
        ),
    ]


async def measure_false_end_of_turn(client: Any, counts: Counts) -> dict[str, Any]:
    from devstack.scenarios import scenario_for

    scenario = scenario_for(PAUSED)
    assert scenario is not None
    paused = {line.text for line in scenario.lines if line.pauses}
    deadline = time.monotonic() + counts.paused_budget
    said, cut, lat, statuses = 0, list[str](), list[float](), dict[str, int]()
    for i in range(counts.paused_calls):
        if time.monotonic() > deadline:
            log(f"paused callees: time bound reached after {i}")
            break
        rec = await tool(client, "make_phone_call", {"phone_number": PAUSED, "goal": GOAL})
        rec = await follow(client, rec, deadline + 60)
        statuses[rec["status"]] = statuses.get(rec["status"], 0) + 1
        call = await phone_call(rec["call_id"])
        if call is None:
            continue
        n, c = false_ends(call, paused)
        said, cut = said + n, cut + c
        lat += [heard - end for end, heard in turns(call)[0]]
        log(f"paused callee {i + 1}/{counts.paused_calls}: {rec['status']}, {n} paused sentences, {len(c)} cut into")
    return emit(
        "false_end_of_turn",
        said,
        "utterances",
        utterances=said,
        false=len(cut),
        cut_into=cut,
        pauses=sum(len(line.pauses) for line in scenario.lines if line.text in paused) * sum(statuses.values()),
        turn_latency_p50_ms=ms(pct(lat, 50)),
        turn_latency_p95_ms=ms(pct(lat, 95)),
        calls=sum(statuses.values()),
        statuses=statuses,
    )


async def measure_concurrent(client: Any, worker: Worker, counts: Counts, server_log: Path) -> dict[str, Any]:
    n = counts.concurrent
    deadline = time.monotonic() + counts.concurrent_budget
    sampler = GroupSampler(worker.proc.pid)
    idle = sampler.sample()
    sampler.start()
    t_start = time.monotonic()

    async def one(i: int) -> tuple[dict[str, Any] | None, float | None, str | None]:
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        try:
            rec = await tool(client, "make_phone_call", {"phone_number": CONVERSATION, "goal": GOAL})
        except BenchError as exc:
            m = re.search(r"call (\w+) is (\w+)", str(exc))
            return ({"call_id": m.group(1), "status": m.group(2)} if m else None), None, str(exc)[:300]
        placed = time.perf_counter() - t0
        try:
            rec = await follow(client, rec, deadline)
        except BenchError as exc:
            return rec, placed, str(exc)[:300]
        return rec, placed, None

    try:
        results = await asyncio.gather(*(one(i) for i in range(n)))
        # Until the job processes are done writing and have exited, so their CPU is counted.
        settle_until = min(time.monotonic() + 10, deadline + 20)
        # The sampler is a thread reading /proc: there is no event to wait on, only its samples to poll.
        while time.monotonic() < settle_until and sampler.samples and sampler.samples[-1][4] > idle[4]:  # noqa: ASYNC110
            await asyncio.sleep(0.25)
    finally:
        sampler.stop()
    elapsed = time.monotonic() - t_start

    # The final word on each record, from the store via the server.
    final: list[str] = []
    errors = [err for _, _, err in results if err]
    for rec, _, _ in results:
        if rec is None:
            final.append("not_placed")
            continue
        try:
            final.append((await tool(client, "get_call", {"call_id": rec["call_id"]}))["status"])
        except BenchError as exc:
            errors.append(str(exc)[:300])
            final.append(rec.get("status", "unknown"))
    statuses: dict[str, int] = {}
    for s in final:
        statuses[s] = statuses.get(s, 0) + 1
    completed = statuses.get("completed", 0)
    lost = sum(v for s, v in statuses.items() if s not in TERMINAL and s != "not_placed")

    peak = max(sampler.samples, key=lambda r: r[2])
    peak_pss = max(r[3] for r in sampler.samples)
    cpu = sampler.samples[-1][1] - idle[1]
    pids = worker.job_pids()
    ids = {rec["call_id"] for rec, _, _ in results if rec}
    hwm = [sampler.hwm_kb[p] / 1024 for cid, p in pids.items() if cid in ids and p in sampler.hwm_kb]

    joins = [j for j in (joined_ms(server_log, cid) for cid in ids) if j is not None]
    job_pids = {p for cid, p in pids.items() if cid in ids}
    loop_blocked = sum(d for p, _, d in worker.loop_blocks() if p in job_pids)
    calls = [c for c in (phonelog.find(cid) for cid in ids) if c]
    a2f = [x for x in (answer_to_first_audio(c) for c in calls) if x is not None]
    lat = [heard - end for c in calls for end, heard in turns(c)[0]]
    return emit(
        "concurrent_calls",
        n,
        "calls",
        started=n,
        completed=completed,
        lost=lost,
        ended_otherwise=n - completed - lost,
        statuses=statuses,
        elapsed_s=round(elapsed, 1),
        cpu_s=round(cpu, 2),
        cpu_s_per_call=round(cpu / n, 2),
        cpu_s_per_completed_call=round(cpu / completed, 2) if completed else None,
        peak_rss_mb_per_call=round(statistics.median(hwm), 1) if hwm else None,
        pss_mb_per_call=round((peak_pss - idle[3]) / 1024 / n, 1) if idle[3] else None,
        rss_mb_per_call=round((peak[2] - idle[2]) / 1024 / n, 1),
        idle_tree_rss_mb=round(idle[2] / 1024, 1),
        peak_tree_rss_mb=round(peak[2] / 1024, 1),
        idle_tree_pss_mb=round(idle[3] / 1024, 1),
        peak_tree_pss_mb=round(peak_pss / 1024, 1),
        peak_processes=max(r[4] for r in sampler.samples),
        idle_processes=idle[4],
        make_phone_call_p50_ms=ms(pct([p for _, p, _ in results if p is not None], 50)),
        agent_join_p50_ms=ms(pct(joins, 50)),
        agent_join_max_ms=ms(max(joins, default=None)),
        agent_loop_blocked_s_per_call=round(loop_blocked / n, 2),
        answer_to_first_audio_p50_ms=ms(pct(a2f, 50)),
        answer_to_first_audio_p95_ms=ms(pct(a2f, 95)),
        turn_latency_p50_ms=ms(pct(lat, 50)),
        turn_latency_p95_ms=ms(pct(lat, 95)),
        # Refused as if no worker were running (the join budget's first half ran out).
        no_worker=sum("no calling worker is online" in err for err in errors),
        errors=errors,
    )


# -- the run -------------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """The innermost error of an exception group (anyio task groups wrap what went wrong)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{exc.__class__.__name__}: {exc}"


def _machine() -> str:
    model = "?"
    with suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    mem = "?"
    try:
        kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")
            )
        )
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} CPUs ({model}), {mem} RAM, Python {sys.version.split()[0]}"


def _code_version() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
        changed = [line[3:] for line in dirty if line.strip()]
        return f"git {head or '?'}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _loadavg() -> str:
    """The machine's load (other work on the CPUs skews every figure here)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def bench_env(workdir: Path, agent_name: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CALLAGENT_DB_URL": f"sqlite:///{workdir / 'calls.db'}",  # the server's and the worker's
            "CALLAGENT_AGENT_NAME": agent_name,  # nobody else on the bed takes our calls
            "CALLAGENT_WORKER_PORT": "0",
            # A worker sized for the 10-call measure keeps as many job processes warm.
            "CALLAGENT_WORKER_IDLE_PROCESSES": "10",
            "CALLAGENT_SILENCE_TIMEOUT_S": "8",
            "CALLAGENT_LOG_LEVEL": "INFO",  # make_phone_call's record of when the agent joined
            "CALLAGENT_LOG_FORMAT": "json",
            "DIAL_QUIET_HOURS": "off",  # benchmarks run at any hour
            # The dial policy's volume limits would refuse a benchmark's worth of calls to one number.
            "DIAL_MAX_CONCURRENT": "100",
            "DIAL_MAX_PER_NUMBER_PER_DAY": "100000",
            "DIAL_MAX_PER_HOUR": "100000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def with_operator_tools(workdir: Path) -> Path:
    """A callagent.toml giving every call (the default profile) the bed's calendar MCP server:
    to measure what merely having tools costs the turns that use none (--tools)."""
    url = os.environ.get("DEVSTACK_CALENDAR_URL")
    if not url:
        raise SystemExit("bench: --tools needs the bed's calendar (DEVSTACK_CALENDAR_URL unset)")
    path = workdir / "callagent.toml"
    path.write_text(
        f"""[tools.calendar]
url = "{url}"
allow = ["find_slots", "book_slot"]
side_effects = ["book_slot"]

[profiles.default]
tools = ["calendar"]
""",
        encoding="utf-8",
    )
    return path


async def run(args: argparse.Namespace) -> int:
    counts = QUICK if args.quick else FULL
    overrides = {
        k: v
        for k, v in {
            "cold_rounds": args.cold_rounds,
            "call_rounds": args.call_rounds,
            "conversations": args.conversations,
            "paused_calls": args.paused_calls,
            "concurrent": args.concurrent,
        }.items()
        if v is not None
    }
    if overrides:
        counts = Counts(**{**counts.__dict__, **overrides})
    only = set(args.only.split(",")) if args.only else None
    if only is not None and only - MEASURES:
        log(f"--only: unknown {', '.join(sorted(only - MEASURES))}; the measures are {', '.join(sorted(MEASURES))}")
        return 2

    base = Path(os.environ.get("DEVSTACK_RUN_DIR") or "/tmp")
    workdir = base / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    workdir.mkdir(parents=True)
    env = bench_env(workdir, f"bench-{secrets.token_hex(3)}")
    if args.tools:
        env["CALLAGENT_PROFILES_FILE"] = str(with_operator_tools(workdir))
    log(f"{'quick' if args.quick else 'full'} run; artifacts in {workdir}; load average {_loadavg()}")
    if args.tools:
        log("every call is offered the bed calendar's tools (--tools): they connect while the phone rings")
    log(f"machine: {_machine()}; code: {_code_version()}")
    failures: list[str] = []

    async def guarded(name: str, metric_names: list[str], coro: Any) -> None:
        try:
            await coro
            log(f"{name} done; load average {_loadavg()}")
        except Exception as exc:  # noqa: BLE001 - one measure failing does not hide the others
            failures.append(name)
            why = _describe(exc)
            log(f"{name} failed: {why}"[:2000])
            for metric in metric_names:
                unit = {"concurrent_calls": "calls", "scale_out": "calls", "false_end_of_turn": "utterances"}
                emit(metric, 0, unit.get(metric, "ms"), error=why[:500])

    def wanted(name: str) -> bool:
        return only is None or name in only

    started = time.monotonic()
    if wanted("cold"):
        log("server cold start…")
        await guarded("cold", ["server_cold_start"], measure_cold_start(env, counts, workdir))

    if not only or only - {"cold", "scale_out"}:
        worker = Worker(env, workdir / "worker.log")
        try:
            log("starting the calling worker…")
            took = await asyncio.to_thread(worker.wait_registered)
            log(f"worker registered after {took:.1f} s")
            server_log = workdir / "server.stderr.log"
            with open(server_log, "a") as errlog:  # noqa: ASYNC230 - a local log, once per run
                async with mcp_client(SERVER, env, errlog) as client:
                    await client.list_tools()
                    await asyncio.sleep(1.0)  # the server warms up in the background once listed
                    if wanted("call"):
                        log("make_phone_call latency…")
                        await guarded(
                            "call",
                            ["make_phone_call_latency"],
                            measure_make_phone_call(client, worker, env, counts, server_log),
                        )
                    if wanted("conversation"):
                        log("conversations (answer → first audio, turn latency)…")
                        await guarded(
                            "conversation",
                            ["answer_to_first_audio", "turn_latency"],
                            measure_conversations(client, worker, counts),
                        )
                    if wanted("false_eot"):
                        log("callees who pause mid-sentence (false end of turn)…")
                        await guarded("false_eot", ["false_end_of_turn"], measure_false_end_of_turn(client, counts))
                    if wanted("concurrent"):
                        log(f"{counts.concurrent} concurrent calls…")
                        await guarded(
                            "concurrent", ["concurrent_calls"], measure_concurrent(client, worker, counts, server_log)
                        )
        finally:
            log("stopping the worker…")
            await asyncio.to_thread(worker.stop)
    # Its own workers, servers and store: after this run's worker has stopped. Not in --quick
    # (the bed's tests/bed/test_scale_out_bed.py runs a small one).
    if (only is None and not args.quick) or (only is not None and "scale_out" in only):
        from bench.scale_out import measure_scale_out

        log("scale-out: two workers, two MCP servers, one PostgreSQL store…")
        await guarded("scale_out", ["scale_out"], measure_scale_out(env, workdir / "scale-out"))
    log(
        f"done in {time.monotonic() - started:.0f} s, load average {_loadavg()}"
        + (f"; failed: {', '.join(failures)}" if failures else "")
    )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a CI smoke run")
    parser.add_argument("--cold-rounds", type=int, help="server cold start A/B rounds")
    parser.add_argument("--call-rounds", type=int, help="make_phone_call A/B rounds")
    parser.add_argument("--conversations", type=int, help="sequential conversations (answer, turn latency)")
    parser.add_argument("--paused-calls", type=int, help="sequential calls to the callee who pauses mid-sentence")
    parser.add_argument("--concurrent", type=int, help="calls placed at once")
    parser.add_argument(
        "--only", help="comma-separated subset of: cold,call,conversation,false_eot,concurrent,scale_out"
    )
    parser.add_argument(
        "--tools", action="store_true", help="offer every call the bed calendar's MCP tools (callagent.toml [tools])"
    )
    args = parser.parse_args(argv)

    return on_the_bed("bench", "bench/run.py", lambda: run(args))


def on_the_bed(name: str, script: str, measure: Callable[[], Coroutine[Any, Any, T]]) -> T | int:
    """Run a benchmark's coroutine on the bed: 2 when the bed is not there, 130 when interrupted
    (Ctrl-C, or SIGTERM from `devstack run` tearing down), and every process it started ended."""
    missing = [v for v in BED_VARS if not os.environ.get(v)]
    if missing:
        print(
            f"{name}: needs the telephony bed ({', '.join(missing)} unset); run it as "
            f"`uv run devstack run -- uv run python {script}`",
            file=sys.stderr,
        )
        return 2

    # SIGTERM (e.g. from `devstack run` tearing down) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return asyncio.run(measure())
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        reap_own_children()


if __name__ == "__main__":
    sys.exit(main())
