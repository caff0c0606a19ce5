"""The dial policy's vocabulary: every rule that can refuse a call, the setting that governs it,
and the refusal a client is given. Pure data; `callagent.policy` re-exports both names.

Each rule says its own setting, so nothing else keeps a rule → setting table: `dial_policy`
lists `Rule` as it is, and a rule added here is listed there with its setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["NO_SETTING", "Refusal", "Rule"]

NO_SETTING = "no setting changes this"


class Rule(StrEnum):
    """The name of every rule that can refuse a call (clients and the audit see the name), and
    `setting`: the environment variable that governs it, or None when nothing can change it."""

    setting: str | None

    def __new__(cls, value: str, setting: str | None = None) -> Rule:
        rule = str.__new__(cls, value)
        rule._value_ = value
        rule.setting = setting
        return rule

    # The number itself (callagent.numbers).
    invalid_characters = "invalid_characters", None
    invalid_number = "invalid_number", "CALLAGENT_DEFAULT_REGION"  # governs numbers written without "+"
    extension = "extension", "DIAL_ALLOW_EXTENSIONS"
    emergency_number = "emergency_number", None
    # The built-in list cannot be changed; DIAL_NEVER_CALL only adds numbers to it.
    sensitive_number = "sensitive_number", None
    premium_rate = "premium_rate", None
    shared_cost = "shared_cost", None
    personal_number = "personal_number", None
    no_person = "no_person", None
    # The operator's policy (callagent.policy).
    deny_list = "deny_list", "DIAL_DENY"
    allow_list = "allow_list", "DIAL_ALLOW"
    country = "country", "DIAL_COUNTRIES"
    do_not_call = "do_not_call", None  # the operator edits the list itself (`callagent dnc`)
    quiet_hours = "quiet_hours", "DIAL_QUIET_HOURS"
    max_concurrent = "max_concurrent", "DIAL_MAX_CONCURRENT"
    max_per_number_per_day = "max_per_number_per_day", "DIAL_MAX_PER_NUMBER_PER_DAY"
    max_per_hour = "max_per_hour", "DIAL_MAX_PER_HOUR"
    confirmation = "confirmation", "DIAL_CONFIRM"
    # Handing a call over and recording it.
    transfer_target = "transfer_target", "CALLAGENT_TRANSFER_NUMBERS"
    recording = "recording", "CALLAGENT_RECORDING"
    # The operator's calling profiles (callagent.profiles).
    profile = "profile", "callagent.toml [profiles]"
    caller_id = "caller_id", "callagent.toml [profiles.NAME] caller_ids"
    # What the client sends with the number.
    text_too_long = (
        "text_too_long",
        "CALLAGENT_MAX_GOAL_CHARS, CALLAGENT_MAX_CONTEXT_CHARS, CALLAGENT_MAX_GREETING_CHARS",
    )
    control_characters = "control_characters", None
    invisible_characters = "invisible_characters", None
    ai_disclosure = "ai_disclosure", None  # text that takes back the AI disclosure (callagent.disclosure)
    max_duration = "max_duration", "CALLAGENT_MAX_DURATION_CAP_S"


_RULES_SETTING = object()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call may not be placed: the rule, a sentence for people, and the setting that
    governs it (by default the rule's own; a refusal may name the one setting of several that
    applied, e.g. CALLAGENT_MAX_GOAL_CHARS for an oversized goal).

    An LLM reading `text()` can tell its user exactly what stopped the call and who could
    change that.
    """

    rule: Rule
    message: str
    setting: str | None = _RULES_SETTING  # type: ignore[assignment]  # a sentinel: __post_init__ puts the rule's own

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", Rule(self.rule))
        if self.setting is _RULES_SETTING:
            object.__setattr__(self, "setting", self.rule.setting)

    def text(self) -> str:
        governed = f"setting {self.setting}" if self.setting else NO_SETTING
        return f"Refused by the dial policy, rule '{self.rule}' ({governed}): {self.message}"

    def __str__(self) -> str:
        return self.text()
