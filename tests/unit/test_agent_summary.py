"""The summarizer's answer: its JSON schema is generated from the model that parses it, in the
form OpenAI's strict structured output requires."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, Literal, cast

import pytest
from livekit.agents import AgentSession, llm
from pydantic import BaseModel, Field

from callagent.agent import summary as summary_module
from callagent.agent.summary import SUMMARY_SCHEMA, CallSummary, strict_schema, transcript_from
from callagent.calls import CallRequest, CallStatus, Outcome, TranscriptLine
from callagent.settings import Settings

REQUEST = CallRequest(
    call_id="abc123",
    phone_number="+14155550100",
    goal="Confirm the appointment",
    caller_name="Dr. Smith's office",
    max_duration_s=300,
    ring_timeout_s=30,
)
TRANSCRIPT = [TranscriptLine(role="agent", text="Hi"), TranscriptLine(role="callee", text="Yes, Tuesday.")]


def schema_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object in `node` (property names are not schemas)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from schema_nodes(sub)
            elif key in ("items", "anyOf"):
                yield from schema_nodes(value)
    elif isinstance(node, list):
        for sub in node:
            yield from schema_nodes(sub)


def assert_strict(schema: dict[str, Any]) -> None:
    objects = 0
    for node in schema_nodes(schema):
        assert "title" not in node and "default" not in node, node
        if node.get("type") == "object":
            objects += 1
            assert node["additionalProperties"] is False, node
            assert sorted(node["required"]) == sorted(node["properties"]), node
    assert objects


def test_the_summary_schema_is_strict() -> None:
    assert_strict(SUMMARY_SCHEMA)


def test_the_summary_schema_asks_for_what_the_hand_typed_one_did() -> None:
    assert SUMMARY_SCHEMA["properties"] == {
        "summary": {"type": "string"},
        "goal_achieved": {"type": "string", "enum": ["yes", "partly", "no"]},
        "key_facts": {"type": "array", "items": {"type": "string"}},
        "follow_ups": {"type": "array", "items": {"type": "string"}},
    }
    # In this order: the model writes the summary before its verdict.
    assert (
        list(SUMMARY_SCHEMA["properties"])
        == SUMMARY_SCHEMA["required"]
        == ["summary", "goal_achieved", "key_facts", "follow_ups"]
    )


def test_the_schema_covers_every_field_of_the_outcome() -> None:
    # data only where the call has a result_schema (test_result_schema.py)
    assert set(SUMMARY_SCHEMA["properties"]) == {"summary", *Outcome.model_fields} - {"data"}


class Inner(BaseModel):
    name: str = "x"
    note: str | None = None


class Nested(BaseModel):
    kind: Literal["a", "b"] = "a"
    inner: Inner
    many: list[Inner] = Field(default_factory=list)
    maybe: Inner | None = None


def test_strictness_reaches_every_level() -> None:
    schema = strict_schema(Nested)
    assert_strict(schema)
    assert set(schema["$defs"]["Inner"]["required"]) == {"name", "note"}
    assert schema["properties"]["maybe"]["anyOf"][1] == {"type": "null"}


def test_an_answer_round_trips_into_an_outcome() -> None:
    answer = json.dumps(
        {
            "summary": "They confirmed.",
            "goal_achieved": "partly",
            "key_facts": ["Tuesday 10 am"],
            "follow_ups": ["Send a reminder"],
        }
    )
    parsed = CallSummary.model_validate_json(answer)
    assert parsed.summary == "They confirmed."
    outcome = parsed.outcome()
    assert type(outcome) is Outcome
    assert outcome == Outcome(goal_achieved="partly", key_facts=["Tuesday 10 am"], follow_ups=["Send a reminder"])
    assert json.loads(
        CallSummary(summary=parsed.summary, **outcome.model_dump()).model_dump_json(exclude={"data"})
    ) == json.loads(answer)


def fake_client(content: str, sent: dict[str, Any]) -> object:
    class Completions:
        async def create(self, **kwargs: object) -> object:
            sent.update(kwargs)
            return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=content))])

    return SimpleNamespace(chat=SimpleNamespace(completions=Completions()))


def summarize(monkeypatch: pytest.MonkeyPatch, content: str) -> tuple[tuple[str, Outcome | None], dict[str, Any]]:
    sent: dict[str, Any] = {}
    monkeypatch.setattr(summary_module, "openai_client", lambda settings, req: fake_client(content, sent))
    settings = cast(Settings, SimpleNamespace(llm_model="gpt-test"))
    result = asyncio.run(
        summary_module.summarize(settings, REQUEST, TRANSCRIPT, CallStatus.completed, "the callee hung up")
    )
    return result, sent


def test_summarize_sends_the_strict_schema_and_parses_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    (summary, outcome), sent = summarize(
        monkeypatch,
        json.dumps({"summary": "They confirmed.", "goal_achieved": "yes", "key_facts": [], "follow_ups": []}),
    )
    assert sent["response_format"]["json_schema"] == {"name": "call_outcome", "schema": SUMMARY_SCHEMA, "strict": True}
    assert summary == "They confirmed." and outcome == Outcome(goal_achieved="yes")
    assert type(outcome) is Outcome


@pytest.mark.parametrize(
    "content", ["", "not json", json.dumps({"summary": "x"}), json.dumps({"summary": "x", "goal_achieved": "maybe"})]
)
def test_an_answer_that_does_not_fit_leaves_no_outcome(monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    (summary, outcome), _ = summarize(monkeypatch, content)
    assert summary == "(no summary: the model could not be reached: ValidationError)" and outcome is None


def test_the_transcript_is_what_the_agent_and_the_callee_said() -> None:
    history = llm.ChatContext.empty()
    history.add_message(role="system", content="You are an AI assistant.")
    history.add_message(role="assistant", content="Hello, this is an AI assistant.")
    history.items.append(llm.FunctionCall(call_id="1", name="end_call", arguments="{}"))
    history.add_message(role="user", content="  Yes,   Tuesday. ")
    history.add_message(role="user", content="   ")
    session = cast(AgentSession[Any], SimpleNamespace(history=history))
    assert transcript_from(session) == [
        TranscriptLine(role="agent", text="Hello, this is an AI assistant."),
        TranscriptLine(role="callee", text="Yes,   Tuesday."),
    ]
