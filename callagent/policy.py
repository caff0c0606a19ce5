"""The dial policy: may this number be called now, with these arguments?

Pure: no database, no network, no clock. The caller gathers the facts (the time, how many calls
are live, whether the number is on the do-not-call list) and this module decides, so every
rule can be tested with an injected `now` and made-up counts, and a refusal never depends on
the order things happened to be fetched in.

How the service (callagent.service) uses it, before any LiveKit request:

    policy = DialPolicy.from_settings(settings)
    target = policy.parse_number(phone_number)            # DialTarget | Refusal
    refusal = policy.check_text_fields(goal, context, greeting, idempotency_key=idempotency_key)
    duration = policy.duration(max_duration_s)            # int | Refusal
    counts, lists = <the store's facts for target.e164 at now>
    decision = policy.check(target.e164, now=now, counts=counts, lists=lists, confirmed=...)
    # Allowed | Refusal | NeedsConfirmation; then, under the store's write lock, the race-free
    # recheck of the same facts: policy.admit(number, counts, on_do_not_call)

Every refusal names its rule and the setting (environment variable) that governs it: the
rule's own (callagent.rules), or the one of its settings that applied.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from callagent.numbers import DialTarget, NumberRefused, check_number, mask, time_zones
from callagent.rules import Refusal, Rule
from callagent.sensitive_numbers import SERVICES

if TYPE_CHECKING:
    from callagent.settings import Settings

__all__ = [
    "Allowed",
    "Counts",
    "Decision",
    "DialPolicy",
    "Lists",
    "NeedsConfirmation",
    "Refusal",
    "Rule",
    "VolumeLimits",
    "call_args_hash",
    "check_text",
    "check_text_fields",
    "describe",
]

ConfirmMode = Literal["never", "unlisted", "always"]
RecordingMode = Literal["off", "on_request", "always"]

DEFAULT_QUIET_HOURS = (time(21, 0), time(8, 0))


# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """Calls already in the store, as of `now`."""

    active: int = 0  # queued, dialing, ringing or in progress (not awaiting approval)
    to_number_24h: int = 0  # created for this number in the last 24 hours
    last_hour: int = 0  # created for any number in the last hour
    # The same, counted on the call's own profile's calls and its tenant's calls only (what a
    # profile's or a tenant's own limits in callagent.toml are checked against).
    profile: Counts | None = None
    tenant: Counts | None = None


@dataclass(frozen=True, slots=True)
class Lists:
    """The lists that live in the store rather than in settings."""

    do_not_call: frozenset[str] = frozenset()  # E.164 numbers
    allowed: frozenset[str] = frozenset()  # allowed for good by the operator: as if on DIAL_ALLOW


@dataclass(frozen=True, slots=True)
class VolumeLimits:
    """How many calls may exist at once, per number per day, and per hour overall.

    Used twice: by `DialPolicy.check` for an early answer, and by the store inside its locked
    transaction, so that simultaneous requests cannot all slip under the limit.
    """

    max_concurrent: int = 3
    max_per_number_per_day: int = 2
    max_per_hour: int = 30

    def check(self, counts: Counts) -> Refusal | None:
        if counts.active >= self.max_concurrent:
            return Refusal(
                Rule.max_concurrent,
                f"{counts.active} calls are already live and at most {self.max_concurrent} may be "
                "at once; wait for one to end (wait_for_call) and try again",
            )
        if counts.to_number_24h >= self.max_per_number_per_day:
            return Refusal(
                Rule.max_per_number_per_day,
                f"this number was already called {counts.to_number_24h} times in the last 24 hours, "
                f"the most allowed is {self.max_per_number_per_day}; try again tomorrow",
            )
        if counts.last_hour >= self.max_per_hour:
            return Refusal(
                Rule.max_per_hour,
                f"{counts.last_hour} calls were placed in the last hour, the most allowed is "
                f"{self.max_per_hour}; try again later",
            )
        return None


@dataclass(frozen=True, slots=True)
class Quota:
    """Volume limits of one part of the deployment, a profile or a tenant, counted on its
    calls only; `setting` says where the operator set them (callagent.toml's section)."""

    scope: Literal["profile", "tenant"]
    limits: VolumeLimits
    setting: str

    def check(self, counts: Counts) -> Refusal | None:
        own = counts.profile if self.scope == "profile" else counts.tenant
        refusal = self.limits.check(own or Counts())
        if refusal is None:
            return None
        return Refusal(refusal.rule, f"{self.scope}: {refusal.message}", f"{self.setting} {refusal.rule}")


def do_not_call_refusal(number: str) -> Refusal:
    return Refusal(
        Rule.do_not_call,
        f"{mask(number)} is on the do-not-call list (the callee or the operator asked that it not be called); "
        "only the operator can remove it, with `callagent dnc remove`",
    )


# -- the answer -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allowed:
    """The call may be placed."""


@dataclass(frozen=True, slots=True)
class NeedsConfirmation:
    """The call may be placed once a person confirms it; `message` says why one is needed."""

    message: str
    rule: Rule = Rule.confirmation

    @property
    def setting(self) -> str | None:
        return self.rule.setting


# What `DialPolicy.check` concludes: allowed, refused (the Refusal says why), or allowed once a
# person confirms.
Decision = Allowed | Refusal | NeedsConfirmation


# -- the policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DialPolicy:
    """Every dialing rule, as configured. Build it with `from_settings`; defaults match the
    settings' defaults, so `DialPolicy()` is the policy of an unconfigured install."""

    default_region: str = "US"
    allow: tuple[str, ...] = ()  # E.164 numbers, or prefixes ending in "*"
    deny: tuple[str, ...] = ()
    never_call: tuple[str, ...] = ()  # DIAL_NEVER_CALL: more numbers refused as sensitive_number
    countries: tuple[str, ...] | None = None  # None: default_region only; ("*",): any
    quiet_hours: tuple[time, time] | None = DEFAULT_QUIET_HOURS
    limits: VolumeLimits = field(default_factory=VolumeLimits)
    confirm: ConfirmMode = "never"
    confirm_ttl_s: int = 300
    allow_extensions: bool = False
    max_goal_chars: int = 2000
    max_context_chars: int = 4000
    max_greeting_chars: int = 500
    max_duration_s: int = 300
    max_duration_cap_s: int = 1800
    transfer_numbers: tuple[str, ...] = ()  # CALLAGENT_TRANSFER_NUMBERS: who a call may be handed to
    recording: RecordingMode = "off"  # CALLAGENT_RECORDING
    # A profile's and a tenant's own limits (callagent.toml), on top of the deployment's.
    quotas: tuple[Quota, ...] = ()
    # The rules a profile narrowed, where, and (for the lists it added to) its own entries: a
    # refusal names that setting, not the global one (see `named`).
    settings_of: tuple[tuple[Rule, str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_settings(cls, s: Settings) -> DialPolicy:
        return cls(
            default_region=s.default_region,
            allow=s.dial_allow,
            deny=s.dial_deny,
            never_call=s.dial_never_call,
            countries=s.dial_countries,
            quiet_hours=s.dial_quiet_hours,
            limits=VolumeLimits(
                max_concurrent=s.dial_max_concurrent,
                max_per_number_per_day=s.dial_max_per_number_per_day,
                max_per_hour=s.dial_max_per_hour,
            ),
            confirm=s.dial_confirm,
            confirm_ttl_s=s.dial_confirm_ttl_s,
            allow_extensions=s.dial_allow_extensions,
            max_goal_chars=s.max_goal_chars,
            max_context_chars=s.max_context_chars,
            max_greeting_chars=s.max_greeting_chars,
            max_duration_s=s.max_duration_s,
            max_duration_cap_s=s.max_duration_cap_s,
            transfer_numbers=s.transfer_numbers,
            recording=s.recording,
        )

    @property
    def allowed_countries(self) -> tuple[str, ...]:
        return self.countries if self.countries is not None else (self.default_region,)

    # -- the checks ------------------------------------------------------------------------

    def parse_number(self, raw: str) -> DialTarget | Refusal:
        """What the client typed, as a DialTarget, or the refusal of a number never dialed
        (invalid, emergency, crisis line or helpline, on DIAL_NEVER_CALL, premium-rate,
        shared-cost, an extension while they are off)."""
        try:
            return check_number(
                raw, self.default_region, allow_extensions=self.allow_extensions, never_call=self.never_call
            )
        except NumberRefused as exc:
            return exc.refusal

    def check_text_fields(
        self,
        goal: str | None,
        context: str | None,
        greeting: str | None,
        *,
        idempotency_key: str | None = None,
    ) -> Refusal | None:
        return check_text_fields(
            goal,
            context,
            greeting,
            idempotency_key=idempotency_key,
            max_goal_chars=self.max_goal_chars,
            max_context_chars=self.max_context_chars,
            max_greeting_chars=self.max_greeting_chars,
        )

    def duration(self, requested: int | None) -> int | Refusal:
        """The call's maximum duration in seconds: the default when none is asked for, the
        request when within the hard cap, else a refusal naming the cap."""
        if requested is None:
            return min(self.max_duration_s, self.max_duration_cap_s)
        if isinstance(requested, bool) or not 0 < requested <= self.max_duration_cap_s:
            return Refusal(
                Rule.max_duration,
                f"max_duration_s must be between 1 and {self.max_duration_cap_s} seconds, not "
                f"{requested}; leave it out for the default of {self.max_duration_s} s",
            )
        return requested

    def check(
        self,
        number_e164: str,
        *,
        now: datetime,
        counts: Counts,
        lists: Lists,
        confirmed: bool = False,
    ) -> Decision:
        """May `number_e164` be called at `now`? Rules in order: what the number is, deny list,
        do-not-call list, countries, allow list, quiet hours, volume, confirmation.

        `confirmed` is True once a person approved this very call (elicitation, or a
        confirmation token the store consumed); it satisfies only the confirmation rule.
        """
        # The number again, from scratch: the policy must hold even if the caller skipped
        # parse_number, and an extension never appears in an E.164 string.
        try:
            target = check_number(number_e164, self.default_region, never_call=self.never_call)
        except NumberRefused as exc:
            return exc.refusal
        number = target.e164
        shown = mask(number)

        denied = _match(number, self.deny)
        if denied is not None:
            return Refusal(Rule.deny_list, f"{shown} matches {_show(denied)} on the deny list")

        if number in lists.do_not_call:
            return do_not_call_refusal(number)

        refusal = self._check_country(target)
        if refusal is not None:
            return refusal

        listed = _match(number, self.allow) is not None or number in lists.allowed
        if self.allow and not listed and self.confirm != "unlisted":
            return Refusal(Rule.allow_list, f"{shown} is not on the allow list; only numbers on it may be called")

        refusal = self._check_quiet_hours(number, _utc(now))
        if refusal is not None:
            return refusal

        refusal = self._check_limits(counts)
        if refusal is not None:
            return refusal

        if not confirmed:
            if self.confirm == "always":
                return NeedsConfirmation(
                    f"every call needs a person's confirmation before it is placed (DIAL_CONFIRM=always); "
                    f"ask your user to approve calling {shown}"
                )
            if self.confirm == "unlisted" and not listed:
                return NeedsConfirmation(
                    f"{shown} is not on the allow list, so a person must confirm this call before it "
                    "is placed (DIAL_CONFIRM=unlisted)"
                )
        return Allowed()

    def record(self, requested: bool | None) -> bool | Refusal:
        """Whether the call is recorded: CALLAGENT_RECORDING decides; `requested` is the
        client's record argument (None: not given). Asking while recording is off is refused."""
        if self.recording == "always":
            return True
        if requested and self.recording == "off":
            return Refusal(
                Rule.recording,
                "record=true was asked, but the operator has turned recording off; call without record, or "
                "ask the operator to set CALLAGENT_RECORDING=on_request",
            )
        return bool(requested)

    def transfer_target(self, raw: str) -> DialTarget | Refusal:
        """The number a call may be handed to, or why not: it must be a number the policy lets
        be dialed at all, and on the operator's CALLAGENT_TRANSFER_NUMBERS."""
        target = self.parse_number(raw)
        if isinstance(target, Refusal):
            return Refusal(target.rule, f"transfer_to: {target.message}", target.setting)
        if target.extension is not None:
            return Refusal(Rule.transfer_target, "transfer_to may not carry an extension; list the number itself")
        if not self.transfer_numbers:
            return Refusal(
                Rule.transfer_target,
                "no call may be handed over: the operator lists no transfer targets (CALLAGENT_TRANSFER_NUMBERS)",
            )
        if target.e164 not in self.transfer_numbers:
            return Refusal(
                Rule.transfer_target,
                f"transfer_to {mask(target.e164)} is not one of the operator's transfer targets "
                f"({len(self.transfer_numbers)} listed in CALLAGENT_TRANSFER_NUMBERS)",
            )
        return target

    def check_transfer(self, number_e164: str, *, now: datetime, counts: Counts, lists: Lists) -> Refusal | None:
        """May the transfer leg to `number_e164` be dialed now? The target's own rules (see
        `transfer_target`), then the dial policy as for any call: deny and do-not-call lists,
        countries, allow list, quiet hours at the target, and the volume limits, with the leg
        counted as one more line. The operator listed it, so it needs no confirmation."""
        target = self.transfer_target(number_e164)
        if isinstance(target, Refusal):
            return target
        decision = self.check(target.e164, now=now, counts=counts, lists=lists, confirmed=True)
        if isinstance(decision, Refusal):
            return Refusal(decision.rule, f"transfer_to: {decision.message}", decision.setting)
        return None

    def admit(self, number: str, counts: Counts, on_do_not_call: bool) -> Refusal | None:
        """The last word before a call is recorded, on facts read under the store's write
        lock: so that simultaneous requests cannot slip past the limits together."""
        if on_do_not_call:
            return do_not_call_refusal(number)
        return self._check_limits(counts)

    def _check_limits(self, counts: Counts) -> Refusal | None:
        refusal = self.limits.check(counts)
        for quota in self.quotas:
            if refusal is not None:
                break
            refusal = quota.check(counts)
        return refusal

    def named(self, refusal: Refusal, number: str | None = None) -> Refusal:
        """`refusal` naming the setting that governs it here: a profile's own where it
        narrowed the rule (callagent.toml), else the global one. A list a profile added to
        (deny, never_call) is named only when `number` (E.164) is on the profile's part of it."""
        for rule, setting, own in self.settings_of:
            if refusal.rule is not rule:
                continue
            if rule in (Rule.deny_list, Rule.sensitive_number):  # the profile's entries, on top of the global list
                if number is None or _match(number, own) is None:
                    return refusal
                if rule is Rule.sensitive_number:
                    message = refusal.message.replace("the operator's DIAL_NEVER_CALL list", f"{setting}")
                    return Refusal(refusal.rule, message, setting)
                return Refusal(refusal.rule, refusal.message, setting)
            if refusal.setting == rule.setting:
                return Refusal(refusal.rule, refusal.message, setting)
        return refusal

    def _check_country(self, target: DialTarget) -> Refusal | None:
        allowed = self.allowed_countries
        if target.region == "001":  # +800, +881 satellite, ...: never covered by "*"
            if "001" in allowed:
                return None
            return Refusal(
                Rule.country,
                f"{mask(target.e164)} is a non-geographic number (international freephone, satellite "
                "or similar, often costly); list 001 in DIAL_COUNTRIES to allow these",
            )
        if "*" in allowed or target.region in allowed:
            return None
        setting_state = (
            f"DIAL_COUNTRIES={','.join(allowed)}"
            if self.countries is not None
            else f"DIAL_COUNTRIES is unset, so only CALLAGENT_DEFAULT_REGION={self.default_region}"
        )
        return Refusal(
            Rule.country,
            f"{mask(target.e164)} is in {target.region}, and calls may only go to "
            f"{', '.join(allowed)} ({setting_state})",
        )

    def _check_quiet_hours(self, number: str, now: datetime) -> Refusal | None:
        if self.quiet_hours is None:
            return None
        start, end = self.quiet_hours
        window = f"{start:%H:%M}-{end:%H:%M}"
        zones = _zone_infos(time_zones(number))
        if not zones:
            return Refusal(
                Rule.quiet_hours,
                f"the callee's local time cannot be told for {mask(number)} (no known time zone), so "
                f"quiet hours {window} cannot be checked; set DIAL_QUIET_HOURS=off to call such numbers",
            )
        quiet = [(name, now.astimezone(tz)) for name, tz in zones if _in_window(now.astimezone(tz), start, end)]
        if not quiet:
            return None
        shown = ", ".join(f"{local:%H:%M} in {name}" for name, local in quiet[:3])
        if len(quiet) > 3:
            shown += f" and {len(quiet) - 3} more zones"
        spread = "" if len(zones) == 1 else f" (the number may ring in {len(zones)} time zones, all must be outside)"
        nxt = _next_allowed(now, zones, start, end)
        when = (
            f"; the earliest allowed time is {nxt:%Y-%m-%d %H:%M} UTC"
            if nxt is not None
            else "; no time of day is outside quiet hours in all of its time zones"
        )
        return Refusal(
            Rule.quiet_hours, f"it is {shown}, inside quiet hours {window} in the callee's local time{spread}{when}"
        )


# -- text fields ----------------------------------------------------------------------------

# Whitespace a multi-line goal or context legitimately contains; a greeting is spoken, so
# line breaks are fine there too, and an idempotency key is one plain token.
_TEXT_WHITESPACE = "\t\n\r"
_SPOKEN_WHITESPACE = "\n\r"
# Bidirectional overrides and isolates: they make text read differently from what it says
# ("Trojan Source"), which is exactly what a prompt injection wants.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
# Default-ignorable characters that are not format characters: combining grapheme joiner,
# Hangul fillers, Khmer inherent vowels. They draw nothing.
_INVISIBLE_OTHER = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
_EMOJI_VARIATION = frozenset("\ufe0e\ufe0f")  # text / emoji presentation of the character before


def _variation_selector(c: str) -> bool:
    cp = ord(c)
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF or 0x180B <= cp <= 0x180D or cp == 0x180F


def _visible(c: str) -> bool:
    return unicodedata.category(c)[0] in "LNPS"


def _character_problem(text: str, i: int, whitespace: str) -> tuple[Rule, str] | None:
    """(rule, what) when text[i] has no place in a call's text, else None.

    Emoji keep working: a zero-width joiner between two symbols ("👩‍💻") and one
    presentation selector right after a visible character ("❤️") are parts of an emoji, not
    hidden text. Unassigned code points in the emoji blocks (U+1F000-U+1FAFF) pass too: they
    are emoji newer than this Python's Unicode tables, and draw a glyph or a box.
    """
    c = text[i]
    if c in whitespace:
        return None
    cp = ord(c)
    category = unicodedata.category(c)
    if category == "Cc":
        return Rule.control_characters, "the control character"
    if category == "Cs":
        return Rule.control_characters, "the lone surrogate"
    if c in _BIDI_CONTROLS:
        return Rule.control_characters, "the bidirectional control character"
    if c == "\u200d" and 0 < i < len(text) - 1:
        before, after = text[i - 1], text[i + 1]
        joins_symbols = unicodedata.category(before) in ("So", "Sk") or before in _EMOJI_VARIATION
        if joins_symbols and unicodedata.category(after) == "So":
            return None
    if c in _EMOJI_VARIATION and i > 0 and _visible(text[i - 1]):
        return None
    if category in ("Zl", "Zp"):
        return Rule.invisible_characters, "the line or paragraph separator"
    if 0xE0000 <= cp <= 0xE007F:
        return Rule.invisible_characters, "the invisible tag character"
    if _variation_selector(c):
        return Rule.invisible_characters, "the variation selector"
    if category == "Cf" or c in _INVISIBLE_OTHER:
        return Rule.invisible_characters, "the invisible character"
    if category == "Co":
        return Rule.invisible_characters, "the private-use character"
    if category == "Cn" and not 0x1F000 <= cp <= 0x1FAFF:
        return Rule.invisible_characters, "the unassigned code point"
    return None


def check_text(
    name: str,
    value: str | None,
    limit: int | None = None,
    setting: str | None = None,
    *,
    whitespace: str = _TEXT_WHITESPACE,
) -> Refusal | None:
    """Refuse control and invisible characters in a call's text field `name`, then a `value`
    longer than `limit` (governed by `setting`). None when it passes, or `value` is None.

    Refused: C0/C1 controls other than the `whitespace` allowed (tabs and newlines by default),
    lone surrogates and bidirectional controls (rule `control_characters`); format characters
    (zero-width spaces and joiners, word joiner, BOM, soft hyphen, tags U+E0000-E007F,
    U+061C, U+180E, ...), variation selectors, line/paragraph separators U+2028/U+2029,
    Hangul fillers, private-use and unassigned code points (rule `invisible_characters`).
    They have no place in what an agent is told or says, and they hide text from the person
    reading it. Any text field a call gains calls this.
    """
    if value is None:
        return None
    for i, c in enumerate(value):
        problem = _character_problem(value, i, whitespace)
        if problem is None:
            continue
        rule, what = problem
        label = unicodedata.name(c, "")
        fine = {"\t\n\r": " (tabs and newlines are fine)", "\n\r": " (newlines are fine)"}.get(whitespace, "")
        return Refusal(
            rule,
            f"{name} contains {what} U+{ord(c):04X}{f' ({label})' if label else ''} at position {i}; "
            f"send plain text{fine}",
        )
    if limit is not None and len(value) > limit:
        return Refusal(
            Rule.text_too_long,
            f"{name} is {len(value)} characters long, more than the {limit} allowed; shorten it",
            setting,
        )
    return None


def check_text_fields(
    goal: str | None,
    context: str | None,
    greeting: str | None,
    *,
    idempotency_key: str | None = None,
    max_goal_chars: int = 2000,
    max_context_chars: int = 4000,
    max_greeting_chars: int = 500,
) -> Refusal | None:
    """Refuse a call's goal, context, greeting or idempotency key for their characters and
    sizes (`check_text`), then goal, context and greeting that take back the AI disclosure or
    pass the agent off as a person (`callagent.disclosure`, rule `ai_disclosure`).

    The idempotency key is checked for characters only; its length is limited where it is
    validated.
    """
    refusal = (
        check_text("goal", goal, max_goal_chars, "CALLAGENT_MAX_GOAL_CHARS")
        or check_text("context", context, max_context_chars, "CALLAGENT_MAX_CONTEXT_CHARS")
        or check_text(
            "greeting", greeting, max_greeting_chars, "CALLAGENT_MAX_GREETING_CHARS", whitespace=_SPOKEN_WHITESPACE
        )
        or check_text("idempotency_key", idempotency_key, whitespace="")
    )
    if refusal is not None:
        return refusal
    # Imported here: its patterns take ~70 ms to compile, which the server's start need not pay.
    from callagent import disclosure

    return (
        disclosure.check("goal", goal) or disclosure.check("context", context) or disclosure.check("greeting", greeting)
    )


# -- confirmation ---------------------------------------------------------------------------


def call_args_hash(**fields: Any) -> str:
    """A stable digest of a call's arguments, binding a confirmation token to this very call:
    a token confirmed for one number or goal cannot place a different call."""
    data = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


# -- what the client is told ----------------------------------------------------------------


def describe(policy: DialPolicy, *, counts: Counts | None = None) -> dict[str, Any]:
    """The policy in plain data, for the read-only `dial_policy` tool and `callagent policy`.

    Exact numbers on the lists are masked (a client needs to know a list exists, not read the
    operator's contacts); prefixes are shown as they are.
    """
    limits = policy.limits
    if policy.allow:
        allow_mode = (
            "numbers on the allow list are called without confirmation; others need one"
            if policy.confirm == "unlisted"
            else "only numbers on the allow list may be called"
        )
    else:
        allow_mode = "no allow list: any number passing the other rules may be called"
    countries = policy.allowed_countries
    out: dict[str, Any] = {
        "default_region": policy.default_region,
        "countries": list(countries),
        "countries_note": (
            "every country (non-geographic numbers only if 001 is listed)"
            if "*" in countries
            else "calls may only go to these regions"
        ),
        "allow_list": [_show(e) for e in policy.allow],
        "allow_list_mode": allow_mode,
        "deny_list": [_show(e) for e in policy.deny],
        "quiet_hours": (
            None if policy.quiet_hours is None else f"{policy.quiet_hours[0]:%H:%M}-{policy.quiet_hours[1]:%H:%M}"
        ),
        "quiet_hours_note": (
            "off"
            if policy.quiet_hours is None
            else "no calls in this window, in the callee's local time (in every time zone the number may ring in)"
        ),
        "limits": {
            "max_concurrent": limits.max_concurrent,
            "max_per_number_per_day": limits.max_per_number_per_day,
            "max_per_hour": limits.max_per_hour,
        },
        "confirmation": policy.confirm,
        "confirmation_ttl_s": policy.confirm_ttl_s,
        "extensions_allowed": policy.allow_extensions,
        "text_limits": {
            "goal": policy.max_goal_chars,
            "context": policy.max_context_chars,
            "greeting": policy.max_greeting_chars,
        },
        "max_duration_s": {
            "default": min(policy.max_duration_s, policy.max_duration_cap_s),
            "cap": policy.max_duration_cap_s,
        },
        "never_called": [
            "emergency numbers of any country",
            _SENSITIVE_NOTE
            + ("; also the operator's DIAL_NEVER_CALL list (never_call_list)" if policy.never_call else ""),
            "premium-rate, shared-cost and personal (follow-me) numbers",
            "voicemail access numbers and pagers",
            "numbers on the do-not-call list",
        ],
        "never_call_list": [_show(e) for e in policy.never_call],
        "transfer_targets": [_show(e) for e in policy.transfer_numbers],
        "recording": policy.recording,
        "settings": {rule.value: rule.setting for rule in Rule},
    }
    if counts is not None:
        out["usage"] = {
            "active_calls": counts.active,
            "calls_last_hour": counts.last_hour,
            "concurrent_slots_left": max(0, limits.max_concurrent - counts.active),
            "calls_left_this_hour": max(0, limits.max_per_hour - counts.last_hour),
        }
    return out


_SENSITIVE_NOTE = (
    "crisis lines, helplines and other sensitive public-service numbers (suicide prevention, "
    "domestic violence, child helplines, poison control, ...): a built-in list for "
    + ", ".join(dict.fromkeys(s.country for s in SERVICES))
    + ", and the European 116 range (116 000-116 999) in the EU, EEA and UK"
)


# -- helpers --------------------------------------------------------------------------------


def _match(number: str, patterns: tuple[str, ...]) -> str | None:
    for p in patterns:
        if (p.endswith("*") and number.startswith(p[:-1])) or p == number:
            return p
    return None


def _show(entry: str) -> str:
    return entry if entry.endswith("*") else mask(entry)


def _utc(now: datetime) -> datetime:
    # A naive `now` is taken to be UTC, as everywhere else in callagent.
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _zone_infos(names: tuple[str, ...]) -> list[tuple[str, Any]]:
    """ZoneInfo objects for `names`; [] if any is unknown to the system's time zone database
    (then the local time cannot be told, and quiet hours refuse rather than guess)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return [(name, ZoneInfo(name)) for name in names]
    except (ZoneInfoNotFoundError, ValueError):
        return []


def _in_window(local: datetime, start: time, end: time) -> bool:
    t = local.time().replace(tzinfo=None)
    if start < end:
        return start <= t < end
    return t >= start or t < end  # the window spans midnight


def _next_allowed(now: datetime, zones: list[tuple[str, Any]], start: time, end: time) -> datetime | None:
    """The first moment after `now` outside quiet hours in every zone, or None within 3 days.

    Quiet hours end at `end` local time, so the answer is one of the zones' window ends.
    """
    candidates = set()
    for _, tz in zones:
        today: date = now.astimezone(tz).date()
        for days in range(-1, 3):
            candidates.add(datetime.combine(today + timedelta(days=days), end, tzinfo=tz).astimezone(UTC))
    for moment in sorted(c for c in candidates if c > now):
        if not any(_in_window(moment.astimezone(tz), start, end) for _, tz in zones):
            return moment
    return None
