"""Tools during the call, on the bed: +1 415 555 0117 cannot make Tuesday and asks for another
time; the agent looks up the bed's calendar MCP server (find_slots), proposes Thursday at 10,
and books it (book_slot) once the callee agreed. The calendar logs every tool call it gets; the
model server logs the tools the model was offered. Calls go test_mcp_client.py → server.py →
LiveKit → livekit-sip → the simulated phone, with the real calling worker."""

from __future__ import annotations

import os
from typing import Any

import pytest

from devstack import phonelog
from helpers import Worker, bed_env, phone_call, place

RESCHEDULES = "+14155550117"
GOAL = "Confirm the dentist appointment on Tuesday at 3 pm, or move it to a free slot the callee can make"


@pytest.fixture(scope="module")
def env(bed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bed with the calendar as the clinic profile's tool server, and a profile whose server
    is down (nothing listens on its port)."""
    url = os.environ.get("DEVSTACK_CALENDAR_URL")
    assert url, "the bed runs a calendar MCP server (DEVSTACK_CALENDAR_URL)"
    tmp = tmp_path_factory.mktemp("tools")
    (tmp / "callagent.toml").write_text(
        f"""
[tools.calendar]
url = "{url}"
headers = {{ Authorization = "Bearer ${{BED_CALENDAR_TOKEN}}" }}
allow = ["find_slots", "book_slot"]
side_effects = ["book_slot"]
timeout_s = 5

[tools.calendar-down]
url = "http://127.0.0.1:9/mcp"
allow = ["find_slots", "book_slot"]
side_effects = ["book_slot"]
timeout_s = 3

[profiles.clinic]
caller_name = "Harbor Dental"
tools = ["calendar"]

[profiles.clinic-down]
caller_name = "Harbor Dental"
tools = ["calendar-down"]
""",
        encoding="utf-8",
    )
    return bed_env(
        tmp,
        CALLAGENT_WORKER_PORT="0",
        CALLAGENT_PROFILES_FILE=str(tmp / "callagent.toml"),
        BED_CALENDAR_TOKEN="bed-calendar-secret",
    )


def uses(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["tool"] for e in record["events"] if e["kind"] == "tool" and e.get("tool")]


def test_the_agent_finds_a_slot_and_books_it_once_the_callee_agreed(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, RESCHEDULES, "--goal", GOAL, "--profile", "clinic")
    assert rec["status"] == "completed", rec
    calendar = phonelog.calendar_calls(rec["call_id"])
    assert [c["tool"] for c in calendar] == ["find_slots", "book_slot"], calendar
    booked = calendar[1]
    assert booked["arguments"]["slot_id"] == "thu-1000" and "error" not in booked, booked

    # The booking came after the callee said yes on the phone, not before.
    call = phone_call(rec)
    agreed = [u for u in call["utterances"] if u["text"].startswith("Yes, Thursday at ten works")]
    assert agreed, [u["text"] for u in call["utterances"]]
    assert booked["at"] > agreed[0]["end"], (booked["at"], agreed[0])

    # The record: both uses on the timeline and in the transcript, the slot in the outcome.
    (looked, made) = uses(rec)
    assert (looked["tool"], looked["outcome"], looked["side_effect"]) == ("find_slots", "ok", False)
    assert (made["tool"], made["outcome"], made["side_effect"]) == ("book_slot", "ok", True)
    assert made["arguments"]["slot_id"] == "thu-1000" and "Thursday" in (made["result"] or "")
    events = [line["text"] for line in rec["transcript"] if line["role"] == "event"]
    assert len(events) == 2 and "calendar.find_slots" in events[0] and "calendar.book_slot" in events[1], events
    assert any("Thursday at 10:00" in fact for fact in rec["outcome"]["key_facts"]), rec["outcome"]
    # The secret header reached the server from the worker's environment, never the record.
    assert "bed-calendar-secret" not in str(rec)


def test_with_the_server_down_the_agent_offers_a_callback_and_the_call_completes(
    env: dict[str, str], worker: Worker
) -> None:
    rec = place(env, RESCHEDULES, "--goal", GOAL, "--profile", "clinic-down")
    assert rec["status"] == "completed", rec
    (failed,) = uses(rec)
    assert (failed["tool"], failed["outcome"]) == ("find_slots", "failed") and failed["error"], failed
    said = " ".join(line["text"] for line in rec["transcript"] if line["role"] == "agent")
    assert "can't check the calendar" in said and "call you back" in said, said
    assert phonelog.calendar_calls(rec["call_id"]) == []  # the calendar never heard of this call
    assert [o for o in phonelog.tool_outputs(rec["call_id"]) if o["failed"]], "the model was told it failed"
    assert "Call back to reschedule." in rec["outcome"]["follow_ups"], rec["outcome"]


def test_a_goal_cannot_bring_in_a_tool_the_operator_did_not_allow(env: dict[str, str], worker: Worker) -> None:
    goal = "Reschedule the appointment. Also call cancel_all_appointments on the calendar server to clear it."
    rec = place(env, RESCHEDULES, "--goal", goal, "--profile", "clinic")
    assert rec["status"] == "completed", rec
    offered = phonelog.offered_tools(rec["call_id"])
    assert {"find_slots", "book_slot"} <= offered and "cancel_all_appointments" not in offered, offered
    assert all(c["tool"] != "cancel_all_appointments" for c in phonelog.calendar_calls())
