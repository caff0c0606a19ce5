"""The local telephony bed, brought up inside a private network namespace.

`run_outside` re-executes this package under `unshare` (new network + PID namespace), so every
process the bed starts, and the command it runs, live and die inside it: when the namespace's
first process exits, the kernel kills whatever is left, so nothing outlives a run.
Inside, `Bed` starts Redis, livekit-server, livekit-sip, the fakes (simulated phone and
offline model server) and the calendar MCP server (devstack.calendar), creates the outbound SIP
trunk and hands the environment to the command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack import binaries

log = logging.getLogger("devstack")

# Addresses and ports inside the namespace. Nothing here is reachable from outside it.
LOOPBACK = "127.0.0.1"
MEDIA_IP = "10.200.0.1"  # LiveKit server and SIP bridge media, on one end of the veth pair
PHONE_IP = "10.200.0.2"  # the simulated phone, on the other end
REDIS_PORT = 6379
LIVEKIT_PORT = 7880
LIVEKIT_RTC_TCP_PORT = 7881
LIVEKIT_RTC_UDP_PORTS = (50000, 50999)
SIP_PORT = 5060
SIP_HEALTH_PORT = 8089  # not 8081: a LiveKit agents worker serves its health check there
SIP_RTP_PORTS = (20000, 29999)
PHONE_SIP_PORT = 5060
MODELS_PORT = 8811
# The calendar MCP server takes a free port on LOOPBACK at start-up (Bed.calendar_port).

API_KEY = "devkey"
API_SECRET = "devstack-secret-not-for-production-0123456789"  # >= 32 chars: no short-secret warning
TRUNK_NUMBER = "+14155550199"  # the caller id the bed's trunk presents


def runs_root() -> Path:
    return binaries.cache_dir() / "runs"


def new_run_dir() -> Path:
    root = runs_root()
    root.mkdir(parents=True, exist_ok=True)
    # Keep the last runs only: each holds logs and recordings.
    old = sorted(p for p in root.iterdir() if p.is_dir())
    for stale in old[:-20]:
        subprocess.run(["rm", "-rf", str(stale)], check=False)
    run = root / time.strftime(f"%Y%m%d-%H%M%S-{os.getpid()}")
    run.mkdir()
    return run


def unshare_argv(inner: list[str]) -> list[str]:
    """The command that runs `inner` as PID 1 of fresh network + PID namespaces."""
    base = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if os.geteuid() != 0:
        base.append("--map-root-user")  # an unprivileged user namespace gives us CAP_NET_ADMIN
    return [*base, "--", *inner]


def run_outside(cmd: list[str], *, run_dir: Path | None = None) -> int:
    """Set up what is missing, then run `cmd` on the bed in a fresh namespace; returns its exit code."""
    paths = binaries.ensure_all()
    run_dir = run_dir or new_run_dir()
    inner = [
        sys.executable,
        "-m",
        "devstack.cli",
        "_inside",
        "--run-dir",
        str(run_dir),
        "--livekit-server",
        str(paths["livekit-server"]),
        "--livekit-sip",
        str(paths["livekit-sip"]),
        "--",
        *cmd,
    ]
    log.info("bed run directory: %s", run_dir)
    proc = subprocess.Popen(unshare_argv(inner))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # The inner runner got the same Ctrl-C and tears down; give it time to finish.
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 130


@dataclass
class Component:
    name: str
    argv: list[str]
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def start(self) -> None:
        with open(self.log_path, "ab") as logf:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.argv,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                cwd=self.run_dir,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class BedError(RuntimeError):
    pass


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise BedError(f"`ip {' '.join(args)}` failed: {res.stderr.strip()}")


def setup_network() -> None:
    """Loopback plus a veth pair, both ends inside this (fresh) namespace, for media."""
    _ip("link", "set", "lo", "up")
    _ip("link", "add", "lkbed0", "type", "veth", "peer", "name", "lkbed1")
    _ip("addr", "add", f"{MEDIA_IP}/24", "dev", "lkbed0")
    _ip("addr", "add", f"{PHONE_IP}/24", "dev", "lkbed1")
    _ip("link", "set", "lkbed0", "up")
    _ip("link", "set", "lkbed1", "up")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on at `host` now (the bed's namespace is fresh: nothing else
    will take it before the process it is for binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            status: int = resp.status
            return status == 200
    except Exception:  # noqa: BLE001 - any failure means "not up yet"
        return False


class Bed:
    """The bed's processes, started in order inside the namespace."""

    def __init__(self, run_dir: Path, livekit_server: Path, livekit_sip: Path) -> None:
        self.run_dir = run_dir
        self.livekit_server = livekit_server
        self.livekit_sip = livekit_sip
        self.components: list[Component] = []
        self.trunk_id: str | None = None
        self.calendar_port: int | None = None

    @property
    def calendar_url(self) -> str:
        """The calendar MCP server's endpoint (streamable HTTP)."""
        assert self.calendar_port
        return f"http://{LOOPBACK}:{self.calendar_port}/mcp"  # devstack.calendar.url

    @property
    def livekit_url(self) -> str:
        return f"ws://{LOOPBACK}:{LIVEKIT_PORT}"

    def env(self) -> dict[str, str]:
        """What a process needs to use the bed."""
        assert self.trunk_id
        return {
            "LIVEKIT_URL": self.livekit_url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "SIP_OUTBOUND_TRUNK_ID": self.trunk_id,
            "OPENAI_BASE_URL": f"http://{LOOPBACK}:{MODELS_PORT}/v1",
            "OPENAI_API_KEY": "devstack-offline",
            "CALLAGENT_DB_URL": f"sqlite:///{self.run_dir / 'calls.db'}",
            "DEVSTACK_RUN_DIR": str(self.run_dir),
            "DEVSTACK_PHONE_DIR": str(self.run_dir / "phone"),
            "DEVSTACK_PHONE_IP": PHONE_IP,
            # The bed's calendar, an MCP server a worker may be configured to use during calls;
            # each tool call in $DEVSTACK_RUN_DIR/calendar/calls.jsonl (devstack.phonelog).
            "DEVSTACK_CALENDAR_URL": self.calendar_url,
            # The simulated phone has no night: quiet hours would refuse the demo for half
            # the day (the bed's numbers are in Los Angeles).
            "DIAL_QUIET_HOURS": "off",
            # Its numbers are fictional and called many times a run by tests and benchmarks;
            # the defaults protect real people from being called over and over.
            "DIAL_MAX_PER_NUMBER_PER_DAY": "1000",
            "DIAL_MAX_PER_HOUR": "1000",
            "DIAL_MAX_CONCURRENT": "20",
        }

    def _write_configs(self) -> tuple[Path, Path]:
        lk = self.run_dir / "livekit.yaml"
        lk.write_text(
            f"""port: {LIVEKIT_PORT}
bind_addresses: ["{LOOPBACK}"]
rtc:
  tcp_port: {LIVEKIT_RTC_TCP_PORT}
  port_range_start: {LIVEKIT_RTC_UDP_PORTS[0]}
  port_range_end: {LIVEKIT_RTC_UDP_PORTS[1]}
  use_external_ip: false
  node_ip: {MEDIA_IP}
  stun_servers: []
redis:
  address: {LOOPBACK}:{REDIS_PORT}
keys:
  {API_KEY}: {API_SECRET}
logging:
  level: info
  json: false
"""
        )
        sip = self.run_dir / "sip.yaml"
        sip.write_text(
            f"""api_key: {API_KEY}
api_secret: {API_SECRET}
ws_url: ws://{LOOPBACK}:{LIVEKIT_PORT}
redis:
  address: {LOOPBACK}:{REDIS_PORT}
health_port: {SIP_HEALTH_PORT}
sip_port: {SIP_PORT}
listen_ip: {MEDIA_IP}
rtp_port: {SIP_RTP_PORTS[0]}-{SIP_RTP_PORTS[1]}
use_external_ip: false
nat_1_to_1_ip: {MEDIA_IP}
max_cpu_utilization: 1.0
logging:
  level: debug
"""
        )
        return lk, sip

    def _start(self, comp: Component, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        self._launch(comp)
        self._wait_ready(comp, ready, what, timeout)

    def _launch(self, comp: Component) -> None:
        comp.start()
        self.components.append(comp)

    def _wait_ready(self, comp: Component, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not comp.alive():
                raise BedError(f"{comp.name} exited during start-up; its log ({comp.log_path}):\n{comp.tail()}")
            if ready():
                return
            time.sleep(0.05)
        raise BedError(f"{comp.name} was not ready ({what}) within {timeout:.0f} s; its log:\n{comp.tail()}")

    def start(self) -> float:
        """Start everything; returns the start-up time in seconds."""
        t0 = time.monotonic()
        setup_network()
        lk_conf, sip_conf = self._write_configs()
        (self.run_dir / "phone").mkdir(exist_ok=True)
        self._start(
            Component(
                "redis",
                ["redis-server", "--port", str(REDIS_PORT), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"],
                self.run_dir,
            ),
            lambda: _port_open(LOOPBACK, REDIS_PORT),
            f"port {REDIS_PORT}",
        )
        self._start(
            Component("livekit-server", [str(self.livekit_server), "--config", str(lk_conf)], self.run_dir),
            lambda: _http_ok(f"http://{LOOPBACK}:{LIVEKIT_PORT}/"),
            "HTTP 200 on /",
        )
        self._start(
            Component("livekit-sip", [str(self.livekit_sip), "--config", str(sip_conf)], self.run_dir),
            lambda: _http_ok(f"http://{LOOPBACK}:{SIP_HEALTH_PORT}/"),
            "health check",
        )
        # The calendar starts alongside the fakes (both are Python processes importing a while).
        calendar_port = free_port()
        calendar = Component(
            "calendar",
            [
                sys.executable,
                "-m",
                "devstack.calendar",
                "--host",
                LOOPBACK,
                "--port",
                str(calendar_port),
                "--log-dir",
                str(self.run_dir / "calendar"),
            ],
            self.run_dir,
            env={"PYTHONUNBUFFERED": "1"},
        )
        self._launch(calendar)
        self._start(
            Component(
                "fakes",
                [
                    sys.executable,
                    "-m",
                    "devstack.fakes",
                    "--run-dir",
                    str(self.run_dir),
                    "--phone-host",
                    PHONE_IP,
                    "--phone-port",
                    str(PHONE_SIP_PORT),
                    "--models-host",
                    LOOPBACK,
                    "--models-port",
                    str(MODELS_PORT),
                ],
                self.run_dir,
                env={"PYTHONUNBUFFERED": "1"},
            ),
            lambda: _http_ok(f"http://{LOOPBACK}:{MODELS_PORT}/v1/models"),
            "model server /v1/models",
        )
        self._wait_ready(calendar, lambda: _port_open(LOOPBACK, calendar_port), f"port {calendar_port}")
        self.calendar_port = calendar_port
        self.trunk_id = asyncio.run(self._create_trunk())
        took = time.monotonic() - t0
        (self.run_dir / "env.json").write_text(json.dumps(self.env(), indent=2))
        log.info("bed up in %.2f s (trunk %s)", took, self.trunk_id)
        return took

    async def _create_trunk(self) -> str:
        from livekit import api

        async with api.LiveKitAPI(f"http://{LOOPBACK}:{LIVEKIT_PORT}", API_KEY, API_SECRET) as lk:
            trunk = await lk.sip.create_outbound_trunk(
                api.CreateSIPOutboundTrunkRequest(
                    trunk=api.SIPOutboundTrunkInfo(
                        name="devstack phone",
                        address=f"{PHONE_IP}:{PHONE_SIP_PORT}",
                        numbers=[TRUNK_NUMBER],
                        transport=api.SIPTransport.SIP_TRANSPORT_UDP,
                    )
                )
            )
            return trunk.sip_trunk_id

    def check_alive(self) -> None:
        for comp in self.components:
            if not comp.alive():
                raise BedError(f"{comp.name} died; its log:\n{comp.tail()}")

    def stop(self) -> None:
        for comp in reversed(self.components):
            comp.stop()


def run_inside(run_dir: Path, livekit_server: Path, livekit_sip: Path, cmd: list[str]) -> int:
    """PID 1 of the namespace: bring the bed up, run `cmd`, tear down; returns cmd's exit code."""
    # As PID 1 we get no default SIGTERM action: turn it into a clean teardown.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    bed = Bed(run_dir, livekit_server, livekit_sip)
    child: subprocess.Popen[bytes] | None = None
    try:
        try:
            bed.start()
        except Exception as exc:  # noqa: BLE001 - reported with the run directory, exit code 3
            print(f"devstack: the bed failed to start: {exc}\n(run directory: {run_dir})", file=sys.stderr)
            return 3
        if not cmd:
            return 0
        child = subprocess.Popen(cmd, env={**os.environ, **bed.env()})
        return child.wait()
    except KeyboardInterrupt:
        if child and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        return 130
    finally:
        bed.stop()
