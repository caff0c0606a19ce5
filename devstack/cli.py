"""`devstack`: the local telephony bed's command line.

    devstack run -- CMD ARGS…   bring the bed up in a fresh namespace, run CMD on it, tear down
    devstack up / down          keep a bed running in the background for interactive work
    devstack demo               an offline demo call through the MCP server (see devstack.demo)
    devstack setup              install what the bed needs (Debian packages, LiveKit binaries)

argparse: the CLI is small and must start fast; no extra dependency earns its place here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack import binaries, stack


def _state_file() -> Path:
    return binaries.cache_dir() / "devstack-up.json"


def cmd_run(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("devstack run: give a command after --, e.g. `devstack run -- pytest`", file=sys.stderr)
        return 2
    return stack.run_outside(cmd, run_dir=Path(args.run_dir) if args.run_dir else None)


def cmd_setup(_: argparse.Namespace) -> int:
    paths = binaries.ensure_all()
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_up(_: argparse.Namespace) -> int:
    state = _state_file()
    if state.exists() and _alive(json.loads(state.read_text())["pid"]):
        print("devstack: a bed is already up; `devstack down` first", file=sys.stderr)
        return 1
    binaries.ensure_all()
    run_dir = stack.new_run_dir()
    # The bed's command is a sleeper; `down` ends it and the namespace goes with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.cli", "run", "--run-dir", str(run_dir), "--", "sleep", "infinity"],
        stdout=open(run_dir / "devstack.log", "ab"),  # noqa: SIM115 - the detached bed's log, the child's to keep
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    env_file = run_dir / "env.json"
    deadline = time.monotonic() + 600
    while not env_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"devstack: the bed did not come up; see {run_dir}/devstack.log:", file=sys.stderr)
            print((run_dir / "devstack.log").read_text()[-3000:], file=sys.stderr)
            return 3
        time.sleep(0.2)
    sleeper = _find_sleeper(proc.pid)
    state.write_text(json.dumps({"pid": proc.pid, "ns_pid": sleeper, "run_dir": str(run_dir)}))
    env = json.loads(env_file.read_text())
    print(f"bed up; run directory {run_dir}")
    print("environment:")
    for k, v in env.items():
        print(f"  export {k}={v}")
    enter = ["nsenter", "-t", str(sleeper), "-n"]
    if os.geteuid() != 0:
        enter[3:3] = ["-U", "--preserve-credentials"]
    print(
        f"enter the namespace: {' '.join(enter)} -- env $(cat {env_file} | python3 -c "
        '\'import json,sys; print(" ".join(f"{k}={v}" for k,v in json.load(sys.stdin).items()))\') bash'
    )
    print("stop it: devstack down")
    return 0


def _find_sleeper(pid: int) -> int:
    """The PID (as seen from here) of a process inside the bed's namespace."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-f", "^sleep infinity$"], capture_output=True, text=True).stdout
        for line in out.split():
            if _is_descendant(int(line), pid):
                return int(line)
        time.sleep(0.1)
    return pid


def _is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def cmd_down(_: argparse.Namespace) -> int:
    state = _state_file()
    if not state.exists():
        print("devstack: no bed is up")
        return 0
    pid = json.loads(state.read_text())["pid"]
    if _alive(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    state.unlink()
    print("bed down")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from devstack import demo

    return demo.main(args)


def cmd_inside(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return stack.run_inside(Path(args.run_dir), Path(args.livekit_server), Path(args.livekit_sip), cmd)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="devstack: %(message)s", stream=sys.stderr)
    parser = argparse.ArgumentParser(prog="devstack", description="The local telephony bed.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a command on a fresh bed: devstack run -- CMD ARGS…")
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run)

    sub.add_parser("up", help="start a bed in the background").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the background bed").set_defaults(func=cmd_down)
    sub.add_parser("setup", help="install Debian packages and build the LiveKit binaries").set_defaults(func=cmd_setup)

    p = sub.add_parser("demo", help="an offline demo call through the MCP server")
    p.add_argument("--number", default="+14155550100")
    p.add_argument("--goal", default="Confirm the dentist appointment tomorrow at 10 am.")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("_inside", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--livekit-server", required=True)
    p.add_argument("--livekit-sip", required=True)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_inside)

    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except binaries.SetupError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
