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


def tts_for(settings: Settings, client: Any) -> Any:
    return lk_openai.TTS(model=settings.tts_model, voice=settings.tts_voice, client=client, response_format="pcm")


def build_session(settings: Settings, req: CallRequest, vad: Any) -> AgentSession[Any]:
    client = openai_client(settings, req)
    # Turn-taking from the local VAD only: no cloud turn detector, so it works offline.
    turn_handling: dict[str, Any] = {
        "turn_detection": "vad",
        "endpointing": {"min_delay": 0.2, "max_delay": 2.0},
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
            voice=settings.tts_voice,
            api_key=key or "unused",
            base_url=settings.openai_base_url or NOT_GIVEN,
        )
        return AgentSession(llm=realtime, **common)
    return AgentSession(
        stt=lk_openai.STT(model=settings.stt_model, client=client, use_realtime=False),
        llm=lk_openai.LLM(model=settings.llm_model, client=client),
        tts=tts_for(settings, client),
        **common,
    )


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process, before any call: everything slow on first use goes here."""
    from callagent import redact

    redact.install(redact.secrets_of(get_settings()))  # job processes log too
    from livekit.plugins import silero

    # Tuned for phone audio: silences shorter than the default end a turn sooner, but not
    # below the pause at a comma (0.25 s split callees' sentences and tripled turn latency).
    # The VAD ships its model.
    proc.userdata["vad"] = silero.VAD.load(min_silence_duration=0.35, prefix_padding_duration=0.3)
    # First-use imports measured blocking a new call's event loop for 0.1-1.6 s; the call
    # store's SQLAlchemy for up to 9 s with ten calls starting at once on 2 cores (no agent
    # then joined within CALLAGENT_AGENT_JOIN_TIMEOUT_S), and jsonschema at the summary.
    for module in ("openai.resources.audio", "openai.resources.chat", "callagent.store", "jsonschema"):
        importlib.import_module(module)
    from livekit.agents import tokenize

    tokenize.basic.hyphenate_word("warming")
