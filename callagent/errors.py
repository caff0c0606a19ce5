"""What the service's use cases raise, for every door to translate in one place.

Every message names the problem and, where one governs it, the setting to change: a door shows
it as it is (the MCP tools as an error result, the CLI on stderr with its exit status).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callagent.calls import CallRecord
    from callagent.rules import Refusal

__all__ = [
    "BadArgument",
    "CallagentError",
    "HangUpNotConfirmed",
    "NotConfigured",
    "NotFound",
    "PlacementFailed",
    "Refused",
    "StoreUnavailable",
]


class CallagentError(Exception):
    """A use case that could not do what was asked; nothing half-done is left behind."""


class BadArgument(CallagentError):
    """An argument that cannot be used as given (not a policy question)."""


class NotFound(CallagentError):
    """No such call."""


class NotConfigured(CallagentError):
    """A setting the use case needs is missing."""


class StoreUnavailable(CallagentError):
    """The call store could not be reached or failed."""


class Refused(CallagentError):
    """The dial policy refused the call; `refusal` names the rule and its setting."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.text())


class PlacementFailed(CallagentError):
    """The call could not be placed; `record` is its record, failed with the reason."""

    def __init__(self, message: str, record: CallRecord | None = None) -> None:
        self.record = record
        super().__init__(message)


class HangUpNotConfirmed(CallagentError):
    """LiveKit did not confirm a hang-up: the line may still be up, the call stays live."""
