from __future__ import annotations

from collections.abc import Iterator
from datetime import time
from pathlib import Path

import pytest
from pydantic import ValidationError

import callagent
from callagent import settings as settings_module
from callagent.settings import Settings, get_settings, missing_livekit_settings

ENV_NAMES = sorted(str(field.validation_alias) for field in Settings.model_fields.values() if field.validation_alias)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No callagent variables from the outside, and no real .env file."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(settings_module, "ENV_FILE", tmp_path / "no-such-project" / ".env")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_env_names_are_the_documented_ones() -> None:
    assert (
        sorted(
            [
                "LIVEKIT_URL",
                "LIVEKIT_API_KEY",
                "LIVEKIT_API_SECRET",
                "SIP_OUTBOUND_TRUNK_ID",
                "CALLAGENT_AGENT_NAME",
                "CALLAGENT_DB_URL",
                "CALLAGENT_CALLER_NAME",
                "CALLAGENT_DEFAULT_REGION",
                "CALLAGENT_AGENT_JOIN_TIMEOUT_S",
                "CALLAGENT_AGENT_START_TIMEOUT_S",
                "CALLAGENT_RING_TIMEOUT_S",
                "CALLAGENT_MAX_DURATION_S",
                "CALLAGENT_MAX_DURATION_CAP_S",
                "CALLAGENT_SILENCE_TIMEOUT_S",
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
                "CALLAGENT_LLM_MODEL",
                "CALLAGENT_STT_MODEL",
                "CALLAGENT_TTS_MODEL",
                "CALLAGENT_TTS_VOICE",
                "CALLAGENT_REALTIME_MODEL",
                "CALLAGENT_STALE_AFTER_S",
                "CALLAGENT_LOG_LEVEL",
                "CALLAGENT_WORKER_MAX_CALLS",
                "CALLAGENT_WORKER_PORT",
                "CALLAGENT_WORKER_IDLE_PROCESSES",
                "CALLAGENT_TURN_DETECTION",
                "CALLAGENT_WORKER_HOST",
                "CALLAGENT_LIVEKIT_TIMEOUT_S",
                "CALLAGENT_LOG_FORMAT",
                "CALLAGENT_MAX_HOLD_S",
                "CALLAGENT_TRANSFER_NUMBERS",
                "CALLAGENT_TRANSFER_RING_TIMEOUT_S",
                "CALLAGENT_RECORDING",
                "CALLAGENT_RECORDINGS_DIR",
                "CALLAGENT_RECORDING_RETENTION_DAYS",
                "CALLAGENT_PROFILES_FILE",
                "CALLAGENT_MAX_TOOL_ACTIONS",
                "DIAL_ALLOW",
                "DIAL_DENY",
                "DIAL_COUNTRIES",
                "DIAL_QUIET_HOURS",
                "DIAL_MAX_CONCURRENT",
                "DIAL_NEVER_CALL",
                "DIAL_MAX_PER_NUMBER_PER_DAY",
                "DIAL_MAX_PER_HOUR",
                "DIAL_CONFIRM",
                "DIAL_CONFIRM_TTL_S",
                "DIAL_CONFIRM_BY",
                "DIAL_APPROVAL_TTL_S",
                "DIAL_REQUIRE_REASONING",
                "DIAL_ALLOW_EXTENSIONS",
                "CALLAGENT_MAX_GOAL_CHARS",
                "CALLAGENT_MAX_CONTEXT_CHARS",
                "CALLAGENT_MAX_GREETING_CHARS",
                "MCP_HTTP_TOKEN",
                "MCP_HTTP_NO_AUTH",
                "MCP_HTTP_MAX_CONNECTIONS",
                "MCP_HTTP_KEEPALIVE_TIMEOUT_S",
                "MCP_HTTP_HEADER_TIMEOUT_S",
                "CALLAGENT_CONSOLE_TOKEN",
                "CALLAGENT_CONSOLE_TZ",
            ]
        )
        == ENV_NAMES
    )


def test_defaults(tmp_path: Path) -> None:
    s = get_settings()
    assert s.livekit_url is None and s.livekit_api_key is None and s.livekit_api_secret is None
    assert s.sip_outbound_trunk_id is None
    assert s.agent_name == "callagent"
    assert s.db_url == f"sqlite:///{tmp_path / 'xdg' / 'callagent' / 'calls.db'}"
    assert s.caller_name == "the callagent operator"
    assert s.default_region == "US"
    assert s.agent_join_timeout_s == 5.0
    assert s.ring_timeout_s == 30
    assert s.max_duration_s == 300 and s.max_duration_cap_s == 1800
    assert s.silence_timeout_s == 20
    assert s.openai_api_key is None and s.openai_base_url is None
    assert s.llm_model == "gpt-4.1-mini"
    assert s.stt_model == "gpt-4o-mini-transcribe"
    assert s.tts_model == "gpt-4o-mini-tts"
    assert s.tts_voice == "alloy"
    assert s.realtime_model is None
    assert s.stale_after_s == 60
    assert s.log_level == "INFO"
    assert s.worker_max_calls == 10
    assert s.turn_detection == "model"
    # The dial policy.
    assert s.dial_allow == () and s.dial_deny == () and s.dial_never_call == ()
    assert s.dial_countries is None  # CALLAGENT_DEFAULT_REGION only
    assert s.dial_quiet_hours == (time(21, 0), time(8, 0))
    assert (s.dial_max_concurrent, s.dial_max_per_number_per_day, s.dial_max_per_hour) == (3, 2, 30)
    assert s.dial_confirm == "never" and s.dial_confirm_ttl_s == 300
    assert s.dial_allow_extensions is False
    assert (s.max_goal_chars, s.max_context_chars, s.max_greeting_chars) == (2000, 4000, 500)
    # The HTTP transport's limits.
    assert s.mcp_http_max_connections == 100
    assert (s.mcp_http_keepalive_timeout_s, s.mcp_http_header_timeout_s) == (5.0, 10.0)


def test_default_db_url_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = f"sqlite:///{tmp_path / 'home' / '.local' / 'share' / 'callagent' / 'calls.db'}"
    assert get_settings().db_url == expected
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # the XDG spec says: ignore it
    assert Settings(_env_file=None).db_url == expected  # type: ignore[call-arg]


def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "ws://127.0.0.1:7880")
    monkeypatch.setenv("LIVEKIT_API_KEY", "devkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "devsecret-value")
    monkeypatch.setenv("SIP_OUTBOUND_TRUNK_ID", "ST_abc")
    monkeypatch.setenv("CALLAGENT_DB_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("CALLAGENT_DEFAULT_REGION", "gb")
    monkeypatch.setenv("CALLAGENT_RING_TIMEOUT_S", "45")
    monkeypatch.setenv("CALLAGENT_AGENT_JOIN_TIMEOUT_S", "2.5")
    monkeypatch.setenv("CALLAGENT_REALTIME_MODEL", "gpt-realtime")
    monkeypatch.setenv("CALLAGENT_LOG_LEVEL", "debug")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    s = get_settings()
    assert s.livekit_url == "ws://127.0.0.1:7880"
    assert s.livekit_api_key == "devkey"
    assert s.livekit_api_secret is not None
    assert s.livekit_api_secret.get_secret_value() == "devsecret-value"
    assert s.sip_outbound_trunk_id == "ST_abc"
    assert s.db_url == "postgresql+psycopg://u@h/db"
    assert s.default_region == "GB"
    assert s.ring_timeout_s == 45
    assert s.agent_join_timeout_s == 2.5
    assert s.realtime_model == "gpt-realtime"
    assert s.log_level == "DEBUG"
    assert s.openai_base_url == "http://127.0.0.1:8000/v1"
    assert missing_livekit_settings(s) == []


def test_empty_value_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    monkeypatch.setenv("CALLAGENT_AGENT_NAME", "")
    s = get_settings()
    assert s.openai_base_url is None
    assert s.agent_name == "callagent"


def write_env(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_env_file_next_to_project_not_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    project_env = write_env(
        tmp_path / "project" / ".env",
        "LIVEKIT_URL=ws://from-project-env\nOPENAI_API_KEY=sk-project-secret\nUNRELATED=1\n",
    )
    write_env(tmp_path / "elsewhere" / ".env", "LIVEKIT_URL=ws://from-cwd-env\n")
    monkeypatch.setattr(settings_module, "ENV_FILE", project_env)
    monkeypatch.chdir(tmp_path / "elsewhere")
    s = get_settings()
    assert s.livekit_url == "ws://from-project-env"
    assert s.openai_api_key is not None
    assert s.openai_api_key.get_secret_value() == "sk-project-secret"


def test_environment_wins_over_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = write_env(tmp_path / "p" / ".env", "LIVEKIT_URL=ws://file\nCALLAGENT_TTS_VOICE=nova\n")
    monkeypatch.setattr(settings_module, "ENV_FILE", env_file)
    monkeypatch.setenv("LIVEKIT_URL", "ws://env")
    s = get_settings()
    assert s.livekit_url == "ws://env"
    assert s.tts_voice == "nova"


def test_env_file_is_in_the_project_dir() -> None:
    project = Path(callagent.__file__).resolve().parent.parent
    assert project == settings_module.PROJECT_DIR
    assert Settings.model_config["env_file"] == project / ".env"


def test_settings_sources_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment, then --env-file, then the user's config folder, then the project's .env."""
    project = write_env(
        tmp_path / "project" / ".env",
        "CALLAGENT_TTS_VOICE=project\nCALLAGENT_LLM_MODEL=project\nCALLAGENT_STT_MODEL=project\nCALLAGENT_TTS_MODEL=project\n",
    )
    write_env(
        tmp_path / "xdg-config" / "callagent" / ".env",
        "CALLAGENT_TTS_VOICE=user\nCALLAGENT_LLM_MODEL=user\nCALLAGENT_STT_MODEL=user\n",
    )
    explicit = write_env(tmp_path / "explicit.env", "CALLAGENT_TTS_VOICE=explicit\nCALLAGENT_LLM_MODEL=explicit\n")
    monkeypatch.setattr(settings_module, "ENV_FILE", project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("CALLAGENT_TTS_VOICE", "environment")
    settings_module.use_env_file(explicit)
    assert settings_module.env_files() == [explicit, tmp_path / "xdg-config" / "callagent" / ".env", project]
    s = get_settings()
    assert (s.tts_voice, s.llm_model, s.stt_model, s.tts_model) == ("environment", "explicit", "user", "project")


def test_the_user_config_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert settings_module.user_env_file() == tmp_path / "cfg" / "callagent" / ".env"
    for ignored in ("", "relative/dir"):  # the XDG spec: unset, empty or relative means the default
        monkeypatch.setenv("XDG_CONFIG_HOME", ignored)
        assert settings_module.user_env_file() == Path.home() / ".config" / "callagent" / ".env"


def test_a_missing_env_file_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.env"
    with pytest.raises(settings_module.EnvFileMissing, match=str(missing)):
        settings_module.use_env_file(missing)
    # Named in the environment (as --env-file hands it to the worker's job processes): the same.
    monkeypatch.setenv(settings_module.ENV_FILE_VAR, str(missing))
    get_settings.cache_clear()
    with pytest.raises(settings_module.EnvFileMissing, match="does not exist"):
        get_settings()
    with pytest.raises(settings_module.EnvFileMissing, match="is not a file"):
        settings_module.use_env_file(tmp_path)


def test_env_file_is_made_absolute_for_other_processes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_env(tmp_path / "here.env", "CALLAGENT_TTS_VOICE=nova\n")
    monkeypatch.chdir(tmp_path)
    settings_module.use_env_file("here.env")
    import os

    assert os.environ[settings_module.ENV_FILE_VAR] == str(tmp_path / "here.env")
    monkeypatch.chdir(tmp_path.parent)  # a job process starts wherever: the path still holds
    assert get_settings().tts_voice == "nova"


@pytest.mark.parametrize("main_module", ["server_main", "worker_main"])
def test_entry_points_name_a_missing_env_file(
    main_module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    main = importlib.import_module(f"callagent.{main_module}").main
    missing = tmp_path / "nope.env"
    assert (
        main(["--env-file", str(missing), "start"] if main_module == "worker_main" else ["--env-file", str(missing)])
        == 2
    )
    err = capsys.readouterr().err
    assert f"the settings file {missing} (--env-file, CALLAGENT_ENV_FILE) does not exist" in err


def test_log_format_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings().log_format == "auto"
    monkeypatch.setenv("CALLAGENT_LOG_FORMAT", " JSON ")
    get_settings.cache_clear()
    assert get_settings().log_format == "json"
    monkeypatch.setenv("CALLAGENT_LOG_FORMAT", "yaml")
    get_settings.cache_clear()
    with pytest.raises(ValidationError, match=r"CALLAGENT_LOG_FORMAT|log_format"):
        get_settings()


def test_get_settings_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("CALLAGENT_AGENT_NAME", "other")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().agent_name == "other"


def test_secrets_not_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_SECRET", "lk-very-secret-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-456")
    s = get_settings()
    for rendering in (repr(s), str(s), s.model_dump_json(), repr(s.model_dump())):
        assert "lk-very-secret-123" not in rendering
        assert "sk-very-secret-456" not in rendering
    assert s.openai_api_key is not None and s.openai_api_key.get_secret_value() == "sk-very-secret-456"


def test_missing_livekit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_livekit_settings(get_settings()) == [
        "LIVEKIT_URL",
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
        "SIP_OUTBOUND_TRUNK_ID",
    ]
    monkeypatch.setenv("LIVEKIT_URL", "ws://x")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s")
    get_settings.cache_clear()
    s = get_settings()
    assert missing_livekit_settings(s) == ["LIVEKIT_API_KEY", "SIP_OUTBOUND_TRUNK_ID"]
    assert missing_livekit_settings(s, dialing=False) == ["LIVEKIT_API_KEY"]


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("CALLAGENT_MAX_DURATION_S", "4000", "CALLAGENT_MAX_DURATION_CAP_S"),
        ("CALLAGENT_RING_TIMEOUT_S", "0", "CALLAGENT_RING_TIMEOUT_S"),
        ("CALLAGENT_RING_TIMEOUT_S", "soon", "CALLAGENT_RING_TIMEOUT_S"),
        ("CALLAGENT_DEFAULT_REGION", "USA", "CALLAGENT_DEFAULT_REGION"),
        ("CALLAGENT_LOG_LEVEL", "loud", "CALLAGENT_LOG_LEVEL"),
        ("CALLAGENT_WORKER_MAX_CALLS", "0", "CALLAGENT_WORKER_MAX_CALLS"),
        ("CALLAGENT_TURN_DETECTION", "silence", "CALLAGENT_TURN_DETECTION"),
        ("DIAL_ALLOW", "415*", "prefix '415*' must be '+'"),
        ("DIAL_ALLOW", "+1 415 555 0100, bob", "DIAL_ALLOW: 'bob' is not a phone number"),
        ("DIAL_DENY", "+1 415 555", "DIAL_DENY: '+1415555' is not a valid phone number"),
        ("DIAL_NEVER_CALL", "+1 415 555", "DIAL_NEVER_CALL: '+1415555' is not a valid phone number"),
        ("DIAL_NEVER_CALL", "1800*", "DIAL_NEVER_CALL: prefix '1800*' must be '+'"),
        ("DIAL_COUNTRIES", "UK", "DIAL_COUNTRIES: unknown region UK (the United Kingdom is GB)"),
        ("DIAL_COUNTRIES", "US,usa", "DIAL_COUNTRIES: 'USA' is not an ISO region code"),
        ("DIAL_QUIET_HOURS", "9pm-8am", "DIAL_QUIET_HOURS must be a window like 21:00-08:00"),
        ("DIAL_QUIET_HOURS", "21:00-24:00", "DIAL_QUIET_HOURS"),
        ("DIAL_QUIET_HOURS", "08:00-08:00", "starts and ends at the same time"),
        ("DIAL_MAX_CONCURRENT", "0", "DIAL_MAX_CONCURRENT"),
        ("DIAL_MAX_PER_NUMBER_PER_DAY", "-1", "DIAL_MAX_PER_NUMBER_PER_DAY"),
        ("DIAL_MAX_PER_HOUR", "lots", "DIAL_MAX_PER_HOUR"),
        ("DIAL_CONFIRM", "sometimes", "DIAL_CONFIRM"),
        ("DIAL_CONFIRM_TTL_S", "5", "DIAL_CONFIRM_TTL_S"),
        ("DIAL_ALLOW_EXTENSIONS", "perhaps", "DIAL_ALLOW_EXTENSIONS"),
        ("CALLAGENT_MAX_GOAL_CHARS", "4001", "CALLAGENT_MAX_GOAL_CHARS"),
        ("CALLAGENT_MAX_CONTEXT_CHARS", "9000", "CALLAGENT_MAX_CONTEXT_CHARS"),
        ("CALLAGENT_MAX_GREETING_CHARS", "0", "CALLAGENT_MAX_GREETING_CHARS"),
        ("MCP_HTTP_MAX_CONNECTIONS", "3", "MCP_HTTP_MAX_CONNECTIONS"),
        ("MCP_HTTP_MAX_CONNECTIONS", "10001", "MCP_HTTP_MAX_CONNECTIONS"),
        ("MCP_HTTP_MAX_CONNECTIONS", "lots", "MCP_HTTP_MAX_CONNECTIONS"),
        ("MCP_HTTP_KEEPALIVE_TIMEOUT_S", "0", "MCP_HTTP_KEEPALIVE_TIMEOUT_S"),
        ("MCP_HTTP_KEEPALIVE_TIMEOUT_S", "301", "MCP_HTTP_KEEPALIVE_TIMEOUT_S"),
        ("MCP_HTTP_HEADER_TIMEOUT_S", "0.5", "MCP_HTTP_HEADER_TIMEOUT_S"),
        ("MCP_HTTP_HEADER_TIMEOUT_S", "inf", "MCP_HTTP_HEADER_TIMEOUT_S"),
        ("MCP_HTTP_HEADER_TIMEOUT_S", "nan", "MCP_HTTP_HEADER_TIMEOUT_S"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        get_settings()
    assert fragment in str(info.value)


def test_cap_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLAGENT_MAX_DURATION_S", "2400")
    monkeypatch.setenv("CALLAGENT_MAX_DURATION_CAP_S", "3600")
    s = get_settings()
    assert (s.max_duration_s, s.max_duration_cap_s) == (2400, 3600)


def test_dial_lists_parse_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIAL_ALLOW", " +1 415 555 0100 ,(415) 555-0101,, +44 20* , +14155550100 ")
    monkeypatch.setenv("DIAL_DENY", "+1900*,+1-976-*")
    monkeypatch.setenv("DIAL_NEVER_CALL", " (800) 555-0100, +44 808* ,+18005550100")
    monkeypatch.setenv("DIAL_COUNTRIES", " us , GB,us ")
    s = get_settings()
    # E.164, in order, duplicates and empty entries dropped, prefixes kept as prefixes.
    assert s.dial_allow == ("+14155550100", "+14155550101", "+4420*")
    assert s.dial_deny == ("+1900*", "+1976*")
    assert s.dial_never_call == ("+18005550100", "+44808*")
    assert s.dial_countries == ("US", "GB")


def test_dial_list_numbers_use_the_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLAGENT_DEFAULT_REGION", "GB")
    monkeypatch.setenv("DIAL_ALLOW", "020 7946 0958")
    assert get_settings().dial_allow == ("+442079460958",)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("*", ("*",)),
        ("any", ("*",)),
        ("*,001", ("*", "001")),
        ("US,001", ("US", "001")),
        (" ", None),  # blank: unset, the default region only
    ],
)
def test_dial_countries_values(monkeypatch: pytest.MonkeyPatch, value: str, expected: object) -> None:
    monkeypatch.setenv("DIAL_COUNTRIES", value)
    assert get_settings().dial_countries == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        ("off", None),
        ("OFF", None),
        ("21:00-08:00", (time(21), time(8))),
        ("22:30 - 7:15", (time(22, 30), time(7, 15))),
        ("12:00\u201314:00", (time(12), time(14))),  # an en dash, as word processors write it
    ],
)
def test_dial_quiet_hours_values(monkeypatch: pytest.MonkeyPatch, value: str, expected: object) -> None:
    monkeypatch.setenv("DIAL_QUIET_HOURS", value)
    assert get_settings().dial_quiet_hours == expected


def test_dial_confirm_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIAL_CONFIRM", " Unlisted ")
    monkeypatch.setenv("DIAL_ALLOW_EXTENSIONS", "yes")
    s = get_settings()
    assert s.dial_confirm == "unlisted" and s.dial_allow_extensions is True


def test_errors_never_echo_other_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak-789")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "lk-must-not-leak-012")
    monkeypatch.setenv("DIAL_DENY", "+1 415 555")  # a field-level error
    with pytest.raises(ValidationError) as info:
        get_settings()
    assert "DIAL_DENY" in str(info.value) and "must-not-leak" not in str(info.value)
    monkeypatch.delenv("DIAL_DENY")
    monkeypatch.setenv("CALLAGENT_MAX_DURATION_S", "5000")  # a model-level one: its input is everything
    with pytest.raises(ValidationError) as info:
        get_settings()
    assert "CALLAGENT_MAX_DURATION_CAP_S" in str(info.value) and "must-not-leak" not in str(info.value)


def test_the_workers_health_port_listens_on_loopback_unless_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's HTTP health port answers on 127.0.0.1 by default, CALLAGENT_WORKER_HOST opens it."""
    from callagent.worker_main import build_server

    for host, expected in ((None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")):
        if host is None:
            monkeypatch.delenv("CALLAGENT_WORKER_HOST", raising=False)
        else:
            monkeypatch.setenv("CALLAGENT_WORKER_HOST", host)
        get_settings.cache_clear()
        assert build_server(get_settings())._host == expected
    get_settings.cache_clear()
