"""What the phone network says instead of a person: the carrier's recorded announcements.

Pure. A call that reaches "the number you have dialed is not in service" ends at once as its
own outcome (end reason `not_in_service`), not as a conversation with a recording. Matched on
what speech recognition heard, in the phrasings carriers use in English and Spanish; the
special-information tones that precede them carry no words, so the words decide.
"""

from __future__ import annotations

import re

__all__ = ["not_in_service"]

_PATTERNS = [
    r"\b(number|call) you (have )?(dialed|called|reached)\b.*\b(not in service|no longer in service|disconnected|"
    r"not (a )?working|cannot be completed|could not be completed|has been changed)",
    r"\bis (not|no longer) in service\b",
    r"\bhas been disconnected\b",
    r"\b(cannot|could not|can ?not) be completed as dialed\b",
    r"\bnot a working number\b",
    r"\bcheck the number and (dial|try) again\b",
    r"\bel n[uú]mero (que )?(usted )?(ha )?marcado\b.*\b(no existe|no est[aá] en servicio|fuera de servicio)",
    r"\bfuera de servicio\b",
]
_MATCH = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def not_in_service(heard: str) -> bool:
    """Whether `heard` is a carrier's announcement that the number cannot be reached."""
    return bool(_MATCH.search(" ".join(heard.split())))
