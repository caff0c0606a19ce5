"""callagent.toml: calling profiles, loaded and checked at start (callagent.profiles), and what
a profile does to a call: its narrower dial policy, its caller IDs, its own limits, and what it
adds to the request the worker gets. Real SQLite store, the fake LiveKit that records requests.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from callagent import profiles as profiles_module
from callagent.calls import DEFAULT_PROFILE, CallRecord, CallRequest, CallStatus, EndReason
from callagent.errors import Refused
from callagent.policy import Allowed, Counts, DialPolicy, Lists, Refusal, Rule
from callagent.profiles import Profiles, ProfilesProblem, hash_token, load, profiles_file
from callagent.server_main import main as server_main
from callagent.service import CallArgs, CallService, Placed, Prepared
from callagent.settings import ENV_FILE_VAR, Settings, SettingsProblem, get_settings, load_profiles, load_settings
from callagent.store import Database
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, make_record

# Settings built here must not take the bed's DIAL_* and CALLAGENT_* variables.
pytestmark = pytest.mark.usefixtures("no_operator_env")

SECRET = "profiles-test-secret-long-enough-for-hmac"
NUMBER = "+14155550142"
TOKEN_HASH = hash_token("a-tenant-token-0123456789abcdef")


def write(folder: Path, body: str, name: str = "callagent.toml") -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def plain_settings(path: Path | None = None, **env: Any) -> Settings:
    """Settings of their own (no file read), with `path` as CALLAGENT_PROFILES_FILE."""
    values: dict[str, Any] = {"CALLAGENT_PROFILES_FILE": str(path)} if path is not None else {}
    return Settings(_env_file=None, **values, **env)


def problem(tmp_path: Path, body: str, **env: Any) -> str:
    """The ProfilesProblem message loading `body` gives (the test fails if it loads)."""
    path = write(tmp_path, body)
    with pytest.raises(ProfilesProblem) as info:
        load(plain_settings(path, **env))
    message = str(info.value)
    assert str(path) in message, message  # every problem names the file
    return message


@pytest.fixture
def no_project_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No callagent.toml next to the checkout either: the only lookups are the test's own."""
    empty = tmp_path / "project"
    empty.mkdir()
    monkeypatch.setattr(profiles_module, "PROJECT_DIR", empty)


# -- without a file ------------------------------------------------------------------------------


def test_without_a_file_there_is_only_the_default_profile_made_of_the_settings(no_project_file: None) -> None:
    settings = plain_settings(CALLAGENT_CALLER_NAME="Dr. Ada's office", DIAL_COUNTRIES="US,CA", DIAL_MAX_CONCURRENT="5")
    assert profiles_file(settings) is None
    loaded = load(settings)
    assert list(loaded.profiles) == [DEFAULT_PROFILE] and loaded.tenants == {} and loaded.path is None
    default = loaded.default
    assert default.caller_name == "Dr. Ada's office" and default.language == "en"
    assert default.policy == DialPolicy.from_settings(settings)  # the DIAL_* policy, nothing narrowed
    assert default.caller_ids == () and default.sip_trunk is None and default.phrases == {}
    # Every caller (the operator) gets it, by its name or by default; another name is refused.
    assert loaded.resolve(None, None) is default and loaded.resolve("default", None) is default
    refused = loaded.resolve("sales", None)
    assert isinstance(refused, Refusal) and refused.rule is Rule.profile
    assert loaded.usable_by(None) == [default]


def test_callagent_toml_is_found_next_to_the_settings_files(
    no_project_file: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    (config / "callagent").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    in_user_folder = write(config / "callagent", '[profiles.user]\ncaller_name = "User folder"\n')
    assert profiles_file(plain_settings()) == in_user_folder
    # --env-file's folder comes first.
    env_dir = tmp_path / "deploy"
    env_dir.mkdir()
    write(env_dir, "", name="callagent.env")
    monkeypatch.setenv(ENV_FILE_VAR, str(env_dir / "callagent.env"))
    assert profiles_file(plain_settings()) == in_user_folder  # none next to it yet
    next_to_env = write(env_dir, '[profiles.deploy]\ncaller_name = "Deploy folder"\n')
    assert profiles_file(plain_settings()) == next_to_env
    assert set(load(plain_settings()).profiles) == {"default", "deploy"}
    # CALLAGENT_PROFILES_FILE wins, and must exist.
    elsewhere = write(tmp_path, '[profiles.named]\ncaller_name = "Named"\n', name="mine.toml")
    assert profiles_file(plain_settings(elsewhere)) == elsewhere
    with pytest.raises(ProfilesProblem, match=r"nope\.toml .*CALLAGENT_PROFILES_FILE.* does not exist"):
        load(plain_settings(tmp_path / "nope.toml"))


# -- a valid file ----------------------------------------------------------------------------------

FULL = f"""
[profiles.ventas]
description = "Outbound sales, in Spanish"
caller_name = "Acme Ventas"
instructions = "Be brief and polite."
language = " ES "
voice = "nova"
tts_model = "tts-test"
stt_model = "stt-test"
llm_model = "llm-test"
sip_trunk = "ST_ventas"
caller_ids = ["(415) 555-0199", "+1 415 555 0198", "+14155550199"]
transfer_numbers = ["415-555-0197"]
recording = "on_request"

[profiles.ventas.policy]
countries = ["us"]
allow = ["+1415*"]
deny = ["(415) 555-0150"]
never_call = ["415.555.0151"]
quiet_hours = "20:00-09:30"
max_concurrent = 1
max_per_number_per_day = 1
max_per_hour = 10
confirm = "always"
allow_extensions = false
max_duration_s = 120

[profiles.ventas.phrases]
out_of_time = "Lo siento, se nos acabó el tiempo. Adiós."

[profiles.plain]

[tenants.acme]
token_sha256 = "{TOKEN_HASH.upper()}"
profiles = ["ventas", "plain", "ventas"]
max_concurrent = 2
"""


def test_a_full_file_loads_with_numbers_in_e164_and_the_language_lowercased(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    settings = plain_settings(path, DIAL_COUNTRIES="US,CA", DIAL_DENY="+1212*", CALLAGENT_CALLER_NAME="Acme")
    loaded = load(settings)
    assert loaded.path == path and list(loaded.profiles) == ["default", "ventas", "plain"]
    ventas = loaded.profiles["ventas"]
    assert ventas.language == "es" and ventas.caller_name == "Acme Ventas"
    assert ventas.description == "Outbound sales, in Spanish" and ventas.instructions == "Be brief and polite."
    assert (ventas.voice, ventas.tts_model, ventas.stt_model, ventas.llm_model) == (
        "nova",
        "tts-test",
        "stt-test",
        "llm-test",
    )
    assert ventas.sip_trunk == "ST_ventas"
    assert ventas.caller_ids == ("+14155550199", "+14155550198")  # E.164, each once
    assert ventas.phrases == {"out_of_time": "Lo siento, se nos acabó el tiempo. Adiós."}
    assert ventas.section == "callagent.toml [profiles.ventas]"
    policy = ventas.policy
    assert policy.countries == ("US",) and policy.allow == ("+1415*",)
    assert policy.deny == ("+1212*", "+14155550150")  # the deployment's, then the profile's own
    assert policy.never_call == ("+14155550151",)
    assert policy.quiet_hours == (time(20, 0), time(9, 30))
    assert policy.confirm == "always" and policy.allow_extensions is False
    # A profile's max_duration_s is its calls' default and longest: a client may not ask for more.
    assert policy.max_duration_s == 120 and policy.max_duration_cap_s == 120
    assert policy.transfer_numbers == ("+14155550197",) and policy.recording == "on_request"
    assert policy.limits == DialPolicy.from_settings(settings).limits  # the deployment's stay...
    (quota,) = policy.quotas  # ...and the profile's own come on top, counted on its calls
    assert quota.scope == "profile" and quota.setting == "callagent.toml [profiles.ventas.policy]"
    assert (quota.limits.max_concurrent, quota.limits.max_per_number_per_day, quota.limits.max_per_hour) == (1, 1, 10)
    # A profile with nothing set is the settings' default under another name.
    plain = loaded.profiles["plain"]
    assert plain.caller_name == "Acme" and plain.language == "en" and plain.caller_ids == ()
    assert plain.policy.countries == ("US", "CA") and plain.policy.quotas == ()
    # The tenant: the hash lowercased, its profiles once each, its first the default.
    tenant = loaded.tenants["acme"]
    assert tenant.token_sha256 == TOKEN_HASH and tenant.profiles == ("ventas", "plain")
    assert tenant.limits is not None and tenant.limits.max_concurrent == 2
    assert tenant.limits.max_per_hour == settings.dial_max_per_hour  # unset: the deployment's
    assert loaded.tenant_for_token("a-tenant-token-0123456789abcdef") is tenant
    assert loaded.tenant_for_token("a-tenant-token-0123456789abcdeX") is None
    assert loaded.resolve(None, "acme") is ventas
    refused = loaded.resolve("default", "acme")
    assert isinstance(refused, Refusal) and refused.rule is Rule.profile and "ventas, plain" in refused.message
    assert [p.name for p in loaded.usable_by("acme")] == ["ventas", "plain"]
    assert [p.name for p in loaded.usable_by(None)] == ["default", "ventas", "plain"]
    # The tenant's limits join the profile's when the tenant calls.
    scoped = loaded.policy_for(ventas, "acme")
    assert [q.scope for q in scoped.quotas] == ["profile", "tenant"]
    assert scoped.quotas[1].setting == "callagent.toml [tenants.acme]"
    assert loaded.policy_for(ventas, None) is ventas.policy


def test_hash_token_is_the_hex_sha256() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()


def test_load_settings_and_load_profiles_turn_a_problem_into_a_settings_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[profiles.x]\nlanguage = "xx"\n')
    with pytest.raises(SettingsProblem, match=r"\[profiles\.x\] language: unknown language 'xx'"):
        load_profiles(plain_settings(path))
    monkeypatch.setenv("CALLAGENT_PROFILES_FILE", str(path))
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsProblem, match=r"callagent\.toml: \[profiles\.x\] language"):
            load_settings()
    finally:
        get_settings.cache_clear()


# -- what is refused at load -------------------------------------------------------------------------

WIDENING = [
    # (the override, the deployment's settings, the key, a fragment of the reason)
    ('countries = ["US", "CA"]', {}, "countries", "CA is not among the deployment's countries"),
    ('countries = ["*"]', {"DIAL_COUNTRIES": "US,CA"}, "countries", "'*' allows every country"),
    ('countries = ["001"]', {"DIAL_COUNTRIES": "*"}, "countries", "001 is not among"),
    ('allow = ["+1650*"]', {"DIAL_ALLOW": "+1415*"}, "allow", "+1650* is not on the deployment's allow list"),
    ('allow = ["+1*"]', {"DIAL_ALLOW": "+1415*"}, "allow", "+1* is not on the deployment's allow list"),
    ('allow = ["+14155550100"]', {"DIAL_CONFIRM": "unlisted"}, "allow", "DIAL_CONFIRM=unlisted"),
    ('quiet_hours = "22:00-07:00"', {}, "quiet_hours", "must include the deployment's quiet hours (21:00-08:00"),
    ('quiet_hours = "off"', {}, "quiet_hours", "must include the deployment's quiet hours"),
    ('quiet_hours = "21:00-08:00"', {"DIAL_QUIET_HOURS": "20:00-09:00"}, "quiet_hours", "(20:00-09:00"),
    ("max_concurrent = 4", {}, "max_concurrent", "4 is more than the deployment allows (DIAL_MAX_CONCURRENT=3)"),
    ("max_per_number_per_day = 3", {}, "max_per_number_per_day", "(DIAL_MAX_PER_NUMBER_PER_DAY=2)"),
    ("max_per_hour = 31", {}, "max_per_hour", "(DIAL_MAX_PER_HOUR=30)"),
    ('confirm = "never"', {"DIAL_CONFIRM": "unlisted"}, "confirm", "'never' asks less often"),
    ('confirm = "unlisted"', {"DIAL_CONFIRM": "always"}, "confirm", "'unlisted' asks less often"),
    ("allow_extensions = true", {}, "allow_extensions", "does not dial extensions"),
    pytest.param(
        "max_duration_s = 1801",
        {},
        "max_duration_s",
        "CALLAGENT_MAX_DURATION_CAP_S",
    ),
    pytest.param(
        'confirm = "unlisted"',
        {"DIAL_ALLOW": "+1415*"},
        "confirm",
        "",
    ),
]


@pytest.mark.parametrize(("override", "env", "key", "why"), WIDENING)
def test_a_widening_override_is_refused_at_load_naming_file_section_and_key(
    tmp_path: Path, override: str, env: dict[str, str], key: str, why: str
) -> None:
    message = problem(tmp_path, f"[profiles.w.policy]\n{override}\n", **env)
    assert f"[profiles.w.policy] {key}:" in message
    assert why in message
    if why:
        assert "may only" in message  # says why: a profile may only narrow


def test_confirm_unlisted_turns_an_allow_list_refusal_into_a_confirmation() -> None:
    """Why confirm='unlisted' is refused above, shown on the policies themselves."""
    settings = plain_settings(DIAL_ALLOW="+1415*", DIAL_QUIET_HOURS="off")
    deployment = DialPolicy.from_settings(settings)
    narrowed = DialPolicy.from_settings(settings.model_copy(update={"dial_confirm": "unlisted"}))
    now = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    refused = deployment.check("+16505550123", now=now, counts=Counts(), lists=Lists())
    assert isinstance(refused, Refusal) and refused.rule is Rule.allow_list
    asked = narrowed.check("+16505550123", now=now, counts=Counts(), lists=Lists())
    assert not isinstance(asked, Refusal)  # the profile would have it confirmed and dialed


def test_a_tenant_limit_above_the_deployments_is_refused(tmp_path: Path) -> None:
    body = f'[tenants.t]\ntoken_sha256 = "{TOKEN_HASH}"\nprofiles = ["default"]\nmax_per_hour = 31\n'
    message = problem(tmp_path, body)
    assert "[tenants.t] max_per_hour: 31 is more than the deployment allows (DIAL_MAX_PER_HOUR=30)" in message


@pytest.mark.parametrize(
    ("body", "where", "why"),
    [
        ('[profiles.a]\ncaler_name = "typo"\n', "[profiles.a] caler_name", "not a key callagent knows"),
        ("[profiles.a.policy]\nmax_calls = 2\n", "[profiles.a] policy.max_calls", "not a key callagent knows"),
        ('[profile.a]\ncaller_name = "x"\n', "[profile]", "not a key callagent knows"),
        ('[profiles.a]\nlanguage = "xx"\n', "[profiles.a] language", "unknown language 'xx'"),
        ('[profiles.a]\nlanguage = "english"\n', "[profiles.a] language", "es (Spanish)"),
        ('[profiles.a]\ncaller_ids = ["hello"]\n', "[profiles.a] caller_ids", "'hello' is not a number a call"),
        ('[profiles.a]\ncaller_ids = ["911"]\n', "[profiles.a] caller_ids", "emergency"),
        ('[profiles.a]\ncaller_ids = ["+14155550100 ext. 12"]\n', "[profiles.a] caller_ids", "extension"),
        ('[profiles.a.phrases]\ngreeting = "Hi"\n', "[profiles.a.phrases]", "unknown phrase 'greeting'"),
        ('[profiles.a.phrases]\nout_of_time = "Bye {caller_name}"\n', "[profiles.a.phrases]", "uses {caller_name}"),
        ('[profiles.a.phrases]\nout_of_time = "Bye {"\n', "[profiles.a.phrases]", "not a valid template"),
        ('[profiles.a.policy]\ncountries = ["UK"]\n', "[profiles.a] policy.countries", "unknown region UK"),
        ('[profiles.a.policy]\ndeny = ["call mom"]\n', "[profiles.a] policy.deny", "not a phone number"),
        ('[profiles.a]\ntransfer_numbers = ["+1415*"]\n', "[profiles.a] transfer_numbers", "is a prefix"),
        ('[profiles.a.policy]\nquiet_hours = "9-5"\n', "[profiles.a] policy.quiet_hours", "a window like 21:00-08:00"),
        ("[profiles.a.policy]\nmax_concurrent = 0\n", "[profiles.a] policy.max_concurrent", "greater than or equal"),
        ("[profiles.Sales]\n", "[profiles.Sales]", "lowercase"),
        ("this is = [not toml", "", "not valid TOML"),
        (
            f'[tenants.t]\ntoken_sha256 = "{TOKEN_HASH}"\nprofiles = ["default", "nope"]\n',
            "[tenants.t] profiles",
            "no profile named 'nope'",
        ),
        (f'[tenants.t]\ntoken_sha256 = "{TOKEN_HASH}"\nprofiles = []\n', "[tenants.t] profiles", "at least 1"),
        (
            f'[tenants.t]\ntoken_sha256 = "{TOKEN_HASH}"\nprofiles = ["default"]\n'
            f'[tenants.u]\ntoken_sha256 = "{TOKEN_HASH.upper()}"\nprofiles = ["default"]\n',
            "[tenants.u] token_sha256",
            "the same token as tenant 't'",
        ),
        (
            f'[tenants.operator]\ntoken_sha256 = "{TOKEN_HASH}"\nprofiles = ["default"]\n',
            "[tenants.operator]",
            "stands for the operator's own calls",
        ),
        ('[tenants.t]\ntoken_sha256 = "secret-token"\nprofiles = ["default"]\n', "[tenants.t] token_sha256", "pattern"),
        (f'[tenants.t]\ntoken_sha256 = "{TOKEN_HASH[:-1]}"\nprofiles = ["default"]\n', "[tenants.t] token_sha256", ""),
        (f'[tenants.t]\ntoken_sha256 = "{TOKEN_HASH}"\n', "[tenants.t] profiles", "required"),
    ],
)
def test_a_bad_file_is_refused_naming_file_section_and_key(tmp_path: Path, body: str, where: str, why: str) -> None:
    message = problem(tmp_path, body)
    assert where in message and why in message


# -- narrowing ---------------------------------------------------------------------------------------


def settings_for(db_url: str, livekit: FakeLiveKit, path: Path | None, **env: Any) -> Settings:
    extra = {"CALLAGENT_PROFILES_FILE": str(path)} if path is not None else {}
    return fake_livekit_settings(db_url, livekit.url, SECRET, **extra, **env)


@pytest.fixture
def toml_body() -> str:
    """The callagent.toml of the `service` fixture; a test overrides it with its own."""
    return ""


@pytest.fixture
def toml_env() -> dict[str, str]:
    return {}


@pytest.fixture
async def service(
    db_url: str, livekit: FakeLiveKit, tmp_path: Path, toml_body: str, toml_env: dict[str, str]
) -> AsyncIterator[CallService]:
    path = write(tmp_path, toml_body)
    s = CallService(settings_for(db_url, livekit, path, **toml_env))
    try:
        yield s
    finally:
        await s.aclose()


CAREFUL = """
[profiles.careful.policy]
deny = ["+1415555*"]
never_call = ["+14155550143"]
"""
NARROW = (
    CAREFUL
    + """
[profiles.canada.policy]
countries = ["CA"]
"""
)


@pytest.mark.anyio
@pytest.mark.parametrize("toml_body", [NARROW], ids=["narrow"])
@pytest.mark.parametrize("toml_env", [{"DIAL_COUNTRIES": "US,CA", "DIAL_DENY": "+1212*"}], ids=["env"])
async def test_a_narrower_profile_refuses_what_the_default_allows_naming_its_own_key(
    service: CallService, store: Database, livekit: FakeLiveKit
) -> None:
    allowed = await service.preflight(CallArgs(NUMBER))
    assert isinstance(allowed, Prepared) and isinstance(allowed.decision, Allowed)
    assert allowed.request.profile == DEFAULT_PROFILE

    with pytest.raises(Refused) as info:
        await service.place(CallArgs(NUMBER, profile="canada"))
    refusal = info.value.refusal
    assert refusal.rule is Rule.country and refusal.setting == "callagent.toml [profiles.canada.policy] countries"
    assert "setting callagent.toml [profiles.canada.policy] countries" in str(info.value)

    # deny adds to DIAL_DENY: refused under the profile, named by its key.
    denied = await service.preflight(CallArgs(NUMBER, profile="careful"))
    assert isinstance(denied, Refusal) and denied.rule is Rule.deny_list
    assert denied.setting == "callagent.toml [profiles.careful.policy] deny"
    # never_call adds to DIAL_NEVER_CALL.
    assert isinstance(await service.preflight(CallArgs("+14155550143")), Prepared)
    never = await service.preflight(CallArgs("+14155550143", profile="careful"))
    assert isinstance(never, Refusal) and never.rule is Rule.sensitive_number
    # The deployment's own deny list still holds under the profile.
    global_deny = await service.preflight(CallArgs("+12125550100", profile="careful"))
    assert isinstance(global_deny, Refusal) and global_deny.rule is Rule.deny_list

    (kept,) = store.refusals.recent()  # only place() keeps a refusal; preflight writes nothing
    assert kept.rule == "country" and kept.setting == "callagent.toml [profiles.canada.policy] countries"
    assert store.calls.page()[0] == [] and livekit.count == 0


@pytest.mark.anyio
@pytest.mark.parametrize("toml_body", [CAREFUL], ids=["careful"])
@pytest.mark.parametrize("toml_env", [{"DIAL_DENY": "+1212*"}], ids=["env"])
async def test_a_number_on_dial_deny_is_named_dial_deny_under_a_profile_with_its_own_deny_list(
    service: CallService,
) -> None:
    refusal = await service.preflight(CallArgs("+12125550100", profile="careful"))
    assert isinstance(refusal, Refusal) and refusal.rule is Rule.deny_list
    assert refusal.setting == "DIAL_DENY"


@pytest.mark.anyio
@pytest.mark.parametrize("toml_body", [CAREFUL], ids=["careful"])
async def test_a_profiles_never_call_refusal_names_its_key(service: CallService) -> None:
    refusal = await service.preflight(CallArgs("+14155550143", profile="careful"))
    assert isinstance(refusal, Refusal) and refusal.rule is Rule.sensitive_number
    assert refusal.setting == "callagent.toml [profiles.careful.policy] never_call"


# -- caller IDs, and what a profile adds to the request --------------------------------------------

SPANISH = """
[profiles.es]
caller_name = "Clínica Sol"
language = "es"
voice = "nova"
tts_model = "tts-es"
stt_model = "stt-es"
llm_model = "llm-es"
instructions = "Habla despacio."
sip_trunk = "ST_spanish"
caller_ids = ["+1 415 555 0199", "+14155550198"]

[profiles.es.phrases]
out_of_time = "Lo siento, se nos acabó el tiempo. Adiós."
"""


def dispatched(livekit: FakeLiveKit, call_id: str) -> CallRequest:
    """The request the worker would get: the dispatch's metadata, as the fake LiveKit got it."""
    (dispatch,) = livekit.rooms[f"call-{call_id}"].dispatches
    return CallRequest.from_metadata(dispatch.metadata)


@pytest.mark.anyio
@pytest.mark.parametrize("toml_body", [SPANISH], ids=["spanish"])
async def test_a_caller_id_on_the_list_reaches_livekit_with_the_profiles_trunk(
    service: CallService, livekit: FakeLiveKit, store: Database
) -> None:
    placed = await service.place(CallArgs(NUMBER, goal="Confirmar la cita", profile="es", caller_id="(415) 555-0199"))
    assert isinstance(placed, Placed)
    record = placed.record
    assert record.profile == "es" and record.language == "es" and record.caller_id == "+14155550199"
    assert record.caller_name == "Clínica Sol" and record.tenant is None
    stored = store.calls.get(record.call_id)
    assert stored is not None and stored.profile == "es" and stored.caller_id == "+14155550199"
    (sip,) = livekit.sip_requests
    assert sip.sip_number == "+14155550199" and sip.sip_trunk_id == "ST_spanish"
    assert sip.sip_call_to == NUMBER
    request = dispatched(livekit, record.call_id)
    assert request.profile == "es" and request.language == "es" and request.caller_name == "Clínica Sol"
    assert (request.tts_voice, request.tts_model, request.stt_model, request.llm_model) == (
        "nova",
        "tts-es",
        "stt-es",
        "llm-es",
    )
    assert request.instructions == "Habla despacio." and request.sip_trunk_id == "ST_spanish"
    assert request.phrases == {"out_of_time": "Lo siento, se nos acabó el tiempo. Adiós."}
    assert request.caller_id == "+14155550199"

    # The default profile: the settings' trunk, LiveKit's pick of caller ID, nothing added.
    plain = await service.place(CallArgs("+14155550144"))
    assert isinstance(plain, Placed) and plain.record.profile == DEFAULT_PROFILE and plain.record.caller_id is None
    sip = livekit.sip_requests[-1]
    assert sip.sip_number == "" and sip.sip_trunk_id == "ST_test"
    request = dispatched(livekit, plain.record.call_id)
    assert request.language == "en" and request.instructions is None and request.tts_voice is None
    assert (
        request.phrases == {} and request.sip_trunk_id is None and request.caller_name == service.settings.caller_name
    )


@pytest.mark.anyio
@pytest.mark.parametrize("toml_body", [SPANISH], ids=["spanish"])
@pytest.mark.parametrize(
    ("profile", "caller_id", "why"),
    [
        ("es", "+14155550177", "is not one of profile 'es''s numbers"),
        ("es", "not a number", "is not one of profile 'es''s numbers"),
        (None, "+14155550199", "profile 'default' has no caller IDs"),
    ],
)
async def test_a_caller_id_off_the_list_is_refused_before_anything_is_created(
    service: CallService,
    livekit: FakeLiveKit,
    store: Database,
    profile: str | None,
    caller_id: str,
    why: str,
) -> None:
    with pytest.raises(Refused) as info:
        await service.place(CallArgs(NUMBER, profile=profile, caller_id=caller_id))
    refusal = info.value.refusal
    section = f"callagent.toml [profiles.{profile or 'default'}] caller_ids"
    assert refusal.rule is Rule.caller_id and refusal.setting == section and why in refusal.message
    assert "0177" not in refusal.message or "+*******0177" in refusal.message  # the number masked
    assert store.calls.page()[0] == []
    (kept,) = store.refusals.recent()
    assert kept.rule == "caller_id" and kept.setting == section
    assert livekit.count == 0 and livekit.sip_requests == []


# -- a profile's own limits ----------------------------------------------------------------------------

LIMITED = """
[profiles.one.policy]
max_concurrent = 1

[profiles.other]
"""


@pytest.mark.anyio
@pytest.mark.parametrize("toml_body", [LIMITED], ids=["limited"])
@pytest.mark.parametrize("toml_env", [{"DIAL_MAX_CONCURRENT": "5"}], ids=["env"])
async def test_a_profiles_max_concurrent_counts_its_own_calls_only(
    service: CallService, store: Database, livekit: FakeLiveKit
) -> None:
    # Two live calls of other profiles: DIAL_MAX_CONCURRENT (5) has room for more.
    for number, profile in (("+14155550150", None), ("+14155550151", "other")):
        assert isinstance(await service.place(CallArgs(number, profile=profile)), Placed)
    first = await service.place(CallArgs("+14155550152", profile="one"))
    assert isinstance(first, Placed) and first.record.profile == "one"
    with pytest.raises(Refused) as info:
        await service.place(CallArgs("+14155550153", profile="one"))
    refusal = info.value.refusal
    assert refusal.rule is Rule.max_concurrent
    assert refusal.setting == "callagent.toml [profiles.one.policy] max_concurrent"
    assert refusal.message.startswith("profile: 1 calls are already live and at most 1")
    assert len(store.calls.page()[0]) == 3 and len(livekit.sip_requests) == 3
    # The other profiles still may: only the profile's own calls filled its limit.
    assert isinstance(await service.place(CallArgs("+14155550154", profile="other")), Placed)


def test_create_if_admitted_counts_a_profiles_limit_on_its_calls(tmp_path: Path, store: Database) -> None:
    """The race-free check under the store's write lock, with the profile's policy."""
    one = load(plain_settings(write(tmp_path, LIMITED), DIAL_MAX_CONCURRENT="5")).profiles["one"]

    def admit(record: CallRecord) -> Any:
        return store.calls.create_if_admitted(record, lambda counts, dnc: one.policy.admit(NUMBER, counts, dnc))

    store.calls.create(make_record(CallStatus.in_progress, profile="other", phone_number="+14155550150"))
    store.calls.create(make_record(CallStatus.ringing, phone_number="+14155550151"))  # the default profile
    created = admit(make_record(profile="one", phone_number="+14155550152"))
    assert isinstance(created, CallRecord) and created.profile == "one"
    refused = admit(make_record(profile="one", phone_number="+14155550153"))
    assert isinstance(refused, Refusal) and refused.rule is Rule.max_concurrent
    assert refused.setting == "callagent.toml [profiles.one.policy] max_concurrent"
    # Once its call ended, the profile has room again; the others' calls never counted.
    store.calls.transition(created.call_id, CallStatus.completed, end_reason=EndReason.agent_ended)
    assert isinstance(admit(make_record(profile="one", phone_number="+14155550154")), CallRecord)
    assert len(store.calls.page()[0]) == 4


# -- the server refuses a bad file -----------------------------------------------------------------


def test_the_server_exits_2_naming_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[profiles.loud.policy]\nmax_concurrent = 99\n")
    monkeypatch.setenv("CALLAGENT_PROFILES_FILE", str(path))
    monkeypatch.setenv("CALLAGENT_DB_URL", f"sqlite:///{tmp_path / 'calls.db'}")
    get_settings.cache_clear()
    try:
        assert server_main(["--transport", "stdio"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("callagent: ")
    assert f"{path} [profiles.loud.policy] max_concurrent: 99 is more than the deployment allows" in err
    assert not (tmp_path / "calls.db").exists()  # nothing was opened


def test_profiles_problem_is_a_whole_profiles_object_or_nothing(tmp_path: Path) -> None:
    """One bad profile among good ones: the file is refused as a whole, not half loaded."""
    body = '[profiles.good]\ncaller_name = "Good"\n\n[profiles.bad.policy]\nmax_per_hour = 1000\n'
    path = write(tmp_path, body)
    with pytest.raises(ProfilesProblem, match=r"\[profiles\.bad\.policy\] max_per_hour"):
        load(plain_settings(path))
    assert isinstance(load(plain_settings(write(tmp_path, body.split("\n\n")[0]))), Profiles)


def test_the_example_file_in_the_repository_loads() -> None:
    """callagent.toml.example is what the README points operators at: it must be a valid file."""
    example = Path(__file__).resolve().parents[2] / "callagent.toml.example"
    loaded = load(plain_settings(example))
    clinic = loaded.profiles["clinic-es"]
    assert (clinic.language, clinic.caller_name, clinic.caller_ids) == ("es", "Clínica Sol", ("+14155550190",))
    assert clinic.policy.quotas and clinic.policy.quotas[0].limits.max_concurrent == 2
