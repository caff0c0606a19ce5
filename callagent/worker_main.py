"""`callagent-worker`: the calling worker, which places the voice on every call (also
`uv run calling_agent.py` in a checkout). Run it in a terminal and keep it running.

    callagent-worker start               # production mode
    callagent-worker dev                 # verbose
    callagent-worker console             # talk to the agent from this terminal
    callagent-worker --env-file ~/callagent.env --log-format json start

It registers under CALLAGENT_AGENT_NAME for explicit dispatch; the MCP server dispatches one job
per call. What it prints (on stdout) depends on `--log-format` (else CALLAGENT_LOG_FORMAT, else
auto): in a terminal (auto), one readable line per event, each call's start ("joining a call
to ..."), answer and end among them, and each finished call's summary block; piped (a service,
auto) or with json, one JSON object per line, the summary included as a record with
`"event": "summary"` and the block in its `text` field.

The rest of the command line is LiveKit Agents' (`callagent-worker start --help`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livekit.agents import AgentServer

    from callagent.logs import LogFormat
    from callagent.settings import Settings

__all__ = ["build_server", "main"]

USAGE = """\
usage: callagent-worker [--env-file PATH] [--log-format {auto,text,json}] COMMAND [LiveKit options]

commands (LiveKit Agents'; `callagent-worker COMMAND --help` for their options):
  start      run the worker (production)
  dev        run the worker, verbose
  console    talk to the agent from this terminal

options:
  --env-file PATH       read settings from this file too (below the environment, above
                        ~/.config/callagent/.env)
  --log-format FORMAT   auto (a terminal: text, else JSON lines), text or json; default:
                        CALLAGENT_LOG_FORMAT, else auto
"""


def build_server(settings: Settings) -> AgentServer:
    """The LiveKit AgentServer: one job per call, explicitly dispatched to CALLAGENT_AGENT_NAME."""
    from livekit.agents import AgentServer

    from callagent.agent import entrypoint, prewarm
    from callagent.agent.session import PRELOAD

    def calls_load(server: AgentServer) -> float:
        """Load as the share of CALLAGENT_WORKER_MAX_CALLS in use (LiveKit stops at the threshold)."""
        return len(server.active_jobs) / settings.worker_max_calls

    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=calls_load,
        # Below 1, as LiveKit requires in production: full means every slot is taken.
        load_threshold=1 - 0.5 / settings.worker_max_calls,
        initialize_process_timeout=60.0,
        preload_modules=list(PRELOAD),
        num_idle_processes=min(settings.worker_idle_processes, settings.worker_max_calls),
        host=settings.worker_host,
        port=settings.worker_port,
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    return server


def _parser() -> argparse.ArgumentParser:
    # The rest of the command line is LiveKit's: no abbreviations of these two to catch its options.
    parser = argparse.ArgumentParser(
        prog="callagent-worker", add_help=False, usage=argparse.SUPPRESS, allow_abbrev=False
    )
    parser.add_argument("--env-file", metavar="PATH")
    # None when not given: CALLAGENT_LOG_FORMAT decides then.
    parser.add_argument("--log-format", choices=("auto", "text", "json"), type=str.lower)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, rest = _parser().parse_known_args(argv)
    except SystemExit as exc:  # argparse has printed what is wrong
        return int(exc.code or 0)
    if not rest or rest[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if rest else sys.stderr)
        return 0 if rest else 2

    from callagent.settings import SettingsProblem, get_settings, load_settings

    try:
        settings = load_settings(args.env_file)
    except SettingsProblem as exc:
        print(f"callagent-worker: {exc}", file=sys.stderr)
        return 2

    from callagent import logs, redact

    redact.install(redact.secrets_of(settings))  # numbers masked, secrets hidden in every log line
    log_format = logs.resolve_format(args.log_format, settings.log_format, sys.stdout)
    # Decided once, here, where stdout is known: the job processes (which print the summary)
    # read it from the environment, like every setting.
    os.environ["CALLAGENT_LOG_FORMAT"] = log_format
    get_settings.cache_clear()
    settings = get_settings()
    _use_log_format(log_format)

    from livekit.agents import cli

    from callagent.agent.recording import expire_in_background

    server = build_server(settings)
    # Recordings past CALLAGENT_RECORDING_RETENTION_DAYS go at start and hourly (the server's reaper too).
    expire_in_background(settings)
    sys.argv = [sys.argv[0], *rest]  # LiveKit's command line reads sys.argv
    cli.run_app(server)
    return 0


def _use_log_format(log_format: LogFormat) -> None:
    """Have LiveKit's worker logging (`start`, `dev`) write `log_format`.

    LiveKit sets up the root logger's handler when the worker starts (its levels, its quiet
    libraries, its JSON lines, or colours in `dev`). Its setup is kept and, for text, the
    handler it adds gets callagent's readable lines; for json, LiveKit's own JSON lines stay
    (what services, the benchmarks and the bed read), also in `dev`. `console` keeps LiveKit's
    own terminal display."""
    from livekit.agents.cli import cli as lk_cli

    from callagent import logs

    # `start` and `dev` look the set-up up in this module's namespace when they run.
    namespace = vars(lk_cli)
    original: Callable[..., None] = namespace["setup_logging"]

    def setup_logging(log_level: str, devmode: bool, console: bool, compact: bool = False) -> None:
        if console:  # LiveKit's interactive console draws its own screen
            original(log_level, devmode=devmode, console=console, compact=compact)
            return
        root = logging.getLogger()
        before = set(root.handlers)
        original(log_level, devmode=False, console=console, compact=compact)
        if log_format == "text":
            for handler in root.handlers:
                if handler not in before:
                    handler.setFormatter(logs.TextLines())

    namespace["setup_logging"] = setup_logging


if __name__ == "__main__":
    sys.exit(main())
