"""Crisis lines, helplines and other sensitive public-service numbers are never dialed.

Table-driven: every number of the brief, in the ways people and LLMs write it, is refused with
rule `sensitive_number` by `check_number` and by the policy, under the default settings and
with every setting that could let a number through; the ordinary numbers next to them are not.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from phonenumbers import shortnumberinfo

from callagent import sensitive_numbers
from callagent import settings as settings_module
from callagent.numbers import (
    DialTarget,
    EmergencyNumber,
    InvalidNumber,
    NumberRefused,
    Refusal,
    Rule,
    SensitiveNumber,
    check_number,
    normalize,
)
from callagent.policy import Allowed, Counts, DialPolicy, Lists, VolumeLimits
from callagent.sensitive_numbers import (
    COUNTRY_ADJECTIVES,
    EU_116_REGIONS,
    EU_116_SERVICES,
    SERVICES,
)
from callagent.settings import Settings, get_settings

NOON_UTC = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

# (written as, default region, a fragment of the refusal naming the service)
CURATED: list[tuple[str, str, str]] = [
    # -- US --
    ("988", "US", "US 988 Suicide & Crisis Lifeline"),
    ("9-8-8", "US", "988 Suicide & Crisis Lifeline"),
    ("(988)", "US", "988 Suicide & Crisis Lifeline"),
    ("+1 988", "GB", "988 Suicide & Crisis Lifeline"),
    ("988,,1", "US", "988 Suicide & Crisis Lifeline"),  # 988, press 1: the Veterans Crisis Line
    ("988 1", "US", "988 Suicide & Crisis Lifeline"),
    ("+1 800 273 8255", "US", "Suicide & Crisis Lifeline's former number"),
    ("+18002738255", "GB", "Suicide & Crisis Lifeline's former number"),
    ("1-800-273-8255", "US", "Suicide & Crisis Lifeline's former number"),
    ("(800) 273-8255", "US", "Suicide & Crisis Lifeline's former number"),
    ("800.273.8255", "US", "Suicide & Crisis Lifeline's former number"),
    ("1 800 273 8255 x1", "US", "Suicide & Crisis Lifeline's former number"),
    ("011 1 800 273 8255", "US", "Suicide & Crisis Lifeline's former number"),
    ("1-800-273-TALK", "US", "Suicide & Crisis Lifeline's former number"),
    ("1-800-SUICIDE", "US", "1-800-SUICIDE line"),
    ("1-800-799-7233", "US", "National Domestic Violence Hotline"),
    ("+1 (800) 799-7233", "DE", "National Domestic Violence Hotline"),
    ("1-800-799-SAFE", "US", "National Domestic Violence Hotline"),
    ("1-800-787-3224", "US", "National Domestic Violence Hotline TTY"),
    ("88788", "US", "National Domestic Violence Hotline text line"),
    ("1-800-222-1222", "US", "Poison Control"),
    ("+1 800 222 1222", "CA", "Poison Control"),
    ("1-800-422-4453", "US", "Childhelp"),
    ("1-800-656-4673", "US", "RAINN"),
    ("1-800-656-HOPE", "US", "RAINN"),
    ("838255", "US", "Veterans Crisis Line text line"),
    ("1-800-799-4889", "US", "Veterans Crisis Line TTY"),
    ("1-866-488-7386", "US", "Trevor Project"),
    ("1-877-565-8860", "US", "Trans Lifeline"),
    ("1-800-662-4357", "US", "SAMHSA National Helpline"),
    ("1-800-662-HELP", "US", "SAMHSA National Helpline"),
    ("741741", "US", "Crisis Text Line"),
    # -- Canada --
    ("988", "CA", "Canadian 9-8-8 Suicide Crisis Helpline"),
    ("1-800-668-6868", "CA", "Canadian Kids Help Phone"),
    ("+1 800 668 6868", "US", "Canadian Kids Help Phone"),
    ("686868", "CA", "Kids Help Phone text line"),
    ("1-833-456-4566", "CA", "Talk Suicide Canada"),
    ("45645", "CA", "Talk Suicide Canada text line"),
    # -- UK --
    ("116 123", "GB", "UK Samaritans"),
    ("116123", "GB", "UK Samaritans"),
    ("+44 116 123", "US", "UK Samaritans"),
    ("+44116123", "US", "UK Samaritans"),
    ("011 44 116 123", "US", "UK Samaritans"),
    ("00 44 116 123", "DE", "UK Samaritans"),
    ("0800 1111", "GB", "UK Childline"),
    ("+44 800 1111", "US", "UK Childline"),
    ("+44 (0)800 1111", "US", "UK Childline"),
    ("+44 0800 1111", "US", "UK Childline"),
    ("0808 800 5000", "GB", "NSPCC"),
    ("0808 2000 247", "GB", "National Domestic Abuse Helpline"),
    ("+44 808 2000 247", "US", "National Domestic Abuse Helpline"),
    ("85258", "GB", "Shout"),
    ("111", "GB", "NHS 111"),
    ("+44 111", "US", "NHS 111"),
    # -- Germany --
    ("0800 111 0 111", "DE", "German Telefonseelsorge"),
    ("0800-111-0-111", "DE", "German Telefonseelsorge"),
    ("+49 800 1110111", "US", "German Telefonseelsorge"),
    ("+49 (0)800 111 0 111", "GB", "German Telefonseelsorge"),
    ("0800 111 0 222", "DE", "German Telefonseelsorge"),
    ("+49 800 111 0 222", "US", "German Telefonseelsorge"),
    ("116 123", "DE", "German Telefonseelsorge"),
    ("+49 116 123", "US", "German Telefonseelsorge"),
    ("116 111", "DE", "Nummer gegen Kummer"),
    ("0800 111 0 550", "DE", "Nummer gegen Kummer, Elterntelefon"),
    ("116 016", "DE", "Hilfetelefon Gewalt gegen Frauen"),
    ("+49 116 016", "US", "Hilfetelefon Gewalt gegen Frauen"),
    ("08000 116 016", "DE", "Hilfetelefon Gewalt gegen Frauen"),
    ("116 1234", "DE", "German Telefonseelsorge"),  # 116 123 dialed, then more digits
    # -- France --
    ("3114", "FR", "French numéro national de prévention du suicide"),
    ("+33 3114", "US", "prévention du suicide"),
    ("119", "FR", "Allô Enfance en Danger"),
    ("+33 119", "GB", "Allô Enfance en Danger"),
    ("3919", "FR", "Violences Femmes Info"),
    ("116 006", "FR", "France Victimes"),
    ("+33 116 006", "US", "France Victimes"),
    # -- Ireland --
    ("116 123", "IE", "Samaritans Ireland"),
    ("1800 66 66 66", "IE", "ISPCC Childline"),
    ("+353 1800 666 666", "US", "ISPCC Childline"),
    ("1800 341 900", "IE", "Women's Aid"),
    ("1800 247 247", "IE", "Pieta"),
    ("50808", "IE", "Irish text-message crisis service"),
    # -- Australia --
    ("13 11 14", "AU", "Australian Lifeline"),
    ("131114", "AU", "Australian Lifeline"),
    ("+61 13 11 14", "US", "Australian Lifeline"),
    ("1800 55 1800", "AU", "Kids Helpline"),
    ("1800 737 732", "AU", "1800RESPECT"),
    ("+61 1800 737 732", "GB", "1800RESPECT"),
    ("1300 22 4636", "AU", "Beyond Blue"),
    ("1300 224 636", "AU", "Beyond Blue"),
    # -- New Zealand --
    ("1737", "NZ", "1737 Need to talk?"),
    ("+64 1737", "AU", "1737 Need to talk?"),
    ("0800 543 354", "NZ", "Lifeline Aotearoa"),
    ("+64 800 543 354", "US", "Lifeline Aotearoa"),
    # -- Spain --
    ("024", "ES", "Línea 024"),
    ("+34 024", "US", "Línea 024"),
    ("016", "ES", "violencia de género"),
    ("+34 016", "FR", "violencia de género"),
    # -- Italy --
    ("19696", "IT", "Telefono Azzurro"),
    ("1522", "IT", "antiviolenza"),
    ("114", "IT", "Emergenza Infanzia"),
    ("+39 02 2327 2327", "US", "Telefono Amico"),
    # -- Netherlands --
    ("113", "NL", "Dutch 113 Zelfmoordpreventie"),
    ("+31 113", "US", "113 Zelfmoordpreventie"),
    ("0800 0113", "NL", "113 Zelfmoordpreventie"),
    ("0800-0113", "NL", "113 Zelfmoordpreventie"),
    ("+31 800 0113", "US", "113 Zelfmoordpreventie"),
    ("0800 0432", "NL", "Kindertelefoon"),
]

# The European 116 range: the five harmonised services, in every EU/EEA country and the UK,
# typed there and written with the country's code from elsewhere.
EU_116: list[tuple[str, str, str]] = []
for _region in sorted(EU_116_REGIONS):
    _cc = phonenumbers.country_code_for_region(_region)
    for _code in ("116000", "116006", "116111", "116117", "116123"):
        _spaced = f"{_code[:3]} {_code[3:]}"
        EU_116.append((_spaced, _region, COUNTRY_ADJECTIVES[_region]))
        EU_116.append((f"+{_cc} {_spaced}", "US", COUNTRY_ADJECTIVES[_region]))

_NAMED = {(raw, region) for raw, region, _ in CURATED}
ALL_CURATED = CURATED + [row for row in EU_116 if row[:2] not in _NAMED]
IDS = [f"{raw} [{region}]" for raw, region, _ in ALL_CURATED]

# Ordinary numbers next to the listed ones: never refused for being sensitive.
ORDINARY: list[tuple[str, str]] = [
    ("+1 800 273 8256", "US"),  # one off the old Lifeline number
    ("+1 800 273 8254", "US"),
    ("+1 800 799 7234", "US"),
    ("+1 800 222 1223", "US"),
    ("+1 800 555 0199", "US"),
    ("+44 20 7946 0958", "US"),  # a regular London number
    ("020 7946 0958", "GB"),
    ("0116 123 4567", "GB"),  # Leicester: starts with 0116 123, is not 116 123
    ("+44 116 123 4567", "US"),
    ("+49 30 19241", "US"),  # next to Giftnotruf Berlin
    ("+61 2 9374 4000", "US"),
    *[(f"+1 415 555 01{i:02d}", "US") for i in range(100)],  # the fictional test numbers
]


def _refusal_of(raw: str, region: str) -> NumberRefused:
    with pytest.raises(NumberRefused) as info:
        check_number(raw, region)
    return info.value


# -- every listed number, every form ---------------------------------------------------------


def test_the_tables_are_big() -> None:
    assert len(CURATED) >= 100 and len(EU_116) == 2 * 5 * len(EU_116_REGIONS)
    assert len(ALL_CURATED) > len(CURATED) + 280
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("raw,region,named", ALL_CURATED, ids=IDS)
def test_check_number_refuses_and_names_the_service(raw: str, region: str, named: str) -> None:
    exc = _refusal_of(raw, region)
    assert isinstance(exc, SensitiveNumber), exc
    assert exc.rule == Rule.sensitive_number and exc.setting is None
    message = str(exc)
    assert named in message
    assert "callagent never dials crisis lines, helplines or other sensitive public-service numbers" in message
    assert "a person needing it must call themselves" in message
    assert exc.refusal == Refusal(Rule.sensitive_number, message, None)
    assert "no setting changes this" in exc.refusal.text()


@pytest.mark.parametrize("raw,region,named", ALL_CURATED, ids=IDS)
@pytest.mark.parametrize("countries", [None, ("*",), ("*", "001")], ids=["default", "anywhere", "anywhere+001"])
def test_the_policy_refuses_under_default_settings_and_anywhere(
    raw: str, region: str, named: str, countries: tuple[str, ...] | None
) -> None:
    policy = DialPolicy(default_region=region, countries=countries)
    refusal = policy.parse_number(raw)
    assert isinstance(refusal, Refusal) and refusal.rule == Rule.sensitive_number, refusal


# Settings that could otherwise let a number through; none may.
def _permissive(e164: str | None, region: str) -> list[DialPolicy]:
    allow = (e164,) if e164 else ()
    base: dict[str, Any] = {
        "default_region": region,
        "countries": ("*", "001"),
        "quiet_hours": None,
        "allow_extensions": True,
        "limits": VolumeLimits(100, 100, 1000),
    }
    return [
        DialPolicy(**base),
        DialPolicy(**base, allow=allow),
        DialPolicy(**base, allow=(*allow, "+1*", "+4*", "+3*", "+6*"), confirm="unlisted"),
        DialPolicy(**base, allow=allow, confirm="always"),
        DialPolicy(**base, confirm="unlisted"),
    ]


@pytest.mark.parametrize("raw,region,named", ALL_CURATED, ids=IDS)
def test_no_setting_lets_a_listed_number_through(raw: str, region: str, named: str) -> None:
    e164: str | None
    try:
        e164 = normalize(raw, region)
    except InvalidNumber:  # a short code, or letters: never an E.164 number to list or check
        e164 = None
    for policy in _permissive(e164, region):
        refusal = policy.parse_number(raw)
        assert isinstance(refusal, Refusal) and refusal.rule == Rule.sensitive_number, (policy, refusal)
        if e164 is not None:  # check() re-checks the number on its own, confirmed or not
            for confirmed in (False, True):
                decision = policy.check(e164, now=NOON_UTC, counts=Counts(), lists=Lists(), confirmed=confirmed)
                assert isinstance(decision, Refusal) and decision.rule == Rule.sensitive_number, (policy, decision)
                assert decision.setting is None


def test_check_refuses_a_short_code_passed_straight_to_it() -> None:
    for number, region in [("988", "US"), ("+44116123", "US"), ("116123", "DE"), ("113", "NL")]:
        decision = DialPolicy(default_region=region, countries=("*",)).check(
            number, now=NOON_UTC, counts=Counts(), lists=Lists(), confirmed=True
        )
        assert isinstance(decision, Refusal) and decision.rule == Rule.sensitive_number


@pytest.mark.parametrize("raw,region,named", ALL_CURATED, ids=IDS)
def test_the_refusal_masks_the_number(raw: str, region: str, named: str) -> None:
    message = str(_refusal_of(raw, region))
    shown = message.split(" is ", 1)[0]
    assert "*" in shown  # the number as written, masked
    assert raw not in message or len(re.sub(r"[^0-9]", "", raw)) <= 4
    try:
        number = phonenumbers.parse(normalize(raw, region))
    except InvalidNumber:
        return
    digits = re.sub(r"[^0-9]", "", message)
    assert phonenumbers.national_significant_number(number) not in digits
    assert normalize(raw, region)[1:] not in digits


# -- ordinary numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("raw,region", ORDINARY, ids=[f"{r} [{g}]" for r, g in ORDINARY])
def test_ordinary_numbers_next_to_them_are_not_refused(raw: str, region: str) -> None:
    target = check_number(raw, region)
    assert isinstance(target, DialTarget)
    policy = DialPolicy(default_region=region, countries=("*",), quiet_hours=None)
    assert isinstance(policy.check(target.e164, now=NOON_UTC, counts=Counts(), lists=Lists()), Allowed)


def test_the_default_policy_still_calls_the_bed_numbers() -> None:
    for i in range(100):
        number = f"+1 415 555 01{i:02d}"
        target = DialPolicy().parse_number(number)
        assert isinstance(target, DialTarget), target


@pytest.mark.parametrize(
    "raw,region,rule",
    [
        # Emergency numbers stay emergency numbers: only a crisis line's own country counts.
        ("+39 113", "US", Rule.emergency_number),  # Italy's police; 113 is a crisis line in NL only
        ("113", "IT", Rule.emergency_number),
        ("+64 111", "US", Rule.emergency_number),  # NZ's emergency number; 111 is NHS 111 in the UK
        ("111", "NZ", Rule.emergency_number),
        ("112", "DE", Rule.emergency_number),
        ("911", "US", Rule.emergency_number),
        # A 116 number outside the European range is just not a number.
        ("116 123", "US", Rule.invalid_number),
        ("1-800-FLOWERS", "US", Rule.invalid_characters),
    ],
)
def test_other_rules_keep_their_numbers(raw: str, region: str, rule: str) -> None:
    assert _refusal_of(raw, region).rule == rule


def test_the_whole_european_116_range_is_refused() -> None:
    for region in sorted(EU_116_REGIONS):
        cc = phonenumbers.country_code_for_region(region)
        for code in ("116000", "116499", "116999"):
            assert _refusal_of(f"+{cc}{code}", "US").rule == Rule.sensitive_number
    message = str(_refusal_of("+48 116 555", "US"))
    assert "Polish harmonised 116 number" in message
    assert "Polish harmonised hotline for missing children" in str(_refusal_of("116 000", "PL"))


# -- DIAL_NEVER_CALL -------------------------------------------------------------------------


NEVER = ("+14155550123", "+1212*")


@pytest.mark.parametrize("raw", ["+1 415 555 0123", "(415) 555-0123", "+1 212 555 0100", "212-555-0199"])
def test_dial_never_call_entries_are_refused(raw: str) -> None:
    with pytest.raises(SensitiveNumber) as info:
        check_number(raw, "US", never_call=NEVER)
    assert info.value.rule == Rule.sensitive_number and info.value.setting == "DIAL_NEVER_CALL"
    message = str(info.value)
    assert "DIAL_NEVER_CALL" in message and "4155550123" not in message.replace(" ", "")
    for policy in _permissive(normalize(raw, "US"), "US"):
        policy = replace(policy, never_call=NEVER)
        refusal = policy.parse_number(raw)
        assert isinstance(refusal, Refusal) and refusal.rule == Rule.sensitive_number
        assert refusal.setting == "DIAL_NEVER_CALL"
        decision = policy.check(normalize(raw, "US"), now=NOON_UTC, counts=Counts(), lists=Lists(), confirmed=True)
        assert isinstance(decision, Refusal) and decision.rule == Rule.sensitive_number


def test_numbers_off_the_never_call_list_pass() -> None:
    policy = DialPolicy(never_call=NEVER, quiet_hours=None)
    for raw in ("+1 415 555 0124", "+1 415 555 0100"):
        target = policy.parse_number(raw)
        assert isinstance(target, DialTarget)
        assert isinstance(policy.check(target.e164, now=NOON_UTC, counts=Counts(), lists=Lists()), Allowed)


def test_dial_never_call_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for f in Settings.model_fields.values():
        if f.validation_alias:
            monkeypatch.delenv(str(f.validation_alias), raising=False)
    monkeypatch.setattr(settings_module, "ENV_FILE", tmp_path / "none" / ".env")
    monkeypatch.setenv("DIAL_NEVER_CALL", "(415) 555-0123, +1 212*")
    monkeypatch.setenv("DIAL_QUIET_HOURS", "off")
    get_settings.cache_clear()
    try:
        policy = DialPolicy.from_settings(get_settings())
    finally:
        get_settings.cache_clear()
    assert policy.never_call == NEVER
    refusal = policy.parse_number("+1 415 555 0123")
    assert isinstance(refusal, Refusal) and refusal.rule == Rule.sensitive_number
    assert isinstance(policy.check("+14155550100", now=NOON_UTC, counts=Counts(), lists=Lists()), Allowed)
    assert DialPolicy.from_settings(Settings(_env_file=None)).parse_number("988") == DialPolicy().parse_number("988")


# -- the list itself -------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=[f"{s.country} {s.number}" for s in SERVICES])
def test_every_listed_number_is_refused_where_it_is_dialed(service: sensitive_numbers.Service) -> None:
    assert service.country in COUNTRY_ADJECTIVES and service.name and service.category
    number = phonenumbers.parse(service.number, service.country)
    if service.is_short_code:
        assert service.number.isdigit()
        # Matched before validity: phonenumbers must not take it for a full number.
        assert not phonenumbers.is_valid_number(number)
        # An emergency number keeps its own rule; none is listed here.
        assert not shortnumberinfo.is_emergency_number(service.number, service.country)
        forms = [service.number, f"+{number.country_code} {service.number}"]
    else:
        assert phonenumbers.is_valid_number(number), service
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == service.number
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        forms = [
            service.number,
            national,
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        ]
        # Names appear in refusals: never the full number.
        assert phonenumbers.national_significant_number(number) not in re.sub(r"[^0-9]", "", service.name)
    for raw in forms:
        for countries in (None, ("*",)):
            refusal = DialPolicy(default_region=service.country, countries=countries).parse_number(raw)
            assert isinstance(refusal, Refusal) and refusal.rule == Rule.sensitive_number, (raw, refusal)


def test_the_harmonised_116_services() -> None:
    assert set(EU_116_SERVICES) == {"116000", "116006", "116111", "116117", "116123"}
    assert {"DE", "FR", "IT", "ES", "NL", "IE", "PL", "SE", "NO", "IS", "LI", "GB"} <= EU_116_REGIONS
    assert "US" not in EU_116_REGIONS and "CH" not in EU_116_REGIONS
    # The range holds no ordinary number in any of these countries.
    for region in EU_116_REGIONS:
        cc = phonenumbers.country_code_for_region(region)
        assert not any(phonenumbers.is_valid_number(phonenumbers.parse(f"+{cc}116{x:03d}")) for x in range(0, 1000, 7))


def test_the_list_module_is_pure_data() -> None:
    tree = ast.parse(inspect.getsource(sensitive_numbers))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {"__future__", "re", "dataclasses"}
    assert not any(isinstance(n, ast.Name) and n.id == "open" for n in ast.walk(tree))
    doc = sensitive_numbers.__doc__ or ""
    assert "2007/116/EC" in doc and "publishes" in doc


def test_the_rule_has_no_setting_and_describe_mentions_it() -> None:
    from callagent.policy import describe

    info = describe(DialPolicy())
    assert info["settings"][Rule.sensitive_number] is None
    assert any("crisis lines, helplines" in item and "116" in item for item in info["never_called"])
    assert EmergencyNumber is not SensitiveNumber and issubclass(SensitiveNumber, NumberRefused)
