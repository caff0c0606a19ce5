"""Phone numbers: turn what a person or an LLM typed into E.164, say whether such a number may
ever be dialed, and hide numbers in output.

Pure functions, no I/O. `normalize` only answers "which number is this?"; `check_number` adds
the refusals that hold whatever the operator configured (emergency services, crisis lines and
helplines, premium-rate and shared-cost lines, numbers no person answers). Lists, time of day and volume live in
`callagent.policy`, on top of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from callagent.rules import Refusal, Rule
from callagent.sensitive_numbers import EU_116_RANGE, EU_116_REGIONS, SERVICES, Service, eu_116_service

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

__all__ = [
    "CostlyNumber",
    "DialTarget",
    "EmergencyNumber",
    "ExtensionNotAllowed",
    "InvalidNumber",
    "NoPersonNumber",
    "NumberRefused",
    "SensitiveNumber",
    "check_number",
    "mask",
    "mask_numbers_in_text",
    "normalize",
    "printable",
    "time_zones",
]

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


class NumberRefused(ValueError):
    """A number that must not be dialed. `refusal` names the rule and its setting."""

    default_rule: Rule = Rule.invalid_number

    def __init__(self, message: str, *, rule: Rule | None = None, setting: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule or self.default_rule
        self.setting = setting or self.rule.setting  # a more specific setting than the rule's, if given

    @property
    def refusal(self) -> Refusal:
        return Refusal(self.rule, str(self), self.setting)


class InvalidNumber(NumberRefused):
    """A phone number that cannot be dialed; the message says why and how to fix it."""

    default_rule = Rule.invalid_number


class EmergencyNumber(NumberRefused):
    """An emergency service number, of any country. Never dialed: an AI calling 911 ties up
    a line someone may need, and no setting changes that."""

    default_rule = Rule.emergency_number


class SensitiveNumber(NumberRefused):
    """A crisis line, helpline or other sensitive public-service number (the curated list in
    callagent.sensitive_numbers), or one on the operator's DIAL_NEVER_CALL list. Never dialed:
    an AI must not tie up a line a person in distress needs, and no setting changes that."""

    default_rule = Rule.sensitive_number


class CostlyNumber(NumberRefused):
    """A premium-rate, shared-cost or personal number: the caller pays more than for a call,
    the classic way to turn an auto-dialer into money for someone else."""

    default_rule = Rule.premium_rate


class NoPersonNumber(NumberRefused):
    """A number no person answers (voicemail access, pager): a conversation cannot happen."""

    default_rule = Rule.no_person


class ExtensionNotAllowed(NumberRefused):
    """A number with an extension, while DIAL_ALLOW_EXTENSIONS is off."""

    default_rule = Rule.extension


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
            f"'{printable(text)}' contains {bad!r}; a phone number may only contain digits, spaces "
            f"and + - ( ) . — {_HINT}",
            rule=Rule.invalid_characters,
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
    raise InvalidNumber(f"'{text}' is not a valid phone number (no such number range in its country) — {_HINT}")


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


def mask_numbers_in_text(text: str) -> str:
    """Mask every phone-number-like run of 7+ digits inside free text (messages, reasons).

    Dates and times ("2025-03-01", "21:00") are left alone: they are not numbers of anyone.
    """

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        if m.lastgroup == "time" or sum(c.isdigit() for c in run) < 7:
            return run
        # Inside a word on both sides ("call-3f1234567abc") it is an id, not a number.
        before, after = m.string[m.start() - 1 : m.start()], m.string[m.end() : m.end() + 1]
        if before.isalnum() and after.isalnum():
            return run
        return mask(run)

    return _NUMBER_RUN.sub(repl, text)


# Dates and clock times first, so that "2025-03-01 21:00" is matched as one (and kept).
_NUMBER_RUN = re.compile(
    r"(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?)?|[0-9]{1,2}:[0-9]{2})"
    r"|\+?\(?[0-9][0-9 \-().]*[0-9]"
)


def printable(text: str) -> str:
    """`text` with every control or invisible character escaped (\\n, \\x1b, \\u202e, ...), so
    it cannot drive a terminal, hide text or fake extra lines in a log, a terminal or an LLM's
    context."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# -- what may be dialed at all ---------------------------------------------------------------

# An extension at the end of a number: "x12", "ext. 12", "extension 12", ";ext=12", "#12",
# ",,12" (commas are dialing pauses). Only recognised to be refused or split off; the digits
# are sent as DTMF after the call connects, never as part of the dialed number.
_EXTENSION = re.compile(
    r"\s*(?:(?:ext(?:ension)?\.?|x)\s*:?|;\s*ext\s*=|#|,+)\s*([0-9]{1,10})\s*#?\s*$",
    re.IGNORECASE,
)

# Longest emergency number in phonenumbers' short-number data (6 digits); longer strings are
# never compared against every region's list.
_MAX_EMERGENCY_DIGITS = 6


@dataclass(frozen=True, slots=True)
class DialTarget:
    """A number that passed `check_number`: what to dial and what is known about it."""

    e164: str
    extension: str | None  # DTMF digits to send once answered, if extensions are allowed
    region: str  # ISO region ("US", "GB"), or "001" for non-geographic numbers (+800, +881)
    number_type: str  # phonenumbers' type name: "MOBILE", "FIXED_LINE_OR_MOBILE", "UNKNOWN", ...


def check_number(
    raw: str,
    default_region: str,
    *,
    allow_extensions: bool = False,
    never_call: tuple[str, ...] = (),
) -> DialTarget:
    """Normalize `raw` and refuse numbers that must never be dialed, whatever the policy.

    Raises a NumberRefused subclass naming the rule: InvalidNumber (bad characters, not a
    number), EmergencyNumber (112, 911, 999, 000, 110, 119, ... of any country, in any format),
    SensitiveNumber (crisis lines, helplines and other sensitive public-service numbers of
    callagent.sensitive_numbers, as E.164, national number or short code, and the E.164 numbers
    or "+prefix*" entries of `never_call`, the operator's DIAL_NEVER_CALL), CostlyNumber
    (premium-rate, shared-cost, personal numbers), NoPersonNumber (voicemail access, pagers),
    ExtensionNotAllowed.
    """
    import phonenumbers
    from phonenumbers import PhoneNumberType as Kind

    text = raw.strip() if isinstance(raw, str) else ""
    region = default_region.strip().upper()
    extension: str | None = None
    match = _EXTENSION.search(text)
    head = text[: match.start()] if match else ""
    if match and head and _ALLOWED.fullmatch(head):  # a number, then an extension
        text, extension = head.strip(), match.group(1)

    if text and _ALLOWED.fullmatch(text):
        # Before the validity checks: "911", "+44 999", "(000)", "988", "116 123" are too short
        # to be valid numbers, and must be named for what they are, not merely called invalid.
        # Crisis lines first: the Netherlands' 113 is also Italy's police, and "111" typed in
        # the UK is NHS 111 (New Zealand's emergency number is refused after "+64").
        _refuse_sensitive(text, region)
        _refuse_emergency(text, region, raw)
    elif text and _VANITY.fullmatch(text):
        # "1-800-273-TALK": letters are refused below, but a crisis line is named as such.
        _refuse_sensitive(phonenumbers.convert_alpha_characters_in_number(text), region, full_only=True)

    e164 = normalize(text, default_region)
    number = phonenumbers.parse(e164)
    _refuse_never_call(e164, never_call)

    kind = phonenumbers.number_type(number)
    shown = mask(e164)
    if kind == Kind.PREMIUM_RATE:
        raise CostlyNumber(
            f"{shown} is a premium-rate number (the caller pays a surcharge); callagent never dials these",
            rule=Rule.premium_rate,
        )
    if kind == Kind.SHARED_COST:
        raise CostlyNumber(
            f"{shown} is a shared-cost number (the caller pays part of the service's cost); "
            "callagent never dials these",
            rule=Rule.shared_cost,
        )
    if kind == Kind.PERSONAL_NUMBER:
        # UK 070 and similar "follow-me" numbers are billed far above normal rates and are a
        # known fraud channel; they look like mobiles to the people who publish them.
        raise CostlyNumber(
            f"{shown} is a personal (follow-me) number, billed above normal call rates; callagent never dials these",
            rule=Rule.personal_number,
        )
    if kind in (Kind.VOICEMAIL, Kind.PAGER):
        what = "a voicemail access number" if kind == Kind.VOICEMAIL else "a pager"
        raise NoPersonNumber(f"{shown} is {what}: no person answers it, so the call cannot hold a conversation")

    if extension is not None and not allow_extensions:
        raise ExtensionNotAllowed(
            f"'{printable(raw.strip())}' has an extension ({extension}); calls with extensions are "
            "off — give the number without it, or set DIAL_ALLOW_EXTENSIONS=true"
        )

    number_region = phonenumbers.region_code_for_number(number)
    if number_region is None:  # fictional 555-01XX numbers: no region of their own
        number_region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    type_name = next((name for name, value in vars(Kind).items() if value == kind), "UNKNOWN")
    return DialTarget(e164=e164, extension=extension, region=number_region, number_type=type_name)


# -- crisis lines, helplines and other sensitive public-service numbers -------------------------

# What people write in a vanity number ("1-800-SUICIDE"); only looked at to name a crisis line.
_VANITY = re.compile(r"[0-9A-Za-z +\-().]+")

_SENSITIVE_TAIL = (
    ": callagent never dials crisis lines, helplines or other sensitive public-service numbers "
    "— a person needing it must call themselves"
)


def _refuse_sensitive(text: str, region: str, *, full_only: bool = False) -> None:
    """Raise SensitiveNumber if `text` reaches a service of callagent.sensitive_numbers.

    Matched by calling code and national significant number, so E.164, national, IDD
    ("011 44 116 123") and "+44 (0)800 1111" forms all match, and so does a short code after
    its country's code ("+44 116 123"). A short code typed without "+" that is followed by
    more digits and is no valid number ("988 1": the Veterans Crisis Line's menu) reaches the
    short code on most networks, and is refused too. `full_only`: only whole valid numbers.
    """
    import phonenumbers
    from phonenumbers import NumberParseException

    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return
    valid = phonenumbers.is_valid_number(number) or _is_fictional_nanp(number)
    if full_only and not valid:
        return
    cc, nsn = number.country_code or 0, phonenumbers.national_significant_number(number)
    service = _sensitive_service(cc, nsn, region)
    national = cc == phonenumbers.country_code_for_region(region)
    if service is None and not valid and not text.startswith("+") and national:
        service = _sensitive_short_code_prefix(re.sub(r"[^0-9]", "", text), cc, region)
    if service is None:
        return
    shown = (
        mask(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
        if valid
        else mask(printable(text))
    )
    raise SensitiveNumber(f"{shown} is {service.describe()}{_SENSITIVE_TAIL}")


def _refuse_never_call(e164: str, never_call: tuple[str, ...]) -> None:
    for entry in never_call:
        if entry == e164 or (entry.endswith("*") and e164.startswith(entry[:-1])):
            listed = f"under {entry}" if entry.endswith("*") else "listed"
            raise SensitiveNumber(
                f"{mask(e164)} is {listed} on the operator's DIAL_NEVER_CALL list, numbers callagent "
                "must never dial (crisis lines, helplines and other sensitive services); only the "
                "operator can change that list",
                setting="DIAL_NEVER_CALL",
            )


def _prefer(found: list[Service], region: str) -> Service | None:
    # One number may be listed for several countries (988 in the US and Canada, toll-free +1
    # numbers): name the one of the default region if there is one.
    return next((s for s in found if s.country == region), found[0]) if found else None


def _sensitive_service(country_code: int, nsn: str, region: str) -> Service | None:
    by_key, _, eu_116 = _sensitive_index()
    found = list(by_key.get((country_code, nsn), ()))
    if country_code in eu_116 and EU_116_RANGE.fullmatch(nsn):
        found.append(eu_116_service(eu_116[country_code], nsn))
    return _prefer(found, region)


def _sensitive_short_code_prefix(digits: str, country_code: int, region: str) -> Service | None:
    _, short_codes, eu_116 = _sensitive_index()
    found = [s for s in short_codes.get(country_code, ()) if digits.startswith(s.number)]
    if country_code in eu_116 and EU_116_RANGE.match(digits):
        found.append(eu_116_service(eu_116[country_code], digits[:6]))
    found.sort(key=lambda s: -len(s.number))  # the longest code is the one dialed
    return _prefer(found, region)


@cache
def _sensitive_index() -> tuple[
    dict[tuple[int, str], tuple[Service, ...]], dict[int, tuple[Service, ...]], dict[int, str]
]:
    """The curated list, keyed for lookups: (calling code, national significant number) →
    services; calling code → its short codes; calling codes where the 116 range is refused →
    their region."""
    import phonenumbers

    by_key: dict[tuple[int, str], list[Service]] = {}
    short_codes: dict[int, list[Service]] = {}
    for service in SERVICES:
        number = phonenumbers.parse(service.number, service.country)
        cc = number.country_code or 0
        by_key.setdefault((cc, phonenumbers.national_significant_number(number)), []).append(service)
        if service.is_short_code:
            short_codes.setdefault(cc, []).append(service)
    eu_116 = {phonenumbers.country_code_for_region(r): r for r in sorted(EU_116_REGIONS)}
    return (
        {k: tuple(v) for k, v in by_key.items()},
        {k: tuple(v) for k, v in short_codes.items()},
        eu_116,
    )


def _emergency_message(raw: str) -> str:
    return (
        f"'{printable(raw.strip())}' is an emergency services number; callagent never dials "
        "emergency numbers of any country — a person in an emergency must call themselves"
    )


def _refuse_emergency(text: str, region: str, raw: str) -> None:
    """Raise EmergencyNumber if `text` reaches an emergency service anywhere.

    Checked: the digits as typed, exactly, against every region's emergency numbers; as a
    prefix in the default region ("911 555..." reaches 911 on many networks), unless the
    whole is a valid number there (Delhi's 11 2345 6789 is not a call to 112); and the
    national number after a country code ("+44 999"), in that country and everywhere else.
    """
    import phonenumbers
    from phonenumbers import NumberParseException, shortnumberinfo

    try:
        number: PhoneNumber | None = phonenumbers.parse(text, region)
    except NumberParseException:
        number = None
    if not text.startswith("+"):
        digits = re.sub(r"[^0-9]", "", text)
        valid = number is not None and (phonenumbers.is_valid_number(number) or _is_fictional_nanp(number))
        if digits and (
            _is_emergency_anywhere(digits)
            or (not valid and shortnumberinfo.connects_to_emergency_number(digits, region))
        ):
            raise EmergencyNumber(_emergency_message(raw))
    if number is None:
        return
    own_regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    for candidate in {phonenumbers.national_significant_number(number), str(number.national_number)}:
        if any(_is_emergency(candidate, r) for r in own_regions) or _is_emergency_anywhere(candidate):
            raise EmergencyNumber(_emergency_message(raw))


def _is_emergency(digits: str, region: str) -> bool:
    from phonenumbers import shortnumberinfo

    return shortnumberinfo.is_emergency_number(digits, region)


@cache
def _is_emergency_anywhere(digits: str) -> bool:
    """Whether `digits` is exactly an emergency number in any region phonenumbers knows.

    An LLM may write the number of the country it thinks the callee is in ("000" for
    Australia while the default region is US); any such short code is refused.
    """
    import phonenumbers

    if not digits or len(digits) > _MAX_EMERGENCY_DIGITS:
        return False
    return any(_is_emergency(digits, r) for r in phonenumbers.SUPPORTED_SHORT_REGIONS)


def time_zones(e164: str) -> tuple[str, ...]:
    """The IANA time zones a number may ring in; () when nothing is known.

    Falls back from the number's own zones to its prefix's, then its country's: the fictional
    555-01XX numbers and unassigned ranges get the whole country's zones, so a quiet-hours
    check on them is stricter, never looser.
    """
    import phonenumbers
    from phonenumbers import timezone

    number = phonenumbers.parse(e164)
    unknown = timezone.UNKNOWN_TIMEZONE
    for lookup in (
        timezone.time_zones_for_number,
        timezone.time_zones_for_geographical_number,
        timezone._country_level_time_zones_for_number,  # no public name for this fallback
    ):
        zones = tuple(z for z in lookup(number) if z != unknown)
        if zones:
            return zones
    return ()
