"""The call's voice pipeline (callagent.agent.session): turn-taking by CALLAGENT_TURN_DETECTION,
and the job process's warm-up. Built offline: nothing here connects anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import inference

from callagent.agent import session as agent_session
from callagent.calls import CallRequest
from callagent.settings import Settings

REQUEST = CallRequest(
    call_id="abc123def456",
    phone_number="+14155550100",
    goal="Confirm the appointment",
    caller_name="Dr. Smith's office",
    max_duration_s=300,
    ring_timeout_s=30,
)


def settings(**env: str) -> Settings:
    return Settings(OPENAI_BASE_URL="http://127.0.0.1:9/v1", **env)  # type: ignore[call-arg]


@pytest.mark.anyio
async def test_the_end_of_turn_model_decides_by_default() -> None:
    session = agent_session.build_session(settings(), REQUEST, inference.VAD())
    detector = session.turn_detection
    # LiveKit's in-process model (its weights ship in livekit-local-inference), never its cloud.
    assert isinstance(detector, inference.TurnDetector) and detector.model == "turn-detector-v1-mini"
    assert detector.provider != "livekit-cloud"
    endpointing: Any = session.options.endpointing
    turn = agent_session.MODEL_TURN
    assert (endpointing["min_delay"], endpointing["max_delay"]) == (turn["min_delay_s"], turn["max_delay_s"])
    # An unlikely end waits out a pause longer than any the bed's callee makes (0.6 s), with room
    # for the VAD's own lag.
    assert turn["max_delay_s"] >= 0.75 and turn["vad_silence_s"] < turn["min_delay_s"] < turn["max_delay_s"]
    # ...and is never much slower than silence alone would be.
    assert round(turn["max_delay_s"] - agent_session.VAD_TURN["min_delay_s"], 3) <= 0.1


@pytest.mark.anyio
async def test_vad_only_turns_wait_out_pauses_mid_sentence() -> None:
    session = agent_session.build_session(settings(CALLAGENT_TURN_DETECTION="vad"), REQUEST, inference.VAD())
    assert session.turn_detection == "vad"
    endpointing: Any = session.options.endpointing
    # Silence alone must outlast a 0.6 s pause at a comma before the agent may answer.
    assert endpointing["min_delay"] == agent_session.VAD_TURN["min_delay_s"] >= 0.65


def test_the_vad_ends_speech_as_the_turn_detection_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    class Proc:
        def __init__(self) -> None:
            self.userdata: dict[str, Any] = {}

    for mode, turn in (("model", agent_session.MODEL_TURN), ("vad", agent_session.VAD_TURN)):
        monkeypatch.setenv("CALLAGENT_TURN_DETECTION", mode)
        agent_session.get_settings.cache_clear()
        proc = Proc()
        agent_session.prewarm(proc)  # type: ignore[arg-type]
        vad = proc.userdata["vad"]
        # LiveKit's in-process VAD (shared model, off the event loop).
        assert isinstance(vad, inference.VAD) and vad._opts.min_silence_duration == turn["vad_silence_s"]
    agent_session.get_settings.cache_clear()
