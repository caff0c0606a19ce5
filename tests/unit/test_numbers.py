from __future__ import annotations

import phonenumbers
import pytest

from callagent.numbers import (
    CostlyNumber,
    DialTarget,
    EmergencyNumber,
    ExtensionNotAllowed,
    InvalidNumber,
    NoPersonNumber,
    NumberRefused,
    Refusal,
    SensitiveNumber,
    check_number,
    mask,
    mask_numbers_in_text,
    normalize,
    time_zones,
)


@pytest.mark.parametrize(
    "raw,region,expected",
    [
        ("+1 415 555 0100", "US", "+14155550100"),
        ("+14155550100", "GB", "+14155550100"),  # international form ignores the region
        ("(415) 555-0101", "US", "+14155550101"),
        ("415.555.0102", "US", "+14155550102"),
        ("1-415-555-0103", "US", "+14155550103"),
        ("  415 555 0104  ", "us", "+14155550104"),
        ("+1 (212) 555-1234", "US", "+12125551234"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "US", "+442079460958"),
        ("030 901820", "DE", "+4930901820"),
        ("+49 30 901820", "US", "+4930901820"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_normalize_good_numbers(raw: str, region: str, expected: str) -> None:
    assert normalize(raw, region) == expected


@pytest.mark.parametrize("suffix", ["0100", "0105", "0107", "0199"])
def test_normalize_accepts_the_bed_magic_numbers(suffix: str) -> None:
    assert normalize(f"+1 415 555 {suffix}", "US") == f"+1415555{suffix}"


@pytest.mark.parametrize("area_code", ["200", "555", "999"])
def test_normalize_accepts_fictional_555_01xx_that_phonenumbers_calls_invalid(area_code: str) -> None:
    number = phonenumbers.parse(f"+1{area_code}5550123")
    # The premise: phonenumbers thinks it possible but not valid.
    assert phonenumbers.is_possible_number(number)
    assert not phonenumbers.is_valid_number(number)
    assert normalize(f"({area_code}) 555-0123", "US") == f"+1{area_code}5550123"


@pytest.mark.parametrize(
    "raw,fragments",
    [
        ("+1 415 555", ["'+1 415 555' is not a valid phone number (too short)", "CALLAGENT_DEFAULT_REGION"]),
        ("+1 415 555 01001", ["too long"]),
        ("+1 415 123 4567", ["not a valid phone number"]),  # exchanges never start with 1
        ("+1 200 555 1234", ["not a valid phone number"]),  # not assigned, and not 555-01XX
        ("+1 211 555 0100", ["not a valid phone number"]),  # N11 is a service code, not an area
        ("+1 415 555 01", ["too short"]),
        ("555 0100", ["missing its area code"]),
        ("+999 123 4567", ["unknown country code"]),
        ("", ["no phone number given"]),
        ("   ", ["no phone number given"]),
        ("415 555 O1OO", ["contains 'O'", "digits, spaces and + - ( ) ."]),
        ("1-800-FLOWERS", ["contains", "may only contain digits"]),
        ("tel:+14155550100", ["contains"]),
        ("+1 415 555 0100 ext. 12", ["contains"]),
        ("+1 415 555 0100;", ["contains ';'"]),
        ("4" * 100, ["too long to be a phone number"]),
        ("abc", ["contains"]),
        ("+", ["not a valid phone number"]),
    ],
)
def test_normalize_rejects_with_a_message(raw: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidNumber) as info:
        normalize(raw, "US")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "international form" in message


def test_normalize_unknown_region_says_so() -> None:
    with pytest.raises(InvalidNumber, match="default region 'ZZ' is not a known country"):
        normalize("415 555 0100", "ZZ")
    # With a "+" the region does not matter.
    assert normalize("+1 415 555 0100", "ZZ") == "+14155550100"


def test_invalid_number_is_a_value_error() -> None:
    assert issubclass(InvalidNumber, ValueError)


@pytest.mark.parametrize(
    "e164,masked",
    [
        ("+14155550100", "+*******0100"),
        ("+442079460958", "+********0958"),
        ("+4930901820", "+******1820"),
        ("+1234", "+****"),  # too short to show a tail
    ],
)
def test_mask(e164: str, masked: str) -> None:
    assert mask(e164) == masked
    assert len(mask(e164)) == len(e164)


# -- check_number: what is never dialed ------------------------------------------------------


@pytest.mark.parametrize(
    "raw,exc,rule",
    [
        ("911", EmergencyNumber, "emergency_number"),
        ("+44 999", EmergencyNumber, "emergency_number"),
        ("988", SensitiveNumber, "sensitive_number"),
        ("+44 116 123", SensitiveNumber, "sensitive_number"),
        ("+1 900 234 5678", CostlyNumber, "premium_rate"),
        ("+33 884 01 23 45", CostlyNumber, "shared_cost"),
        ("+44 70 1234 5678", CostlyNumber, "personal_number"),
        ("+49 177 991234567", NoPersonNumber, "no_person"),
        ("+1 415 555 0100 x12", ExtensionNotAllowed, "extension"),
        ("+1 415 555", InvalidNumber, "invalid_number"),
        ("$(reboot)", InvalidNumber, "invalid_characters"),
    ],
)
def test_check_number_refusals(raw: str, exc: type[NumberRefused], rule: str) -> None:
    with pytest.raises(exc) as info:
        check_number(raw, "US")
    assert info.value.rule == rule
    assert info.value.refusal == Refusal(rule, str(info.value), info.value.setting)
    assert isinstance(info.value, NumberRefused) and isinstance(info.value, ValueError)


def test_normalize_keeps_its_contract() -> None:
    # normalize only answers "which number": emergency and premium checks are check_number's.
    assert normalize("+1 900 234 5678", "US") == "+19002345678"
    with pytest.raises(InvalidNumber) as info:
        normalize("+1 415 555 0100;", "US")
    assert info.value.rule == "invalid_characters" and info.value.setting is None
    with pytest.raises(InvalidNumber) as info:
        normalize("+1 415 555", "US")
    assert info.value.rule == "invalid_number" and info.value.setting == "CALLAGENT_DEFAULT_REGION"


def test_check_number_accepts_ordinary_numbers() -> None:
    assert check_number("+1 415 555 0100", "US") == DialTarget("+14155550100", None, "US", "FIXED_LINE_OR_MOBILE")
    assert check_number("020 7946 0958", "GB") == DialTarget("+442079460958", None, "GB", "FIXED_LINE")
    assert check_number("+1 800 555 0199", "US").number_type == "TOLL_FREE"
    assert check_number("+1 200 555 0123", "US").region == "US"  # fictional: the country's main region
    assert check_number("+800 1234 5678", "US").region == "001"  # non-geographic
    target = check_number("+1 415 555 0100 ext. 7", "US", allow_extensions=True)
    assert (target.e164, target.extension) == ("+14155550100", "7")


def test_time_zones() -> None:
    assert time_zones("+14155550100") == ("America/Los_Angeles",)
    assert time_zones("+442079460958") == ("Europe/London",)
    assert len(time_zones("+61412345678")) == 8  # an Australian mobile: anywhere in Australia
    # No zone of its own (fictional range): the whole of +1, never nothing.
    assert "America/New_York" in time_zones("+12005550123") and "Pacific/Guam" in time_zones("+12005550123")


def test_mask_numbers_in_text() -> None:
    text = "call +1 415 555 0100 or (020) 7946-0958 at 2025-03-01 21:00, order 12345, from 08:00"
    assert mask_numbers_in_text(text) == (
        "call +* *** *** 0100 or (***) ****-0958 at 2025-03-01 21:00, order 12345, from 08:00"
    )


@pytest.mark.parametrize(
    "raw,region,emergency",
    [
        ("911 555 0100", "US", True),  # starts with 911, not a valid number: would reach 911
        ("112 345", "DE", True),
        ("11 2345 6789", "IN", False),  # a valid Delhi number, though it starts with 112
        ("+91 11 2345 6789", "US", False),
        ("19 3234 5678", "BR", False),  # Campinas; Brazil's 190 only matches exactly
        ("190", "BR", True),
    ],
)
def test_emergency_prefixes_do_not_catch_valid_numbers(raw: str, region: str, emergency: bool) -> None:
    if emergency:
        with pytest.raises(EmergencyNumber):
            check_number(raw, region)
    else:
        assert check_number(raw, region).e164.startswith("+")
