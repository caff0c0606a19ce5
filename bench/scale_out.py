"""scale_out: calls across two calling workers and two MCP servers on one PostgreSQL store.

What it measures, on the local telephony bed (real livekit-server, livekit-sip, the simulated
phone, offline models), with nothing but LiveKit's own distribution between the parts:

- two calling workers (`calling_agent.py start`, two processes, each its own health-check port)
  registered under one agent name of this run's own, so LiveKit chooses which takes each call;
- two MCP servers over streamable HTTP (`server.py --transport http`, bearer token) and the
  operator's console, all on ONE PostgreSQL store (a throwaway server from Debian's binaries,
  devstack.postgres), which is the only channel between them and the workers;
- `calls` conversations (+1 415 555 0100) placed alternately through the two servers with
  `DIAL_MAX_CONCURRENT=limit` (the other volume limits lifted), `limit + 2` at a time: a
  request refused for the concurrency limit (rule max_concurrent) is counted and retried
  later, until every call was placed or the time budget ran out; each call is followed
  (wait_for_call) to its end and its record read from the store. The store's count of live
  calls is sampled every 0.1 s: `max_live` must never exceed `limit`. Which worker held each
  call comes from the workers' own logs (the job's "joining" record, by call id);
- the kill-a-worker case: `limit` more calls at once; once they are answered on both workers,
  one worker (the one holding more) is SIGKILLed with its job processes, as a crash would. Its
  calls must end `failed` with end reason `worker_lost` within the stale window
  (CALLAGENT_STALE_AFTER_S, 20 s for the run instead of 60, plus the reaper's interval; 10 s
  failed a healthy call whose job process, starved of CPU at its start on a loaded 2-core
  machine, went 9 s without a heartbeat: `heartbeat_age_max_s` says how close a run came);
  the survivor's calls go on; `after_kill` calls placed right after the kill must go to the
  survivor and complete (they wait for room under the limit like any other);
- what a call costs: CPU seconds and memory of the workers' process trees (sampled from /proc,
  like bench/run.py's concurrent measure) during the spread phase, and CPU seconds of the MCP
  servers, PostgreSQL, livekit-server and livekit-sip, per call.

    uv run devstack run -- uv run python bench/scale_out.py                 # 20 calls, limit 6
    uv run devstack run -- uv run python bench/scale_out.py --calls 8       # fewer

Prints one JSON line, metric `scale_out` (see `measure_scale_out`); progress goes to stderr.
Logs (workers, servers, console) and each call's details (calls.json) stay in the run's
directory, `$DEVSTACK_RUN_DIR/scale-out-<time>/`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/scale_out.py` from anywhere
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    CONVERSATION,
    GOAL,
    SERVER,
    BenchError,
    Worker,
    _read_proc,
    emit,
    follow,
    log,
    on_the_bed,
    pct,
    tool,
)

__all__ = ["measure_scale_out", "scale_env"]

TERMINAL = {
    "completed",
    "voicemail",
    "no_answer",
    "busy",
    "declined",
    "failed",
    "canceled",
    "transferred",
    "denied",
    "expired",
}
LIMIT_RULE = "rule 'max_concurrent'"  # how a refusal for DIAL_MAX_CONCURRENT reads
RETRY_S = 1.5  # a request refused for the limit is tried again this much later
REAP_INTERVAL_S = 5.0  # callagent.service.REAP_INTERVAL_S: a server reaps at most this often
HEARTBEAT_S = 2.0  # callagent.calls.HEARTBEAT_S: how often a worker reports its calls
CONSOLE_TOKEN_BYTES = 24
KILL_ATTEMPTS = 3  # bursts tried until calls are live on both workers


# -- the run's environment --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scale_env(
    base: dict[str, str],
    workdir: Path,
    db_url: str,
    *,
    agent_name: str,
    limit: int,
    stale_after_s: float,
    idle_processes: int | None = None,
) -> dict[str, str]:
    """The settings every process of the run shares: one store, one agent name, the limit."""
    env = dict(base)
    for name in ("MCP_HTTP_NO_AUTH", "CALLAGENT_ENV_FILE"):
        env.pop(name, None)
    env.update(
        {
            "CALLAGENT_DB_URL": db_url,  # the one store: servers, console, workers
            "CALLAGENT_AGENT_NAME": agent_name,  # nobody else on the bed takes these calls
            "CALLAGENT_RECORDINGS_DIR": str(workdir / "recordings"),
            "CALLAGENT_STALE_AFTER_S": f"{stale_after_s:g}",
            "CALLAGENT_SILENCE_TIMEOUT_S": "8",
            # Each worker holds about half the calls at once; one warm process more than that.
            "CALLAGENT_WORKER_IDLE_PROCESSES": str(
                idle_processes if idle_processes is not None else max(1, (limit + 1) // 2 + 1)
            ),
            "CALLAGENT_WORKER_HOST": "127.0.0.1",
            "CALLAGENT_LOG_LEVEL": "INFO",
            "CALLAGENT_LOG_FORMAT": "json",
            "DIAL_QUIET_HOURS": "off",  # benchmarks run at any hour
            "DIAL_MAX_CONCURRENT": str(limit),  # the limit under test, across both servers
            # The other volume limits would refuse a benchmark's worth of calls to one number.
            "DIAL_MAX_PER_NUMBER_PER_DAY": "100000",
            "DIAL_MAX_PER_HOUR": "100000",
            "MCP_HTTP_TOKEN": secrets.token_hex(24),
            "CALLAGENT_CONSOLE_TOKEN": secrets.token_hex(CONSOLE_TOKEN_BYTES),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


# -- processes ----------------------------------------------------------------------------------


class ScaleWorker(Worker):
    """One of the two calling workers: its own health-check port and log."""

    def __init__(self, label: str, env: dict[str, str], workdir: Path) -> None:
        self.label = label
        self.port = free_port()
        super().__init__({**env, "CALLAGENT_WORKER_PORT": str(self.port)}, workdir / f"worker-{label}.log")

    def worker_id(self) -> str | None:
        """LiveKit's id of this worker (its "registered worker" record)."""
        for rec in self.records():
            if rec.get("message") == "registered worker" and rec.get("id"):
                return str(rec["id"])
        return None

    def calls(self) -> set[str]:
        """The calls this worker took (its jobs' "joining" records)."""
        return {str(r["call_id"]) for r in self.records() if r.get("event") == "joining" and "call_id" in r}

    def health(self) -> int | None:
        """The HTTP status of its health check, or None when nothing answers."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://127.0.0.1:{self.port}/", timeout=3) as res:
                return int(res.status)
        except OSError:
            return None


class Service:
    """A process of the run started in its own session (server.py over HTTP, the console)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int) -> None:
        self.name, self.port = name, port
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - the process's log for its lifetime; stop() closes it
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.proc.returncode}):\n{self.text()[-3000:]}")
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise BenchError(
            f"{self.name} did not listen on port {self.port} within {timeout:.0f} s:\n{self.text()[-3000:]}"
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever it started in its session
        self._log.close()


def http_server(label: str, env: dict[str, str], workdir: Path) -> Service:
    port = free_port()
    argv = [sys.executable, str(SERVER), "--transport", "http", "--host", "127.0.0.1", "--port", str(port)]
    return Service(f"server-{label}", argv, env, workdir, port)


def console_process(env: dict[str, str], workdir: Path) -> Service:
    port = free_port()
    argv = [sys.executable, "-m", "callagent.cli", "console", "--host", "127.0.0.1", "--port", str(port)]
    return Service("console", argv, env, workdir, port)


@asynccontextmanager
async def mcp_http(url: str, token: str) -> AsyncIterator[Any]:
    """An MCP client session with the server at `url` over streamable HTTP, with the token."""
    import httpx2
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=90, trust_env=False) as http_client,  # loopback: no proxy
        Client(streamable_http_client(url, http_client=http_client), mode="legacy") as client,
    ):
        yield client


def console_statuses(base: str, token: str, expected: dict[str, str]) -> tuple[int, list[str]]:
    """Sign in to the console as an operator would (the form, its CSRF token, the cookie) and
    open every call's page: how many show the status the store holds, and what did not."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/signin", timeout=15) as res:
        page = res.read().decode()
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    if m is None:
        return 0, ["the sign-in form has no CSRF token"]
    form = urllib.parse.urlencode({"csrf": m.group(1), "token": token, "name": "bench", "next": "/calls"}).encode()
    with opener.open(f"{base}/signin", data=form, timeout=15) as res:
        if not res.geturl().endswith("/calls"):
            return 0, [f"signing in ended at {res.geturl()}"]
    ok, problems = 0, []
    for call_id, status in expected.items():
        try:
            with opener.open(f"{base}/calls/{call_id}", timeout=15) as res:
                body = res.read().decode()
        except OSError as exc:
            problems.append(f"{call_id}: {exc}")
            continue
        if f"status s-{status}" in body:
            ok += 1
        else:
            problems.append(f"{call_id}: the page does not show {status}")
    return ok, problems


# -- sampling ---------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int, float] | None:
    """(ppid, pgrp, CPU seconds incl. reaped children) of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[2]), sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _all_stats() -> dict[int, tuple[int, int, float]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            out[int(entry.name)] = st
    return out


def tree_cpu_s(root: int | None, stats: dict[int, tuple[int, int, float]]) -> float:
    """CPU seconds of a process and its descendants (those already reaped included)."""
    if root is None or root not in stats:
        return 0.0
    total, todo = 0.0, [root]
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += stats[pid][2]
        todo += children.get(pid, [])
    return total


def bed_pid(program: str) -> int | None:
    """The pid of the bed's `program` (livekit-server, livekit-sip) of this run, if visible."""
    run_dir = os.environ.get("DEVSTACK_RUN_DIR", "")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = not run_dir or run_dir.encode() in b" ".join(argv)
        if argv and Path(argv[0].decode(errors="replace")).name == program and ours:
            return int(entry.name)
    return None


@dataclass
class Sample:
    t: float
    live: int  # live calls in the store
    cpu_s: dict[str, float]  # per part: workers' groups, servers, postgres, livekit
    pss_kb: int  # both workers' trees
    rss_kb: int


class Sampler(threading.Thread):
    """Samples the store's count of live calls every `interval` s (max_live) and the process
    trees every 5th tick."""

    def __init__(self, db_url: str, parts: dict[str, tuple[str, int | None]], interval: float = 0.1) -> None:
        super().__init__(name="scale-out-sampler", daemon=True)
        self.db_url = db_url
        self.parts = parts  # name → ("group", pgid) or ("tree", root pid)
        self.interval = interval
        self._halt = threading.Event()
        self.samples: list[Sample] = []
        self.max_live = 0
        self.live_ticks: list[tuple[float, int]] = []
        self.heartbeat_age: dict[str, float] = {}  # call_id → longest silence of its worker seen
        self.error: str | None = None

    def procs(self) -> tuple[dict[str, float], int, int]:
        stats = _all_stats()
        cpu: dict[str, float] = {}
        pss = rss = 0
        for name, (kind, ident) in self.parts.items():
            if kind == "tree":
                cpu[name] = tree_cpu_s(ident, stats)
                continue
            members = [pid for pid, (_, pgrp, _) in stats.items() if pgrp == ident]
            cpu[name] = sum(stats[pid][2] for pid in members)
            for pid in members:
                info = _read_proc(pid)
                if info is not None:
                    pss += int(info.get("pss_kb", 0))
                    rss += int(info["rss_kb"])
        return cpu, pss, rss

    def sample(self, live: int) -> Sample:
        cpu, pss, rss = self.procs()
        s = Sample(time.monotonic(), live, cpu, pss, rss)
        self.samples.append(s)
        return s

    def run(self) -> None:
        from callagent.store import Database

        with Database(self.db_url) as db:
            tick = 0
            while not self._halt.is_set():
                try:
                    live = db.calls.counts().active
                except Exception as exc:  # noqa: BLE001 - reported with the figures
                    self.error = f"{exc.__class__.__name__}: {exc}"[:300]
                    live = -1
                self.max_live = max(self.max_live, live)
                self.live_ticks.append((time.monotonic(), live))
                if tick % 5 == 0:
                    self.sample(live)
                    self._heartbeats(db)
                tick += 1
                self._halt.wait(self.interval)

    def _heartbeats(self, db: Any) -> None:
        """How long ago each live call's worker last reported (its heartbeat), at most."""
        import sqlalchemy as sa

        from callagent.calls import utcnow
        from callagent.store import schema

        t = schema.calls
        query = sa.select(t.c.call_id, t.c.heartbeat_at).where(
            t.c.status.in_(["dialing", "ringing", "in_progress"]), t.c.heartbeat_at.is_not(None)
        )
        try:
            with db.engine.connect() as conn:
                rows = conn.execute(query).all()
        except Exception:  # noqa: BLE001 - a diagnostic; the count above reports store trouble
            return
        now = utcnow()
        for call_id, beat in rows:
            age = (now - schema.aware(beat)).total_seconds()
            self.heartbeat_age[call_id] = max(self.heartbeat_age.get(call_id, 0.0), age)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


# -- placing and following calls ------------------------------------------------------------------


@dataclass
class Placement:
    """One call the run asks for: through which server, and what became of it."""

    index: int
    server: int
    phase: str  # spread, kill, after_kill
    call_id: str | None = None
    refused: int = 0  # times refused for the concurrency limit before it was placed
    error: str | None = None
    record: dict[str, Any] = field(default_factory=dict)  # the last record the server returned
    worker: str | None = None  # label of the worker that held it


async def place(client: Any, p: Placement, deadline: float) -> dict[str, Any] | None:
    """make_phone_call, again after RETRY_S whenever the limit refuses it (until `deadline`).
    The record, or None when the call was not placed (p.error says why)."""
    while True:
        try:
            rec = await tool(client, "make_phone_call", {"phone_number": CONVERSATION, "goal": GOAL})
        except BenchError as exc:
            text = str(exc)
            if LIMIT_RULE in text:
                p.refused += 1
                if time.monotonic() + RETRY_S < deadline:
                    await asyncio.sleep(RETRY_S)
                    continue
                p.error = "still refused for the limit when the time budget ran out"
                return None
            p.error = text[:300]
            m = re.search(r"call (\w+) is (\w+)", text)  # placement failed: the record is failed
            if m:
                p.call_id, p.record = m.group(1), {"call_id": m.group(1), "status": m.group(2)}
            return None
        p.call_id, p.record = rec["call_id"], rec
        return rec


async def place_and_follow(client: Any, p: Placement, place_deadline: float, end_deadline: float) -> None:
    rec = await place(client, p, place_deadline)
    if rec is None:
        return
    try:
        p.record = await follow(client, rec, end_deadline)
    except BenchError as exc:
        p.error = str(exc)[:300]


async def run_lanes(clients: list[Any], todo: list[Placement], lanes: int, place_by: float, end_by: float) -> None:
    """`lanes` callers at once, each taking the next call of `todo` when its last one ended."""
    queue = iter(todo)

    async def lane() -> None:
        for p in queue:
            await place_and_follow(clients[p.server], p, place_by, end_by)

    await asyncio.gather(*(lane() for _ in range(lanes)))


async def _burst(clients: list[Any], burst: list[Placement], place_s: float, end_s: float) -> list[asyncio.Future[Any]]:
    """Place every call of `burst` at once; futures following each placed one to its end."""
    now = time.monotonic()
    placed = await asyncio.gather(*(place(clients[p.server], p, now + place_s) for p in burst))
    return [
        asyncio.ensure_future(follow(clients[p.server], rec, now + end_s))
        for p, rec in zip(burst, placed, strict=True)
        if rec is not None
    ]


async def _settle(placed: list[Placement], follows: list[asyncio.Future[Any]]) -> None:
    """Wait for the followed calls of a burst (the placed ones, in order) to end."""
    for p, fut in zip([p for p in placed if p.call_id and not p.error], follows, strict=True):
        try:
            p.record = await fut
        except BenchError as exc:
            p.error = str(exc)[:300]


# -- the measure --------------------------------------------------------------------------------


@contextmanager
def _store(db_url: str | None) -> Iterator[tuple[str, int | None]]:
    """The run's store: `db_url` as given, or a throwaway PostgreSQL server; and the pid of
    the PostgreSQL server when it is ours."""
    if db_url is not None:
        yield db_url, None
        return
    from devstack.postgres import throwaway_postgres

    with throwaway_postgres() as pg:
        yield pg.url, pg.postmaster_pid()


def _per_call(total: float | None, calls: int) -> float | None:
    return None if total is None or not calls else round(total / calls, 2)


async def measure_scale_out(
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
    *,
    calls: int = 20,
    limit: int = 6,
    after_kill: int = 2,
    stale_after_s: float = 20.0,
    budget_s: float = 600.0,
    db_url: str | None = None,
    console: bool = True,
    idle_processes: int | None = None,
    kill_burst: int | None = None,
) -> dict[str, Any]:
    """Run the scale-out measure (see the module's docstring) and emit its JSON line.

            `env`: the bed's environment (default: this process's); `workdir`: where logs go (default:
            a new folder in $DEVSTACK_RUN_DIR); `db_url`: a PostgreSQL URL to use instead of starting
            a throwaway server; `budget_s` bounds the placing of the spread phase's calls;
        `idle_processes`: CALLAGENT_WORKER_IDLE_PROCESSES of each worker (default: half the limit + 1);
    `kill_burst`: calls live when the worker is killed (default `limit`: the calls placed after the
    kill then wait for the dead worker's calls to be declared lost, which hold their places under
    the limit until then; fewer lets them start at once).

            Returns the emitted line, plus `calls`: one entry per call asked for (phase, server,
            call_id, worker, status, end_reason, refused, error, timestamps), and `db_url`.
    """
    base_env = dict(os.environ if env is None else env)
    if workdir is None:
        workdir = Path(base_env.get("DEVSTACK_RUN_DIR") or "/tmp") / f"scale-out-{time.strftime('%Y%m%d-%H%M%S')}"
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    with ExitStack() as stack:
        url, pg_pid = stack.enter_context(_store(db_url))
        run_env = scale_env(
            base_env,
            workdir,
            url,
            agent_name=f"scale-{secrets.token_hex(3)}",
            limit=limit,
            stale_after_s=stale_after_s,
            idle_processes=idle_processes,
        )
        return await _measure(
            run_env,
            workdir,
            url,
            pg_pid,
            t_start,
            calls,
            limit,
            after_kill,
            stale_after_s,
            budget_s,
            console,
            min(limit, kill_burst or limit),
        )
    raise AssertionError("unreachable")  # for mypy: ExitStack may swallow exceptions


async def _measure(
    env: dict[str, str],
    workdir: Path,
    db_url: str,
    pg_pid: int | None,
    t_start: float,
    calls: int,
    limit: int,
    after_kill: int,
    stale_after_s: float,
    budget_s: float,
    with_console: bool,
    kill_burst: int,
) -> dict[str, Any]:
    from callagent.store import Database

    log(
        f"scale-out: store {'PostgreSQL' if db_url.startswith('postgres') else db_url.split(':')[0]}; logs in {workdir}"
    )
    with Database(db_url) as db:
        db.calls.counts()  # the tables exist before four processes race to create them
    token = env["MCP_HTTP_TOKEN"]
    workers = [ScaleWorker(label, env, workdir) for label in ("w1", "w2")]
    servers: list[Service] = []
    console: Service | None = None
    sampler: Sampler | None = None
    errors: list[str] = []
    tasks: list[asyncio.Future[Any]] = []  # following calls in the background
    try:
        servers = [http_server(label, env, workdir) for label in ("s1", "s2")]
        if with_console:
            console = console_process(env, workdir)
        for svc in [*servers, *([console] if console else [])]:
            await asyncio.to_thread(svc.wait_listening)
        took = await asyncio.gather(*(asyncio.to_thread(w.wait_registered) for w in workers))
        log(f"scale-out: workers registered after {', '.join(f'{t:.1f}' for t in took)} s")
        health = {w.label: await asyncio.to_thread(w.health) for w in workers}
        parts: dict[str, tuple[str, int | None]] = {
            **{f"worker-{w.label}": ("group", w.proc.pid) for w in workers},
            **{f"server-{i + 1}": ("group", s.proc.pid) for i, s in enumerate(servers)},
            "postgres": ("tree", pg_pid),
            "livekit-server": ("tree", bed_pid("livekit-server")),
            "livekit-sip": ("tree", bed_pid("livekit-sip")),
        }
        sampler = Sampler(db_url, parts)
        sampler.start()
        async with AsyncExitStack() as clients_stack:
            clients = [
                await clients_stack.enter_async_context(mcp_http(f"http://127.0.0.1:{s.port}/mcp", token))
                for s in servers
            ]
            for client in clients:
                await client.list_tools()

            # 1. The spread: `calls` calls, alternately through both servers, limit + 2 at a time.
            log(f"scale-out: {calls} calls through 2 servers, DIAL_MAX_CONCURRENT={limit}, {limit + 2} callers")
            spread = [Placement(i, i % 2, "spread") for i in range(calls)]
            idle = sampler.sample(0)
            t0 = time.monotonic()
            await run_lanes(clients, spread, limit + 2, t0 + budget_s, t0 + budget_s + 240)
            spread_s = time.monotonic() - t0
            busy = sampler.sample(-1)
            log(f"scale-out: spread done in {spread_s:.0f} s; max live {sampler.max_live}")

            # 2. Kill a worker while both hold live calls; then more calls, for the survivor.
            # LiveKit picks a worker at random weighted by free capacity: a burst can land on
            # one worker alone (1 in 2^(n-1) for n calls); then more calls while the limit has
            # room, else those calls end and another burst goes.
            kill: list[Placement] = []
            for attempt in range(KILL_ATTEMPTS):
                burst = [Placement(calls + len(kill) + j, j % 2, "kill") for j in range(kill_burst)]
                kill += burst
                follows = await _burst(clients, burst, 120, 240)
                tasks += follows
                held = await asyncio.to_thread(
                    _wait_answered, db_url, workers, [p.call_id for p in burst if p.call_id], 45
                )
                # One worker holds them all: while the limit has room, one more call at a time.
                while not all(held[w.label] for w in workers) and len(burst) < limit:
                    extra = Placement(calls + len(kill), len(burst) % 2, "kill")
                    burst.append(extra)
                    kill.append(extra)
                    follows += await _burst(clients, [extra], 60, 240)
                    tasks += follows[-1:]
                    held = await asyncio.to_thread(
                        _wait_answered, db_url, workers, [p.call_id for p in burst if p.call_id], 45
                    )
                live_on_both = all(held[w.label] for w in workers)
                if live_on_both or attempt == KILL_ATTEMPTS - 1:
                    break
                log("scale-out: the burst's calls all went to one worker; after they end, another burst")
                for p in burst:
                    p.phase = "unbalanced"
                await _settle(burst, follows)
            bursts = attempt + 1
            victim = max(workers, key=lambda w: (len(held[w.label]), w.label))
            survivor = next(w for w in workers if w is not victim)
            if not held[victim.label]:
                errors.append("no call was answered on either worker before the kill")
            log(
                "scale-out: killing worker "
                f"{victim.label} ({len(held[victim.label])} live calls; {survivor.label} holds {len(held[survivor.label])})"
            )
            kill_wall = time.time()
            await asyncio.to_thread(victim.kill)
            later = [Placement(calls + len(kill) + j, j % 2, "after_kill") for j in range(after_kill)]
            now = time.monotonic()
            after_task = asyncio.ensure_future(run_lanes(clients, later, max(1, after_kill), now + 180, now + 300))
            tasks.append(after_task)
            await _settle([p for p in burst if p.call_id], follows)
            await after_task
            everything = [*spread, *kill, *later]
        sampler.stop()

        # 3. The final word: the store's records, the workers' logs, the console.
        final = await asyncio.to_thread(_records, db_url, [p.call_id for p in everything if p.call_id])
        taken = {w.label: w.calls() for w in workers}
        ids = {w.label: w.worker_id() for w in workers}
        for p in everything:
            p.worker = next((label for label, held_ids in taken.items() if p.call_id in held_ids), None)
        console_ok: int | None = None
        if console is not None:
            expected = {cid: rec["status"] for cid, rec in final.items()}
            console_ok, problems = await asyncio.to_thread(
                console_statuses, f"http://127.0.0.1:{console.port}", env["CALLAGENT_CONSOLE_TOKEN"], expected
            )
            errors += problems[:5]
    finally:
        for task in tasks:  # only when something went wrong: all are done otherwise
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        for svc in [*servers, *([console] if console else [])]:
            await asyncio.to_thread(svc.stop)
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))

    return _report(
        everything=everything,
        final=final,
        workers=workers,
        ids=ids,
        victim=victim,
        survivor=survivor,
        held=held,
        live_on_both=live_on_both,
        bursts=bursts,
        kill_wall=kill_wall,
        sampler=sampler,
        idle=idle,
        busy=busy,
        spread_s=spread_s,
        limit=limit,
        stale_after_s=stale_after_s,
        health=health,
        console_ok=console_ok,
        errors=errors,
        workdir=workdir,
        db_url=db_url,
        elapsed=time.monotonic() - t_start,
    )


def _wait_answered(
    db_url: str, workers: list[ScaleWorker], call_ids: list[str], timeout: float
) -> dict[str, list[str]]:
    """Until every call is answered or over (at most `timeout` s): worker label → its calls in progress."""
    from callagent.store import Database

    deadline = time.monotonic() + timeout
    with Database(db_url) as db:
        while True:
            records = {cid: db.calls.get(cid) for cid in call_ids}
            statuses = {cid: (r.status.value if r is not None else "missing") for cid, r in records.items()}
            if all(s == "in_progress" or s in TERMINAL for s in statuses.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    answered = {cid for cid, s in statuses.items() if s == "in_progress"}
    return {w.label: sorted(answered & w.calls()) for w in workers}


def _records(db_url: str, call_ids: list[str]) -> dict[str, dict[str, Any]]:
    from callagent.store import Database

    with Database(db_url) as db:
        out = {}
        for cid in call_ids:
            rec = db.calls.get(cid)
            if rec is not None:
                out[cid] = rec.model_dump(
                    mode="json",
                    include={
                        "call_id",
                        "status",
                        "end_reason",
                        "ended_reason",
                        "created_at",
                        "answered_at",
                        "ended_at",
                    },
                )
        return out


def _ts(value: Any) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else None


def _report(
    *,
    everything: list[Placement],
    final: dict[str, dict[str, Any]],
    workers: list[ScaleWorker],
    ids: dict[str, str | None],
    victim: ScaleWorker,
    survivor: ScaleWorker,
    held: dict[str, list[str]],
    live_on_both: bool,
    bursts: int,
    kill_wall: float,
    sampler: Sampler | None,
    idle: Sample,
    busy: Sample,
    spread_s: float,
    limit: int,
    stale_after_s: float,
    health: dict[str, int | None],
    console_ok: int | None,
    errors: list[str],
    workdir: Path,
    db_url: str,
    elapsed: float,
) -> dict[str, Any]:
    def status(p: Placement) -> str:
        if p.call_id is None:
            return "not_placed"
        return str(final.get(p.call_id, p.record).get("status", "unknown"))

    rows = []
    for p in everything:
        rec = final.get(p.call_id or "", {})
        rows.append(
            {
                "phase": p.phase,
                "server": f"s{p.server + 1}",
                "call_id": p.call_id,
                "worker": p.worker,
                "status": status(p),
                "end_reason": rec.get("end_reason"),
                "refused": p.refused,
                "error": p.error,
                "created_at": rec.get("created_at"),
                "answered_at": rec.get("answered_at"),
                "ended_at": rec.get("ended_at"),
                "heartbeat_age_max_s": round(sampler.heartbeat_age[p.call_id], 1)
                if sampler is not None and p.call_id in sampler.heartbeat_age
                else None,
            }
        )
    (workdir / "calls.json").write_text(json.dumps(rows, indent=1))

    spread = [p for p in everything if p.phase == "spread"]
    placed = [p for p in spread if p.call_id is not None]
    statuses: dict[str, int] = {}
    for p in spread:
        statuses[status(p)] = statuses.get(status(p), 0) + 1
    completed = statuses.get("completed", 0)
    lost = sum(1 for p in placed if status(p) not in TERMINAL)
    per_worker: dict[str, int] = {}
    for p in placed:
        if p.worker is not None:
            key = ids.get(p.worker) or p.worker
            per_worker[key] = per_worker.get(key, 0) + 1

    killed_ids = held[victim.label]
    killed = [final.get(cid, {}) for cid in killed_ids]
    lost_after = [t - kill_wall for t in (_ts(r.get("ended_at")) for r in killed) if t is not None]
    worker_lost = [r for r in killed if r.get("status") == "failed" and r.get("end_reason") == "worker_lost"]
    survivor_live = [final.get(cid, {}) for cid in held[survivor.label]]
    later = [p for p in everything if p.phase == "after_kill"]
    later_done = [p for p in later if status(p) == "completed"]
    on_survivor = [p for p in later if p.worker == survivor.label]
    every_placed = [p for p in everything if p.call_id is not None]
    lost_any = sum(1 for p in every_placed if status(p) not in TERMINAL)

    durations = [
        e - a
        for e, a in (
            (
                _ts(final.get(p.call_id or "", {}).get("ended_at")),
                _ts(final.get(p.call_id or "", {}).get("answered_at")),
            )
            for p in placed
        )
        if e is not None and a is not None
    ]

    def cpu_delta(names: list[str]) -> float | None:
        try:
            return sum(busy.cpu_s[n] - idle.cpu_s[n] for n in names)
        except KeyError:
            return None

    worker_parts = [f"worker-{w.label}" for w in workers]
    # The longest a working worker's call went without a heartbeat (the killed one's excluded):
    # how much room the stale window leaves.
    ages = [a for cid, a in (sampler.heartbeat_age if sampler else {}).items() if cid not in killed_ids]
    max_live = sampler.max_live if sampler is not None else -1
    peak_pss = max((s.pss_kb for s in (sampler.samples if sampler else []) if s.t <= busy.t), default=idle.pss_kb)
    n = len(placed)
    if sampler is not None and sampler.error:
        errors.append(f"sampling the store: {sampler.error}")
    errors += [f"{p.phase} {p.call_id or '-'}: {p.error}" for p in everything if p.error][:10]
    line = emit(
        "scale_out",
        n,
        "calls",
        started=n,
        completed=completed,
        lost=lost,
        ended_otherwise=n - completed - lost,
        not_placed=len(spread) - n,
        statuses=statuses,
        workers=len(workers),
        servers=2,
        workers_used=len(per_worker),
        calls_per_worker=per_worker,
        calls_per_server={f"s{i + 1}": sum(1 for p in placed if p.server == i) for i in range(2)},
        worker_health=health,
        max_live=max_live,
        limit=limit,
        limit_held=0 <= max_live <= limit,
        refused_for_limit=sum(p.refused for p in everything),
        refused_for_limit_spread=sum(p.refused for p in spread),
        spread_s=round(spread_s, 1),
        live_on_both_at_kill=live_on_both,
        kill_bursts=bursts,
        worker_ids=ids,
        killed_worker=victim.label,
        killed_worker_calls=len(killed_ids),
        killed_worker_calls_worker_lost=len(worker_lost),
        killed_worker_lost_after_s_max=round(max(lost_after), 1) if lost_after else None,
        stale_after_s=stale_after_s,
        survivor_calls_at_kill=len(survivor_live),
        survivor_calls_at_kill_completed=sum(1 for r in survivor_live if r.get("status") == "completed"),
        after_kill_started=sum(1 for p in later if p.call_id is not None),
        after_kill_completed=len(later_done),
        after_kill_on_survivor=len(on_survivor),
        lost_all_phases=lost_any,
        elapsed_s=round(elapsed, 1),
        call_s_p50=round(statistics.median(durations), 1) if durations else None,
        worker_cpu_s_per_call=_per_call(cpu_delta(worker_parts), n),
        worker_pss_mb_per_live_call=round((peak_pss - idle.pss_kb) / 1024 / max_live, 1) if max_live > 0 else None,
        worker_idle_pss_mb=round(idle.pss_kb / 1024, 1),
        server_cpu_s_per_call=_per_call(cpu_delta(["server-1", "server-2"]), n),
        postgres_cpu_s_per_call=_per_call(cpu_delta(["postgres"]), n) if idle.cpu_s.get("postgres") else None,
        livekit_server_cpu_s_per_call=_per_call(cpu_delta(["livekit-server"]), n)
        if idle.cpu_s.get("livekit-server")
        else None,
        livekit_sip_cpu_s_per_call=_per_call(cpu_delta(["livekit-sip"]), n) if idle.cpu_s.get("livekit-sip") else None,
        console_pages_ok=console_ok,
        heartbeat_age_max_s=round(max(ages), 1) if ages else None,
        live_p95=pct([x for _, x in (sampler.live_ticks if sampler else []) if x >= 0], 95),
        errors=errors,
    )
    return {**line, "calls": rows, "db_url": db_url, "killed_at": kill_wall, "killed_call_ids": killed_ids}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls in the spread phase (default 20)")
    parser.add_argument("--limit", type=int, default=6, help="DIAL_MAX_CONCURRENT (default 6)")
    parser.add_argument("--after-kill", type=int, default=2, help="calls placed after the kill (default 2)")
    parser.add_argument("--stale-after", type=float, default=20.0, help="CALLAGENT_STALE_AFTER_S (default 20)")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds to place the spread's calls")
    parser.add_argument("--idle-processes", type=int, help="CALLAGENT_WORKER_IDLE_PROCESSES of each worker")
    parser.add_argument("--kill-burst", type=int, help="calls live when a worker is killed (default: the limit)")
    parser.add_argument("--no-console", action="store_true", help="do not start the console")
    args = parser.parse_args(argv)
    result = on_the_bed(
        "scale_out",
        "bench/scale_out.py",
        lambda: measure_scale_out(
            calls=args.calls,
            limit=args.limit,
            after_kill=args.after_kill,
            stale_after_s=args.stale_after,
            budget_s=args.budget,
            console=not args.no_console,
            idle_processes=args.idle_processes,
            kill_burst=args.kill_burst,
        ),
    )
    if isinstance(result, int):  # no bed, or interrupted
        return result
    ok = (
        result["lost_all_phases"] == 0
        and result["limit_held"]
        and result["killed_worker_calls"] == result["killed_worker_calls_worker_lost"] > 0
        and result["after_kill_completed"] == result["after_kill_on_survivor"] == args.after_kill
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
