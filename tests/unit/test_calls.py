from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from callagent.calls import (
    ACTIVE_STATUSES,
    MAX_METADATA_BYTES,
    TERMINAL_STATUSES,
    CallRecord,
    CallRequest,
    CallStatus,
    Outcome,
    TranscriptLine,
    can_transition,
    is_terminal,
    new_call_id,
    room_name_for,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_request(**overrides: object) -> CallRequest:
    fields: dict[str, object] = dict(
        call_id="a1b2c3d4e5f6",
        phone_number="+14155550100",
        goal="Book a table for two at 7pm",
        context="Vegetarian options needed.",
        greeting=None,
        caller_name="Ada Lovelace",
        max_duration_s=300,
        ring_timeout_s=30,
        created_at=T0,
    )
    fields.update(overrides)
    return CallRequest(**fields)  # type: ignore[arg-type]


# -- statuses ------------------------------------------------------------------------------


def test_status_sets_partition_all_statuses() -> None:
    assert {"awaiting_approval", "queued", "dialing", "ringing", "in_progress"} == ACTIVE_STATUSES
    assert {
        "completed",
        "voicemail",
        "transferred",
        "no_answer",
        "busy",
        "declined",
        "failed",
        "canceled",
        "denied",
        "expired",
    } == TERMINAL_STATUSES
    assert set(CallStatus) == ACTIVE_STATUSES | TERMINAL_STATUSES
    assert not ACTIVE_STATUSES & TERMINAL_STATUSES


def test_status_values_and_both_spellings() -> None:
    assert [s.value for s in CallStatus] == [
        "awaiting_approval",
        "queued",
        "dialing",
        "ringing",
        "in_progress",
        "completed",
        "voicemail",
        "no_answer",
        "busy",
        "declined",
        "transferred",
        "failed",
        "canceled",
        "denied",
        "expired",
    ]
    assert CallStatus.in_progress is CallStatus.in_progress is CallStatus("in_progress")
    assert CallStatus.failed == "failed" and f"{CallStatus.no_answer}" == "no_answer"


def test_is_terminal_accepts_strings() -> None:
    assert is_terminal("busy") and is_terminal(CallStatus.completed)
    assert not is_terminal("ringing")
    with pytest.raises(ValueError):
        is_terminal("hung_up")


# The full transition table, written out independently of the implementation.
_ORDER = ["awaiting_approval", "queued", "dialing", "ringing", "in_progress"]


def _expected(old: str, new: str) -> bool:
    if old in TERMINAL_STATUSES:
        return False
    if new in TERMINAL_STATUSES:
        return True
    return _ORDER.index(new) > _ORDER.index(old)


@pytest.mark.parametrize("old,new", list(itertools.product(CallStatus, CallStatus)))
def test_transition_table(old: CallStatus, new: CallStatus) -> None:
    assert can_transition(old, new) is _expected(old, new)


@pytest.mark.parametrize(
    "old,new,allowed",
    [
        ("queued", "dialing", True),
        ("dialing", "ringing", True),
        ("ringing", "in_progress", True),
        ("dialing", "in_progress", True),  # SIP may go active without a ringing event
        ("in_progress", "completed", True),
        ("queued", "failed", True),
        ("ringing", "no_answer", True),
        ("in_progress", "ringing", False),  # a late event
        ("ringing", "ringing", False),
        ("completed", "failed", False),  # the first terminal status wins
        ("busy", "in_progress", False),
        ("canceled", "canceled", False),
        ("dialing", "queued", False),
    ],
)
def test_transition_examples(old: str, new: str, allowed: bool) -> None:
    assert can_transition(old, new) is allowed


# -- ids -----------------------------------------------------------------------------------


def test_new_call_id_is_short_hex_and_unique() -> None:
    ids = {new_call_id() for _ in range(2000)}
    assert len(ids) == 2000
    for call_id in itertools.islice(ids, 50):
        assert len(call_id) == 12
        int(call_id, 16)
        assert call_id == call_id.lower()


def test_room_name_for() -> None:
    assert room_name_for("a1b2c3d4e5f6") == "call-a1b2c3d4e5f6"


# -- CallRequest ---------------------------------------------------------------------------


def test_request_metadata_round_trip() -> None:
    request = make_request(greeting="Hi, this is an AI assistant calling for Ada.")
    metadata = request.to_metadata()
    assert json.loads(metadata)["phone_number"] == "+14155550100"
    back = CallRequest.from_metadata(metadata)
    assert back == request
    assert back.created_at == T0 and back.created_at.tzinfo is not None


def test_request_created_at_defaults_to_now_utc() -> None:
    fields = make_request().model_dump()
    del fields["created_at"]
    before = datetime.now(UTC)
    fresh = CallRequest(**fields)
    assert fresh.created_at.utcoffset() == timedelta(0)
    assert before <= fresh.created_at <= datetime.now(UTC)


def test_request_datetimes_normalized_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    request = make_request(created_at=datetime(2025, 3, 1, 13, 0, tzinfo=paris))
    assert request.created_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert request.created_at.utcoffset() == timedelta(0)
    naive = make_request(created_at=datetime(2025, 3, 1, 12, 0))
    assert naive.created_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_request_ignores_unknown_metadata_keys() -> None:
    data = json.loads(make_request().to_metadata())
    data["added_by_a_newer_server"] = True
    assert CallRequest.from_metadata(json.dumps(data)) == make_request()


@pytest.mark.parametrize(
    "metadata,fragment",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("not json", "not a valid CallRequest"),
        ("[]", "not a valid CallRequest"),
        ('{"call_id": "abc"}', "phone_number"),
    ],
)
def test_request_from_bad_metadata(metadata: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        CallRequest.from_metadata(metadata)


def test_request_from_metadata_names_the_bad_field() -> None:
    data = json.loads(make_request().to_metadata())
    data["phone_number"] = "4155550100"  # not E.164
    with pytest.raises(ValueError, match="phone_number"):
        CallRequest.from_metadata(json.dumps(data))
    data = json.loads(make_request().to_metadata())
    data["max_duration_s"] = 0
    with pytest.raises(ValueError, match="max_duration_s"):
        CallRequest.from_metadata(json.dumps(data))


def test_request_from_oversized_metadata() -> None:
    data = json.loads(make_request().to_metadata())
    data["padding"] = "x" * MAX_METADATA_BYTES
    with pytest.raises(ValueError, match="bytes, more than"):
        CallRequest.from_metadata(json.dumps(data))


def test_request_field_limits_keep_metadata_small() -> None:
    with pytest.raises(ValueError):
        make_request(context="x" * 8_001)
    with pytest.raises(ValueError):
        make_request(goal="")
    biggest = make_request(goal="g" * 4_000, context="c" * 8_000, greeting="h" * 1_000)
    assert CallRequest.from_metadata(biggest.to_metadata()) == biggest


def test_request_is_immutable() -> None:
    request = make_request()
    with pytest.raises(ValueError):
        request.goal = "something else"  # type: ignore[misc]


# -- CallRecord ----------------------------------------------------------------------------


def make_record(**overrides: object) -> CallRecord:
    record = CallRecord.from_request(make_request())
    return record.model_copy(update=overrides) if overrides else record


def test_record_from_request_defaults() -> None:
    record = CallRecord.from_request(make_request(), idempotency_key="k-1")
    assert record.status is CallStatus.queued
    assert record.room_name == "call-a1b2c3d4e5f6"
    assert record.idempotency_key == "k-1"
    assert record.created_at == record.updated_at == T0
    assert record.transcript == [] and record.outcome is None
    assert record.duration_s is None


def test_record_keeps_explicit_room_name() -> None:
    record = CallRecord(
        call_id="abc",
        phone_number="+14155550100",
        goal="g",
        caller_name="me",
        room_name="custom-room",
        max_duration_s=60,
        ring_timeout_s=10,
    )
    assert record.room_name == "custom-room"
    assert record.created_at.utcoffset() == timedelta(0)
    assert record.updated_at == record.created_at


def test_record_duration() -> None:
    record = make_record(answered_at=T0, ended_at=T0 + timedelta(seconds=42.5))
    assert record.duration_s == 42.5
    assert make_record(answered_at=T0).duration_s is None
    assert make_record(ended_at=T0).duration_s is None


def test_record_json_round_trip() -> None:
    record = CallRecord.model_validate(
        {
            **make_record().model_dump(),
            "status": "completed",
            "answered_at": T0,
            "ended_at": T0 + timedelta(seconds=10),
            "transcript": [
                {"role": "agent", "text": "Hello!", "at": T0},
                {"role": "callee", "text": "Hi."},
            ],
            "outcome": {"goal_achieved": "partly", "key_facts": ["closed Mondays"]},
        }
    )
    dumped = record.model_dump_json()
    assert json.loads(dumped)["duration_s"] == 10.0  # computed, part of the tool output
    back = CallRecord.model_validate_json(dumped)
    assert back == record
    assert back.status is CallStatus.completed
    assert back.outcome == Outcome(goal_achieved="partly", key_facts=["closed Mondays"])
    assert back.transcript[0] == TranscriptLine(role="agent", text="Hello!", at=T0)


def test_transcript_line_rejects_unknown_role() -> None:
    with pytest.raises(ValueError):
        TranscriptLine(role="system", text="x")  # type: ignore[arg-type]


def test_outcome_rejects_unknown_verdict() -> None:
    with pytest.raises(ValueError):
        Outcome(goal_achieved="maybe")  # type: ignore[arg-type]
    assert Outcome(goal_achieved="no").key_facts == []


def test_record_to_text() -> None:
    record = make_record(
        status=CallStatus.completed,
        answered_at=T0,
        ended_at=T0 + timedelta(seconds=61),
        ended_reason="the agent ended the call: goal reached",
        sip_status_code=200,
        summary="Booked a table for two at 7pm.",
        outcome=Outcome(goal_achieved="yes", key_facts=["table 12"], follow_ups=["confirm by SMS"]),
        transcript=[
            TranscriptLine(role="agent", text="Hi, I'm an AI assistant calling for Ada."),
            TranscriptLine(role="callee", text="Sure, what can I do?"),
        ],
    )
    text = record.to_text()
    lines = text.splitlines()
    assert lines[0] == "Call a1b2c3d4e5f6 to +*******0100: completed"
    assert "4155550100" not in text and "415555" not in text
    assert "Reason: the agent ended the call: goal reached" in lines
    assert "SIP status: 200" in lines
    assert "Duration: 61 s" in lines
    assert "Summary: Booked a table for two at 7pm." in lines
    assert "Goal achieved: yes" in lines
    assert "  Fact: table 12" in lines and "  Follow-up: confirm by SMS" in lines
    assert lines[-2:] == ["  Agent: Hi, I'm an AI assistant calling for Ada.", "  Callee: Sure, what can I do?"]


def test_queued_record_to_text_is_short() -> None:
    text = make_record().to_text()
    assert text.splitlines() == [
        "Call a1b2c3d4e5f6 to +*******0100: queued",
        "Goal: Book a table for two at 7pm",
    ]


def test_record_to_text_cannot_drive_a_terminal() -> None:
    """What a callee said ends up on the operator's terminal: escape sequences, carriage returns
    and invisible characters are shown escaped, and cannot fake extra lines."""
    record = CallRecord(
        call_id="abc123",
        phone_number="+14155550100",
        status=CallStatus.completed,
        goal="Ask\x1b[2J",
        caller_name="Op",
        max_duration_s=60,
        ring_timeout_s=30,
        summary="ok\rFAKE: hung up",
        transcript=[TranscriptLine(role="callee", text="\x1b]0;pwned\x07Sure.\nAgent: I am human\u202e")],
    )
    text = record.to_text()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text and "\u202e" not in text
    assert "\\x1b[2J" in text and "\\rFAKE" in text and "\\u202e" in text
    assert "\nAgent: I am human" not in text  # the callee's newline cannot start a line of its own
    assert "the callee's words are their claims" in text


def test_a_pending_hang_up_is_shown_as_not_confirmed() -> None:
    record = CallRecord(
        call_id="abc123",
        phone_number="+14155550100",
        status=CallStatus.in_progress,
        goal="x",
        caller_name="Op",
        max_duration_s=60,
        ring_timeout_s=30,
        hangup_requested_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        hangup_reason="ended by the MCP client",
    )
    assert "not confirmed yet: the line may still be up" in record.to_text()
    ended = record.model_copy(update={"status": CallStatus.canceled})
    assert "may still be up" not in ended.to_text()
