from __future__ import annotations

import phonenumbers
import pytest

from callagent.numbers import InvalidNumber, mask, normalize


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
