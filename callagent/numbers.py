"""Phone numbers: turn what a person or an LLM typed into E.164, and hide numbers in output.

Pure functions, no I/O. The dial policy (emergency and premium numbers, rate limits) belongs
in its own layer on top of `normalize`, not in here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

__all__ = ["InvalidNumber", "mask", "normalize"]

# Only what people write inside a phone number. Letters are refused on purpose: phonenumbers
# would turn "1-800-FLOWERS" or "ext. 12" into digits, and we should never dial a guess.
_ALLOWED = re.compile(r"[0-9 +\-().]+")
_MAX_RAW_LENGTH = 64

# NANP numbers 555-0100 through 555-0199 are reserved for fiction (films, docs, our test bed's
# magic numbers). Depending on its metadata, phonenumbers calls them "possible" but not "valid"
# in many area codes; they can never reach a real person, so they are safe to accept. The area
# code must still have the NANP shape: [2-9]XX and not an N11 service code (211, 911, ...).
_FICTIONAL_NANP = re.compile(r"[2-9](?!11)[0-9]{2}55501[0-9]{2}")

_HINT = "give the number in international form, e.g. +14155550100, or set CALLAGENT_DEFAULT_REGION"


class InvalidNumber(ValueError):
    """A phone number that cannot be dialed; the message says why and how to fix it."""


def normalize(raw: str, default_region: str) -> str:
    """Return `raw` in E.164 form ("+14155550100"), or raise InvalidNumber naming the problem.

    `default_region` (an ISO country code such as "US" or "GB") says which country a number
    written without "+" belongs to.
    """
    # Imported here: phonenumbers costs ~50 ms to import, and only dialing needs it.
    import phonenumbers
    from phonenumbers import NumberParseException, ValidationResult

    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise InvalidNumber(f"no phone number given — {_HINT}")
    if len(text) > _MAX_RAW_LENGTH:
        raise InvalidNumber(f"'{text[:20]}…' is too long to be a phone number — {_HINT}")
    if not _ALLOWED.fullmatch(text):
        bad = "".join(sorted({c for c in text if not _ALLOWED.fullmatch(c)}))
        raise InvalidNumber(
            f"'{text}' contains {bad!r}; a phone number may only contain digits, spaces "
            f"and + - ( ) . — {_HINT}"
        )

    region = default_region.strip().upper()
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            if text.startswith("+"):
                problem = "unknown country code"
            else:
                problem = f"no country code, and the default region {region!r} is not a known country"
        elif exc.error_type in (
            NumberParseException.TOO_SHORT_NSN,
            NumberParseException.TOO_SHORT_AFTER_IDD,
        ):
            problem = "too short"
        elif exc.error_type == NumberParseException.TOO_LONG:
            problem = "too long"
        else:
            problem = "not a number"
        raise InvalidNumber(f"'{text}' is not a valid phone number ({problem}) — {_HINT}") from None

    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        problem = {
            ValidationResult.TOO_SHORT: "too short",
            ValidationResult.TOO_LONG: "too long",
            ValidationResult.INVALID_LENGTH: "wrong number of digits for its country",
            ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
            ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "missing its area code",
        }.get(reason, "not dialable")
        raise InvalidNumber(f"'{text}' is not a valid phone number ({problem}) — {_HINT}")

    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(number) or _is_fictional_nanp(number):
        return e164
    raise InvalidNumber(
        f"'{text}' is not a valid phone number (no such number range in its country) — {_HINT}"
    )


def _is_fictional_nanp(number: PhoneNumber) -> bool:
    return number.country_code == 1 and bool(_FICTIONAL_NANP.fullmatch(str(number.national_number)))


def mask(e164: str) -> str:
    """Hide all digits but the last four: "+14155550100" → "+*******0100".

    Used wherever a number is shown to people or written to logs.
    """
    total = sum(c.isdigit() for c in e164)
    keep = 4 if total > 4 else 0  # too short to show a tail without giving the whole thing away
    hidden = total - keep
    out = []
    for c in e164:
        if c.isdigit() and hidden > 0:
            out.append("*")
            hidden -= 1
        else:
            out.append(c)
    return "".join(out)
