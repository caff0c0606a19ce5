"""What can go wrong in the call store."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callagent.calls import CallRecord

__all__ = ["CallNotFound", "DuplicateKey", "StoreError"]


class StoreError(Exception):
    """A call store operation that could not be carried out."""


class DuplicateKey(StoreError):
    """A call with this idempotency key already exists; `existing` is that call."""

    def __init__(self, existing: CallRecord) -> None:
        self.existing = existing
        super().__init__(
            f"a call with idempotency key {existing.idempotency_key!r} already exists "
            f"(call {existing.call_id}, {existing.status})"
        )


class CallNotFound(StoreError, LookupError):
    """No call with this id."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"no call with id {call_id!r}")
