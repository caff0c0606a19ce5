"""The do-not-call list: numbers never called again (the callee asked, or the operator)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from callagent.calls import utcnow
from callagent.store import schema
from callagent.store.schema import aware

if TYPE_CHECKING:
    from callagent.store.db import Database

__all__ = ["DoNotCall", "DoNotCallEntry", "listed"]

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_MAX_REASON = 500
_t = schema.do_not_call


class DoNotCallEntry(BaseModel):
    """A number on the do-not-call list."""

    model_config = ConfigDict(frozen=True)

    number: str
    reason: str | None = None
    call_id: str | None = None
    added_at: datetime


class DoNotCall:
    """The do-not-call table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self, number: str, reason: str | None = None, call_id: str | None = None, *, at: datetime | None = None
    ) -> DoNotCallEntry:
        """Put an E.164 number on the list; returns its entry.

        Adding a number that is already listed keeps the first entry (its reason and time):
        the earliest request not to be called is the one that counts.
        """
        if not isinstance(number, str) or not _E164.fullmatch(number):
            raise ValueError(f"{number!r} is not an E.164 number (like +14155550100); normalize it first")
        values = {
            "number": number,
            "reason": None if reason is None else reason[:_MAX_REASON],
            "call_id": call_id,
            "added_at": aware(at) if at is not None else utcnow(),
        }
        try:
            with self._db.engine.begin() as conn:
                row = conn.execute(sa.insert(_t).values(**values).returning(*_t.c)).one()
        except sa.exc.IntegrityError:
            with self._db.engine.connect() as conn:
                row = conn.execute(_t.select().where(_t.c.number == number)).one()
        return DoNotCallEntry.model_validate(dict(row._mapping))

    def remove(self, number: str) -> bool:
        """Take a number off the list; False if it was not on it."""
        with self._db.engine.begin() as conn:
            return conn.execute(sa.delete(_t).where(_t.c.number == number)).rowcount > 0

    def contains(self, number: str) -> bool:
        with self._db.engine.connect() as conn:
            return listed(conn, number)

    def entries(self) -> list[DoNotCallEntry]:
        """The whole list, most recently added first."""
        with self._db.engine.connect() as conn:
            rows = conn.execute(_t.select().order_by(_t.c.added_at.desc(), _t.c.number)).all()
        return [DoNotCallEntry.model_validate(dict(r._mapping)) for r in rows]


def listed(conn: sa.Connection, number: str) -> bool:
    """Whether `number` is on the list (inside the caller's transaction)."""
    return conn.execute(sa.select(_t.c.number).where(_t.c.number == number)).first() is not None
