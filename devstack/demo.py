"""`devstack demo`: one offline call, end to end, the way a user would place it.

On a fresh bed it starts the calling worker (calling_agent.py), waits until it has registered
with LiveKit, then places a call through the MCP server with test_mcp_client.py, which shows
the live status, the transcript and the summary. The worker's own summary block is shown too,
prefixed `worker │`. With OPENAI_API_KEY set and no OPENAI_BASE_URL override, the agent uses
OpenAI itself instead of the bed's offline models.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from devstack import stack
from devstack.worker import WorkerProcess

PROJECT_DIR = Path(__file__).resolve().parent.parent


def main(args: argparse.Namespace) -> int:
    inner = [sys.executable, "-m", "devstack.demo", "--number", args.number, "--goal", args.goal]
    real_openai = os.environ.get("OPENAI_API_KEY") and not os.environ.get("OPENAI_BASE_URL")
    if real_openai:
        inner.append("--use-openai")
        # The bed's namespace has no internet; say so rather than fail obscurely.
        print(
            "devstack demo: OPENAI_API_KEY is set, but the bed's namespace has no route to the "
            "internet; the demo uses the offline models. Run the worker outside the bed for OpenAI.",
            file=sys.stderr,
        )
    return stack.run_outside(inner)


def inside(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="devstack.demo")
    p.add_argument("--number", required=True)
    p.add_argument("--goal", required=True)
    p.add_argument("--use-openai", action="store_true")
    args = p.parse_args(argv)
    run_dir = Path(os.environ["DEVSTACK_RUN_DIR"])
    env = dict(os.environ)
    print(f"demo: starting the calling worker (log: {run_dir / 'worker.log'})", flush=True)
    worker = WorkerProcess(env, run_dir / "worker.log")
    worker.relay_summaries()
    try:
        worker.wait_registered(90)
        print(f"demo: calling {args.number} through the MCP server (test_mcp_client.py)\n", flush=True)
        client = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "test_mcp_client.py"), "call", args.number, "--goal", args.goal],
            cwd=PROJECT_DIR,
            env=env,
        )
        # Give the worker a moment to print its own summary of the call.
        time.sleep(2)
        return client.returncode
    finally:
        worker.stop()


if __name__ == "__main__":
    sys.exit(inside(sys.argv[1:]))
