"""What several test modules share: record factories, result text, and the bed's processes.

Fixtures live in conftest.py; these are plain functions and classes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp_types import CallToolResult, TextContent

from callagent.calls import CallRecord, CallStatus, new_call_id
from callagent.settings import Settings
from devstack import phonelog
from devstack.worker import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent
NUMBER = "+14155550100"  # the bed's scripted callee; a fictional number no rule refuses


def text(result: CallToolResult) -> str:
    """The readable text of a tool result."""
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def make_record(status: CallStatus = CallStatus.queued, **fields: Any) -> CallRecord:
    """A call record with plain defaults (any field can be given)."""
    values: dict[str, Any] = {
        "call_id": new_call_id(),
        "phone_number": NUMBER,
        "goal": "Ask about opening hours",
        "caller_name": "Test Operator",
        "max_duration_s": 300,
        "ring_timeout_s": 30,
        **fields,
    }
    return CallRecord(status=status, **values)


def fake_livekit_settings(db_url: str, livekit_url: str, secret: str, **env: Any) -> Settings:
    """Settings for a server or service talking to the fake LiveKit at `livekit_url`, with
    short timeouts (a fault shows quickly) and no quiet hours (the tests run at any hour)."""
    values = {
        "CALLAGENT_DB_URL": db_url,
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": secret,
        "SIP_OUTBOUND_TRUNK_ID": "ST_test",
        "CALLAGENT_AGENT_JOIN_TIMEOUT_S": "2",
        "CALLAGENT_LIVEKIT_TIMEOUT_S": "1",
        "DIAL_QUIET_HOURS": "off",
        **env,
    }
    return Settings(_env_file=None, **values)


# -- the bed ---------------------------------------------------------------------------------


class Worker(WorkerProcess):
    """The calling worker in a test: fails the test (with its log) if it does not register."""

    def wait_registered(self, timeout: float = 90) -> float:
        import pytest

        try:
            return super().wait_registered(timeout)
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)

    def output(self) -> str:
        return self.text()


def bed_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The bed's environment, with a call store of the test's own."""
    env = dict(os.environ)
    env.update(
        {
            "CALLAGENT_DB_URL": f"sqlite:///{tmp / 'calls.db'}",
            "CALLAGENT_SILENCE_TIMEOUT_S": "6",
            "DIAL_QUIET_HOURS": "off",  # the tests run at any hour
            **extra,
        }
    )
    return env


def client(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """test_mcp_client.py with `args`: the MCP server over stdio, as a client spawns it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "test_mcp_client.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def place(env: dict[str, str], number: str, *args: str) -> dict[str, Any]:
    """Place a call and follow it to its end; its final record."""
    res = client(env, "call", number, "--json", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    record: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return record


def start_call(env: dict[str, str], number: str) -> subprocess.Popen[str]:
    """Place a call in the background (test_mcp_client.py follows it to its end)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "test_mcp_client.py"), "call", number, "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_status(env: dict[str, str], call_id: str, want: set[str], timeout: float = 30) -> dict[str, Any]:
    """The call's record once its status is one of `want`."""
    deadline = time.monotonic() + timeout
    rec: dict[str, Any] = {}
    while time.monotonic() < deadline:
        res = client(env, "get", call_id, "--json", timeout=30)
        if res.returncode == 0:
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            if rec["status"] in want:
                return rec
        time.sleep(0.5)
    raise AssertionError(f"call {call_id} did not reach {want}; last: {rec}")


def new_answered_call(seen: set[str | None], timeout: float = 20) -> str:
    """The call key of a call the phone answered that is not in `seen`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in phonelog.calls():
            if c.get("call_key") not in seen and c.get("answered_at"):
                return str(c["call_key"])
        time.sleep(0.2)
    raise AssertionError("the phone never answered")


def phone_call(record: dict[str, Any]) -> dict[str, Any]:
    """The phone's log of the call, once it ended."""
    return phonelog.wait_for(record["call_id"], lambda c: bool(c.get("ended")), timeout=15)
