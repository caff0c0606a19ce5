"""The simulated phone's scripted behaviours, keyed by dialed number.

One data file (scenarios.json) drives both the phone (what it says, when it answers) and the
offline model server (what the STT "hears", what the scripted LLM replies), so they stay in step.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

SCENARIO_FILE = Path(__file__).with_name("scenarios.json")

# Header carrying callagent's call id, sent by the dialer on the SIP INVITE and by the worker on
# its model requests, so the bed can tell concurrent calls apart.
CALL_ID_HEADER = "X-Callagent-Call-Id"


class ToolCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Reply(BaseModel):
    """What the scripted LLM answers after the callee said a line."""

    text: str | None = None
    tool: ToolCall | None = None
    after_tool: str | None = None  # the text the LLM says once the tool's result came back
    # ...instead, when the tool's result says it did not work (starts with "Not done:"), or when
    # the worker did not offer the tool (a transfer that failed or could not be tried)
    after_tool_error: str | None = None


# The languages a scenario (or one of its lines) may be spoken in, and the espeak-ng voice the
# phone speaks each with (`espeak-ng --voices`). Latin American Spanish: the bed's callees are in
# California, and "¿Bueno?" is how a Mexican phone is answered.
ESPEAK_VOICES: dict[str, str] = {
    "en": "en-us",
    "es": "es-419",
    "fr": "fr-fr",
    "de": "de",
    "hi": "hi",
    "ta": "ta",
}
Language = Literal["en", "es", "fr", "de", "hi", "ta"]
DEFAULT_LANGUAGE: Language = "en"


def espeak_voice(language: str | None) -> str:
    """The espeak-ng voice for a language code (None: the default, English)."""
    return ESPEAK_VOICES[language or DEFAULT_LANGUAGE]


PAUSE_MARK = "|"  # in a line's text in scenarios.json: the callee pauses here (see Line.pauses)


class Line(BaseModel):
    # The words as the STT hears them. In scenarios.json a `|` marks a pause mid-sentence; the
    # marks are taken out here, into `segments`, so everything else sees the words only.
    text: str
    # The pieces between the marks (one piece without marks), spoken with `pauses` between them:
    # a callee who stops for breath at a comma or an "um", which must not end their turn.
    segments: list[str] = Field(default_factory=list)
    pauses: list[float] = Field(default_factory=list)
    # after_agent: the phone waits until the agent has spoken and gone quiet, then says it.
    # on_answer: said right after the phone answers (a voicemail greeting), or, behind an
    # attendant, right after the person picks up.
    when: Literal["after_agent", "on_answer"] = "after_agent"
    # Played just before the line: "sit", the special information tones of a carrier announcement.
    tones: Literal["sit"] | None = None
    reply: Reply | None = None
    # after_agent only: how long the agent must have been quiet before the phone says this line,
    # instead of the phone's default (0.7 s). Longer than any pause in the worker's hold music
    # (its clip's longest is about 4 s, 6 s across its loop), it keeps a line for the end of a
    # hold rather than a pause in the music.
    min_quiet_s: float | None = Field(default=None, gt=0)
    # The call's outcome once this line was said, instead of the scenario's (the attendant's
    # "not valid" goodbye: whatever the scenario was for did not happen).
    outcome: dict[str, Any] | None = None
    # The language the line is spoken in; unset, the scenario's (see Scenario.language).
    language: Language | None = None
    # The line the phone says instead once the call took its error branch: the scripted agent
    # said a reply's after_tool_error (a tool's result started with "Not done:", or the tool
    # was not offered), as the model server tells the phone on the Board. Its text, tones,
    # pauses, reply, outcome and language replace this line's; when it is said stays this
    # line's (`when`, `min_quiet_s`). A conversation's later lines may each have one too: the
    # branch holds for the rest of the call.
    if_tool_failed: Line | None = None

    @property
    def voice(self) -> str:
        """The espeak-ng voice the phone says this line with."""
        return espeak_voice(self.language)

    @model_validator(mode="after")
    def _one_branch_deep(self) -> Line:
        if self.if_tool_failed is not None and self.if_tool_failed.if_tool_failed is not None:
            raise ValueError(f"{self.text!r}: the line said instead (if_tool_failed) has no if_tool_failed of its own")
        return self

    def said(self, error_branch: bool) -> Line:
        """The line said: this one, or, once the call took its error branch, its if_tool_failed."""
        return self.if_tool_failed if error_branch and self.if_tool_failed is not None else self

    @model_validator(mode="before")
    @classmethod
    def _split_pauses(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "segments" in data:
            return data
        raw = str(data.get("text", ""))
        segments = [" ".join(piece.split()) for piece in raw.split(PAUSE_MARK)]
        pauses = list(data.get("pauses") or [])
        if len(pauses) != len(segments) - 1 or not all(segments):
            raise ValueError(f"{raw!r}: one pause (seconds) per {PAUSE_MARK!r}, between non-empty pieces")
        if not all(0 < float(p) <= 3 for p in pauses):
            raise ValueError(f"{raw!r}: pauses are seconds in (0, 3]")
        return {**data, "text": " ".join(segments), "segments": segments, "pauses": pauses}


class Attendant(BaseModel):
    """An auto-attendant that answers first: it says `prompt` and collects an extension as
    digits (RFC 4733 events or SIP INFO; the first digit cuts the prompt short). The extension
    is complete after `max_digits` digits, or once no digit followed for `digit_gap_s`.
    `extension` puts the person on, who then says the scenario's lines; any other digits, or
    none within `no_digit_s` of the answer, get `invalid`, then the phone hangs up."""

    prompt: Line
    extension: str = Field(pattern=r"^[0-9*#A-D]{1,8}$")
    invalid: Line
    max_digits: int = Field(default=3, ge=1)
    digit_gap_s: float = Field(default=2.0, gt=0)
    no_digit_s: float = Field(default=10.0, gt=0)


class MenuOption(BaseModel):
    """Where a menu digit leads: a person who says these lines."""

    lines: list[Line]


class Menu(BaseModel):
    """A phone menu that answers first: it says `prompt` (a digit cuts it short) and waits up
    to `no_digit_s` after it for one digit. A digit in `options` puts that desk on (its lines replace the scenario's); any other
    digit (or `repeat`), or none, says the prompt again; after `rounds` rounds it says
    `goodbye` and hangs up."""

    prompt: Line
    options: dict[str, MenuOption]
    goodbye: Line
    rounds: int = Field(default=3, ge=1)
    no_digit_s: float = Field(default=10.0, gt=0)


class Hold(BaseModel):
    """A hold queue after the scenario's line `after`: hold music for `seconds`, `announcement`
    every `every_s`, then the scenario's next lines (a person picks up)."""

    after: int = 0
    seconds: float = Field(default=40.0, gt=0)
    every_s: float = Field(default=15.0, gt=0)
    announcement: Line


class Scenario(BaseModel):
    number: str
    name: str
    answer: Literal["answer", "busy", "decline", "never"]
    ring_s: float = 1.0
    # Ring with early media: 183 Session Progress with SDP and ringback tone over RTP for
    # ring_s (instead of a 180), then the answer.
    early_media: bool = False
    attendant: Attendant | None = None
    menu: Menu | None = None
    hold: Hold | None = None
    lines: list[Line] = Field(default_factory=list)
    # After its last line the phone: waits for the agent to hang up, hangs up itself,
    # or (voicemail) beeps and records until the agent hangs up.
    after_lines: Literal["wait", "hangup", "record"] = "wait"
    outcome: dict[str, Any] | None = None
    # The language the callee speaks (its lines', unless a line says otherwise); the scripted
    # agent's replies are written in it too.
    language: Language = DEFAULT_LANGUAGE

    @model_validator(mode="after")
    def _lines_speak_its_language(self) -> Scenario:
        for line in self.spoken():
            if line.language is None:
                line.language = self.language
        return self

    def spoken(self) -> list[Line]:
        """Every line the phone may say on this number: the attendant's, the menu's, then the
        scenario's; each followed by the line said instead of it in the error branch, if any."""
        attendant = [self.attendant.prompt, self.attendant.invalid] if self.attendant else []
        menu = (
            [self.menu.prompt, self.menu.goodbye, *(ln for opt in self.menu.options.values() for ln in opt.lines)]
            if self.menu
            else []
        )
        hold = [self.hold.announcement] if self.hold else []
        lines = [*attendant, *menu, *hold, *self.lines]
        # each line, then what is said instead of it in the error branch
        return [said for line in lines for said in (line, line.if_tool_failed) if said is not None]


@cache
def scenarios() -> dict[str, Scenario]:
    data = json.loads(SCENARIO_FILE.read_text())
    return {s["number"]: Scenario.model_validate(s) for s in data["scenarios"]}


def scenario_for(number: str) -> Scenario | None:
    """The scenario for a dialed number (E.164 or bare digits as in a SIP URI user part)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    for key, sc in scenarios().items():
        if key.lstrip("+") == digits or (len(digits) == 10 and key.endswith(digits)):
            return sc
    return None


def reply_to(callee_text: str) -> tuple[Scenario, Line] | None:
    """The scenario line whose text the callee said (what the scripted LLM keys its answer on)."""
    norm = " ".join(callee_text.lower().split())
    for sc in scenarios().values():
        for line in sc.spoken():
            if " ".join(line.text.lower().split()) == norm:
                return sc, line
    return None
