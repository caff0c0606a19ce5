"""Handing the callee to a person, on the bed: +1 415 555 0114 asks for the front desk partway
through, +1 415 555 0112 is the desk ("Front desk, this is Alex"), 0104 declines and 0105 never
answers. Calls go test_mcp_client.py → server.py → LiveKit → livekit-sip → the simulated phone,
with the real calling worker; the phone records every leg, so what each side heard is checked
on audio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from devstack import phonelog
from devstack.scenarios import scenario_for
from helpers import Worker, bed_env, phone_call, place

CALLEE, DESK, DECLINES, NEVER_ANSWERS = "+14155550114", "+14155550112", "+14155550104", "+14155550105"
GOAL = "Confirm the appointment tomorrow at 10 am"
ASKS = scenario_for(CALLEE)
FRONT_DESK = scenario_for(DESK)
assert ASKS is not None and FRONT_DESK is not None


@pytest.fixture(scope="module")
def env(bed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bed with the desk and the two failing numbers as the operator's transfer targets."""
    return bed_env(
        tmp_path_factory.mktemp("transfer"),
        CALLAGENT_WORKER_PORT="0",
        CALLAGENT_SILENCE_TIMEOUT_S="20",
        CALLAGENT_TRANSFER_NUMBERS=f"{DESK},{DECLINES},{NEVER_ANSWERS}",
        CALLAGENT_TRANSFER_RING_TIMEOUT_S="6",
    )


def leg(record: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    """The phone's log of a transfer attempt's leg, once it ended."""
    key = f"{record['call_id']}-transfer-{attempt}"
    return phonelog.wait_for(key, lambda c: bool(c.get("ended")), timeout=20)


def utterance(call: dict[str, Any], text: str) -> dict[str, Any]:
    found = [u for u in call["utterances"] if u["text"] == text]
    assert found, (text, [u["text"] for u in call["utterances"]])
    return found[0]


def speech_between(call: dict[str, Any], start: float, end: float) -> float:
    """Seconds of speech the phone heard on `call` between two epoch times."""
    samples, rate = phonelog.recording(call)
    lo = max(0, int((start - call["recording_at"]) * rate))
    hi = max(lo, int((end - call["recording_at"]) * rate))
    return phonelog.speech_seconds(np.asarray(samples[lo:hi]), rate)


def test_warm_transfer_briefs_the_desk_then_connects_the_two(env: dict[str, str], worker: Worker) -> None:
    assert ASKS is not None and FRONT_DESK is not None
    rec = place(env, CALLEE, "--goal", GOAL, "--transfer-to", DESK)
    assert rec["status"] == "transferred" and rec["end_reason"] == "transferred", rec
    (attempt,) = rec["transfers"]
    assert attempt["to"] == DESK and attempt["mode"] == "warm" and attempt["outcome"] == "connected", attempt
    assert attempt["answered_at"] and attempt["ended_at"]
    # The transcript stops at the handover: the request for a person is the callee's last line.
    said = [line["text"] for line in rec["transcript"] if line["role"] == "callee"]
    assert said and "front desk" in said[-1].lower(), said
    assert ASKS.lines[2].text not in said
    assert "handed to" in rec["ended_reason"] and "4155550112" not in rec["ended_reason"].replace(" ", "")

    callee, desk = phone_call(rec), leg(rec)
    assert desk["number"] == DESK and desk["answered_at"]
    hello, agreed, parking_answer = (utterance(desk, line.text) for line in FRONT_DESK.lines[:3])
    # The briefing: the desk heard the agent between its "Front desk" and its "put them through".
    assert speech_between(desk, hello["end"], agreed["start"]) >= 2.0
    # After the handover each side hears the other: the desk hears the callee's question about
    # parking, the callee hears the desk's answer.
    question = utterance(callee, ASKS.lines[2].text)
    assert question["start"] > agreed["end"]
    assert speech_between(desk, question["start"], question["end"]) >= 1.0
    assert speech_between(callee, parking_answer["start"], parking_answer["end"]) >= 1.0
    # While the callee held, the agent played hold music to it (sound, not silence).
    asked = utterance(callee, ASKS.lines[1].text)
    assert speech_between(callee, asked["end"] + 4.0, agreed["start"]) >= 2.0
    # The worker's terminal block says who the call was handed to, masked.
    assert "Handed to +*******0112 (warm)" in worker.output()
    assert "4155550112" not in worker.output().replace(" ", "")


@pytest.mark.parametrize(
    ("target", "outcome"), [(DECLINES, "declined"), (NEVER_ANSWERS, "no_answer")], ids=["declines", "no-answer"]
)
def test_a_desk_that_does_not_take_the_call_sends_the_agent_back(
    env: dict[str, str], worker: Worker, target: str, outcome: str
) -> None:
    assert ASKS is not None
    rec = place(env, CALLEE, "--goal", GOAL, "--transfer-to", target)
    # The call goes on with the agent and ends normally.
    assert rec["status"] == "completed", rec
    (attempt,) = rec["transfers"]
    assert attempt["to"] == target and attempt["outcome"] == outcome, attempt
    agent_lines = [line["text"] for line in rec["transcript"] if line["role"] == "agent"]
    sorry = next(line.reply for line in ASKS.lines if line.reply and line.reply.after_tool_error)
    assert sorry is not None and sorry.after_tool_error in agent_lines, agent_lines
    callee_said = [line["text"] for line in rec["transcript"] if line["role"] == "callee"]
    assert ASKS.lines[2].text in callee_said


def test_cold_transfer_hands_the_call_over_by_sip_refer(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, CALLEE, "--goal", GOAL, "--transfer-to", DESK, "--transfer-mode", "cold")
    assert rec["status"] == "transferred" and rec["end_reason"] == "transferred", rec
    (attempt,) = rec["transfers"]
    assert attempt["mode"] == "cold" and attempt["outcome"] == "accepted", attempt
    callee = phone_call(rec)
    assert callee["transfer"]["to"] == DESK and callee["transfer"]["status"] == 200, callee.get("transfer")
