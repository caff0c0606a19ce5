"""Configuration: every setting is an environment variable, or a line in a settings file.

Where a setting comes from, first found wins:

1. the environment;
2. an explicit settings file: `--env-file PATH` of callagent-mcp, callagent-worker and
   callagent (it sets CALLAGENT_ENV_FILE, so the worker's job processes read it too; a file
   that does not exist is an error, not an empty configuration);
3. the user's config folder: `$XDG_CONFIG_HOME/callagent/.env` (default `~/.config/callagent/.env`);
4. when running from a checkout, the project's `.env` next to pyproject.toml.

None is looked up in the working directory: MCP clients spawn the server from wherever they
happen to be.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import time
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "ENV_FILE",
    "ENV_FILE_VAR",
    "PROJECT_DIR",
    "EnvFileMissing",
    "Settings",
    "SettingsProblem",
    "default_db_url",
    "env_files",
    "get_settings",
    "load_profiles",
    "load_settings",
    "missing_livekit_settings",
    "recordings_dir",
    "use_env_file",
    "user_env_file",
]

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The checkout's `.env`; None when callagent runs from an installed wheel (no project around it).
ENV_FILE: Path | None = (
    PROJECT_DIR / ".env"
    if (PROJECT_DIR / "pyproject.toml").is_file() and (PROJECT_DIR / "calling_agent.py").is_file()
    else None
)
# The explicit settings file. `--env-file` sets it in the environment, where the worker's job
# processes (forked from a forkserver, not from the command line) find it too.
ENV_FILE_VAR = "CALLAGENT_ENV_FILE"


class EnvFileMissing(Exception):
    """The explicit settings file (--env-file, CALLAGENT_ENV_FILE) is not there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        what = "is not a file" if path.exists() else "does not exist"
        super().__init__(f"the settings file {path} (--env-file, {ENV_FILE_VAR}) {what}")


def user_env_file() -> Path:
    """`$XDG_CONFIG_HOME/callagent/.env`, by default `~/.config/callagent/.env`."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says relative paths are to be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "callagent" / ".env"


def env_files(*, check: bool = True) -> list[Path]:
    """The settings files that are read, the one that wins first (the environment beats them all).

    Raises EnvFileMissing when the explicit one is named but not there (unless `check` is
    false, for messages); the others are optional."""
    files: list[Path] = []
    explicit = os.environ.get(ENV_FILE_VAR, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if check and not path.is_file():
            raise EnvFileMissing(path)
        files.append(path)
    files.append(user_env_file())
    if ENV_FILE is not None:
        files.append(ENV_FILE)
    return files


class SettingsProblem(Exception):
    """The settings cannot be used: a missing --env-file, or invalid values (the message says
    which, each value by its variable's name)."""


def load_settings(env_file: str | Path | None = None, *, invalid: str = "invalid settings") -> Settings:
    """The process's settings, with `env_file` (--env-file) read too, and the profiles file
    checked: what every command's start-up does. Raises SettingsProblem; `invalid` starts the
    message about bad values."""
    from pydantic import ValidationError

    try:
        if env_file is not None:
            use_env_file(env_file)  # in the environment: processes started from here read it too
        settings = get_settings()
        load_profiles(settings)  # callagent.toml is checked at start too, not at the first call
        return settings
    except EnvFileMissing as exc:
        raise SettingsProblem(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise SettingsProblem(f"{invalid}: {problems}") from None


def load_profiles(settings: Settings) -> Any:
    """The deployment's profiles (callagent.profiles.Profiles), checked at start: raises
    SettingsProblem naming the file, the section and the key of what is wrong."""
    from callagent.profiles import ProfilesProblem, load

    try:
        return load(settings)
    except ProfilesProblem as exc:
        raise SettingsProblem(str(exc)) from None


def use_env_file(path: str | Path) -> None:
    """Read settings from `path` too (`--env-file`), below the environment and above the other
    files, in this process and in the processes it starts. Raises EnvFileMissing."""
    resolved = Path(path).expanduser().absolute()
    if not resolved.is_file():
        raise EnvFileMissing(resolved)
    os.environ[ENV_FILE_VAR] = str(resolved)
    get_settings.cache_clear()


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
        # A model-level error would otherwise print every input, API secrets included.
        hide_input_in_errors=True,
    )

    # LiveKit server and SIP trunk (required to place calls; see missing_livekit_settings).
    livekit_url: str | None = Field(None, validation_alias="LIVEKIT_URL")
    livekit_api_key: str | None = Field(None, validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr | None = Field(None, validation_alias="LIVEKIT_API_SECRET")
    sip_outbound_trunk_id: str | None = Field(None, validation_alias="SIP_OUTBOUND_TRUNK_ID")

    agent_name: str = Field("callagent", min_length=1, validation_alias="CALLAGENT_AGENT_NAME")
    db_url: str = Field(default_factory=default_db_url, validation_alias="CALLAGENT_DB_URL")
    caller_name: str = Field("the callagent operator", min_length=1, validation_alias="CALLAGENT_CALLER_NAME")
    default_region: str = Field("US", pattern=r"^[A-Z]{2}$", validation_alias="CALLAGENT_DEFAULT_REGION")
    # The operator's calling profiles and tenants (callagent.profiles); unset: callagent.toml
    # next to the settings file read first, if there is one.
    profiles_file: Path | None = Field(None, validation_alias="CALLAGENT_PROFILES_FILE")

    # Timings.
    # How long a call waits for a worker to take it: past this with no worker assigned, "no
    # calling worker is online" and nothing is dialed.
    agent_join_timeout_s: float = Field(5.0, gt=0, validation_alias="CALLAGENT_AGENT_JOIN_TIMEOUT_S")
    # Once a worker took it (LiveKit assigned the job), how much longer it may take to start the
    # job and join: a loaded worker is slow, not absent.
    agent_start_timeout_s: float = Field(15.0, gt=0, le=60, validation_alias="CALLAGENT_AGENT_START_TIMEOUT_S")
    ring_timeout_s: int = Field(30, gt=0, validation_alias="CALLAGENT_RING_TIMEOUT_S")
    max_duration_s: int = Field(300, gt=0, validation_alias="CALLAGENT_MAX_DURATION_S")
    max_duration_cap_s: int = Field(1800, gt=0, validation_alias="CALLAGENT_MAX_DURATION_CAP_S")
    silence_timeout_s: float = Field(20.0, gt=0, validation_alias="CALLAGENT_SILENCE_TIMEOUT_S")
    # How long the agent waits on hold (music, "please hold") for a person, at most the call's length.
    max_hold_s: int = Field(600, gt=0, validation_alias="CALLAGENT_MAX_HOLD_S")
    stale_after_s: float = Field(60.0, gt=0, validation_alias="CALLAGENT_STALE_AFTER_S")
    # How many calls one worker holds at once. Its load is calls / this, not CPU: a shared
    # machine's CPU says little about whether one more call fits.
    worker_max_calls: int = Field(10, gt=0, validation_alias="CALLAGENT_WORKER_MAX_CALLS")
    # The worker's health-check HTTP port (LiveKit's default); 0 picks a free one, for running
    # several workers on one host.
    worker_port: int = Field(8081, ge=0, le=65535, validation_alias="CALLAGENT_WORKER_PORT")
    # The health-check port answers on this address only: loopback unless the operator opens it.
    worker_host: str = Field("127.0.0.1", min_length=1, validation_alias="CALLAGENT_WORKER_HOST")
    # Every LiveKit API request is bounded by this (livekit-api's own client timeout is not
    # applied per request); placing the SIP call waits for the ring timeout on top.
    livekit_timeout_s: float = Field(10.0, gt=0, le=120, validation_alias="CALLAGENT_LIVEKIT_TIMEOUT_S")
    # Job processes kept warm (VAD loaded, imports done) for the next calls; each holds
    # ~90 MB. A cold one took 0.6-3.5 s to start on a busy 2-core machine.
    worker_idle_processes: int = Field(3, ge=0, validation_alias="CALLAGENT_WORKER_IDLE_PROCESSES")
    # How the agent tells the callee has finished: "model" asks LiveKit's offline end-of-turn
    # model (in-process, no download) whether a pause ends the sentence, so it can answer soon
    # after a finished sentence and still wait through a pause at a comma or an "um"; "vad"
    # decides on silence alone, which must then be long enough to outlast such pauses.
    turn_detection: Literal["model", "vad"] = Field("model", validation_alias="CALLAGENT_TURN_DETECTION")

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
    # text for people; json (one object per line, with structured fields) for tools and services;
    # auto: the worker writes text when its output is a terminal and JSON lines otherwise, the
    # server and the console write text. The worker's --log-format wins over this.
    log_format: Literal["auto", "text", "json"] = Field("auto", validation_alias="CALLAGENT_LOG_FORMAT")

    # Dial policy (callagent.policy). Lists are comma-separated; numbers in them are E.164 or
    # written for CALLAGENT_DEFAULT_REGION, and an entry ending in "*" is a prefix ("+1415*").
    dial_allow: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="DIAL_ALLOW")
    dial_deny: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="DIAL_DENY")
    # More numbers never to be called, on top of the built-in crisis lines and helplines
    # (callagent.sensitive_numbers); refused by the rule sensitive_number.
    dial_never_call: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="DIAL_NEVER_CALL")
    # ISO region codes ("US,CA"); unset: CALLAGENT_DEFAULT_REGION only; "*": every country
    # (non-geographic +800/+881... numbers only when "001" is listed explicitly).
    dial_countries: Annotated[tuple[str, ...] | None, NoDecode] = Field(None, validation_alias="DIAL_COUNTRIES")
    # In the callee's local time; "off" disables. None means off.
    dial_quiet_hours: Annotated[tuple[time, time] | None, NoDecode] = Field(
        (time(21, 0), time(8, 0)), validation_alias="DIAL_QUIET_HOURS"
    )
    dial_max_concurrent: int = Field(3, ge=1, validation_alias="DIAL_MAX_CONCURRENT")
    # "Per day" and "per hour" are rolling windows: any 24 hours, any 60 minutes.
    dial_max_per_number_per_day: int = Field(2, ge=1, validation_alias="DIAL_MAX_PER_NUMBER_PER_DAY")
    dial_max_per_hour: int = Field(30, ge=1, validation_alias="DIAL_MAX_PER_HOUR")
    # never: the MCP client's own tool approval is the human step; unlisted: numbers not on
    # DIAL_ALLOW need a confirmation; always: every call does.
    dial_confirm: Literal["never", "unlisted", "always"] = Field("never", validation_alias="DIAL_CONFIRM")
    dial_confirm_ttl_s: int = Field(300, ge=10, le=3600, validation_alias="DIAL_CONFIRM_TTL_S")
    # Who confirms: client (MCP elicitation, or a confirmation token the client brings back) or
    # operator (the call waits as awaiting_approval until the operator approves it in the console).
    dial_confirm_by: Literal["client", "operator"] = Field("client", validation_alias="DIAL_CONFIRM_BY")
    # How long a call waits for the operator's approval before it lapses (status expired).
    dial_approval_ttl_s: int = Field(3600, ge=60, le=7 * 86400, validation_alias="DIAL_APPROVAL_TTL_S")
    # make_phone_call must say why (reasoning), for the operator and the record.
    dial_require_reasoning: bool = Field(False, validation_alias="DIAL_REQUIRE_REASONING")
    dial_allow_extensions: bool = Field(False, validation_alias="DIAL_ALLOW_EXTENSIONS")
    # Who a call may be handed to (make_phone_call's transfer_to): exact numbers only, E.164 or
    # written for CALLAGENT_DEFAULT_REGION. Empty: no call is ever transferred. The transfer leg
    # also passes the dial policy like any call.
    transfer_numbers: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="CALLAGENT_TRANSFER_NUMBERS")
    # How long the transfer target's phone rings before the agent goes back to the callee.
    transfer_ring_timeout_s: int = Field(20, ge=5, le=120, validation_alias="CALLAGENT_TRANSFER_RING_TIMEOUT_S")
    # Tools during the call (callagent.toml [tools]): how many side-effecting tool calls (a
    # booking, a message sent) one call may make; each also needs the callee's confirmation.
    max_tool_actions: int = Field(2, ge=0, le=20, validation_alias="CALLAGENT_MAX_TOOL_ACTIONS")
    # off: never record (record=true is refused); on_request: when make_phone_call asks; always.
    recording: Literal["off", "on_request", "always"] = Field("off", validation_alias="CALLAGENT_RECORDING")
    # Where recordings are written (mode 0600, folder 0700); default: next to the SQLite call
    # store, else the user's data directory. Read by the server (calls://.../recording).
    recordings_dir: Path | None = Field(None, validation_alias="CALLAGENT_RECORDINGS_DIR")
    recording_retention_days: int = Field(30, ge=1, le=3650, validation_alias="CALLAGENT_RECORDING_RETENTION_DAYS")
    # Sizes of what a client may send; the upper bounds are what a CallRequest can carry.
    max_goal_chars: int = Field(2000, ge=1, le=4000, validation_alias="CALLAGENT_MAX_GOAL_CHARS")
    max_context_chars: int = Field(4000, ge=0, le=8000, validation_alias="CALLAGENT_MAX_CONTEXT_CHARS")
    max_greeting_chars: int = Field(500, ge=1, le=1000, validation_alias="CALLAGENT_MAX_GREETING_CHARS")

    # The MCP server's HTTP transport (`server.py --transport http`): clients must send
    # `Authorization: Bearer <MCP_HTTP_TOKEN>`. Without a token it refuses to start, unless
    # MCP_HTTP_NO_AUTH opts out, which is honoured on a loopback address only.
    mcp_http_token: SecretStr | None = Field(None, validation_alias="MCP_HTTP_TOKEN")
    mcp_http_no_auth: bool = Field(False, validation_alias="MCP_HTTP_NO_AUTH")
    # Its limits (callagent.http_transport.guarded_protocol): connections held at once (one
    # more closes an idle one, or gets 503 when all serve requests; an MCP client uses 2-3),
    # seconds an idle keep-alive connection is kept, and seconds a client has to send a
    # request's headers. A request being served (an event stream, a long tool call) has no limit.
    mcp_http_max_connections: int = Field(100, ge=4, le=10000, validation_alias="MCP_HTTP_MAX_CONNECTIONS")
    mcp_http_keepalive_timeout_s: float = Field(5.0, ge=1, le=300, validation_alias="MCP_HTTP_KEEPALIVE_TIMEOUT_S")
    mcp_http_header_timeout_s: float = Field(10.0, ge=1, le=300, validation_alias="MCP_HTTP_HEADER_TIMEOUT_S")

    # The operator's console (`callagent console`): its sign-in secret (it refuses to start
    # without one), and the time zone its pages show times in (default: this machine's).
    console_token: SecretStr | None = Field(None, validation_alias="CALLAGENT_CONSOLE_TOKEN")
    console_tz: str | None = Field(None, validation_alias="CALLAGENT_CONSOLE_TZ")

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

    @field_validator("dial_allow", "dial_deny", "dial_never_call", "transfer_numbers", mode="before")
    @classmethod
    def _number_list(cls, value: object, info: ValidationInfo) -> object:
        names = {
            "dial_allow": "DIAL_ALLOW",
            "dial_deny": "DIAL_DENY",
            "dial_never_call": "DIAL_NEVER_CALL",
            "transfer_numbers": "CALLAGENT_TRANSFER_NUMBERS",
        }
        name = names[str(info.field_name)]
        region = info.data.get("default_region")  # validated before: declared earlier
        out: list[str] = []
        for entry in _split(value, name):
            if entry.endswith("*") and name == "CALLAGENT_TRANSFER_NUMBERS":
                raise ValueError(f"{name}: {entry!r} is a prefix; list each number a call may be handed to")
            if entry.endswith("*"):
                if not _PREFIX.fullmatch(entry):
                    raise ValueError(
                        f"{name}: prefix {entry!r} must be '+', the country code and digits, then '*' (e.g. +1415555*)"
                    )
                out.append(entry)
            elif not re.fullmatch(r"\+?[0-9]+", entry):
                raise ValueError(f"{name}: {entry!r} is not a phone number or a prefix ending in '*'")
            elif region is None:  # CALLAGENT_DEFAULT_REGION is bad; that error is reported
                out.append(entry)
            else:
                # Stored in E.164, so entries compare equal to what is dialed.
                from callagent.numbers import InvalidNumber, normalize

                try:
                    out.append(normalize(entry, region))
                except InvalidNumber as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return tuple(dict.fromkeys(out))

    @field_validator("dial_countries", mode="before")
    @classmethod
    def _countries(cls, value: object) -> object:
        if value is None:
            return None
        entries = [e.upper() for e in _split(value, "DIAL_COUNTRIES")]
        if not entries:
            return None
        if any(e in ("*", "ANY", "ALL") for e in entries):
            return ("*", *sorted({e for e in entries if e == "001"}))
        bad = [e for e in entries if not re.fullmatch(r"[A-Z]{2}|001", e)]
        if bad:
            raise ValueError(
                f"DIAL_COUNTRIES: {', '.join(map(repr, bad))} is not an ISO region code "
                "(two letters such as US, GB, DE; 001 for non-geographic numbers; * for all)"
            )
        import phonenumbers  # only when the setting is used: costs ~50 ms

        unknown = [e for e in entries if e != "001" and e not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            hint = " (the United Kingdom is GB)" if "UK" in unknown else ""
            raise ValueError(f"DIAL_COUNTRIES: unknown region {', '.join(unknown)}{hint}")
        return tuple(dict.fromkeys(entries))

    @field_validator("dial_quiet_hours", mode="before")
    @classmethod
    def _quiet_hours(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.lower() in ("off", "none", "no", "false"):
            return None
        m = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})\s*[-\u2013]\s*([0-9]{1,2}):([0-9]{2})", text)
        if not m or int(m[1]) > 23 or int(m[3]) > 23 or int(m[2]) > 59 or int(m[4]) > 59:
            raise ValueError(
                f"DIAL_QUIET_HOURS must be a window like 21:00-08:00 (callee's local time), or off; not {value!r}"
            )
        start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
        if start == end:
            raise ValueError(f"DIAL_QUIET_HOURS {value!r} starts and ends at the same time; give a real window or off")
        return (start, end)

    @field_validator("dial_confirm", "dial_confirm_by", "recording", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("console_tz")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"CALLAGENT_CONSOLE_TZ must be an IANA time zone such as Europe/Berlin or America/New_York, "
                f"not {value!r}"
            ) from None
        return value.strip()

    @model_validator(mode="after")
    def _duration_within_cap(self) -> Settings:
        if self.max_duration_s > self.max_duration_cap_s:
            raise ValueError(
                f"CALLAGENT_MAX_DURATION_S ({self.max_duration_s}) is above "
                f"CALLAGENT_MAX_DURATION_CAP_S ({self.max_duration_cap_s})"
            )
        return self


_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}\*")


def _split(value: object, name: str) -> list[str]:
    """Entries of a comma-separated setting, spaces and number punctuation removed."""
    if isinstance(value, str):
        raw = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        raw = [str(v) for v in value]
    else:
        raise ValueError(f"{name} must be a comma-separated list")
    return [re.sub(r"[\s\-().]", "", entry) for entry in raw if entry.strip()]


def recordings_dir(s: Settings) -> Path:
    """Where call recordings live: CALLAGENT_RECORDINGS_DIR, else a `recordings` folder next to
    the SQLite call store, else (PostgreSQL) in the user's data directory."""
    if s.recordings_dir is not None:
        return s.recordings_dir.expanduser()
    if s.db_url.startswith("sqlite:///") and s.db_url != "sqlite:///:memory:":
        return Path(s.db_url.removeprefix("sqlite:///")).expanduser().parent / "recordings"
    return Path(default_db_url().removeprefix("sqlite:///")).parent / "recordings"


@cache
def get_settings() -> Settings:
    """The process's settings, read once. Tests call `get_settings.cache_clear()`.

    Raises ValidationError for a bad setting, EnvFileMissing for a missing --env-file."""
    # The files are looked up at call time so they can be pointed elsewhere (tests, packaging).
    # pydantic-settings lets a later file override an earlier one: the winner goes last.
    return Settings(_env_file=tuple(reversed(env_files())))


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
