"""The voice pipeline: the process's shared OpenAI client, the AgentSession of a call, and the
job process's warm-up."""

from __future__ import annotations

import importlib
from typing import Any

from livekit.agents import NOT_GIVEN, AgentSession, JobProcess
from livekit.plugins import openai as lk_openai

from callagent.calls import CALL_ID_HEADER, CallRequest
from callagent.settings import Settings, get_settings

_clients: dict[tuple[str | None, str | None], Any] = {}


def openai_client(settings: Settings, req: CallRequest) -> Any:
    """The process's OpenAI client, tagged with this call's id.

    One client per process: a new one per call builds a new TLS context and connection pool,
    which cost 0.3-0.8 s of event-loop time per call on a busy machine."""
    import openai

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if not key and not settings.openai_base_url:
        raise RuntimeError("no model access: set OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible server)")
    base = _clients.get((key, settings.openai_base_url))
    if base is None:
        base = openai.AsyncClient(api_key=key or "unused", base_url=settings.openai_base_url, max_retries=1)
        _clients[(key, settings.openai_base_url)] = base
    return base.with_options(default_headers={CALL_ID_HEADER: req.call_id})


def tts_for(settings: Settings, req: CallRequest, client: Any) -> Any:
    """The call's TTS: its profile's model and voice, else the worker's settings."""
    return lk_openai.TTS(
        model=req.tts_model or settings.tts_model,
        voice=req.tts_voice or settings.tts_voice,
        client=client,
        response_format="pcm",
    )


# Turn-taking, in seconds (CALLAGENT_TURN_DETECTION); measured on the bed in bench/README.md.
# "model": the VAD reports the end of speech after VAD_SILENCE_S of silence, by when LiveKit's
# end-of-turn model has judged the last 1.2 s of the callee's audio (it runs at 0.2 s). A likely
# end is answered MIN_DELAY_S after the speech ended: on the bed the transcript is back later
# than that anyway (the reply is prepared meanwhile), and it still outlasts the shortest pauses
# should the model be wrong. An unlikely end (a comma, an "um") waits MAX_DELAY_S: a callee who
# paused has spoken again by then; and a finished sentence the model doubted (it does so often
# with the bed's synthetic voice) is answered hardly later than silence alone would answer it.
MODEL_TURN = {"vad_silence_s": 0.25, "min_delay_s": 0.4, "max_delay_s": 0.8}
# "vad": silence alone; it must outlast the 0.3-0.6 s pauses people make mid-sentence.
VAD_TURN = {"vad_silence_s": 0.35, "min_delay_s": 0.7, "max_delay_s": 1.0}


def _turn(settings: Settings) -> dict[str, float]:
    return MODEL_TURN if settings.turn_detection == "model" else VAD_TURN


def build_session(settings: Settings, req: CallRequest, vad: Any) -> AgentSession[Any]:
    """The call's voice pipeline; the request's profile overrides (voice, models, language)
    win over the worker's settings."""
    client = openai_client(settings, req)
    turn = _turn(settings)
    detector: Any = "vad"
    # (A realtime model hears the audio itself; it keeps the VAD's turns, as before.)
    if settings.turn_detection == "model" and not settings.realtime_model:
        from livekit.agents import inference

        detector = inference.TurnDetector(version="v1-mini")  # local: never LiveKit Cloud
    turn_handling: dict[str, Any] = {
        "turn_detection": detector,
        "endpointing": {"min_delay": turn["min_delay_s"], "max_delay": turn["max_delay_s"]},
        "interruption": {"mode": "vad"},
        # Start the reply's LLM and TTS while the end of the turn is being confirmed.
        "preemptive_generation": {"enabled": True, "preemptive_tts": True},
    }
    common: dict[str, Any] = {
        "vad": vad,
        "turn_handling": turn_handling,
        "user_away_timeout": settings.silence_timeout_s,
    }
    if settings.realtime_model:
        # The key and server from the settings (also when they come from .env, which the
        # plugin's own environment lookup would miss); the greeting's voice, so the callee
        # hears one voice from the disclosure on (greeting_tts renders that with TTS).
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        realtime = lk_openai.realtime.RealtimeModel(
            model=settings.realtime_model,
            voice=req.tts_voice or settings.tts_voice,
            api_key=key or "unused",
            base_url=settings.openai_base_url or NOT_GIVEN,
        )
        return AgentSession(llm=realtime, **common)
    return AgentSession(
        # The call's language as the transcription's hint: a short answer ("sí", "हाँ") is
        # otherwise easily heard as another language.
        stt=lk_openai.STT(
            model=req.stt_model or settings.stt_model, language=req.language, client=client, use_realtime=False
        ),
        llm=lk_openai.LLM(model=req.llm_model or settings.llm_model, client=client),
        tts=tts_for(settings, req, client),
        **common,
    )


# Imported once in the worker's forkserver and inherited by every job process (AgentServer's
# preload_modules), not imported again in each: first-use imports measured blocking a new
# call's event loop for 0.1-1.6 s; the call store's SQLAlchemy for up to 9 s with ten calls
# starting at once on 2 cores; jsonschema at the summary.
PRELOAD = (
    "callagent.agent",
    "callagent.store",
    "openai.resources.audio",
    "openai.resources.chat",
    "jsonschema",
    # The MCP client of the operator's tool servers (callagent.agent.tooluse): imported on first
    # use, it held up the greeting's TTS request by 0.7 s (bench/run.py --tools).
    "livekit.agents.llm.mcp",
)


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process, before any call: everything slow on first use goes here."""
    from callagent import redact

    redact.install(redact.secrets_of(get_settings()))  # job processes log too
    from livekit.agents import inference

    # LiveKit's in-process Silero VAD (livekit-local-inference): its model is loaded once in the
    # worker's forkserver and shared by every job process; it runs off the event loop, without
    # the GIL. How much silence ends speech depends on the turn detection (_turn).
    proc.userdata["vad"] = inference.VAD(
        min_silence_duration=_turn(get_settings())["vad_silence_s"], prefix_padding_duration=0.3
    )
    for module in PRELOAD:  # already there when the forkserver imported them
        importlib.import_module(module)
    from livekit.agents import tokenize

    tokenize.basic.hyphenate_word("warming")
