"""The MCP server driven by the TypeScript MCP SDK (`@modelcontextprotocol/sdk`, the client
library Claude Desktop uses) over stdio: `node tests/ts/mcp_client.mjs` spawns server.py, lists
and calls the tools, and prints one JSON line that is checked here.

The SDK validates every tool result's structured content against the tool's published output
schema (ajv), so the seeded call record below, full of timestamps, a transcript and an outcome,
also checks that the schemas the Python server publishes hold for what it returns.

No LiveKit runs here and none is needed: LIVEKIT_URL points at a closed port on 127.0.0.1 and
no tool called here gets as far as contacting it.

The npm dependencies are installed by `npm ci` in tests/ts (from the committed lockfile) when
they are missing. `devstack run` puts the tests in a network namespace without internet, so
there the install only works from npm's cache; `.ci/run` installs them before the bed is up.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from callagent.calls import CallRecord, CallStatus, Outcome, TranscriptLine, new_call_id, utcnow
from callagent.store import Database

ROOT = Path(__file__).resolve().parents[2]
TS_DIR = ROOT / "tests" / "ts"
CLIENT = TS_DIR / "mcp_client.mjs"
SDK = "@modelcontextprotocol/sdk"
TOOLS = {"make_phone_call", "wait_for_call", "get_call", "list_calls", "end_call"}
READ_ONLY = {"get_call", "list_calls", "wait_for_call"}
OPEN_WORLD = {"make_phone_call", "end_call"}
MIN_NODE_MAJOR = 20
INSTALL_HINT = f"install the TypeScript client's dependencies: cd {TS_DIR} && npm ci"


def _fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def _pinned_sdk_version() -> str:
    return json.loads((TS_DIR / "package.json").read_text())["dependencies"][SDK]


def _installed_sdk_version() -> str | None:
    manifest = TS_DIR / "node_modules" / SDK / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` executable, with tests/ts/node_modules installed from the lockfile."""
    return node_with_sdk()


def node_with_sdk() -> str:
    """The `node` executable, with tests/ts/node_modules installed from the lockfile (else the
    test fails saying how to get them). Also used by test_wheel.py."""
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if missing:
        _fail(
            f"{' and '.join(missing)} not found on PATH: this test drives the server with the "
            f"TypeScript MCP SDK and needs Node.js {MIN_NODE_MAJOR}+ with npm "
            "(e.g. apt-get install -y nodejs npm, or https://nodejs.org)"
        )
    assert node is not None and npm is not None
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        major = 0
    if major < MIN_NODE_MAJOR:
        _fail(
            f"node at {node} is {version or 'of unknown version'}; "
            f"the TypeScript client needs Node.js {MIN_NODE_MAJOR}+"
        )

    pinned = _pinned_sdk_version()
    if _installed_sdk_version() != pinned:
        in_bed = bool(os.environ.get("DEVSTACK_PHONE_DIR"))
        # Inside devstack's network namespace there is no internet: use npm's cache only (and
        # fail in a second, not after a minute of retries). The lockfile pins every package by
        # integrity hash, so a cached copy is exactly the locked one.
        argv = [npm, "ci", "--no-audit", "--no-fund", "--offline" if in_bed else "--prefer-offline"]
        result = subprocess.run(argv, cwd=TS_DIR, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            where = (
                "\nThis run is inside `devstack run`, whose network namespace has no internet, and "
                "npm's cache does not hold the packages; install them first, outside the bed "
                "(.ci/run does)."
                if in_bed
                else ""
            )
            _fail(
                f"`npm {' '.join(argv[1:])}` in {TS_DIR} failed ({result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-3000:]}{where}\n{INSTALL_HINT}"
            )
        if _installed_sdk_version() != pinned:
            _fail(f"npm ci finished but {SDK} {pinned} is not in {TS_DIR / 'node_modules'}; {INSTALL_HINT}")
    return node


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def seeded_call(db_url: str) -> Iterator[CallRecord]:
    """A completed call with every field a finished call has, in the store the server uses."""
    t0 = utcnow() - timedelta(minutes=5)
    record = CallRecord(
        call_id=new_call_id(),
        phone_number="+14155550100",
        status=CallStatus.completed,
        goal="Ask about opening hours",
        context="Order 42",
        greeting="Hello, this is an AI assistant calling for Test Operator.",
        caller_name="Test Operator",
        idempotency_key="ts-client-1",
        created_at=t0,
        updated_at=t0 + timedelta(seconds=40),
        dialed_at=t0 + timedelta(seconds=1),
        answered_at=t0 + timedelta(seconds=5),
        ended_at=t0 + timedelta(seconds=40),
        ended_reason="the agent ended the call",
        sip_status_code=200,
        transcript=[
            TranscriptLine(role="agent", text="Hello, when do you open?", at=t0 + timedelta(seconds=6)),
            TranscriptLine(role="callee", text="At nine.", at=t0 + timedelta(seconds=9)),
        ],
        summary="They open at nine.",
        outcome=Outcome(goal_achieved="yes", key_facts=["opens at 9"], follow_ups=[]),
        heartbeat_at=t0 + timedelta(seconds=39),
        max_duration_s=300,
        ring_timeout_s=30,
    )
    with Database(db_url) as store:
        yield store.calls.create(record)


def run_client(node: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [node, str(CLIENT), sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # the client gives up by itself after 30 s
        check=False,
    )
    if result.returncode != 0:
        _fail(
            f"node {CLIENT.name} exited {result.returncode}\n--- stdout ---\n{result.stdout}\n"
            f"--- stderr (client and server) ---\n{result.stderr[-5000:]}"
        )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line on stdout, got:\n{result.stdout}\n{result.stderr[-3000:]}"
    return json.loads(lines[0])


def test_typescript_sdk_lists_and_calls_the_tools_over_stdio(
    node: str, db_url: str, closed_port: int, seeded_call: CallRecord
) -> None:
    env = {
        **os.environ,
        "CALLAGENT_DB_URL": db_url,
        "LIVEKIT_URL": f"http://127.0.0.1:{closed_port}",
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": "ts-client-test-secret",
        "SIP_OUTBOUND_TRUNK_ID": "ST_test",
    }
    out = run_client(node, env, seeded_call.call_id)

    assert out["server"]["name"] == "callagent"
    assert out["protocolVersion"], out
    assert out["hasInstructions"]

    # Tools, their annotations (spec defaults: readOnlyHint false, openWorldHint true).
    assert set(out["toolNames"]) >= TOOLS, out["toolNames"]
    tools = out["tools"]
    for name in TOOLS:
        assert tools[name]["hasDescription"], name
        assert tools[name]["hasOutputSchema"], f"{name} publishes no output schema"
    for name in OPEN_WORLD:
        ann = tools[name]["annotations"] or {}
        assert ann.get("readOnlyHint", False) is False, (name, ann)
        assert ann.get("openWorldHint", True) is True, (name, ann)
    for name in READ_ONLY:
        ann = tools[name]["annotations"] or {}
        assert ann.get("readOnlyHint") is True, (name, ann)
    assert tools["end_call"]["annotations"].get("destructiveHint") is True
    assert tools["make_phone_call"]["inputRequired"] == ["phone_number"]

    templates = {t["uriTemplate"]: t for t in out["resourceTemplates"]}
    assert "calls://{call_id}" in templates, out["resourceTemplates"]
    assert templates["calls://{call_id}"]["mimeType"] == "application/json"

    # get_call with an unknown id: an isError result naming the id, not a protocol error.
    unknown = out["getCallUnknown"]
    assert unknown["isError"] is True, unknown
    assert unknown["callId"] in unknown["errorText"], unknown

    # list_calls: structured content (checked against its output schema by the SDK).
    page = out["listCalls"]
    assert page["isError"] is False, page
    assert isinstance(page["structuredContent"], dict), page
    calls = page["structuredContent"]["calls"]
    assert isinstance(calls, list)
    assert [c["call_id"] for c in calls] == [seeded_call.call_id]
    assert calls[0]["status"] == "completed"
    assert [(line["role"], line["text"]) for line in calls[0]["transcript"]] == [
        ("agent", "Hello, when do you open?"),
        ("callee", "At nine."),
    ]
    assert page["structuredContent"]["next_cursor"] is None

    # make_phone_call refuses an invalid number before dialing, as an isError result.
    invalid = out["makePhoneCallInvalid"]
    assert invalid["isError"] is True, invalid
    assert "'12'" in invalid["text"], invalid

    # The seeded call through get_call, wait_for_call, end_call and the resource.
    known = out["known"]
    for tool in ("get_call", "wait_for_call", "end_call"):
        result = known[tool]
        assert result["isError"] is False, (tool, result)
        assert result["structuredContent"]["call_id"] == seeded_call.call_id, (tool, result)
        assert result["structuredContent"]["status"] == "completed", (tool, result)
        assert result["structuredContent"]["outcome"]["goal_achieved"] == "yes", (tool, result)
    assert known["end_call"]["structuredContent"]["note"], known["end_call"]
    (resource,) = known["resource"]
    assert resource["uri"] == f"calls://{seeded_call.call_id}"
    assert resource["mimeType"] == "application/json"
    assert json.loads(resource["text"])["call_id"] == seeded_call.call_id
