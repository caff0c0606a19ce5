"""The worker in a terminal: readable lines and each call's summary block; piped (a service),
JSON lines, the summary a record of its own. `--log-format` beats CALLAGENT_LOG_FORMAT, which
beats `auto`.

The worker runs for real (`callagent-worker start`: callagent's entry point, LiveKit's command
line and its worker logging set-up, through callagent's hook) in a subprocess whose stdout is a
pseudo-terminal or a pipe. Only the connection to LiveKit is left out: `AgentServer.run` is
replaced by a stand-in that logs what a call's job logs (its start, answer, end, through the
same loggers and the same `Ending.settle`, and `print_summary`), so no LiveKit server, bed or
network is needed.
"""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callagent import logs
from callagent.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CALL_ID = "1234567abcde"  # starts like a number: masking must leave it

# Runs `callagent-worker start ARGS`; the stand-in for AgentServer.run logs one call.
DRIVER = f"""
import logging, os, sys

from livekit.agents import AgentServer

from callagent import worker_main
from callagent.agent.ending import Ending
from callagent.agent.summary import print_summary
from callagent.calls import CallRecord, CallStatus, EndReason, Outcome, TranscriptLine
from callagent.settings import get_settings

CALL_ID = {CALL_ID!r}


class CallContext(logging.Filter):  # what LiveKit's job context adds to every record of a job
    def filter(self, record):
        record.call_id = CALL_ID
        return True


async def one_call(self, *, devmode, unregistered):
    logging.getLogger("livekit.agents").info("registered worker", extra={{"id": "AW_test", "region": "local"}})
    for handler in logging.getLogger().handlers:
        handler.addFilter(CallContext())
    job = logging.getLogger("callagent.agent.job")
    job.info("joining a call to %s", "+*******0100", extra={{"event": "joining"}})
    job.info("answered: the callee picked up (sip.callStatus active)", extra={{"event": "answered", "answered_at": 1.0}})
    Ending().settle(CallStatus.completed, EndReason.callee_hung_up, "the callee hung up")
    record = CallRecord(
        call_id=CALL_ID, phone_number="+14155550100", status=CallStatus.completed, goal="Ask about opening hours",
        caller_name="Test Operator", max_duration_s=300, ring_timeout_s=30, end_reason=EndReason.callee_hung_up,
        ended_reason="the callee hung up", summary="They open at nine.", outcome=Outcome(goal_achieved="yes"),
        transcript=[TranscriptLine(role="callee", text="We open at nine. Call me back at +1 415 555 0199.")],
    )
    print_summary(record, get_settings().log_format)  # as the job does, with the format the worker chose
    sys.stdout.flush()
    os._exit(0)  # no LiveKit to drain from


AgentServer.run = one_call
sys.exit(worker_main.main(sys.argv[1:]))
"""


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    names = {str(f.validation_alias) for f in Settings.model_fields.values() if f.validation_alias}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(
        {
            "CALLAGENT_DB_URL": f"sqlite:///{tmp_path / 'calls.db'}",
            "CALLAGENT_RECORDINGS_DIR": str(tmp_path / "recordings"),
            "CALLAGENT_WORKER_IDLE_PROCESSES": "0",
            "CALLAGENT_WORKER_PORT": "0",
            "LIVEKIT_LOG_LEVEL": "INFO",
            **extra,
        }
    )
    return env


def run_in_terminal(env: dict[str, str], *args: str, timeout: float = 90) -> str:
    """The driver with stdout and stderr on a pseudo-terminal: what it wrote there."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args], cwd=ROOT, env=env, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the terminal's other side is closed, the driver has exited
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            pytest.fail(f"the worker did not finish within {timeout:.0f} s:\n{out.decode(errors='replace')}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        os.close(controller)
    text = out.decode(errors="replace").replace("\r\n", "\n")
    assert proc.returncode == 0, text
    return text


def run_piped(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def json_records(out: str) -> list[dict[str, object]]:
    lines = [line for line in out.splitlines() if line.strip()]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, f"lines that are not JSON:\n{not_json}"
    return [json.loads(line) for line in lines]


def test_in_a_terminal_the_worker_prints_readable_lines_and_the_summary_block(tmp_path: Path) -> None:
    out = run_in_terminal(worker_env(tmp_path), "start")
    lines = out.splitlines()
    assert not [line for line in lines if line.lstrip().startswith("{")], out  # no JSON

    def line_with(text: str) -> str:
        found = [line for line in lines if text in line]
        assert found, f"no line with {text!r} in:\n{out}"
        return found[0]

    # Each milestone of the call: one line, its time, level and call first.
    stamp = r"^\d\d:\d\d:\d\d INFO    "
    assert re.match(stamp + rf"\[call {CALL_ID}\] joining a call to \+\*{{7}}0100$", line_with("joining a call"))
    assert re.match(stamp + rf"\[call {CALL_ID}\] answered: the callee picked up", line_with("answered"))
    ended = line_with("the call ends as")
    assert re.match(
        stamp + rf"\[call {CALL_ID}\] the call ends as completed \(callee_hung_up\): the callee hung up$", ended
    )
    # LiveKit's own lines too, named, their fields as key=value.
    assert re.match(
        stamp + r"livekit\.agents: registered worker  id=AW_test region=local$", line_with("registered worker")
    )

    # The end-of-call block, after the call's end.
    bar = "=" * 72
    assert out.count(bar) == 2, out
    block = out[out.index(bar) : out.rindex(bar)]
    assert f"Call {CALL_ID} to +*******0100: completed" in block
    assert "Summary: They open at nine." in block and "Goal achieved: yes" in block
    assert lines.index(ended) < lines.index(bar)
    assert "4155550100" not in out


def test_piped_the_worker_writes_json_lines_the_summary_a_record(tmp_path: Path) -> None:
    records = json_records(run_piped(worker_env(tmp_path), "start"))
    by_event = {r.get("event"): r for r in records if r.get("event")}
    assert set(by_event) >= {"joining", "answered", "ended", "summary"}, records
    for event in ("joining", "answered", "ended", "summary"):
        assert by_event[event]["call_id"] == CALL_ID, by_event[event]
    assert by_event["ended"]["status"] == "completed" and by_event["ended"]["end_reason"] == "callee_hung_up"
    summary = by_event["summary"]
    assert summary["message"] == "call summary: completed" and summary["status"] == "completed"
    assert str(summary["text"]).startswith(f"Call {CALL_ID} to +*******0100: completed\n"), summary
    assert "Summary: They open at nine." in str(summary["text"])
    assert "Call me back at +* *** *** 0199." in str(summary["text"])  # a log line: numbers masked
    assert any(r.get("message") == "registered worker" and r.get("id") == "AW_test" for r in records)


def test_the_flag_beats_the_terminal_and_the_setting(tmp_path: Path) -> None:
    """--log-format json in a terminal writes JSON; CALLAGENT_LOG_FORMAT=text piped writes text."""
    json_records(run_in_terminal(worker_env(tmp_path, CALLAGENT_LOG_FORMAT="text"), "--log-format", "json", "start"))
    piped = run_piped(worker_env(tmp_path, CALLAGENT_LOG_FORMAT="text"), "start")
    assert "=" * 72 in piped and not piped.lstrip().startswith("{"), piped


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    "flag,setting,tty,expected",
    [
        (None, "auto", True, "text"),
        (None, "auto", False, "json"),
        (None, "json", True, "json"),
        (None, "text", False, "text"),
        ("text", "json", False, "text"),
        ("json", "text", True, "json"),
        ("auto", "json", True, "text"),  # an explicit auto is the flag's choice too
    ],
)
def test_log_format_precedence(flag: str | None, setting: str, tty: bool, expected: str) -> None:
    assert logs.resolve_format(flag, setting, _Stream(tty)) == expected  # type: ignore[arg-type]


def test_text_lines_are_one_line_and_cannot_drive_the_terminal() -> None:
    record = logging_record("callagent.agent.job", "callee said \x1b[2Jhi\nthere", call_id="abc", note="a\x07b")
    line = logs.TextLines().format(record)
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line
    assert "[call abc] callee said \\x1b[2Jhi\\nthere" in line and "note=a\\x07b" in line


def logging_record(name: str, message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record
