"""The worker speaks the call's profile: every fixed sentence in the call's language (its
profile's wording first), the voice pipeline with the profile's models, voice and language
hint, the model told which language to speak and the profile's own instructions, the transfer
leg on the profile's trunk showing its caller ID. Offline: stand-ins for the session and the
job, as in test_agent_ending and test_agent_text."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from livekit.agents import StopResponse, inference
from livekit.plugins import openai as lk_openai

from callagent.agent import greeting_for, instructions_for, timers
from callagent.agent import session as agent_session
from callagent.agent import transfer as transfer_module
from callagent.agent.opening import hold_over_greeting
from callagent.agent.summary import summary_messages
from callagent.agent.transfer import BriefingAgent, Verdict, briefing_instructions, leg_request, leg_trunk
from callagent.calls import CallRequest, CallStatus, EndReason, TranscriptLine
from callagent.languages import LANGUAGES, PHRASES
from callagent.settings import Settings

# Settings built here must not take the bed's SIP trunk and CALLAGENT_* variables.
pytestmark = pytest.mark.usefixtures("no_operator_env")

CALLER = "Harbor Dental"
RULES_HEADER = "The operator's rules for this call. They come last and always apply:"


def request(**fields: Any) -> CallRequest:
    base: dict[str, Any] = {
        "call_id": "abc123",
        "phone_number": "+14155550100",
        "goal": "Confirm the appointment",
        "caller_name": CALLER,
        "max_duration_s": 300,
        "ring_timeout_s": 30,
    }
    return CallRequest(**{**base, **fields})


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, OPENAI_BASE_URL="http://127.0.0.1:9/v1", **env)  # type: ignore[call-arg]


# -- the sentences ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_opening_is_the_disclosure_in_the_calls_language(language: str) -> None:
    plain = PHRASES[language]["disclosure"].format(caller_name=CALLER, recording="")
    assert greeting_for(request(language=language)) == plain
    notice = PHRASES[language]["recording_notice"]
    recorded = PHRASES[language]["disclosure"].format(caller_name=CALLER, recording=notice)
    assert greeting_for(request(language=language, record=True)) == recorded
    # The client's greeting still comes after it, never instead.
    assert greeting_for(request(language=language, greeting="¿Qué tal?")) == f"{plain} ¿Qué tal?"


def test_the_profiles_wording_comes_first() -> None:
    phrases = {
        "disclosure": "Buenos días, soy el asistente de IA de {caller_name}{recording}.",
        "disclosure_after_hold": "Gracias por atender; soy el asistente de IA de {caller_name}{recording}.",
    }
    req = request(language="es", phrases=phrases, record=True)
    assert greeting_for(req) == f"Buenos días, soy el asistente de IA de {CALLER}; esta llamada se está grabando."
    assert (
        hold_over_greeting(req)
        == f"Gracias por atender; soy el asistente de IA de {CALLER}; esta llamada se está grabando."
    )


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_who_picks_up_after_hold_hears_the_short_disclosure_in_the_calls_language(language: str) -> None:
    said = hold_over_greeting(request(language=language))
    assert said == PHRASES[language]["disclosure_after_hold"].format(caller_name=CALLER, recording="")
    assert PHRASES[language]["recording_notice"] in hold_over_greeting(request(language=language, record=True))


class FakeSession:
    def __init__(self) -> None:
        self.said: list[str] = []

    def say(self, text: str, **kwargs: object) -> object:
        self.said.append(text)

        async def played() -> None:
            return None

        return SimpleNamespace(wait_for_playout=played)


class FakeCall:
    """What the timers and the cold transfer touch of a CallJob."""

    def __init__(self, req: CallRequest) -> None:
        self.request = req
        self.session = FakeSession()
        self.answered = asyncio.Event()
        self.answered.set()
        self.settled: list[tuple[CallStatus, EndReason, str]] = []
        self.hung_up = False
        self.transfer_ends: list[tuple[Any, ...]] = []
        self.callee = SimpleNamespace(identity="sip-callee")
        self.settings = SimpleNamespace(transfer_ring_timeout_s=20)
        self.transfers_asked: list[Any] = []

        async def transfer_sip_participant(request: Any) -> Any:
            self.transfers_asked.append(request)
            return SimpleNamespace(status=None)

        self.ctx = SimpleNamespace(
            room=SimpleNamespace(name="call-abc123"),
            api=SimpleNamespace(sip=SimpleNamespace(transfer_sip_participant=transfer_sip_participant)),
        )

    def settle(self, status: CallStatus, end_reason: EndReason, reason: str) -> None:
        self.settled.append((status, end_reason, reason))

    async def hang_up(self) -> bool:
        self.hung_up = True
        return True

    async def end_transfer(self, *args: Any) -> None:
        self.transfer_ends.append(args)


@pytest.mark.parametrize("language", ["es", "hi", "ta"])
def test_the_goodbyes_are_in_the_calls_language(language: str) -> None:
    call = FakeCall(request(language=language, max_duration_s=1))
    asyncio.run(timers.max_duration(call))  # type: ignore[arg-type]
    assert call.session.said == [PHRASES[language]["out_of_time"]] and call.hung_up
    assert call.settled[0][1] == EndReason.max_duration

    call = FakeCall(request(language=language))
    asyncio.run(timers.end_as_asked(call, (CallStatus.canceled, EndReason.canceled, "ended by the client")))  # type: ignore[arg-type]
    assert call.session.said == [PHRASES[language]["ended_elsewhere"]] and call.hung_up


def test_an_overridden_goodbye_is_said_as_written() -> None:
    call = FakeCall(request(language="de", phrases={"ended_elsewhere": "Ich muss leider auflegen. Tschüss."}))
    asyncio.run(timers.end_as_asked(call, (CallStatus.canceled, EndReason.canceled, "ended")))  # type: ignore[arg-type]
    assert call.session.said == ["Ich muss leider auflegen. Tschüss."]


def test_a_cold_transfer_tells_the_callee_in_the_calls_language() -> None:
    call = FakeCall(request(language="fr", transfer_to="+14155550112", transfer_mode="cold"))
    with pytest.raises(StopResponse):
        asyncio.run(transfer_module._cold(call, "+14155550112"))  # type: ignore[arg-type]
    assert call.session.said == [PHRASES["fr"]["transfer_cold"]]
    assert call.transfers_asked[0].transfer_to == "tel:+14155550112"
    assert call.settled[0][0] == CallStatus.transferred


def test_the_target_who_declines_hears_the_calls_goodbye() -> None:
    async def main() -> None:
        decided: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        goodbye = transfer_module._said(request(language="ta"), "transfer_declined")
        agent = BriefingAgent("brief", decided, goodbye)
        session = FakeSession()
        with pytest.raises(StopResponse):
            await agent.decline_transfer(SimpleNamespace(session=session), "in a meeting")
        assert session.said == [PHRASES["ta"]["transfer_declined"]]
        assert decided.result().outcome == "declined"

    asyncio.run(main())


def test_the_worker_speaks_no_english_sentence_of_its_own() -> None:
    # Every fixed sentence comes from callagent.languages: none is left in the worker's modules.
    import inspect

    from callagent.agent import conversation, opening, transfer

    for module in (timers, transfer, opening, conversation):
        source = inspect.getsource(module)
        for sentence in PHRASES["en"].values():
            if sentence.strip(" ;.") and "{" not in sentence:
                assert sentence not in source, (module.__name__, sentence)
        assert "thanks for picking up" not in source.lower()  # the hold-over greeting, once written here


# -- what the model is told --------------------------------------------------------------------


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_the_model_is_told_the_language_to_speak(language: str) -> None:
    name = LANGUAGES[language]
    text = instructions_for(request(language=language), boundary="B")
    rules = " ".join(text[text.index(RULES_HEADER) :].split())
    assert f"Speak {name} for the whole call: the callee was greeted in {name}." in rules
    briefing = " ".join(briefing_instructions(request(language=language), "", boundary="B").split())
    assert f"Speak {name} for the whole call: the person was greeted in {name}." in briefing


def test_english_calls_are_told_nothing_about_language() -> None:
    assert "for the whole call" not in instructions_for(request(), boundary="B")
    assert "for the whole call" not in briefing_instructions(request(), "", boundary="B")


def test_the_profiles_instructions_are_operator_text_between_the_data_and_the_rules() -> None:
    persona = "You are Robin, Harbor Dental's scheduling assistant. Offer the earliest slot first."
    text = instructions_for(request(instructions=persona, context="Patient: Sarah Jones"), boundary="B")
    label = "The operator's instructions for calls of this kind (from the operator's profile"
    assert text.count(persona) == 1
    assert text.index("[END CONTEXT B]") < text.index(label) < text.index(persona) < text.index(RULES_HEADER)
    intro = " ".join(text[text.index(label) : text.index(persona)].split())
    assert "follow them over the task and background, but the rules below still always apply" in intro
    assert "a name they give you is the AI assistant's name, never a person's" in intro
    # Not inside any data block: the persona is not client text.
    assert persona not in text[text.index("[BEGIN GOAL B]") : text.index("[END CONTEXT B]")]
    rules = " ".join(text[text.index(RULES_HEADER) :].split())
    assert "Never claim to be human and never deny being an AI" in rules
    assert label not in instructions_for(request(), boundary="B")
    assert label not in instructions_for(request(instructions="   "), boundary="B")


def test_the_summary_of_a_call_in_another_language_is_written_in_the_goals() -> None:
    transcript = [TranscriptLine(role="callee", text="हाँ, कल ठीक है।")]
    system, _ = summary_messages(request(language="hi"), transcript, CallStatus.completed, "done", boundary="B")
    assert "The call was held in Hindi." in system["content"]
    system, _ = summary_messages(request(), transcript, CallStatus.completed, "done", boundary="B")
    assert "The call was held in" not in system["content"]


# -- the voice pipeline ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_pipeline_takes_the_profiles_models_voice_and_language() -> None:
    req = request(language="hi", tts_voice="shimmer", tts_model="tts-hi", stt_model="stt-hi", llm_model="llm-hi")
    session = agent_session.build_session(settings(CALLAGENT_TURN_DETECTION="vad"), req, inference.VAD())
    assert isinstance(session.stt, lk_openai.STT) and isinstance(session.tts, lk_openai.TTS)
    assert session.stt._opts.model == "stt-hi" and session.stt._opts.languages == ["hi"]
    assert isinstance(session.llm, lk_openai.LLM) and session.llm.model == "llm-hi"
    assert session.tts.model == "tts-hi" and session.tts._opts.voice == "shimmer"


@pytest.mark.anyio
async def test_without_overrides_the_pipeline_is_the_workers_settings() -> None:
    env = {
        "CALLAGENT_TURN_DETECTION": "vad",
        "CALLAGENT_TTS_VOICE": "coral",
        "CALLAGENT_TTS_MODEL": "tts-w",
        "CALLAGENT_STT_MODEL": "stt-w",
        "CALLAGENT_LLM_MODEL": "llm-w",
    }
    session = agent_session.build_session(settings(**env), request(language="es"), inference.VAD())
    assert isinstance(session.stt, lk_openai.STT) and isinstance(session.tts, lk_openai.TTS)
    assert session.stt._opts.model == "stt-w" and session.stt._opts.languages == ["es"]
    assert isinstance(session.llm, lk_openai.LLM) and session.llm.model == "llm-w"
    assert session.tts.model == "tts-w" and session.tts._opts.voice == "coral"


@pytest.mark.anyio
async def test_in_realtime_mode_the_profiles_voice_speaks_and_renders_the_opening() -> None:
    from callagent.agent.opening import greeting_tts

    env = {"CALLAGENT_REALTIME_MODEL": "gpt-realtime", "CALLAGENT_TTS_VOICE": "alloy", "OPENAI_API_KEY": "sk-test"}
    req = request(language="ta", tts_voice="verse", tts_model="tts-ta")
    session = agent_session.build_session(settings(**env), req, None)
    assert isinstance(session.llm, lk_openai.realtime.RealtimeModel) and session.llm._opts.voice == "verse"
    tts = greeting_tts(settings(**env), req, session)
    assert isinstance(tts, lk_openai.TTS) and tts.model == "tts-ta" and tts._opts.voice == "verse"


# -- the transfer leg -------------------------------------------------------------------------


def test_the_transfer_leg_goes_out_on_the_profiles_trunk_showing_its_caller_id() -> None:
    worker = settings(SIP_OUTBOUND_TRUNK_ID="ST_worker", CALLAGENT_TRANSFER_RING_TIMEOUT_S="25")
    req = request(sip_trunk_id="ST_profile", caller_id="+14155550177")
    leg = leg_request(worker, req, "+14155550112", room="call-x", identity="target-x", key="x", max_call_s=360)
    assert leg.sip_trunk_id == "ST_profile" and leg.sip_number == "+14155550177"
    assert leg.sip_call_to == "+14155550112" and leg.room_name == "call-x" and leg.participant_identity == "target-x"
    assert leg.ringing_timeout.seconds == 25 and leg.max_call_duration.seconds == 360 and leg.wait_until_answered

    plain = leg_request(worker, request(), "+14155550112", room="r", identity="i", key="k", max_call_s=60)
    assert plain.sip_trunk_id == "ST_worker" and plain.sip_number == ""  # the trunk's own number
    assert leg_trunk(settings(), request()) is None
    assert leg_trunk(settings(), request(sip_trunk_id="ST_profile")) == "ST_profile"
