"""Configuration, read from the environment and from the project's `.env` file.

The `.env` file is looked up next to the project, not in the working directory: MCP clients
spawn the server from wherever they happen to be. Real environment variables win over it.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ENV_FILE",
    "PROJECT_DIR",
    "Settings",
    "default_db_url",
    "get_settings",
    "missing_livekit_settings",
]

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = PROJECT_DIR / ".env"


def default_db_url() -> str:
    """An SQLite file in the user's data directory, the same wherever the process starts."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says relative paths are to be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return f"sqlite:///{base / 'callagent' / 'calls.db'}"


class Settings(BaseSettings):
    """Every knob, with its environment variable name as the field's alias."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `OPENAI_BASE_URL=` in .env means "unset", not ""
        extra="ignore",  # .env is shared with the devstack and other tools
        populate_by_name=True,
        case_sensitive=False,
    )

    # LiveKit server and SIP trunk (required to place calls; see missing_livekit_settings).
    livekit_url: str | None = Field(None, validation_alias="LIVEKIT_URL")
    livekit_api_key: str | None = Field(None, validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr | None = Field(None, validation_alias="LIVEKIT_API_SECRET")
    sip_outbound_trunk_id: str | None = Field(None, validation_alias="SIP_OUTBOUND_TRUNK_ID")

    agent_name: str = Field("callagent", min_length=1, validation_alias="CALLAGENT_AGENT_NAME")
    db_url: str = Field(default_factory=default_db_url, validation_alias="CALLAGENT_DB_URL")
    caller_name: str = Field(
        "the callagent operator", min_length=1, validation_alias="CALLAGENT_CALLER_NAME"
    )
    default_region: str = Field(
        "US", pattern=r"^[A-Z]{2}$", validation_alias="CALLAGENT_DEFAULT_REGION"
    )

    # Timings.
    agent_join_timeout_s: float = Field(
        5.0, gt=0, validation_alias="CALLAGENT_AGENT_JOIN_TIMEOUT_S"
    )
    ring_timeout_s: int = Field(30, gt=0, validation_alias="CALLAGENT_RING_TIMEOUT_S")
    max_duration_s: int = Field(300, gt=0, validation_alias="CALLAGENT_MAX_DURATION_S")
    max_duration_cap_s: int = Field(
        1800, gt=0, validation_alias="CALLAGENT_MAX_DURATION_CAP_S"
    )
    silence_timeout_s: float = Field(20.0, gt=0, validation_alias="CALLAGENT_SILENCE_TIMEOUT_S")
    stale_after_s: float = Field(60.0, gt=0, validation_alias="CALLAGENT_STALE_AFTER_S")
    # How many calls one worker holds at once. Its load is calls / this, not CPU: a shared
    # machine's CPU says little about whether one more call fits.
    worker_max_calls: int = Field(10, gt=0, validation_alias="CALLAGENT_WORKER_MAX_CALLS")

    # Models (OpenAI or any server speaking its API).
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    llm_model: str = Field("gpt-4.1-mini", validation_alias="CALLAGENT_LLM_MODEL")
    stt_model: str = Field("gpt-4o-mini-transcribe", validation_alias="CALLAGENT_STT_MODEL")
    tts_model: str = Field("gpt-4o-mini-tts", validation_alias="CALLAGENT_TTS_MODEL")
    tts_voice: str = Field("alloy", validation_alias="CALLAGENT_TTS_VOICE")
    # None: the STT-LLM-TTS pipeline; a model name: a realtime speech-to-speech model.
    realtime_model: str | None = Field(None, validation_alias="CALLAGENT_REALTIME_MODEL")

    log_level: str = Field("INFO", validation_alias="CALLAGENT_LOG_LEVEL")

    @field_validator("default_region", "log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value not in logging.getLevelNamesMapping():
            raise ValueError(f"CALLAGENT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {value!r}")
        return value

    @model_validator(mode="after")
    def _duration_within_cap(self) -> Settings:
        if self.max_duration_s > self.max_duration_cap_s:
            raise ValueError(
                f"CALLAGENT_MAX_DURATION_S ({self.max_duration_s}) is above "
                f"CALLAGENT_MAX_DURATION_CAP_S ({self.max_duration_cap_s})"
            )
        return self


@cache
def get_settings() -> Settings:
    """The process's settings, read once. Tests call `get_settings.cache_clear()`."""
    # ENV_FILE is read at call time so it can be pointed elsewhere (tests, packaging).
    return Settings(_env_file=ENV_FILE)  # type: ignore[call-arg]


_LIVEKIT_REQUIRED = {
    "LIVEKIT_URL": "livekit_url",
    "LIVEKIT_API_KEY": "livekit_api_key",
    "LIVEKIT_API_SECRET": "livekit_api_secret",
    "SIP_OUTBOUND_TRUNK_ID": "sip_outbound_trunk_id",
}


def missing_livekit_settings(s: Settings, *, dialing: bool = True) -> list[str]:
    """Names of the unset LiveKit settings, as environment variable names.

    With `dialing=False` the SIP trunk is not required (the worker never dials).
    """
    return [
        env
        for env, field in _LIVEKIT_REQUIRED.items()
        if getattr(s, field) is None and (dialing or env != "SIP_OUTBOUND_TRUNK_ID")
    ]
