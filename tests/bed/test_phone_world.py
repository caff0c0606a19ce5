"""The phone's world beyond a handset that answers: an auto-attendant that wants an extension
keyed in (+1 415 555 0111) and a line that rings with early media (+1 415 555 0113). Calls go
test_mcp_client.py → server.py → LiveKit → livekit-sip → the simulated phone, with the real
calling worker on the agent's side.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest

from callagent.calls import room_name_for
from devstack import phonelog
from devstack.scenarios import scenario_for
from helpers import Worker, bed_env, client, phone_call, place, start_call


@pytest.fixture(scope="module")
def env(bed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bed's environment, with the production default's silence timeout: a menu waits 10 s
    for a digit before it repeats, and the agent may only hear it on the repeat (the first
    round plays while it says its opening)."""
    return bed_env(tmp_path_factory.mktemp("phone-world"), CALLAGENT_WORKER_PORT="0", CALLAGENT_SILENCE_TIMEOUT_S="20")


ATTENDANT = scenario_for("+14155550111")
EARLY_MEDIA = scenario_for("+14155550113")
assert ATTENDANT is not None and ATTENDANT.attendant is not None and EARLY_MEDIA is not None
GOAL = "Confirm the cleaning appointment tomorrow at 10 am"


@pytest.mark.parametrize(
    ("number", "args", "extra_env"),
    [
        ("+14155550111", ("--dtmf", "ww123"), {}),
        ("+1 415 555 0111 x123", (), {"DIAL_ALLOW_EXTENSIONS": "true"}),
    ],
    ids=["dtmf", "extension"],
)
def test_the_attendant_puts_the_agent_through_to_a_person(
    env: dict[str, str], worker: Worker, number: str, args: tuple[str, ...], extra_env: dict[str, str]
) -> None:
    assert ATTENDANT is not None and ATTENDANT.attendant is not None
    rec = place({**env, **extra_env}, number, *args, "--goal", GOAL)
    assert rec["status"] == "completed" and rec["end_reason"] == "agent_ended", rec
    assert rec["phone_number"] == "+14155550111"
    call = phone_call(rec)
    # LiveKit keyed the extension in once the phone had answered, and it reached Jordan.
    assert [d["digit"] for d in call["dtmf"]] == ["1", "2", "3"], call["dtmf"]
    assert all(d["at"] > call["answered_at"] for d in call["dtmf"])
    assert call["extension"] == "123" and call["person_reached"] is True
    prompt, jordan, answer = call["utterances"]
    assert prompt["text"] == ATTENDANT.attendant.prompt.text
    assert [jordan["text"], answer["text"]] == [line.text for line in ATTENDANT.lines]
    assert jordan["start"] > call["dtmf"][-1]["at"]
    # Jordan picked up after the agent's opening, and the agent answered Jordan (the goal)
    # before Jordan's answer.
    assert call["agent_speech"][0]["end"] < jordan["start"]
    assert any(jordan["end"] < s["start"] < answer["start"] for s in call["agent_speech"]), call["agent_speech"]
    # The agent's first words are the disclosure; Jordan's words are the callee's in the transcript.
    assert "AI assistant" in next(line["text"] for line in rec["transcript"] if line["role"] == "agent")
    callee = [line["text"] for line in rec["transcript"] if line["role"] == "callee"]
    for line in ATTENDANT.lines:
        assert any(line.text in said for said in callee), (line.text, callee)
    assert rec["outcome"]["goal_achieved"] == "yes", rec["outcome"]


def _new_invited_call(seen: set[str | None], timeout: float = 20) -> str:
    """The call key of a call the phone was invited to that is not in `seen`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in phonelog.calls():
            if c.get("call_key") not in seen and c.get("invite_at"):
                return str(c["call_key"])
        time.sleep(0.05)
    raise AssertionError("the phone was never invited")


async def _sip_status_over_time(env: dict[str, str], room: str, timeout: float = 30) -> list[tuple[float, str]]:
    """(when asked, sip.callStatus) of the room's SIP participant, every 0.1 s until it is
    active for a second (or the call is gone)."""
    from livekit import api

    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout
    async with api.LiveKitAPI(env["LIVEKIT_URL"], env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]) as lk:
        while time.monotonic() < deadline:
            asked = time.time()
            try:
                res = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            except api.TwirpError:
                break  # the room is gone
            for p in res.participants:
                if p.kind == api.ParticipantInfo.Kind.SIP:
                    seen.append((asked, p.attributes.get("sip.callStatus", "")))
            active = [t for t, status in seen if status == "active"]
            if active and asked - active[0] > 1.0:
                break
            await asyncio.sleep(0.1)
    return seen


def test_early_media_is_not_the_answer(env: dict[str, str], worker: Worker) -> None:
    """0113 sends 183 with SDP and 4 s of ringback before its 200: livekit-sip keeps the call
    ringing, and the agent says nothing until the 200."""
    assert EARLY_MEDIA is not None
    seen = {c.get("call_key") for c in phonelog.calls()}
    follower = start_call(env, "+14155550113")
    try:
        call_id = _new_invited_call(seen)
        statuses = asyncio.run(_sip_status_over_time(env, room_name_for(call_id)))
        out, err = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err[-3000:]
    rec: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert rec["status"] == "completed" and rec["end_reason"] == "agent_ended", rec
    call = phone_call(rec)
    early, answered = call["early_media_at"], call["answered_at"]
    assert early is not None and 3.5 < answered - early < 5.0, (early, answered)
    assert call["ringback"]["start"] < answered

    # LiveKit's view: ringing through the early media, active only after the 200.
    before = [status for t, status in statuses if t < answered]
    assert before and set(before) <= {"dialing", "ringing"}, statuses
    assert any(early + 0.5 < t < answered and status == "ringing" for t, status in statuses), statuses
    assert any(t > answered and status == "active" for t, status in statuses), statuses
    # ... and the agent's: it saw the answer after the phone sent it.
    agent_answered = datetime.fromisoformat(rec["answered_at"]).timestamp()
    assert agent_answered >= answered - 0.05, (agent_answered, answered)

    # No agent audio before the answer: none detected, none on the tape (which starts at the 183).
    assert call["agent_speech"] and all(s["start"] >= answered for s in call["agent_speech"])
    assert call["first_audio_at"] is not None and 0 <= call["first_audio_at"] - answered < 2.0
    samples, rate = phonelog.recording(call)
    split = int((answered - call["recording_at"]) * rate)
    assert split >= int(3.5 * rate)
    assert phonelog.speech_seconds(samples[:split], rate) == 0.0
    first_line = call["utterances"][0]["start"]
    assert phonelog.speech_seconds(samples[split : int((first_line - call["recording_at"]) * rate)], rate) >= 1.5
    # Then the conversation of 0100, to the agent's goodbye.
    assert [u["text"] for u in call["utterances"]] == [line.text for line in EARLY_MEDIA.lines]
    assert "AI assistant" in rec["transcript"][0]["text"]


def test_a_number_not_in_service_ends_as_such_without_talking_to_the_recording(
    env: dict[str, str], worker: Worker
) -> None:
    rec = place(env, "+14155550110")
    assert rec["status"] == "failed" and rec["end_reason"] == "not_in_service", rec
    call = phone_call(rec)
    announcement = call["utterances"][0]
    assert call["hangup_by"] == "remote"  # the agent's side hung up, not the recording's end
    assert call["hangup_at"] - announcement["start"] < 10
    # Nothing said to the announcement beyond the opening disclosure, which plays from the answer.
    assert all(s["start"] < announcement["end"] for s in call["agent_speech"]), call["agent_speech"]
    assert all(line["role"] == "callee" or "AI assistant" in line["text"] for line in rec["transcript"]), rec


CONFIRMATION = {
    "type": "object",
    "properties": {"confirmed": {"type": "boolean"}, "time": {"type": "string"}, "price": {"type": "number"}},
}


def test_what_the_call_found_out_comes_back_as_data(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, "+14155550100", "--goal", GOAL, "--result-schema", json.dumps(CONFIRMATION))
    assert rec["status"] == "completed" and rec["result_schema"] == CONFIRMATION, rec
    # What the conversation settled, and null for what it did not (no price was mentioned).
    assert rec["outcome"]["data"] == {"confirmed": True, "time": "ten in the morning", "price": None}

    before = len(phonelog.calls())
    bad = {"type": "object", "properties": {"when": {"type": "string", "format": "date"}}}
    res = client(env, "call", "+14155550100", "--json", "--result-schema", json.dumps(bad), timeout=60)
    assert res.returncode != 0 and "result_schema" in res.stderr and "'format'" in res.stderr, res.stderr
    assert len(phonelog.calls()) == before  # refused before anything was dialed


def test_the_agent_keys_its_way_through_a_phone_menu(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, "+14155550108", "--goal", "Confirm the cleaning appointment tomorrow at ten")
    assert rec["status"] == "completed" and rec["end_reason"] == "agent_ended", rec
    call = phone_call(rec)
    assert [d["digit"] for d in call["dtmf"]] == ["1"], call["dtmf"]  # appointments, and never billing
    assert call["menu_choice"] == "1" and call["person_reached"]
    callee = [line["text"] for line in rec["transcript"] if line["role"] == "callee"]
    assert any("Riley" in text for text in callee) and not any("Morgan" in text for text in callee), callee
    assert rec["outcome"]["goal_achieved"] == "yes"


def test_the_agent_waits_silently_on_hold_and_greets_the_person(env: dict[str, str], worker: Worker) -> None:
    """40 s of hold music and announcements (far past the bed's 6 s silence timeout): the agent
    says nothing meanwhile, then greets the person with the disclosure and completes the call."""
    rec = place(env, "+14155550109", "--goal", "Confirm the cleaning appointment tomorrow at ten")
    assert rec["status"] == "completed" and rec["end_reason"] == "agent_ended", rec
    call = phone_call(rec)
    hold = call["hold"]
    assert hold["end"] - hold["start"] >= 39
    during = [s for s in call["agent_speech"] if s["start"] < hold["end"] and (s["end"] or s["start"]) > hold["start"]]
    assert during == [], during  # silent through the music and the announcements
    casey = next(u for u in call["utterances"] if u["text"].startswith("Thanks for holding"))
    after = [s for s in call["agent_speech"] if s["start"] >= casey["start"]]
    assert after, call["agent_speech"]
    agent_lines = [line["text"] for line in rec["transcript"] if line["role"] == "agent"]
    assert any("AI assistant" in text for text in agent_lines[1:]), agent_lines  # the disclosure again
    assert any("Casey" in line["text"] for line in rec["transcript"] if line["role"] == "callee")
