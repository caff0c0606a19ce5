"""A subscribed client hears a call's progress without polling: the TypeScript MCP SDK (the
client library Claude Desktop uses) subscribes to calls://{call_id} over stdio and gets
notifications/resources/updated as the call goes ringing → in progress → completed, with every
status written by the worker process (the server only watches the store)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from helpers import ROOT, Worker

TS_DIR = ROOT / "tests" / "ts"


def node() -> str:
    """Node.js, with the client's packages installed (`npm ci` in tests/ts: .ci/run does it
    before the bed is up, which has no internet)."""
    found = shutil.which("node")
    assert found, "node not found on PATH: this test needs Node.js 20+ (apt-get install -y nodejs npm)"
    assert (TS_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir(), f"run: cd {TS_DIR} && npm ci"
    return found


def test_a_subscriber_hears_the_call_progress(env: dict[str, str], worker: Worker) -> None:
    res = subprocess.run(
        [node(), str(ROOT / "tests" / "ts" / "subscribe_client.mjs"), sys.executable, "+14155550100"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["capabilities"]["subscribe"] is True
    statuses = out["statuses"]
    # Each notification was followed by a read; in order, they show the call's progress.
    assert statuses[-1] == "completed", out
    assert "in_progress" in statuses, out
    assert statuses.index("in_progress") < statuses.index("completed")
    assert out["notifications"] >= 2
