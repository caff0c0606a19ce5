"""On hold: what a queue says while the caller waits, told from the person who picks up.

Pure. While a call is on hold the agent says nothing (not to the music, not to the queue's
announcements) and the silence timeout does not apply; the first words that are not a hold
announcement are the person, whom the agent greets again with the disclosure.
"""

from __future__ import annotations

import re

__all__ = ["is_hold_announcement"]

_PATTERNS = [
    r"\bplease (continue to )?hold\b",
    r"\b(please )?stay on the line\b",
    r"\b(all )?(of )?our (agents|representatives|staff|team members|operators) are (currently )?(busy|"
    r"assisting other|helping other|on other calls)",
    r"\byour call is important to us\b",
    r"\b(next|first) available (agent|representative|person|operator)\b",
    r"\byou are (caller )?(number )?\w+ in (the )?(queue|line)\b",
    r"\bestimated wait time\b",
    r"\bthank you for (your patience|holding|waiting),? (please|your call)\b",
    r"\bpor favor,? (espere|permanezca en la l[ií]nea)\b",
    r"\btodos nuestros (agentes|representantes) est[aá]n ocupados\b",
]
_MATCH = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def is_hold_announcement(heard: str) -> bool:
    """Whether `heard` is a queue's hold announcement rather than a person talking."""
    return bool(_MATCH.search(" ".join(heard.split())))
