"""The offline model server against the real clients the worker uses.

Everything runs on 127.0.0.1 against a server on a free port: the official `openai` client for
the wire format, and the livekit-plugins-openai objects themselves (LLM, TTS, STT) as the proof
that the worker's plugins work against the bed unmodified.
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import openai
import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession, RunContext, function_tool
from livekit.agents import llm as lk_llm
from livekit.plugins import openai as lk_openai
from pydantic import BaseModel

from devstack.board import Board
from devstack.models import (
    GENERIC_REPLY,
    GREETING,
    NO_CONVERSATION_SUMMARY,
    NOT_HEARD_REPLY,
    LinearResampler,
    ModelServer,
    ScriptedAnswer,
    _answer_line,
    answer_chat,
    languages_named,
    match_line,
    scripted_language,
    summarize,
)
from devstack.scenarios import CALL_ID_HEADER, ToolCall, scenario_for

pytestmark = pytest.mark.anyio

CONVERSATION = scenario_for("+14155550100")
VOICEMAIL = scenario_for("+14155550102")
DO_NOT_CALL = scenario_for("+14155550107")
assert CONVERSATION and VOICEMAIL and DO_NOT_CALL

SAM_HELLO = CONVERSATION.lines[0]  # reply: text
SAM_BYE = CONVERSATION.lines[2]  # reply: end_call tool, then "Thank you, goodbye."
VOICEMAIL_GREETING = VOICEMAIL.lines[0]  # reply: leave_voicemail tool, then ""

TOOLS = [
    {
        "type": "function",
        "function": {"name": name, "description": f"{name} tool", "parameters": {"type": "object", "properties": {}}},
    }
    for name in ("end_call", "leave_voicemail", "add_to_do_not_call")
]


@pytest.fixture
def board() -> Board:
    return Board()


@pytest.fixture
async def server(board: Board) -> AsyncIterator[ModelServer]:
    srv = ModelServer(board=board, host="127.0.0.1", port=0)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client(server: ModelServer) -> AsyncIterator[openai.AsyncClient]:
    async with openai.AsyncClient(base_url=server.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


def tone_wav(seconds: float = 0.5, amplitude: float = 0.3, rate: int = 24000) -> bytes:
    """A 16-bit mono WAV of a 440 Hz tone (amplitude 0 gives digital silence)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def stream_chat(client: openai.AsyncClient, **kwargs: object) -> tuple[str, list, list]:
    """Stream a completion: (joined content, tool call deltas, all chunks)."""
    stream = await client.chat.completions.create(
        model="gpt-4.1",
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,  # type: ignore[arg-type]
    )
    chunks = [chunk async for chunk in stream]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    tool_deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    return content, tool_deltas, chunks


# --- chat completions -------------------------------------------------------------------------


async def test_streaming_chat_returns_scripted_reply(client: openai.AsyncClient) -> None:
    content, tool_deltas, chunks = await stream_chat(
        client,
        messages=[
            {"role": "system", "content": "You are a polite caller."},
            # case and spacing differ from the scenario: the lookup must not care
            {"role": "user", "content": "  " + SAM_HELLO.text.upper() + "  "},
        ],
        tools=TOOLS,
    )
    assert SAM_HELLO.reply and SAM_HELLO.reply.text
    assert content == SAM_HELLO.reply.text
    assert not tool_deltas
    text_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(text_chunks) > 1, "text should be streamed in several chunks"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.total_tokens > 0


async def test_chat_content_as_list_of_parts_and_fallbacks(client: openai.AsyncClient) -> None:
    parts = [{"type": "text", "text": "Yes, ten in the morning "}, {"type": "text", "text": "works for me."}]
    res = await client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": parts}])
    assert res.choices[0].message.content == CONVERSATION.lines[1].reply.text  # type: ignore[union-attr]

    async def reply(messages: list[dict]) -> str | None:
        res = await client.chat.completions.create(model="gpt-4.1", messages=messages)  # type: ignore[arg-type]
        return res.choices[0].message.content

    assert await reply([{"role": "system", "content": "Greet the callee."}]) == GREETING
    assert await reply([{"role": "user", "content": "What a lovely day for a picnic."}]) == GENERIC_REPLY
    assert await reply([{"role": "user", "content": "   "}]) == NOT_HEARD_REPLY


async def test_tool_call_when_offered_streaming_and_not(client: openai.AsyncClient) -> None:
    messages = [{"role": "user", "content": SAM_BYE.text}]

    content, tool_deltas, chunks = await stream_chat(client, messages=messages, tools=TOOLS)
    assert content == ""
    assert tool_deltas[0].id and tool_deltas[0].id.startswith("call_")
    assert tool_deltas[0].function.name == "end_call"
    args = "".join(tc.function.arguments or "" for tc in tool_deltas)
    assert json.loads(args) == {}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"

    res = await client.chat.completions.create(model="gpt-4.1", messages=messages, tools=TOOLS)  # type: ignore[arg-type]
    choice = res.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "end_call"
    assert call.id.startswith("call_")

    # arguments are carried through as a JSON string
    res = await client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": VOICEMAIL_GREETING.text}],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    vm_call = res.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert vm_call.function.name == "leave_voicemail"
    assert json.loads(vm_call.function.arguments) == VOICEMAIL_GREETING.reply.tool.arguments  # type: ignore[union-attr]

    # tool not offered: the text that would have followed it
    res = await client.chat.completions.create(model="gpt-4.1", messages=messages)  # type: ignore[arg-type]
    assert res.choices[0].message.tool_calls is None
    assert res.choices[0].message.content == SAM_BYE.reply.after_tool  # type: ignore[union-attr]


async def test_after_tool_result_says_after_tool_text(client: openai.AsyncClient) -> None:
    def after(line_text: str, tool: str) -> list[dict]:
        return [
            {"role": "system", "content": "You are a polite caller."},
            {"role": "user", "content": line_text},
            {
                "role": "assistant",
                "tool_calls": [{"id": "call_abc", "type": "function", "function": {"name": tool, "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_abc", "content": "done"},
        ]

    content, tool_deltas, _ = await stream_chat(client, messages=after(SAM_BYE.text, "end_call"), tools=TOOLS)
    assert content == SAM_BYE.reply.after_tool == "Thank you, goodbye."  # type: ignore[union-attr]
    assert not tool_deltas

    dnc = DO_NOT_CALL.lines[0]
    res = await client.chat.completions.create(
        model="gpt-4.1",
        messages=after(dnc.text, "add_to_do_not_call"),
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert res.choices[0].message.content == dnc.reply.after_tool  # type: ignore[union-attr]

    # an empty after_tool is an empty answer that still finishes normally
    content, tool_deltas, chunks = await stream_chat(
        client, messages=after(VOICEMAIL_GREETING.text, "leave_voicemail"), tools=TOOLS
    )
    assert content == "" and not tool_deltas
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


async def test_summary_request_returns_outcome_json(client: openai.AsyncClient) -> None:
    schema = {
        "name": "call_summary",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "goal_achieved": {"type": "string", "enum": ["yes", "partly", "no"]},
                "key_facts": {"type": "array", "items": {"type": "string"}},
                "follow_ups": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["summary", "goal_achieved", "key_facts", "follow_ups"],
            "additionalProperties": False,
        },
    }
    transcript = "\n".join(
        f"callee: {line.text}\nagent: {line.reply.text or line.reply.after_tool}"  # type: ignore[union-attr]
        for line in CONVERSATION.lines
    )
    messages = [
        {"role": "system", "content": "Summarise the phone call."},
        {"role": "user", "content": f"Goal: confirm the appointment.\nTranscript:\n{transcript}"},
    ]
    res = await client.chat.completions.create(
        model="gpt-4.1",
        messages=messages,
        response_format={"type": "json_schema", "json_schema": schema},  # type: ignore[arg-type]
    )
    summary = json.loads(res.choices[0].message.content or "")
    assert set(summary) == {"summary", "goal_achieved", "key_facts", "follow_ups"}
    assert CONVERSATION.outcome
    assert summary["goal_achieved"] == CONVERSATION.outcome["goal_achieved"] == "yes"
    assert summary["key_facts"] == CONVERSATION.outcome["key_facts"]
    assert summary["follow_ups"] == CONVERSATION.outcome["follow_ups"]
    assert SAM_HELLO.text in summary["summary"]

    # streamed, json_object, another scenario ("Goodbye." alone must not win over its lines)
    dnc_transcript = " ".join(line.text for line in DO_NOT_CALL.lines)
    content, _, _ = await stream_chat(
        client, messages=[{"role": "user", "content": dnc_transcript}], response_format={"type": "json_object"}
    )
    dnc_summary = json.loads(content)
    assert dnc_summary["goal_achieved"] == "no"
    assert dnc_summary["key_facts"] == DO_NOT_CALL.outcome["key_facts"]  # type: ignore[index]

    res = await client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "Transcript:\n(nobody said anything)"}],
        response_format={"type": "json_object"},
    )
    empty = json.loads(res.choices[0].message.content or "")
    assert empty["summary"] == NO_CONVERSATION_SUMMARY and empty["goal_achieved"] == "no"


# --- speech -----------------------------------------------------------------------------------


async def speech(client: openai.AsyncClient, fmt: str | None) -> tuple[str, bytes]:
    kwargs = {"response_format": fmt} if fmt else {}
    async with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice="ash",
        input="Hello, this is an AI assistant calling.",
        **kwargs,  # type: ignore[arg-type]
    ) as resp:
        return resp.headers["content-type"], await resp.read()


async def test_speech_pcm_and_wav_are_real_audio(client: openai.AsyncClient) -> None:
    ctype, pcm_bytes = await speech(client, "pcm")
    assert ctype == "audio/pcm"
    assert len(pcm_bytes) % 2 == 0
    pcm = np.frombuffer(pcm_bytes, dtype="<i2")
    assert 1.0 < pcm.size / 24000 < 10.0
    assert rms(pcm) > 500

    for fmt in ("wav", "mp3", None):  # mp3 (also the default) gets a WAV, declared as such
        ctype, wav_bytes = await speech(client, fmt)
        assert ctype == "audio/wav", fmt
        with wave.open(io.BytesIO(wav_bytes)) as w:  # a standard reader copes with the stream header
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        assert abs(samples.size - pcm.size) < 100  # same speech as the pcm rendering
        assert rms(samples) > 500


async def test_speech_empty_input_is_400(client: openai.AsyncClient) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        await client.audio.speech.create(model="tts-1", voice="ash", input="  ")
    assert exc.value.status_code == 400
    assert "input" in str(exc.value.body)


def test_linear_resampler_is_chunking_invariant_and_accurate() -> None:
    src = (10000 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype("<i2")
    whole = LinearResampler(22050, 24000)
    one_shot = np.concatenate([whole.push(src), whole.flush()])
    chunked = LinearResampler(22050, 24000)
    pieces, pos = [], 0
    for size in [1, 2, 3, 1000, 7, 4093, 1] * 50:
        pieces.append(chunked.push(src[pos : pos + size]))
        pos += size
    pieces.append(chunked.push(src[pos:]))
    pieces.append(chunked.flush())
    assert np.array_equal(np.concatenate(pieces), one_shot)
    assert abs(one_shot.size - 24000) <= 2
    expected = 10000 * np.sin(2 * np.pi * 440 * np.arange(one_shot.size) / 24000)
    assert np.max(np.abs(one_shot[:-2] - expected[:-2])) < 100  # ~1% of the amplitude


# --- transcription ----------------------------------------------------------------------------


async def test_transcription_hands_out_board_lines(client: openai.AsyncClient, board: Board) -> None:
    board.spoke("call-a", SAM_HELLO.text)
    board.spoke("call-b", "Hello? Who is this?")
    board.spoke("call-a", CONVERSATION.lines[1].text)

    async def transcribe(audio: bytes, call: str | None, fmt: str = "json") -> object:
        headers = {CALL_ID_HEADER: call} if call else {}
        return await client.audio.transcriptions.create(
            file=("file.wav", audio, "audio/wav"),
            model="gpt-4o-mini-transcribe",
            language="en",
            response_format=fmt,
            extra_headers=headers,  # type: ignore[arg-type]
        )

    # silence doesn't consume the line the phone is about to say
    silent = await transcribe(tone_wav(amplitude=0.0), "call-a")
    assert silent.text == ""  # type: ignore[attr-defined]

    first = await transcribe(tone_wav(), "call-a")
    assert first.text == SAM_HELLO.text  # type: ignore[attr-defined]
    verbose = await transcribe(tone_wav(seconds=0.5), "call-a", "verbose_json")
    assert verbose.text == CONVERSATION.lines[1].text  # type: ignore[attr-defined]
    assert verbose.language == "en" and abs(verbose.duration - 0.5) < 0.01  # type: ignore[attr-defined]
    assert await transcribe(tone_wav(), "call-a", "text") == ""  # consumed: nothing left
    # the other call's line is still there, and a request without the header finds it
    assert (await transcribe(tone_wav(), None)).text == "Hello? Who is this?"  # type: ignore[attr-defined]


async def test_models_list_and_unknown_route(server: ModelServer, client: openai.AsyncClient) -> None:
    ids = [m.id async for m in client.models.list()]
    assert "gpt-4.1" in ids and "gpt-4o-mini-transcribe" in ids
    async with aiohttp.ClientSession() as http, http.post(f"{server.base_url}/nope", json={}) as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert "/v1/nope" in body["error"]["message"]


# --- the livekit plugin objects themselves ----------------------------------------------------


async def test_livekit_tts_plugin(server: ModelServer) -> None:
    for fmt in ("pcm", None):  # None: the plugin's default, "mp3"
        kwargs = {"response_format": fmt} if fmt else {}
        tts = lk_openai.TTS(base_url=server.base_url, api_key="sk-test", **kwargs)  # type: ignore[arg-type]
        try:
            frames = []
            async with tts.synthesize("Hello, this is an AI assistant.") as stream:
                async for ev in stream:
                    frames.append(ev.frame)
        finally:
            await tts.aclose()
        assert frames, fmt
        assert {(f.sample_rate, f.num_channels) for f in frames} == {(24000, 1)}
        audio = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
        assert audio.size / 24000 > 0.8, fmt
        assert rms(audio) > 500, fmt


async def test_livekit_llm_plugin(server: ModelServer) -> None:
    @function_tool
    async def end_call() -> None:
        """End the call."""

    llm = lk_openai.LLM(model="gpt-4.1", base_url=server.base_url, api_key="sk-test")

    async def run(ctx: lk_llm.ChatContext, **kwargs: object) -> tuple[str, list[lk_llm.FunctionToolCall]]:
        text, calls = "", []
        async with llm.chat(chat_ctx=ctx, **kwargs) as stream:  # type: ignore[arg-type]
            async for chunk in stream:
                if chunk.delta:
                    text += chunk.delta.content or ""
                    calls += chunk.delta.tool_calls or []
        return text, calls

    try:
        ctx = lk_llm.ChatContext()
        ctx.add_message(role="system", content="You are a polite caller.")
        assert await run(ctx.copy(), tools=[end_call]) == (GREETING, [])

        ctx.add_message(role="user", content=SAM_HELLO.text)
        assert await run(ctx.copy(), tools=[end_call]) == (SAM_HELLO.reply.text, [])  # type: ignore[union-attr]

        ctx.add_message(role="user", content=SAM_BYE.text)
        text, calls = await run(ctx.copy(), tools=[end_call])
        assert text == "" and [c.name for c in calls] == ["end_call"]
        assert calls[0].call_id.startswith("call_") and json.loads(calls[0].arguments) == {}

        ctx.items.append(lk_llm.FunctionCall(call_id=calls[0].call_id, name="end_call", arguments="{}"))
        ctx.items.append(
            lk_llm.FunctionCallOutput(call_id=calls[0].call_id, name="end_call", output="ok", is_error=False)
        )
        assert await run(ctx.copy(), tools=[end_call]) == (SAM_BYE.reply.after_tool, [])  # type: ignore[union-attr]

        class Summary(BaseModel):
            summary: str
            goal_achieved: str
            key_facts: list[str]
            follow_ups: list[str]

        # the summary as the worker may ask for it: the plugin with a pydantic response_format
        text, _ = await run(ctx.copy(), response_format=Summary)
        summary = Summary.model_validate_json(text)
        assert summary.goal_achieved == "yes" and summary.key_facts == CONVERSATION.outcome["key_facts"]  # type: ignore[index]
    finally:
        await llm.aclose()


async def test_livekit_agent_session_runs_the_tool_loop(server: ModelServer) -> None:
    """A text-only AgentSession (no room needed): reply, tool call, tool run, after_tool text."""
    ended: list[bool] = []

    class Caller(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You are a polite caller.")

        @function_tool
        async def end_call(self, ctx: RunContext) -> str:
            """End the call."""
            ended.append(True)
            return "call ending"

    llm = lk_openai.LLM(model="gpt-4.1", base_url=server.base_url, api_key="sk-test")
    async with AgentSession(llm=llm) as session:
        await session.start(Caller())
        first = await session.run(user_input=SAM_HELLO.text)
        assert [(e.type, e.item.content) for e in first.events] == [  # type: ignore[union-attr]
            ("message", [SAM_HELLO.reply.text])  # type: ignore[union-attr]
        ]
        bye = await session.run(user_input=SAM_BYE.text)
        assert [e.type for e in bye.events] == ["function_call", "function_call_output", "message"]
        assert bye.events[-1].item.content == [SAM_BYE.reply.after_tool]  # type: ignore[union-attr]
    assert ended == [True]


async def test_livekit_stt_plugin(server: ModelServer, board: Board) -> None:
    board.spoke("call-42", SAM_HELLO.text)
    # the plugin can't add per-request headers: the call id goes on the client's defaults
    client = openai.AsyncClient(
        base_url=server.base_url, api_key="sk-test", max_retries=0, default_headers={CALL_ID_HEADER: "call-42"}
    )
    stt = lk_openai.STT(client=client)  # default model gpt-4o-mini-transcribe, not realtime
    try:
        t = np.arange(24000 // 2) / 24000
        tone = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
        frame = rtc.AudioFrame(data=tone.tobytes(), sample_rate=24000, num_channels=1, samples_per_channel=tone.size)
        quiet = rtc.AudioFrame(
            data=bytes(tone.size * 2), sample_rate=24000, num_channels=1, samples_per_channel=tone.size
        )
        assert (await stt.recognize(quiet)).alternatives[0].text == ""
        assert (await stt.recognize(frame)).alternatives[0].text == SAM_HELLO.text
        assert (await stt.recognize(frame)).alternatives[0].text == ""
    finally:
        await stt.aclose()
        await client.close()


# --- the auto-attendant (0111) and early media (0113) -----------------------------------------


async def test_attendant_conversation_is_scripted(client: openai.AsyncClient) -> None:
    """The prompt and the goodbye get silence (the agent does not talk to the attendant); Jordan's
    pick-up gets the goal, Jordan's answer the end_call tool, then a goodbye."""
    sc = scenario_for("+14155550111")
    assert sc is not None and sc.attendant is not None
    prompt, invalid = sc.attendant.prompt, sc.attendant.invalid
    pick_up, answer = sc.lines

    async def reply(text: str) -> tuple[str, list]:
        content, tool_deltas, _ = await stream_chat(client, messages=[{"role": "user", "content": text}], tools=TOOLS)
        return content, tool_deltas

    assert await reply(prompt.text) == ("", [])
    assert await reply(invalid.text) == ("", [])  # not 0107's "Goodbye."
    content, tools = await reply(pick_up.text)
    assert content == pick_up.reply.text and "confirm" in content and not tools  # type: ignore[union-attr, operator]
    content, tools = await reply(answer.text)
    assert content == "" and [t.function.name for t in tools if t.function.name] == ["end_call"]
    after = [
        {"role": "user", "content": answer.text},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "end_call", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    assert (await stream_chat(client, messages=after, tools=TOOLS))[0] == answer.reply.after_tool  # type: ignore[union-attr]

    async def summary(*texts: str) -> dict:
        res = await client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": "Transcript:\n" + "\n".join(f"callee: {t}" for t in texts)}],
            response_format={"type": "json_object"},
        )
        return json.loads(res.choices[0].message.content or "")  # type: ignore[no-any-return]

    reached = await summary(pick_up.text, answer.text)
    assert reached["goal_achieved"] == "yes" and reached["key_facts"] == sc.outcome["key_facts"]  # type: ignore[index]
    turned_away = await summary(prompt.text, invalid.text)  # the goodbye's own outcome wins
    assert turned_away["goal_achieved"] == "no" and turned_away["key_facts"] == invalid.outcome["key_facts"]  # type: ignore[index]
    assert turned_away["summary"].index("Harbor Dental") < turned_away["summary"].index("not valid")


async def test_early_media_conversation_is_0100s(client: openai.AsyncClient) -> None:
    early = scenario_for("+14155550113")
    assert early is not None and early.lines == CONVERSATION.lines
    res = await client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": early.lines[0].text}]
    )
    assert res.choices[0].message.content == SAM_HELLO.reply.text  # type: ignore[union-attr]


def test_the_summary_answers_the_data_asked_for_and_null_for_the_rest() -> None:
    from devstack.models import requested_data, summarize

    schema = {"properties": {"summary": {}, "data": {"anyOf": [{"type": "object", "properties": {
        "confirmed": {}, "time": {}, "price": {}}}, {"type": "null"}]}}}  # fmt: skip
    body = {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    fields = requested_data(body)
    assert fields == ["confirmed", "time", "price"]
    said = "Callee: Hello, this is Sam speaking. What is this about?\nCallee: Yes, ten in the morning works for me."
    answer = summarize([{"role": "user", "content": said}], fields)
    assert answer["data"] == {"confirmed": True, "time": "ten in the morning", "price": None}
    assert "data" not in summarize([{"role": "user", "content": said}])  # only when asked
    assert requested_data({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}) is None


# --- call transfer: the front desk (0112) and the callee who asks for a person (0114) --------------

FRONT_DESK = scenario_for("+14155550112")
ASKS_FOR_PERSON = scenario_for("+14155550114")
assert FRONT_DESK and ASKS_FOR_PERSON
TRANSFER_TOOLS = [
    {"type": "function", "function": {"name": name, "description": name, "parameters": {"type": "object"}}}
    for name in ("end_call", "transfer_call", "connect_to_caller", "decline_transfer")
]
DECLINED = "Not done: the front desk declined the call (SIP 603). Tell the callee and offer a call back."


def after_tool(line_text: str, tool: str, result: str) -> dict[str, Any]:
    """A chat request whose last turn is `tool`'s result, the call made after the callee's line."""
    return {
        "messages": [
            {"role": "system", "content": "You are a polite caller."},
            {"role": "user", "content": line_text},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": tool, "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": result},
        ],
        "tools": TRANSFER_TOOLS,
    }


def test_transfer_scenarios_are_scripted() -> None:
    """Each line of 0112 and 0114 is found as itself and gets its intended reply."""
    for sc in (FRONT_DESK, ASKS_FOR_PERSON):
        for line in sc.lines:
            found = match_line(f"  {line.text.upper()} ")
            assert found is not None and found[0].number == sc.number and found[1] is line
    hello, sure, parking = FRONT_DESK.lines
    tools = {t["function"]["name"] for t in TRANSFER_TOOLS}
    briefing = _answer_line(hello, tools)
    assert briefing.tool is None and briefing.content and "front desk" in briefing.content
    assert "May I put them through?" in briefing.content
    connect = _answer_line(sure, tools)
    assert connect.tool == ToolCall(name="connect_to_caller") and sure.reply and sure.reply.after_tool == ""
    assert _answer_line(parking, tools).content

    sam, ask, also, bye = ASKS_FOR_PERSON.lines
    assert "ten" in (_answer_line(sam, tools).content or "")
    assert _answer_line(ask, tools).tool == ToolCall(name="transfer_call")
    assert ask.reply and ask.reply.after_tool == "" and ask.reply.after_tool_error
    assert ask.reply.after_tool_error.startswith("I am sorry, I could not reach the front desk")
    for line in (also, bye):
        assert _answer_line(line, tools).tool == ToolCall(name="end_call")
    assert also.reply and also.reply.after_tool and "parking" in also.reply.after_tool


def test_a_failed_tool_gets_after_tool_error() -> None:
    """A tool result starting with "Not done:" (any case, after blanks) picks after_tool_error;
    any other result after_tool; a line without after_tool_error keeps after_tool either way."""
    ask = ASKS_FOR_PERSON.lines[1]
    assert ask.reply is not None
    assert answer_chat(after_tool(ask.text, "transfer_call", DECLINED)).content == ask.reply.after_tool_error
    assert answer_chat(after_tool(ask.text, "transfer_call", "  NOT DONE: nobody answered")).content == (
        ask.reply.after_tool_error
    )
    for result in ("Transferred to the front desk.", "", "The transfer is not done yet: still ringing"):
        answer = answer_chat(after_tool(ask.text, "transfer_call", result))
        assert answer == ScriptedAnswer("") and ask.reply.after_tool == ""
    assert answer_chat(after_tool(SAM_BYE.text, "end_call", "Not done: x")).content == "Thank you, goodbye."
    # the worker did not offer transfer_call (no transfer target): it can't be done
    no_transfer = {"messages": [{"role": "user", "content": ask.text}], "tools": TOOLS}
    assert answer_chat(no_transfer) == ScriptedAnswer(ask.reply.after_tool_error)
    assert answer_chat({"messages": [{"role": "user", "content": SAM_BYE.text}]}).content == "Thank you, goodbye."


def test_what_a_tool_said_while_it_ran_does_not_hide_its_result() -> None:
    """The transfer tool says "please hold" while it runs: that line follows the tool call in
    the history, and the answer is still the one to the tool's result."""
    ask = ASKS_FOR_PERSON.lines[1]
    assert ask.reply is not None
    body = after_tool(ask.text, "transfer_call", DECLINED)
    body["messages"].append({"role": "assistant", "content": "One moment please. Please hold."})
    assert answer_chat(body).content == ask.reply.after_tool_error
    # An assistant line with nothing after a user's words is still nothing to key on.
    plain = {"messages": [{"role": "user", "content": ask.text}, {"role": "assistant", "content": "Hm."}]}
    assert answer_chat(plain).content == GENERIC_REPLY


async def test_after_tool_error_over_the_wire(client: openai.AsyncClient) -> None:
    ask = ASKS_FOR_PERSON.lines[1]
    assert ask.reply is not None
    body = after_tool(ask.text, "transfer_call", DECLINED)
    content, tool_deltas, _ = await stream_chat(client, messages=body["messages"], tools=body["tools"])
    assert content == ask.reply.after_tool_error and not tool_deltas
    body = after_tool(ask.text, "transfer_call", "Connected.")
    res = await client.chat.completions.create(model="gpt-4.1", messages=body["messages"], tools=body["tools"])
    assert res.choices[0].message.content == "" and res.choices[0].finish_reason == "stop"


def test_transfer_calls_summarize_to_their_scenarios() -> None:
    """The main call's transcript is 0114's (not 0107's "Goodbye."); the briefing session's,
    with the agent's briefing in it, is the front desk's."""
    assert ASKS_FOR_PERSON.outcome and FRONT_DESK.outcome
    main = summarize([{"role": "user", "content": " ".join(line.text for line in ASKS_FOR_PERSON.lines)}])
    assert main["goal_achieved"] == "yes" and main["key_facts"] == ASKS_FOR_PERSON.outcome["key_facts"]
    briefing = FRONT_DESK.lines[0].reply
    assert briefing is not None and briefing.text
    desk = summarize(
        [
            {"role": "assistant", "content": briefing.text},
            {"role": "user", "content": "\n".join(line.text for line in FRONT_DESK.lines[:2])},
        ]
    )
    assert desk["key_facts"] == FRONT_DESK.outcome["key_facts"]


# --- languages: the Spanish callee (0115) and what each call asked for ------------------------

SPANISH = scenario_for("+14155550115")
assert SPANISH is not None
DISCLOSURE_ES = "Hola, le llama un asistente de inteligencia artificial en nombre de Harbor Dental."


def test_the_spanish_conversation_is_scripted_in_spanish() -> None:
    assert SPANISH is not None
    said = [
        answer_chat({"messages": [{"role": "user", "content": line.text}], "tools": TOOLS}) for line in SPANISH.lines
    ]
    assert said[0].content is not None and said[0].content.startswith("Le llamo para confirmar su cita")
    assert said[-1] == ScriptedAnswer(None, ToolCall(name="end_call"))
    # the STT's transcript may carry a bit more around a line (and capitals): still the script
    found = match_line("bueno, ¿BUENO? ¿quién habla?")
    assert found is not None and found[1] is SPANISH.lines[0]
    summary = summarize([{"role": "user", "content": line.text} for line in SPANISH.lines], ["confirmed"])
    assert summary["goal_achieved"] == "yes" and summary["data"] == {"confirmed": True}
    assert "¿Bueno? ¿Quién habla?" in summary["summary"] and summary["key_facts"] == SPANISH.outcome["key_facts"]  # type: ignore[index]


def test_languages_named_in_instructions() -> None:
    assert languages_named("You are calling on behalf of a clinic. Speak Spanish throughout the call.") == ["es"]
    assert languages_named("Hable en español. If they reply in English, answer in English.") == ["en", "es"]
    assert languages_named("Parle en FRANÇAIS; Tamil or Deutsch speakers too.") == ["fr", "de", "ta"]
    assert languages_named("Englishman, Spanishness: not a language asked for.") == []
    assert languages_named("") == []


def test_speech_is_rendered_in_the_language_of_the_call(board: Board) -> None:
    assert SPANISH is not None and SPANISH.lines[0].reply is not None
    server = ModelServer(board=board, host="127.0.0.1", port=0)
    reply_es = SPANISH.lines[0].reply.text or ""
    assert scripted_language(reply_es) == "es" and scripted_language(SAM_HELLO.reply.text or "") == "en"  # type: ignore[union-attr]
    assert scripted_language("Not in any script.") is None
    # the worker sends speech a sentence at a time: a sentence of a scripted reply counts too
    assert scripted_language("¿Todavía le queda bien ese horario?") == "es"
    assert scripted_language("Goodbye.") == "en"
    assert scripted_language("Le") is None  # in Spanish and in English scripts ("Let", "Alex"): not telling
    # a scripted sentence: its scenario's language, whatever the call
    assert server.speech_language(None, reply_es) == "es"
    # anything else: the language the request's instructions name, else the call's, else English
    assert server.speech_language("call-es", DISCLOSURE_ES) == "en"
    assert server.speech_language("call-es", DISCLOSURE_ES, "Speak in a warm Spanish accent.") == "es"
    server._note_language("call-es", "es")
    server._note_language("call-xx", "xx")  # not a language of the bed: not noted
    assert server.speech_language("call-es", DISCLOSURE_ES) == "es"
    assert server.speech_language("call-xx", DISCLOSURE_ES) == "en"
    assert server.speech_language("call-en", DISCLOSURE_ES) == "en"


async def test_each_calls_requests_are_logged(board: Board, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the worker's own plugins, for a Spanish call: the greeting sent to speech (text,
    voice, model), the transcription's "es" hint (the scripted transcript does not mind it),
    the instructions' language; then read back with devstack.phonelog as a bed test would."""
    from devstack import phonelog

    assert SPANISH is not None
    server = ModelServer(board=board, host="127.0.0.1", port=0, log_dir=tmp_path / "models")
    await server.start()
    client = openai.AsyncClient(
        base_url=server.base_url, api_key="sk-test", max_retries=0, default_headers={CALL_ID_HEADER: "call-es"}
    )
    tts = lk_openai.TTS(model="gpt-4o-mini-tts", voice="nova", client=client, response_format="pcm")
    stt = lk_openai.STT(client=client, language="es")
    llm = lk_openai.LLM(model="gpt-4.1-mini", client=client)
    try:
        frames = []
        async with tts.synthesize(DISCLOSURE_ES) as stream:
            async for ev in stream:
                frames.append(ev.frame)
        assert sum(f.samples_per_channel for f in frames) / 24000 > 1.0  # (real audio, in espeak's Spanish)

        board.spoke("call-es", SPANISH.lines[0].text)
        t = np.arange(12000) / 24000
        tone = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
        frame = rtc.AudioFrame(data=tone.tobytes(), sample_rate=24000, num_channels=1, samples_per_channel=tone.size)
        heard = await stt.recognize(frame)
        assert heard.alternatives[0].text == SPANISH.lines[0].text and heard.alternatives[0].language == "es"

        ctx = lk_llm.ChatContext()
        ctx.add_message(role="system", content="You are a phone assistant. Speak Spanish.")
        ctx.add_message(role="user", content=heard.alternatives[0].text)
        async with llm.chat(chat_ctx=ctx) as chat:
            reply = "".join([c.delta.content or "" async for c in chat if c.delta])
        assert reply == SPANISH.lines[0].reply.text  # type: ignore[union-attr]

        # another call, English, no header on one request
        await client.audio.speech.create(
            model="tts-1", voice="ash", input="Hello.", extra_headers={CALL_ID_HEADER: "call-en"}
        )
    finally:
        await stt.aclose()
        await tts.aclose()
        await llm.aclose()
        await client.close()
        await server.stop()

    lines = [json.loads(ln) for ln in (tmp_path / "models" / "requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["call"], e["kind"]) for e in lines] == [
        ("call-es", "tts"),
        ("call-es", "stt"),
        ("call-es", "chat"),
        ("call-en", "tts"),
    ]
    assert list(server.requests) == lines

    monkeypatch.setenv("DEVSTACK_RUN_DIR", str(tmp_path))
    greeting = phonelog.greeting_speech("call-es", timeout=1)
    assert (greeting["text"], greeting["voice"], greeting["model"]) == (DISCLOSURE_ES, "nova", "gpt-4o-mini-tts")
    assert greeting["espeak_voice"] == "en-us"  # (nothing had said the call was Spanish yet)
    assert phonelog.stt_language_hints("call-es") == ["es"]
    [stt_entry] = phonelog.model_requests("call-es", "stt")
    assert stt_entry["text"] == SPANISH.lines[0].text and stt_entry["silent"] is False
    [chat_entry] = phonelog.model_requests("call-es", "chat")
    assert chat_entry["instructions_languages"] == ["es"] and chat_entry["reply"] == reply and not chat_entry["summary"]
    english = phonelog.greeting_speech("call-en", timeout=1)
    assert (english["text"], english["voice"], english["model"]) == ("Hello.", "ash", "tts-1")
    assert phonelog.stt_language_hints("call-en") == []
    with pytest.raises(TimeoutError):
        phonelog.greeting_speech("call-nobody", timeout=0.2)


async def test_verbose_transcription_gives_the_hint_back(client: openai.AsyncClient, board: Board) -> None:
    assert SPANISH is not None
    board.spoke("call-v", SPANISH.lines[1].text)
    verbose = await client.audio.transcriptions.create(
        file=("file.wav", tone_wav(), "audio/wav"),
        model="whisper-1",
        language="es",
        response_format="verbose_json",
        extra_headers={CALL_ID_HEADER: "call-v"},
    )
    assert verbose.text == SPANISH.lines[1].text and verbose.language == "es"


# --- tools during the call: the calendar callee (0117), its error branch, what chat is logged ---

CALENDAR = scenario_for("+14155550117")
assert CALENDAR is not None
JAMIE_HELLO, NOT_TUESDAY, BOOK_IT, THANKS = CALENDAR.lines
CALENDAR_TOOLS = [
    {"type": "function", "function": {"name": name, "description": name, "parameters": {"type": "object"}}}
    for name in ("end_call", "find_slots", "book_slot")
]
SLOTS_JSON = json.dumps(
    {"date_range": "this week", "free_slots": [{"slot_id": "thu-1000", "label": "Thursday at 10:00"}]}
)
UNREACHABLE = (
    "Not done: the calendar could not be reached (timed out after 10 s). Tell the callee and offer a call back."
)


def calendar_turn(line_text: str, tool: str, result: str) -> dict[str, Any]:
    body = after_tool(line_text, tool, result)
    body["tools"] = CALENDAR_TOOLS
    return body


def test_the_calendar_scenario_and_its_error_branch_are_scripted() -> None:
    assert CALENDAR is not None and CALENDAR.name == "reschedules_by_calendar"
    tools = {t["function"]["name"] for t in CALENDAR_TOOLS}
    assert "Tuesday at three" in (_answer_line(JAMIE_HELLO, tools).content or "")
    assert _answer_line(NOT_TUESDAY, tools).tool == ToolCall(name="find_slots", arguments={"date_range": "this week"})
    assert _answer_line(BOOK_IT, tools).tool == ToolCall(
        name="book_slot", arguments={"slot_id": "thu-1000", "name": "Jamie"}
    )
    assert _answer_line(THANKS, tools).tool == ToolCall(name="end_call")
    # the error branch: what the callee says instead, each line a reply of its own
    assert BOOK_IT.if_tool_failed and THANKS.if_tool_failed and not JAMIE_HELLO.if_tool_failed
    callback = BOOK_IT.if_tool_failed
    assert BOOK_IT.said(False) is BOOK_IT and BOOK_IT.said(True) is callback and JAMIE_HELLO.said(True) is JAMIE_HELLO
    assert _answer_line(callback, tools).tool == ToolCall(name="end_call")
    assert callback.reply and "call you back" in (callback.reply.after_tool or "")
    assert callback.language == "en" and callback.when == "after_agent"
    assert [ln.text for ln in CALENDAR.spoken()] == [
        JAMIE_HELLO.text, NOT_TUESDAY.text, BOOK_IT.text, callback.text, THANKS.text, THANKS.if_tool_failed.text
    ]  # fmt: skip
    for line in CALENDAR.spoken():  # every line, in either branch, is heard as itself
        found = match_line(f" {line.text.lower()} ")
        assert found is not None and found[0] is CALENDAR and found[1] is line
    # without find_slots offered (no calendar configured), the agent says it can't check
    not_offered = _answer_line(NOT_TUESDAY, {"end_call"})
    assert not_offered.content and not_offered.content.startswith("I'm sorry, I can't check the calendar")
    assert not_offered.error_branch


def test_a_not_done_find_slots_output_takes_the_error_branch() -> None:
    assert NOT_TUESDAY.reply and BOOK_IT.reply
    ok = answer_chat(calendar_turn(NOT_TUESDAY.text, "find_slots", SLOTS_JSON))
    assert ok.content == "Thursday at 10 in the morning is free. Shall I book that for you?" and not ok.error_branch
    failed = answer_chat(calendar_turn(NOT_TUESDAY.text, "find_slots", UNREACHABLE))
    assert failed.content == NOT_TUESDAY.reply.after_tool_error and failed.error_branch
    assert failed.content.startswith("I'm sorry, I can't check the calendar right now.")
    assert "call you back" in failed.content
    assert failed == ScriptedAnswer(NOT_TUESDAY.reply.after_tool_error)  # (the branch is not part of equality)
    refused = answer_chat(calendar_turn(NOT_TUESDAY.text, "find_slots", "not done: refused by the safety checks"))
    assert refused.error_branch
    booked = answer_chat(calendar_turn(BOOK_IT.text, "book_slot", '{"booked": true, "slot_id": "thu-1000"}'))
    assert booked.content == BOOK_IT.reply.after_tool and not booked.error_branch
    assert "Thursday at 10 in the morning" in (booked.content or "")
    not_booked = answer_chat(calendar_turn(BOOK_IT.text, "book_slot", "Not done: Thursday at 10:00 is already booked."))
    assert not_booked.content == BOOK_IT.reply.after_tool_error and not_booked.error_branch


def test_the_calendar_calls_summaries_follow_their_branch() -> None:
    assert CALENDAR is not None and CALENDAR.outcome and BOOK_IT.if_tool_failed
    booked = summarize([{"role": "user", "content": line.text} for line in CALENDAR.lines], ["booked", "time"])
    assert booked["goal_achieved"] == "yes" and not booked["follow_ups"]
    assert any("Thursday at 10:00" in fact for fact in booked["key_facts"])
    assert booked["data"] == {"booked": True, "time": "Thursday at 10:00"}
    said = [JAMIE_HELLO.text, NOT_TUESDAY.text, BOOK_IT.if_tool_failed.text]
    failed = summarize([{"role": "user", "content": text} for text in said], ["booked"])
    assert failed["goal_achieved"] in ("no", "partly") and failed["data"] == {"booked": False}
    assert failed["follow_ups"] == ["Call back to reschedule."]
    assert not any("Thursday at 10:00" in fact for fact in failed["key_facts"])


def test_a_line_said_instead_has_none_of_its_own() -> None:
    from pydantic import ValidationError

    from devstack.scenarios import Scenario

    line = {"text": "A.", "if_tool_failed": {"text": "B.", "if_tool_failed": {"text": "C."}}}
    with pytest.raises(ValidationError, match="no if_tool_failed of its own"):
        Scenario.model_validate({"number": "+1", "name": "x", "answer": "answer", "lines": [line]})
    sc = Scenario.model_validate(
        {
            "number": "+1", "name": "y", "answer": "answer", "language": "fr",
            "lines": [{"text": "Un, | deux.", "pauses": [0.3], "if_tool_failed": {"text": "Trois, | quatre.", "pauses": [0.4]}}],
        }
    )  # fmt: skip
    instead = sc.lines[0].if_tool_failed
    assert instead is not None and instead.segments == ["Trois,", "quatre."] and instead.language == "fr"


async def test_tool_calls_look_like_openais_and_chat_logs_tools_and_outputs(
    board: Board, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the wire as the worker's plugin sees it: the tool call's id and compact JSON
    arguments; a "Not done:" find_slots output gets the apology and puts the call in its error
    branch on the Board (the phone's cue); the log has the tools offered and the outputs."""
    from devstack import phonelog

    server = ModelServer(board=board, host="127.0.0.1", port=0, log_dir=tmp_path / "models")
    await server.start()
    client = openai.AsyncClient(base_url=server.base_url, api_key="sk-test", max_retries=0)
    try:
        for call_key, output in (("call-ok", SLOTS_JSON), ("call-down", UNREACHABLE)):
            headers = {CALL_ID_HEADER: call_key}
            user = [{"role": "user", "content": NOT_TUESDAY.text}]
            content, tool_deltas, _ = await stream_chat(
                client, messages=user, tools=CALENDAR_TOOLS, extra_headers=headers
            )
            assert content == "" and tool_deltas[0].function.name == "find_slots"
            call_id = tool_deltas[0].id
            assert call_id and len(call_id) == len("call_") + 24 and call_id.startswith("call_")
            arguments = "".join(tc.function.arguments or "" for tc in tool_deltas)
            assert arguments == '{"date_range":"this week"}'  # as OpenAI's: compact
            messages = [
                *user,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": call_id, "type": "function", "function": {"name": "find_slots", "arguments": arguments}}
                    ],
                },
                {"role": "tool", "tool_call_id": call_id, "content": output},
            ]
            content, tool_deltas, _ = await stream_chat(
                client, messages=messages, tools=CALENDAR_TOOLS, extra_headers=headers
            )
            assert not tool_deltas
            expected = NOT_TUESDAY.reply.after_tool_error if output == UNREACHABLE else NOT_TUESDAY.reply.after_tool  # type: ignore[union-attr]
            assert content == expected
        res = await client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": BOOK_IT.text}],
            tools=CALENDAR_TOOLS,  # type: ignore[arg-type]
        )
        [book] = res.choices[0].message.tool_calls  # type: ignore[misc]
        assert book.function.arguments == '{"slot_id":"thu-1000","name":"Jamie"}'
    finally:
        await client.close()
        await server.stop()

    assert board.in_error_branch("call-down") and not board.in_error_branch("call-ok")
    monkeypatch.setenv("DEVSTACK_RUN_DIR", str(tmp_path))
    for call_key in ("call-ok", "call-down"):
        assert phonelog.offered_tools(call_key) == {"end_call", "find_slots", "book_slot"}
        assert "cancel_all_appointments" not in phonelog.offered_tools(call_key)
        first, second = phonelog.model_requests(call_key, "chat")
        assert first["tool"] == "find_slots" and first["tool_arguments"] == {"date_range": "this week"}
        assert first["tools"] == ["book_slot", "end_call", "find_slots"] and first["tool_outputs"] == []
        assert second["tool"] is None and second["reply"]
    [ok] = phonelog.tool_outputs("call-ok")
    assert ok["name"] == "find_slots" and ok["output"] == SLOTS_JSON[:200] and ok["failed"] is False
    [down] = phonelog.tool_outputs("call-down")
    assert down["name"] == "find_slots" and down["output"].startswith("Not done:") and down["failed"] is True
    assert len(down["output"]) == min(len(UNREACHABLE), 200)
    [second_down] = phonelog.model_requests("call-down", "chat")[1:]
    assert second_down["error_branch"] is True and second_down["reply"] == NOT_TUESDAY.reply.after_tool_error  # type: ignore[union-attr]
    assert phonelog.offered_tools("call-nobody") == set() and phonelog.tool_outputs("call-nobody") == []


def test_tool_outputs_are_named_by_their_calls_and_cut_to_200() -> None:
    from devstack.models import tool_outputs

    long = "x" * 500
    body = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "find_slots", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "book_slot", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": long}]},
            {"role": "tool", "tool_call_id": "b", "content": "  Not done: nope"},
            {"role": "tool", "tool_call_id": "zz", "content": "orphan"},
        ]
    }
    assert tool_outputs(body) == [
        {"id": "a", "name": "find_slots", "output": "x" * 200, "failed": False},
        {"id": "b", "name": "book_slot", "output": "  Not done: nope", "failed": True},
        {"id": "zz", "name": None, "output": "orphan", "failed": False},
    ]
