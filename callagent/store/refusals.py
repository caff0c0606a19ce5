"""The refusal audit: every refused call, masked, with a looping client's repeats counted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from callagent.calls import utcnow
from callagent.numbers import mask_numbers_in_text, printable
from callagent.store import schema
from callagent.store.schema import MAX_REFUSAL_NUMBER, aware

if TYPE_CHECKING:
    from callagent.rules import Refusal
    from callagent.store.db import Database

__all__ = ["REFUSAL_ROWS_PER_WINDOW", "REFUSAL_WINDOW_S", "RefusalEntry", "Refusals"]

# A looping client must not fill the audit table: the same refusal (rule, number, message)
# within this window only counts up its row, and past the cap per window every refusal of a
# rule counts up that rule's latest row.
REFUSAL_WINDOW_S = 60.0
REFUSAL_ROWS_PER_WINDOW = 60
_MAX_MESSAGE = 2000
_t = schema.refusals


class RefusalEntry(BaseModel):
    """One refused call (or a run of the same refusal), as kept for audit."""

    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    number: str | None  # masked
    rule: str
    message: str
    setting: str | None = None
    repeats: int = 1  # how many refusals this row stands for
    last_at: datetime | None = None  # the latest of them
    tenant: str | None = None  # whose client was refused; None: the operator's


class Refusals:
    """The refusals table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self, refusal: Refusal, number: str | None, *, at: datetime | None = None, tenant: str | None = None
    ) -> RefusalEntry:
        """Keep a refused call for audit; returns its row.

        `number` is the E.164 number when there is one, else the client's input. Everything is
        stored masked and escaped: the number, and any number quoted in the message (the input
        came from a client, and ends up on an operator's terminal). Repeats within
        REFUSAL_WINDOW_S share a row (see the module docstring).
        """
        at = aware(at) if at is not None else utcnow()
        values = {
            "at": at,
            "number": None if number is None else printable(mask_numbers_in_text(number))[:MAX_REFUSAL_NUMBER],
            "rule": printable(str(refusal.rule))[:64],
            "message": "\n".join(printable(line) for line in mask_numbers_in_text(refusal.message).split("\n"))[
                :_MAX_MESSAGE
            ],
            "setting": None if refusal.setting is None else printable(refusal.setting)[:200],
            "repeats": 1,
            "last_at": at,
            "tenant": tenant,
        }
        recent = _t.c.at >= at - timedelta(seconds=REFUSAL_WINDOW_S)
        same_rule = _t.c.rule == values["rule"]
        with self._db.write_lock() as conn:  # one writer at a time: counting and writing agree
            same = conn.execute(
                _t.select()
                .where(
                    recent,
                    same_rule,
                    _t.c.number.is_not_distinct_from(values["number"]),
                    _t.c.message == values["message"],
                    _t.c.tenant.is_not_distinct_from(tenant),
                )
                .order_by(_t.c.id.desc())
                .limit(1)
            ).first()
            if same is None:
                in_window = conn.execute(sa.select(sa.func.count()).select_from(_t).where(recent)).scalar_one()
                if in_window >= REFUSAL_ROWS_PER_WINDOW:
                    same = conn.execute(
                        _t.select()
                        .where(recent, same_rule, _t.c.tenant.is_not_distinct_from(tenant))
                        .order_by(_t.c.id.desc())
                        .limit(1)
                    ).first()
            if same is not None:
                row = conn.execute(
                    sa.update(_t)
                    .where(_t.c.id == same.id)
                    .values(repeats=_t.c.repeats + 1, last_at=at)
                    .returning(*_t.c)
                ).one()
            else:
                row = conn.execute(sa.insert(_t).values(**values).returning(*_t.c)).one()
        return RefusalEntry.model_validate(dict(row._mapping))

    def recent(self, limit: int = 50, *, tenant: str | None = None) -> list[RefusalEntry]:
        """The most recent refusals, newest first; `tenant`'s only, when given."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = _t.select().order_by(_t.c.at.desc(), _t.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(_t.c.tenant == tenant)
        with self._db.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [RefusalEntry.model_validate(dict(r._mapping)) for r in rows]
