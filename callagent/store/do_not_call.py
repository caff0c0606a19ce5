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
_tt = schema.tenant_do_not_call


class DoNotCallEntry(BaseModel):
    """A number on the do-not-call list."""

    model_config = ConfigDict(frozen=True)

    number: str
    reason: str | None = None
    call_id: str | None = None
    added_at: datetime
    tenant: str | None = None  # None: the global list, which holds for every call


class DoNotCall:
    """The do-not-call table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        number: str,
        reason: str | None = None,
        call_id: str | None = None,
        *,
        at: datetime | None = None,
        tenant: str | None = None,
    ) -> DoNotCallEntry:
        """Put an E.164 number on the list (`tenant`: on that tenant's own list); returns its entry.

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
        table, where = _table(tenant, number)
        if tenant is not None:
            values["tenant"] = tenant
        try:
            with self._db.engine.begin() as conn:
                row = conn.execute(sa.insert(table).values(**values).returning(*table.c)).one()
        except sa.exc.IntegrityError:
            with self._db.engine.connect() as conn:
                row = conn.execute(table.select().where(where)).one()
        return DoNotCallEntry.model_validate(dict(row._mapping))

    def remove(self, number: str, *, tenant: str | None = None) -> bool:
        """Take a number off the list (`tenant`'s own); False if it was not on it."""
        table, where = _table(tenant, number)
        with self._db.engine.begin() as conn:
            return conn.execute(sa.delete(table).where(where)).rowcount > 0

    def contains(self, number: str, *, tenant: str | None = None) -> bool:
        with self._db.engine.connect() as conn:
            return listed(conn, number, tenant=tenant)

    def entries(self, *, tenant: str | None = None, everyone: bool = True) -> list[DoNotCallEntry]:
        """The list, most recently added first: the global entries and every tenant's, or
        (`everyone=False`) the global ones and `tenant`'s own."""
        own = _tt.select() if everyone else _tt.select().where(_tt.c.tenant == (tenant or ""))
        with self._db.engine.connect() as conn:
            rows = [*conn.execute(_t.select()).all(), *conn.execute(own).all()]
        entries = [DoNotCallEntry.model_validate(dict(r._mapping)) for r in rows]
        return sorted(entries, key=lambda e: (-e.added_at.timestamp(), e.number, e.tenant or ""))


def _table(tenant: str | None, number: str) -> tuple[sa.Table, sa.ColumnElement[bool]]:
    if tenant is None:
        return _t, _t.c.number == number
    return _tt, sa.and_(_tt.c.tenant == tenant, _tt.c.number == number)


def listed(conn: sa.Connection, number: str, *, tenant: str | None = None) -> bool:
    """Whether `number` is on the list (inside the caller's transaction): the global list,
    which holds for every call, or `tenant`'s own."""
    if conn.execute(sa.select(_t.c.number).where(_t.c.number == number)).first() is not None:
        return True
    if tenant is None:
        return False
    own = sa.select(_tt.c.number).where(_tt.c.tenant == tenant, _tt.c.number == number)
    return conn.execute(own).first() is not None
