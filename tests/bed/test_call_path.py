"""Calls end to end on the bed: test_mcp_client.py → server.py → LiveKit → SIP → the phone,
with the real calling worker holding the conversation. No mocks of LiveKit anywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import phonelog
from helpers import Worker, bed_env, client, new_answered_call, phone_call, place, start_call, wait_status


def test_conversation_completes_with_transcript_and_summary(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, "+14155550100", "--goal", "Confirm the appointment tomorrow at 10 am")
    assert rec["status"] == "completed", rec
    roles = [line["role"] for line in rec["transcript"]]
    assert roles[0] == "agent" and "callee" in roles
    assert "AI assistant" in rec["transcript"][0]["text"]  # the disclosure comes first
    assert rec["summary"] and rec["outcome"]["goal_achieved"] == "yes"
    # The worker showed the summary (piped into its log: the JSON record with the block).
    deadline = time.monotonic() + 10
    while f"Call {rec['call_id']}" not in worker.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"Call {rec['call_id']}" in worker.output()
    # The greeting is the first thing the phone heard, and its recording holds it.
    call = phone_call(rec)
    assert call["agent_speech"] and call["utterances"]
    assert call["agent_speech"][0]["start"] < call["utterances"][0]["start"]
    assert call["first_audio_at"] >= call["answered_at"]
    samples, rate = phonelog.recording(call)
    greeting = samples[: int((call["utterances"][0]["start"] - call["answered_at"]) * rate)]
    assert phonelog.speech_seconds(greeting, rate) >= 1.5


def test_voicemail_leaves_a_message(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, "+14155550102")
    assert rec["status"] == "voicemail" and rec["end_reason"] == "voicemail_left", rec
    call = phone_call(rec)
    assert call["beep"] is not None
    # The agent spoke after the beep: the message is on the tape.
    after_beep = [s for s in call["agent_speech"] if s["start"] >= call["beep"]["end"]]
    assert after_beep and sum((s["end"] or s["start"]) - s["start"] for s in after_beep) >= 2.0


@pytest.mark.parametrize(
    ("number", "status", "code"),
    [
        ("+14155550103", "busy", 486),
        ("+14155550104", "declined", 603),
    ],
)
def test_rejected_calls_are_told_apart(
    env: dict[str, str], worker: Worker, number: str, status: str, code: int
) -> None:
    rec = place(env, number)
    assert rec["status"] == status and rec["sip_status_code"] == code, rec
    assert rec["end_reason"] == status  # busy, declined: the code says the same
    assert rec["ended_reason"]


def test_unanswered_call_is_no_answer(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, "+14155550105", "--ring-timeout", "5")
    assert rec["status"] == "no_answer" and rec["end_reason"] == "no_answer", rec
    assert phone_call(rec)["hangup_by"] == "canceled"


def test_callee_hanging_up_completes_the_call(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, "+14155550106")
    assert rec["status"] == "completed", rec
    assert "callee hung up" in rec["ended_reason"] and rec["end_reason"] == "callee_hung_up"
    assert phone_call(rec)["hangup_by"] == "phone"


def test_silent_line_is_hung_up(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, "+14155550101")
    assert rec["status"] == "completed", rec
    assert "silent" in rec["ended_reason"] and rec["end_reason"] == "silence"
    assert phone_call(rec)["hangup_by"] == "remote"


def test_end_call_cancels_a_live_call(env: dict[str, str], worker: Worker) -> None:
    # A conversation (30 s of it), not the silent line: the module's 6 s silence timeout could
    # end that one first on a busy machine.
    seen = {c.get("call_key") for c in phonelog.calls()}
    follower = start_call(env, "+14155550100")
    try:
        call_id = new_answered_call(seen)
        wait_status(env, call_id, {"in_progress"})
        res = client(env, "end", call_id, "--json")
        assert res.returncode == 0, res.stderr
        rec = wait_status(env, call_id, {"canceled", "completed", "failed"})
        assert rec["status"] == "canceled", rec
        assert phonelog.wait_for(call_id, lambda c: bool(c.get("ended")), timeout=10)["hangup_by"] == "remote"
    finally:
        follower.wait(timeout=60)


def test_no_worker_online_fails_fast_and_dials_nothing(bed: None, tmp_path: Path) -> None:
    env = bed_env(tmp_path, CALLAGENT_AGENT_NAME="nobody-home", CALLAGENT_AGENT_JOIN_TIMEOUT_S="3")
    before = len(phonelog.calls())
    started = time.monotonic()
    res = client(env, "call", "+14155550100", "--json")
    took = time.monotonic() - started
    assert res.returncode != 0
    assert "no calling worker is online" in res.stderr and "CALLAGENT_AGENT_JOIN_TIMEOUT_S" in res.stderr
    assert took < 15, took
    time.sleep(1)
    assert len(phonelog.calls()) == before  # the phone never rang
    listed = json.loads(client(env, "list", "--json").stdout.strip().splitlines()[-1])
    calls = listed["calls"] if isinstance(listed, dict) else listed
    assert calls and all(c["status"] == "failed" for c in calls)  # nothing stuck in dialing
    # No room was left behind.
    import asyncio

    from livekit import api

    async def rooms() -> list[str]:
        async with api.LiveKitAPI(env["LIVEKIT_URL"], env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]) as lk:
            return [r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms]

    assert not [r for r in asyncio.run(rooms()) if r == f"call-{calls[0]['call_id']}"]


def test_wrong_keys_name_the_setting(bed: None, tmp_path: Path) -> None:
    env = bed_env(tmp_path, LIVEKIT_API_SECRET="not-the-secret-not-the-secret-0000")
    res = client(env, "call", "+14155550100", "--json")
    assert res.returncode != 0
    assert "LIVEKIT_API_KEY" in res.stderr or "LIVEKIT_API_SECRET" in res.stderr
    assert "not-the-secret" not in res.stderr  # secrets never appear in results
    listed = json.loads(client(env, "list", "--json").stdout.strip().splitlines()[-1])
    calls = listed["calls"] if isinstance(listed, dict) else listed
    assert calls and all(c["status"] == "failed" for c in calls)


def test_killed_worker_fails_the_call_within_bounds(bed: None, tmp_path: Path) -> None:
    env = bed_env(
        tmp_path,
        CALLAGENT_AGENT_NAME="doomed",
        CALLAGENT_STALE_AFTER_S="10",
        CALLAGENT_SILENCE_TIMEOUT_S="120",
        CALLAGENT_WORKER_PORT="0",
    )
    doomed = Worker(env, tmp_path / "doomed.log")
    try:
        doomed.wait_registered()
        seen = {c.get("call_key") for c in phonelog.calls()}
        follower = start_call(env, "+14155550101")
        call_id = new_answered_call(seen)
        wait_status(env, call_id, {"in_progress"})
        doomed.kill()
        killed_at = time.monotonic()
        rec = wait_status(env, call_id, {"failed", "completed", "canceled"}, timeout=60)
        assert rec["status"] == "failed", rec
        assert "worker" in rec["ended_reason"]
        assert time.monotonic() - killed_at < 40
        # The callee is not left on a line with nobody: the server hangs up reaped calls.
        assert phonelog.wait_for(call_id, lambda c: bool(c.get("ended")), timeout=15)["hangup_by"] == "remote"
        follower.wait(timeout=60)
    finally:
        doomed.stop()


# -- a hang-up asked for elsewhere: the worker acts on it within one heartbeat ---------------------


@pytest.fixture(scope="module")
def patient(bed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Worker]]:
    """A worker of its own that keeps a silent line open (no silence timeout in sight)."""
    tmp = tmp_path_factory.mktemp("patient")
    env = bed_env(tmp, CALLAGENT_AGENT_NAME="patient", CALLAGENT_SILENCE_TIMEOUT_S="120", CALLAGENT_WORKER_PORT="0")
    w = Worker(env, tmp / "patient.log")
    try:
        w.wait_registered()
        yield env, w
    finally:
        w.stop()


def _agent_hung_up_after(call_id: str, asked_at: float) -> dict[str, Any]:
    """The phone's log once the agent's side hung up; asserts the goodbye came first and the
    hang-up within one heartbeat (plus the goodbye and a margin for a loaded machine)."""
    from callagent.agent import GOODBYE_MAX_S
    from callagent.calls import HEARTBEAT_S

    call = phonelog.wait_for(call_id, lambda c: bool(c.get("ended")), timeout=HEARTBEAT_S + GOODBYE_MAX_S + 15)
    assert call["hangup_by"] == "remote", call  # the agent's side sent the BYE, not the phone
    goodbye = [s for s in call["agent_speech"] if s["start"] >= asked_at]
    assert goodbye, call["agent_speech"]  # a short goodbye before the line closed
    assert call["hangup_at"] - asked_at < HEARTBEAT_S + GOODBYE_MAX_S + 5
    return call


def test_end_call_that_livekit_refuses_is_an_error_and_the_worker_hangs_up(
    patient: tuple[dict[str, str], Worker],
) -> None:
    from fake_livekit import FakeLiveKit

    env, _ = patient
    seen = {c.get("call_key") for c in phonelog.calls()}
    follower = start_call(env, "+14155550101")
    refusing = FakeLiveKit("ok", upstream=env["LIVEKIT_URL"], DeleteRoom="500")
    try:
        call_id = new_answered_call(seen)
        wait_status(env, call_id, {"in_progress"})
        asked_at = time.time()
        res = client({**env, "LIVEKIT_URL": refusing.url}, "end", call_id, "--json")
        assert res.returncode != 0, res.stdout
        assert "may still be up" in res.stderr and "asked to hang up" in res.stderr, res.stderr[-2000:]
        assert len(refusing.calls("DeleteRoom")) >= 2  # really tried, and LiveKit really refused
        _agent_hung_up_after(call_id, asked_at)
        rec = wait_status(env, call_id, {"canceled", "completed", "failed"})
        assert rec["status"] == "canceled" and rec["ended_reason"] == "ended by the MCP client", rec
    finally:
        refusing.close()
        follower.wait(timeout=60)


def test_a_call_ended_by_another_process_is_hung_up_by_the_worker(patient: tuple[dict[str, str], Worker]) -> None:
    from callagent.calls import CallStatus, EndReason
    from callagent.store import Database

    env, _ = patient
    seen = {c.get("call_key") for c in phonelog.calls()}
    follower = start_call(env, "+14155550101")
    try:
        call_id = new_answered_call(seen)
        wait_status(env, call_id, {"in_progress"})
        asked_at = time.time()
        with Database(env["CALLAGENT_DB_URL"]) as store:  # as a second server would
            assert store.calls.transition(
                call_id, CallStatus.canceled, ended_reason="ended by another server", end_reason=EndReason.canceled
            )
        _agent_hung_up_after(call_id, asked_at)
        rec = wait_status(env, call_id, {"canceled"})
        assert rec["ended_reason"] == "ended by another server" and rec["transcript"], rec
    finally:
        follower.wait(timeout=60)


# -- the CLI: a second door through the same service -------------------------------------------------


def callagent_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callagent.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


def test_the_cli_places_a_call_through_the_same_service(env: dict[str, str], worker: Worker) -> None:
    res = callagent_cli(
        env, "call", "+14155550100", "--goal", "Confirm the appointment tomorrow at 10 am", "--wait", "--json"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    assert rec["status"] == "completed" and rec["summary"], rec
    assert "AI assistant" in rec["transcript"][0]["text"]
    assert "in_progress" in res.stderr and "completed" in res.stderr  # progress on the way
    assert phone_call(rec)["utterances"]  # the phone really held the conversation

    # A refused number: the same words as the MCP tool's error, and nothing dialed.
    refused = callagent_cli(env, "call", "911")
    assert refused.returncode == 3
    by_mcp = client(env, "call", "911", "--json")
    assert by_mcp.returncode != 0
    words = refused.stderr.strip().removeprefix("callagent: ")
    assert words.startswith("Refused by the dial policy, rule 'emergency_number'") and words in by_mcp.stderr


def test_every_call_of_the_run_ended_with_a_code(env: dict[str, str], worker: Worker) -> None:
    """Whatever ended them, every record this module's calls left has an end_reason from the
    enum (runs after the calls above, on their store)."""
    from callagent.calls import TERMINAL_STATUSES, EndReason
    from callagent.store import Database

    with Database(env["CALLAGENT_DB_URL"]) as store:
        records = store.calls.page(limit=100)[0]
    ended = [r for r in records if r.status in TERMINAL_STATUSES]
    assert len(ended) >= 8, [r.status for r in records]
    assert all(isinstance(r.end_reason, EndReason) for r in ended), [(r.status, r.end_reason) for r in ended]
    codes = {r.call_id: r.end_reason for r in ended}
    assert EndReason.agent_ended in codes.values() and EndReason.busy in codes.values()


# -- digits at dial time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "args", "extra_env"),
    [
        ("+14155550101", ("--dtmf", "ww123"), {}),
        ("+1 415 555 0101 x123", (), {"DIAL_ALLOW_EXTENSIONS": "true"}),
    ],
    ids=["dtmf", "extension"],
)
def test_digits_are_keyed_in_after_the_answer(
    env: dict[str, str], worker: Worker, number: str, args: tuple[str, ...], extra_env: dict[str, str]
) -> None:
    rec = place({**env, **extra_env}, number, *args)
    assert rec["status"] == "completed" and rec["phone_number"] == "+14155550101", rec
    call = phone_call(rec)
    digits = call["dtmf"]
    assert [d["digit"] for d in digits] == ["1", "2", "3"], call["dtmf"]
    assert all(d["at"] > call["answered_at"] for d in digits)  # never before the answer
