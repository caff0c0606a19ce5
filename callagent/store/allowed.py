"""Numbers the operator allowed for good from the approval queue ("Allow always"): the
policy treats them as on DIAL_ALLOW. Each entry says who allowed it, when, and for which call."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from callagent.calls import utcnow
from callagent.store import schema

if TYPE_CHECKING:
    from callagent.store.db import Database

__all__ = ["AllowedNumber", "AllowedNumbers"]

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_t = schema.allowed_numbers


class AllowedNumber(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str
    added_by: str
    call_id: str | None = None
    added_at: datetime


class AllowedNumbers:
    """The allowed-numbers table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, number: str, added_by: str, call_id: str | None = None) -> AllowedNumber:
        """Allow an E.164 number; the first entry for a number stands (its audit is kept)."""
        if not _E164.fullmatch(number):
            raise ValueError(f"{number!r} is not an E.164 number (like +14155550100)")
        values = {"number": number, "added_by": added_by[:200], "call_id": call_id, "added_at": utcnow()}
        try:
            with self._db.engine.begin() as conn:
                conn.execute(sa.insert(_t).values(**values))
        except sa.exc.IntegrityError:
            pass  # allowed already
        entry = self.get(number)
        assert entry is not None
        return entry

    def get(self, number: str) -> AllowedNumber | None:
        with self._db.engine.connect() as conn:
            row = conn.execute(_t.select().where(_t.c.number == number)).first()
        return None if row is None else AllowedNumber.model_validate(dict(row._mapping))

    def listed(self, number: str) -> bool:
        return self.get(number) is not None

    def all(self) -> list[AllowedNumber]:
        with self._db.engine.connect() as conn:
            rows = conn.execute(_t.select().order_by(_t.c.added_at.desc())).all()
        return [AllowedNumber.model_validate(dict(row._mapping)) for row in rows]

    def remove(self, number: str) -> bool:
        with self._db.engine.begin() as conn:
            return conn.execute(sa.delete(_t).where(_t.c.number == number)).rowcount > 0
