"""What a client asks a call to learn: the schema checked before dialing, the strict form the
summarizer answers in, and an answer in another shape never passed off as the data."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client import Client

from callagent import result_schema
from callagent.agent.summary import SUMMARY_SCHEMA, checked_data, summary_schema
from callagent.calls import CallRequest, Outcome
from callagent.store import Database
from callagent.tools import create_server
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, text

pytestmark = pytest.mark.anyio

CONFIRMATION = {
    "type": "object",
    "properties": {"confirmed": {"type": "boolean"}, "time": {"type": "string", "description": "as said"}},
    "required": ["confirmed"],
}


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ("a string", "JSON Schema object"),
        ({"type": "array", "items": {"type": "string"}}, '{"type": "object"}'),
        ({"type": "object", "properties": {}}, "at least one property"),
        ({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}}}, "'pattern'"),
        ({"type": "object", "properties": {"x": {"$ref": "#/defs/y"}}}, "'$ref'"),
        ({"type": "object", "properties": {"x": {"oneOf": [{"type": "string"}]}}}, "'oneOf'"),
        ({"type": "object", "properties": {"x": {"type": "date"}}}, "type 'date'"),
        ({"type": "object", "properties": {"x": {"type": "object", "additionalProperties": True}}}, "false"),
        ({"type": "object", "properties": {"x": {"type": "string", "enum": "yes"}}}, "not valid JSON Schema"),
        ({"type": "object", "properties": {"x": {"type": "string"}}, "required": "x"}, "not valid JSON Schema"),
        ({"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(41)}}, "at most 40"),
        ({"type": "object", "properties": {"x": {"type": "string", "description": "d" * 5000}}}, "4000 allowed"),
    ],
)
def test_a_schema_that_cannot_serve_is_refused_saying_why(schema: object, fragment: str) -> None:
    with pytest.raises(result_schema.InvalidSchema, match="result_schema") as info:
        result_schema.check(schema)
    assert fragment in str(info.value)


def test_too_deep_a_schema_is_refused() -> None:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(6):
        node = {"type": "object", "properties": {"x": node}}
    with pytest.raises(result_schema.InvalidSchema, match="levels deep"):
        result_schema.check(node)


def test_the_model_answers_every_field_and_may_say_null() -> None:
    strict = result_schema.for_model(CONFIRMATION)
    assert strict["required"] == ["confirmed", "time"] and strict["additionalProperties"] is False
    assert strict["properties"]["confirmed"] == {"anyOf": [{"type": "boolean"}, {"type": "null"}]}
    assert result_schema.problems({"confirmed": True, "time": None}, CONFIRMATION) == []
    assert result_schema.problems({"confirmed": "yes", "time": None}, CONFIRMATION)
    assert result_schema.problems({"confirmed": True}, CONFIRMATION)  # every field, even if null
    assert result_schema.problems({"confirmed": True, "time": None, "extra": 1}, CONFIRMATION)


def request(schema: dict[str, Any] | None) -> CallRequest:
    return CallRequest(
        call_id="abc123",
        phone_number="+14155550100",
        goal="Confirm Tuesday",
        caller_name="Op",
        max_duration_s=60,
        ring_timeout_s=30,
        result_schema=schema,
    )


def test_the_summarizer_is_asked_for_data_only_with_a_schema() -> None:
    assert summary_schema(request(None)) == SUMMARY_SCHEMA and "data" not in SUMMARY_SCHEMA["properties"]
    asked = summary_schema(request(CONFIRMATION))
    assert asked["required"][-1] == "data" and asked["properties"]["data"] == result_schema.for_model(CONFIRMATION)
    assert "data" not in SUMMARY_SCHEMA["required"]  # the shared schema is not changed by a call's


def test_data_in_another_shape_is_dropped_and_said() -> None:
    fits = Outcome(goal_achieved="yes", data={"confirmed": True, "time": "10 am"})
    assert checked_data(fits, request(CONFIRMATION)) == fits
    wrong = checked_data(Outcome(goal_achieved="yes", data={"confirmed": "sure"}), request(CONFIRMATION))
    assert wrong.data is None and "did not fit result_schema" in wrong.follow_ups[-1]
    assert checked_data(fits, request(None)).data is None  # nobody asked for it


async def test_make_phone_call_refuses_a_bad_schema_before_dialing(
    db_url: str, store: Database, livekit: FakeLiveKit
) -> None:
    settings = fake_livekit_settings(db_url, livekit.url, "result-schema-test-secret-long-enough")
    async with Client(create_server(settings)) as client:
        bad = await client.call_tool(
            "make_phone_call", {"phone_number": "+14155550142", "result_schema": {"type": "object"}}
        )
        good = await client.call_tool(
            "make_phone_call", {"phone_number": "+14155550142", "result_schema": CONFIRMATION}
        )
    assert bad.is_error and "result_schema" in text(bad)
    assert len(livekit.calls("CreateRoom")) == 1  # only the good one reached LiveKit
    assert not good.is_error, text(good)
    assert good.structured_content["result_schema"] == CONFIRMATION
    (record,) = store.calls.page()[0]
    assert record.result_schema == CONFIRMATION
