"""The call store: the one channel from the worker back to the MCP server.

Both processes open the same database (an SQLite file by default, PostgreSQL across machines)
through `CallStore`. Status changes are compare-and-set UPDATEs, so two processes racing to end
a call cannot both win: every call ends in exactly one terminal status.

SQLAlchemy is imported on first use, not at import time: the MCP server must start fast.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from callagent.calls import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    CallRecord,
    CallStatus,
    can_transition,
    utcnow,
)
from callagent.numbers import Refusal, Rule, mask_numbers_in_text, printable
from callagent.policy import Counts, Lists, VolumeLimits
from callagent.redact import redact_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic import TypeAdapter
    from sqlalchemy import ColumnElement, Connection, Row, Table
    from sqlalchemy.engine import Engine

__all__ = [
    "CallNotFound",
    "CallStore",
    "DoNotCallEntry",
    "DuplicateKey",
    "RefusalEntry",
    "StaleCall",
    "StoreError",
]

log = logging.getLogger("callagent.store")

TABLE_NAME = "callagent_calls"
DNC_TABLE_NAME = "callagent_do_not_call"
REFUSALS_TABLE_NAME = "callagent_refusals"
CONFIRMATIONS_TABLE_NAME = "callagent_confirmations"

# Advisory lock keys (PostgreSQL): one for creating tables, one for placing calls.
_DDL_LOCK_KEY = 7305982763
_DIAL_LOCK_KEY = 7305982764

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_MAX_REFUSAL_NUMBER = 32
_MAX_REFUSAL_MESSAGE = 2000
_MAX_DNC_REASON = 500
# A looping client must not fill the audit table: the same refusal (rule, number, message)
# within this window only counts up its row, and past the cap per window every refusal of a
# rule counts up that rule's latest row.
REFUSAL_WINDOW_S = 60.0
REFUSAL_ROWS_PER_WINDOW = 60
_MAX_CURSOR_CHARS = 200

# Fields that identify a call or are managed by the store itself; everything else may be
# written with update() / transition().
_FIXED_FIELDS = frozenset({"call_id", "phone_number", "idempotency_key", "created_at", "updated_at"})
_JSON_FIELDS = frozenset({"transcript", "outcome"})


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


class DoNotCallEntry(BaseModel):
    """A number on the do-not-call list."""

    model_config = ConfigDict(frozen=True)

    number: str
    reason: str | None = None
    call_id: str | None = None
    added_at: datetime


class RefusalEntry(BaseModel):
    """One refused call, as kept for audit."""

    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    number: str | None  # masked
    rule: str
    message: str
    setting: str | None = None
    repeats: int = 1  # how many refusals this row stands for (a looping client's are counted up)
    last_at: datetime | None = None  # the latest of them


class StaleCall(NamedTuple):
    """A live call whose worker has not been heard from: what the reaper acts on."""

    record: CallRecord
    last_seen: datetime  # the heartbeat (or update) the decision was based on
    reason: str  # the ended_reason the call gets


class CallStore:
    """Call records in an SQL database, safe to share between processes.

    `url` is an SQLAlchemy URL: `sqlite:///path/to/calls.db` (parent directories are created)
    or `postgresql+psycopg://user:pass@host/db` (`postgresql://` means the same). The engine
    and table are set up on first use. All methods are blocking; async code calls them in a
    thread.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CallStore({redact_url(self.url)!r})"

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the store's connections (it reconnects if used again)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # -- records ---------------------------------------------------------------------------

    def create(self, record: CallRecord) -> CallRecord:
        """Insert a new call; raises DuplicateKey if its idempotency key is taken."""
        import sqlalchemy as sa

        engine, table = self._ready()
        stmt = sa.insert(table).values(**_record_to_row(record)).returning(*table.c)
        try:
            with engine.begin() as conn:
                row = conn.execute(stmt).one()
        except sa.exc.IntegrityError:
            self._raise_conflict(record)
            raise
        return _row_to_record(row)

    def _raise_conflict(self, record: CallRecord) -> None:
        """After an insert hit a unique constraint: raise the error that says which one."""
        if record.idempotency_key is not None:
            existing = self.find_by_idempotency_key(record.idempotency_key)
            if existing is not None:
                raise DuplicateKey(existing) from None
        if self.get(record.call_id) is not None:
            raise StoreError(f"a call with id {record.call_id!r} already exists") from None

    def get(self, call_id: str) -> CallRecord | None:
        engine, table = self._ready()
        with engine.connect() as conn:
            row = conn.execute(table.select().where(table.c.call_id == call_id)).first()
        return None if row is None else _row_to_record(row)

    def find_by_idempotency_key(self, key: str) -> CallRecord | None:
        engine, table = self._ready()
        with engine.connect() as conn:
            row = conn.execute(table.select().where(table.c.idempotency_key == key)).first()
        return None if row is None else _row_to_record(row)

    def transition(self, call_id: str, status: CallStatus | str, /, **fields: Any) -> CallRecord | None:
        """Move a call to `status` and set `fields`, if the lifecycle allows it.

        Returns the updated record, or None when the move is refused (unknown call, a status
        that would go backwards, or the call already ended). The check and the write are one
        conditional UPDATE, so concurrent writers in any process cannot both succeed: the
        first terminal status wins. Timestamps are filled in when not given: `dialed_at` once
        the call is dialing or later, `answered_at` on in_progress, `ended_at` on a terminal
        status.
        """
        import sqlalchemy as sa

        status = CallStatus(status)
        sources = [s.value for s in CallStatus if can_transition(s, status)]
        values: dict[str, Any] = _column_values(fields)
        if not sources:
            return None
        engine, table = self._ready()
        now = utcnow()
        values["status"] = status.value
        values["updated_at"] = now
        if status not in TERMINAL_STATUSES and status is not CallStatus.queued:
            values.setdefault(
                "dialed_at", sa.func.coalesce(table.c.dialed_at, sa.literal(now, table.c.dialed_at.type))
            )
        if status is CallStatus.in_progress:
            values.setdefault("answered_at", now)
        if status in TERMINAL_STATUSES:
            values.setdefault("ended_at", now)
        stmt = (
            sa.update(table)
            .where(table.c.call_id == call_id, table.c.status.in_(sources))
            .values(**values)
            .returning(*table.c)
        )
        with engine.begin() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _row_to_record(row)

    def update(self, call_id: str, /, **fields: Any) -> CallRecord:
        """Set non-status fields (transcript, summary, outcome, ...); works on ended calls too.

        Raises ValueError for unknown or read-only field names and CallNotFound for an
        unknown call.
        """
        import sqlalchemy as sa

        values = _column_values(fields)
        engine, table = self._ready()
        values["updated_at"] = utcnow()
        stmt = sa.update(table).where(table.c.call_id == call_id).values(**values).returning(*table.c)
        with engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise CallNotFound(call_id)
        return _row_to_record(row)

    def heartbeat(self, call_id: str) -> CallRecord | None:
        """Record that the worker holding a call is alive, and tell it how the call stands.

        Returns the record as it is now (None for an unknown call). The worker must end its
        call when the record is no longer live (ended elsewhere: end_call in another process,
        the reaper) or has a hang-up requested. Does not touch `updated_at`: a heartbeat is
        not a change.
        """
        import sqlalchemy as sa

        engine, table = self._ready()
        stmt = (
            sa.update(table)
            .where(table.c.call_id == call_id, table.c.status.in_(_values(ACTIVE_STATUSES)))
            .values(heartbeat_at=utcnow())
            .returning(*table.c)
        )
        with engine.begin() as conn:
            row = conn.execute(stmt).first()
        return _row_to_record(row) if row is not None else self.get(call_id)

    def request_hangup(
        self,
        call_id: str,
        reason: str,
        status: CallStatus = CallStatus.canceled,
        *,
        now: datetime | None = None,
    ) -> CallRecord | None:
        """Note that a live call is to be hung up, why, and the terminal `status` it then gets;
        the call stays live until someone confirms the hang-up with a terminal transition. The
        first request stands.

        Returns the record, or None when the call is unknown or already ended. The worker
        holding the call sees the request at its next heartbeat and hangs up itself.
        """
        import sqlalchemy as sa

        engine, table = self._ready()
        at = _aware(now) if now is not None else utcnow()
        stmt = (
            sa.update(table)
            .where(table.c.call_id == call_id, table.c.status.in_(_values(ACTIVE_STATUSES)))
            .values(
                hangup_requested_at=sa.func.coalesce(
                    table.c.hangup_requested_at, sa.literal(at, table.c.hangup_requested_at.type)
                ),
                hangup_reason=sa.func.coalesce(table.c.hangup_reason, sa.literal(reason[:_MAX_REFUSAL_MESSAGE])),
                hangup_status=sa.func.coalesce(table.c.hangup_status, sa.literal(CallStatus(status).value)),
            )
            .returning(*table.c)
        )
        with engine.begin() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _row_to_record(row)

    def find_stale(
        self, stale_after_s: float, *, orphan_after_s: float | None = None, now: datetime | None = None
    ) -> builtins.list[StaleCall]:
        """Live calls whose worker has gone quiet.

        A call is stale when its last heartbeat (or, without one, its last update) is more
        than `stale_after_s` seconds before `now`. A call still queued or dialing that never
        had a heartbeat is stale after `orphan_after_s` already: its worker would have sent
        one on joining, so the server placing it died mid-dial.
        """
        import sqlalchemy as sa

        engine, table = self._ready()
        now = _aware(now) if now is not None else utcnow()
        cutoff = now - timedelta(seconds=stale_after_s)
        last_seen = sa.func.coalesce(table.c.heartbeat_at, table.c.updated_at, type_=table.c.updated_at.type)
        condition = last_seen < cutoff
        if orphan_after_s is not None and orphan_after_s < stale_after_s:
            orphaned = sa.and_(
                table.c.heartbeat_at.is_(None),
                table.c.status.in_(_values({CallStatus.queued, CallStatus.dialing})),
                table.c.updated_at < now - timedelta(seconds=orphan_after_s),
            )
            condition = sa.or_(condition, orphaned)
        with engine.connect() as conn:
            rows = conn.execute(table.select().where(table.c.status.in_(_values(ACTIVE_STATUSES)), condition)).all()
        stale: builtins.list[StaleCall] = []
        for row in rows:
            seen = _row_to_record(row)
            since = seen.heartbeat_at or seen.updated_at
            age = (now - since).total_seconds()
            if seen.heartbeat_at:
                what = "the worker stopped responding (last heartbeat"
            elif seen.status in (CallStatus.queued, CallStatus.dialing):
                what = "the server placing the call stopped responding before a worker took it (last update"
            else:
                what = "the worker stopped responding (no heartbeat; last update"
            reason = f"{what} {since:%Y-%m-%d %H:%M:%S} UTC, {age:.0f} s before it was declared lost)"
            stale.append(StaleCall(seen, since, reason))
        return stale

    def fail_stale(self, stale: StaleCall, reason: str | None = None, *, now: datetime | None = None) -> CallRecord | None:
        """End a stale call as failed, only if nothing moved since it was found (a heartbeat
        that just arrived saves it). Returns the failed record, or None."""
        import sqlalchemy as sa

        engine, table = self._ready()
        now = _aware(now) if now is not None else utcnow()
        last_seen = sa.func.coalesce(table.c.heartbeat_at, table.c.updated_at, type_=table.c.updated_at.type)
        stmt = (
            sa.update(table)
            .where(
                table.c.call_id == stale.record.call_id,
                table.c.status.in_(_values(ACTIVE_STATUSES)),
                last_seen == stale.last_seen,
            )
            .values(
                status=CallStatus.failed.value, ended_reason=reason or stale.reason, ended_at=now, updated_at=now
            )
            .returning(*table.c)
        )
        with engine.begin() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _row_to_record(row)

    def reap_stale(self, stale_after_s: float, now: datetime | None = None) -> builtins.list[CallRecord]:
        """Fail every stale call at once, without hanging anything up (see find_stale).

        The server's reaper hangs each line up first (callagent.tools); this is for tools and
        tests that only need the records settled."""
        reaped = (self.fail_stale(s, now=now) for s in self.find_stale(stale_after_s, now=now))
        return [r for r in reaped if r is not None]

    # -- queries ---------------------------------------------------------------------------

    def list(
        self,
        *,
        status: CallStatus | str | Iterable[CallStatus | str] | None = None,
        phone_number: str | None = None,
        since: datetime | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[builtins.list[CallRecord], str | None]:
        """Calls newest first, and a cursor for the next page (None on the last page).

        The cursor is the position (created_at, call_id) of the page's last call, so pages
        neither skip nor repeat calls when new ones are created meanwhile.
        """
        import sqlalchemy as sa

        if limit < 1:
            raise ValueError("limit must be at least 1")
        engine, table = self._ready()
        query = table.select()
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            query = query.where(table.c.status.in_([CallStatus(s).value for s in wanted]))
        if phone_number is not None:
            query = query.where(table.c.phone_number == phone_number)
        if since is not None:
            query = query.where(table.c.created_at >= _aware(since))
        if cursor is not None:
            created_at, call_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    table.c.created_at < created_at,
                    sa.and_(table.c.created_at == created_at, table.c.call_id < call_id),
                )
            )
        query = query.order_by(table.c.created_at.desc(), table.c.call_id.desc()).limit(limit + 1)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        records = [_row_to_record(row) for row in rows[:limit]]
        next_cursor = _encode_cursor(records[-1]) if len(rows) > limit else None
        return records, next_cursor

    def count_active(self) -> int:
        """Calls currently queued, dialing, ringing or in progress."""
        table = self._ready()[1]
        return self._count(table.c.status.in_(_values(ACTIVE_STATUSES)))

    def count_for_number_since(self, number: str, since: datetime) -> int:
        """Calls to `number` created at or after `since`."""
        table = self._ready()[1]
        return self._count(table.c.phone_number == number, table.c.created_at >= _aware(since))

    def count_since(self, since: datetime) -> int:
        """Calls created at or after `since`."""
        table = self._ready()[1]
        return self._count(table.c.created_at >= _aware(since))

    def _count(self, *where: ColumnElement[bool]) -> int:
        import sqlalchemy as sa

        engine, table = self._ready()
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()

    # -- dial policy -----------------------------------------------------------------------

    def counts(self, now: datetime | None = None, number: str | None = None) -> Counts:
        """Live calls, calls in the last hour, and (given `number`) calls to it in the last
        24 hours: the facts the volume limits are checked against."""
        engine, _ = self._ready()
        with engine.connect() as conn:
            return _counts(conn, _aware(now) if now is not None else utcnow(), number)

    def policy_inputs(self, number: str, now: datetime | None = None) -> tuple[Counts, Lists]:
        """Everything `DialPolicy.check` needs from the store for a call to `number`."""
        engine, _ = self._ready()
        with engine.connect() as conn:
            counts = _counts(conn, _aware(now) if now is not None else utcnow(), number)
            listed = _on_do_not_call(conn, number)
        return counts, Lists(do_not_call=frozenset({number}) if listed else frozenset())

    def create_if_within_limits(
        self,
        record: CallRecord,
        limits: VolumeLimits,
        *,
        now: datetime | None = None,
        check_do_not_call: bool = True,
    ) -> CallRecord | Refusal:
        """Create `record` only if the volume limits (and the do-not-call list) still allow it.

        The counting and the insert happen in one transaction that holds the database's
        write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-level advisory lock),
        so simultaneous requests from any number of processes are admitted one at a time:
        with a limit of 3 concurrent calls, 20 racing requests create exactly 3 records.
        Returns the created record, or the Refusal naming the limit that was hit. Raises
        DuplicateKey like create().
        """
        import sqlalchemy as sa

        engine, table = self._ready()
        at = _aware(now) if now is not None else utcnow()
        stmt = sa.insert(table).values(**_record_to_row(record)).returning(*table.c)
        try:
            with _dial_lock(engine) as conn:
                if check_do_not_call and _on_do_not_call(conn, record.phone_number):
                    return Refusal(
                        Rule.do_not_call,
                        "the number is on the do-not-call list; only the operator can remove it, "
                        "with `callagent dnc remove`",
                        None,
                    )
                refusal = limits.check(_counts(conn, at, record.phone_number))
                if refusal is not None:
                    return refusal
                row = conn.execute(stmt).one()
        except sa.exc.IntegrityError:
            self._raise_conflict(record)
            raise
        return _row_to_record(row)

    # -- do-not-call list ------------------------------------------------------------------

    def add_do_not_call(
        self, number: str, reason: str | None = None, call_id: str | None = None, *, at: datetime | None = None
    ) -> DoNotCallEntry:
        """Put an E.164 number on the do-not-call list; returns its entry.

        Adding a number that is already listed keeps the first entry (its reason and time):
        the earliest request not to be called is the one that counts.
        """
        import sqlalchemy as sa

        _require_e164(number)
        engine, _ = self._ready()
        dnc = _tables().do_not_call
        values = {
            "number": number,
            "reason": None if reason is None else reason[:_MAX_DNC_REASON],
            "call_id": call_id,
            "added_at": _aware(at) if at is not None else utcnow(),
        }
        try:
            with engine.begin() as conn:
                row = conn.execute(sa.insert(dnc).values(**values).returning(*dnc.c)).one()
        except sa.exc.IntegrityError:
            with engine.connect() as conn:
                row = conn.execute(dnc.select().where(dnc.c.number == number)).one()
        return DoNotCallEntry.model_validate(dict(row._mapping))

    def remove_do_not_call(self, number: str) -> bool:
        """Take a number off the list; False if it was not on it."""
        import sqlalchemy as sa

        engine, _ = self._ready()
        dnc = _tables().do_not_call
        with engine.begin() as conn:
            return conn.execute(sa.delete(dnc).where(dnc.c.number == number)).rowcount > 0

    def list_do_not_call(self) -> builtins.list[DoNotCallEntry]:
        """The whole list, most recently added first."""
        engine, _ = self._ready()
        dnc = _tables().do_not_call
        with engine.connect() as conn:
            rows = conn.execute(dnc.select().order_by(dnc.c.added_at.desc(), dnc.c.number)).all()
        return [DoNotCallEntry.model_validate(dict(r._mapping)) for r in rows]

    def is_do_not_call(self, number: str) -> bool:
        engine, _ = self._ready()
        with engine.connect() as conn:
            return _on_do_not_call(conn, number)

    # -- refusals (audit) ------------------------------------------------------------------

    def record_refusal(
        self,
        number: str | None,
        rule: str,
        message: str,
        at: datetime | None = None,
        setting: str | None = None,
    ) -> RefusalEntry:
        """Keep a refused call for audit; returns its row.

        Everything is stored masked and escaped: the number, and any number quoted in the
        message (the input came from a client, and ends up on an operator's terminal). A
        repeat of the same refusal within REFUSAL_WINDOW_S counts up the earlier row instead of
        adding one, and past REFUSAL_ROWS_PER_WINDOW rows in the window every refusal counts up
        its rule's latest row: a client looping on a refused call cannot fill the table.
        """
        import sqlalchemy as sa

        engine, _ = self._ready()
        refusals = _tables().refusals
        at = _aware(at) if at is not None else utcnow()
        values = {
            "at": at,
            "number": None if number is None else _clean(mask_numbers_in_text(number))[:_MAX_REFUSAL_NUMBER],
            "rule": _clean(str(rule))[:64],
            "message": _clean(mask_numbers_in_text(message), keep_newlines=True)[:_MAX_REFUSAL_MESSAGE],
            "setting": None if setting is None else _clean(setting)[:200],
            "repeats": 1,
            "last_at": at,
        }
        since = at - timedelta(seconds=REFUSAL_WINDOW_S)
        recent = refusals.c.at >= since
        same_rule = refusals.c.rule == values["rule"]
        with _dial_lock(engine) as conn:  # one writer at a time: counting and writing agree
            same = conn.execute(
                refusals.select()
                .where(recent, same_rule, refusals.c.number.is_not_distinct_from(values["number"]),
                       refusals.c.message == values["message"])
                .order_by(refusals.c.id.desc()).limit(1)
            ).first()
            if same is None:
                in_window = conn.execute(sa.select(sa.func.count()).select_from(refusals).where(recent)).scalar_one()
                if in_window >= REFUSAL_ROWS_PER_WINDOW:
                    same = conn.execute(
                        refusals.select().where(recent, same_rule).order_by(refusals.c.id.desc()).limit(1)
                    ).first()
            if same is not None:
                stmt = (
                    sa.update(refusals)
                    .where(refusals.c.id == same.id)
                    .values(repeats=refusals.c.repeats + 1, last_at=at)
                    .returning(*refusals.c)
                )
            else:
                stmt = sa.insert(refusals).values(**values).returning(*refusals.c)
            row = conn.execute(stmt).one()
        return RefusalEntry.model_validate(dict(row._mapping))

    def list_refusals(self, limit: int = 50) -> builtins.list[RefusalEntry]:
        """The most recent refusals, newest first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        engine, _ = self._ready()
        refusals = _tables().refusals
        query = refusals.select().order_by(refusals.c.at.desc(), refusals.c.id.desc()).limit(limit)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        return [RefusalEntry.model_validate(dict(r._mapping)) for r in rows]

    # -- confirmation tokens ---------------------------------------------------------------

    def issue_confirmation(self, call_args_hash: str, ttl_s: float, *, now: datetime | None = None) -> str:
        """A fresh one-time token confirming the call whose arguments hash to `call_args_hash`,
        valid for `ttl_s` seconds. Expired tokens are swept on the way."""
        import sqlalchemy as sa

        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        engine, _ = self._ready()
        tokens = _tables().confirmations
        at = _aware(now) if now is not None else utcnow()
        token = secrets.token_urlsafe(18)
        with engine.begin() as conn:
            conn.execute(sa.delete(tokens).where(tokens.c.expires_at <= at))
            conn.execute(
                sa.insert(tokens).values(
                    token_hash=_token_hash(token),
                    args_hash=call_args_hash,
                    created_at=at,
                    expires_at=at + timedelta(seconds=ttl_s),
                )
            )
        return token

    def consume_confirmation(self, token: str, call_args_hash: str, *, now: datetime | None = None) -> bool:
        """True once for a valid token presented with the arguments it was issued for.

        The token is spent by any attempt, also a failed one (other arguments): a client
        cannot try a confirmed token on variations of a call. Delete-and-check is one
        statement, so two racing uses cannot both succeed.
        """
        import sqlalchemy as sa

        if not isinstance(token, str) or not token or len(token) > 200:
            return False
        engine, _ = self._ready()
        tokens = _tables().confirmations
        at = _aware(now) if now is not None else utcnow()
        stmt = (
            sa.delete(tokens)
            .where(tokens.c.token_hash == _token_hash(token))
            .returning(tokens.c.args_hash, tokens.c.expires_at)
        )
        with engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return False
        return hmac.compare_digest(row.args_hash, call_args_hash) and at < row.expires_at

    # -- setup -----------------------------------------------------------------------------

    def _ready(self) -> tuple[Engine, Table]:
        table = _schema()
        engine = self._engine
        if engine is None:
            with self._lock:
                if self._engine is None:
                    new_engine = _create_engine(self.url)
                    _create_table(new_engine)
                    self._engine = new_engine
                engine = self._engine
        return engine, table


# -- schema and engine ---------------------------------------------------------------------


class _Tables(NamedTuple):
    calls: Table
    do_not_call: Table
    refusals: Table
    confirmations: Table


def _schema() -> Table:
    return _tables().calls


@cache
def _tables() -> _Tables:
    import sqlalchemy as sa

    class UtcDateTime(sa.TypeDecorator[datetime]):
        """Timezone-aware UTC in Python on every backend (SQLite stores naive UTC text)."""

        impl = sa.DateTime
        cache_ok = True

        def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
            if value is None:
                return None
            value = _aware(value)
            return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

        def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
            return None if value is None else _aware(value)

    def ts(name: str, nullable: bool = True) -> sa.Column[datetime]:
        return sa.Column(name, UtcDateTime(timezone=True), nullable=nullable)

    table = sa.Table(
        TABLE_NAME,
        sa.MetaData(),
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("phone_number", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("goal", sa.Text, nullable=False),
        sa.Column("context", sa.Text),
        sa.Column("greeting", sa.Text),
        sa.Column("caller_name", sa.Text, nullable=False),
        sa.Column("room_name", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(255), unique=True),
        ts("created_at", nullable=False),
        ts("updated_at", nullable=False),
        ts("dialed_at"),
        ts("answered_at"),
        ts("ended_at"),
        sa.Column("ended_reason", sa.Text),
        sa.Column("sip_status_code", sa.Integer),
        sa.Column("transcript", sa.JSON, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("outcome", sa.JSON(none_as_null=True)),
        ts("heartbeat_at"),
        sa.Column("max_duration_s", sa.Integer, nullable=False),
        sa.Column("ring_timeout_s", sa.Integer, nullable=False),
        ts("hangup_requested_at"),
        sa.Column("hangup_reason", sa.Text),
        sa.Column("hangup_status", sa.String(16)),
        # Newest-first pages, the dial policy's per-number counts, and the reaper's scan.
        sa.Index(f"ix_{TABLE_NAME}_created", "created_at", "call_id"),
        sa.Index(f"ix_{TABLE_NAME}_number_created", "phone_number", "created_at"),
        sa.Index(f"ix_{TABLE_NAME}_status", "status"),
    )
    missing = set(CallRecord.model_fields) - set(table.c.keys())
    if missing:  # a field added to CallRecord needs its column here
        raise RuntimeError(f"CallRecord fields without a column: {sorted(missing)}")

    # Numbers never to be called again; the operator owns this list (`callagent dnc`).
    do_not_call = sa.Table(
        DNC_TABLE_NAME,
        table.metadata,
        sa.Column("number", sa.String(16), primary_key=True),
        sa.Column("reason", sa.Text),
        sa.Column("call_id", sa.String(64)),  # the call in which the callee asked, if any
        ts("added_at", nullable=False),
    )
    # Every refused make_phone_call, for audit (`callagent refusals`).
    refusals = sa.Table(
        REFUSALS_TABLE_NAME,
        table.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        ts("at", nullable=False),
        sa.Column("number", sa.String(_MAX_REFUSAL_NUMBER)),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("setting", sa.String(200)),
        sa.Column("repeats", sa.Integer, nullable=False, server_default="1"),
        ts("last_at"),
        sa.Index(f"ix_{REFUSALS_TABLE_NAME}_at", "at", "id"),
    )
    # One-time confirmation tokens. Only a hash of the token is stored: whoever can read the
    # database still cannot confirm a call with it.
    confirmations = sa.Table(
        CONFIRMATIONS_TABLE_NAME,
        table.metadata,
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("args_hash", sa.String(64), nullable=False),
        ts("created_at", nullable=False),
        ts("expires_at", nullable=False),
    )
    return _Tables(table, do_not_call, refusals, confirmations)


def _create_engine(url: str) -> Engine:
    import sqlalchemy as sa

    u = sa.make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() != "sqlite":
        return sa.create_engine(u, pool_pre_ping=True)

    database = u.database
    path: Path | None = None
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        _make_private(path)
        u = u.set(database=str(path))
    engine = sa.create_engine(u)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 10000")  # wait for the other process's write, don't fail
        cur.execute("PRAGMA journal_mode = WAL")  # readers don't block the writer, nor it them
        cur.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        if path is not None:
            _private_files(path)  # the WAL and SHM files exist from here on

    return engine


# SQLite's companions of a database file: they hold the same data.
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _make_private(path: Path) -> None:
    """The call store holds numbers, goals, transcripts and the do-not-call list: its folder
    is 0700 and its files 0600, whatever the umask. A folder we did not create is tightened
    only when it is ours alone (named callagent, or holding nothing but the store's files),
    never a shared one such as /tmp or a home directory."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    else:
        names = {path.name + suffix for suffix in _SQLITE_SUFFIXES}
        dedicated = folder.name == "callagent" or all(p.name in names for p in folder.iterdir())
        _tighten(folder, 0o700, only_if=dedicated)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is a new database
    _private_files(path)


def _private_files(path: Path) -> None:
    for suffix in _SQLITE_SUFFIXES:
        _tighten(path.with_name(path.name + suffix), 0o600)


def _tighten(target: Path, mode: int, *, only_if: bool = True) -> None:
    try:
        st = target.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(st.st_mode)
    if current & 0o077 and st.st_uid == os.geteuid():
        if not only_if:
            log.warning("the call store's folder %s is readable by others (mode %03o); it is shared, so "
                        "it was left as it is: keep the store in a folder of its own", target, current)
            return
        os.chmod(target, mode)
        log.warning("tightened the permissions of %s from %03o to %03o: the call store is private",
                    target, current, mode)


def _create_table(engine: Engine) -> None:
    import sqlalchemy as sa

    table = _schema()
    # Several processes may start at once on a fresh database. PostgreSQL: serialize them on
    # an advisory lock. SQLite: DDL autocommits per statement, so a loser just tries again.
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK_KEY})
                table.metadata.create_all(conn, checkfirst=True)
                _add_missing_columns(conn)
            return
        except sa.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(0.05 * (attempt + 1))


def _add_missing_columns(conn: Connection) -> None:
    """Columns added since a database was created: ALTER TABLE ... ADD COLUMN, each nullable
    or with a default, so older stores keep working after an upgrade."""
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    for table in _schema().metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = f"{column.type.compile(dialect=conn.dialect)}"
            if column.server_default is not None:
                ddl += f" NOT NULL DEFAULT {column.server_default.arg}"  # type: ignore[attr-defined]
            conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl}'))


# -- conversions ---------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _values(statuses: Iterable[CallStatus]) -> list[str]:
    return sorted(s.value for s in statuses)


def _record_to_row(record: CallRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in CallRecord.model_fields}
    row["status"] = record.status.value
    row["transcript"] = [line.model_dump(mode="json") for line in record.transcript]
    row["outcome"] = None if record.outcome is None else record.outcome.model_dump(mode="json")
    return row


def _row_to_record(row: Row[Any]) -> CallRecord:
    return CallRecord.model_validate(dict(row._mapping))


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    # Validates one field exactly as CallRecord would (constraints and UTC conversion included).
    from pydantic import TypeAdapter

    info = CallRecord.model_fields[name]
    annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(annotation)


def _column_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate keyword fields for update()/transition() and convert them to column values."""
    unknown = sorted(set(fields) - set(CallRecord.model_fields))
    if unknown:
        raise ValueError(f"unknown call record field(s): {', '.join(unknown)}")
    if "status" in fields:
        raise ValueError("status can only be changed with transition()")
    fixed = sorted(set(fields) & _FIXED_FIELDS)
    if fixed:
        raise ValueError(f"call record field(s) cannot be changed: {', '.join(fixed)}")
    values: dict[str, Any] = {}
    for name, raw in fields.items():
        adapter = _field_adapter(name)
        value = adapter.validate_python(raw)
        values[name] = adapter.dump_python(value, mode="json") if name in _JSON_FIELDS else value
    return values


def _encode_cursor(record: CallRecord) -> str:
    raw = json.dumps([record.created_at.isoformat(), record.call_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    problem = ValueError(f"invalid cursor {cursor[:40]!r}: pass the next_cursor of a previous page")
    if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR_CHARS:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # A cursor is [created_at, call_id]; anything else (nested arrays deep enough to
        # exhaust the parser's recursion included) is a bad cursor, not a store failure.
        created_at, call_id = json.loads(raw)
        if not isinstance(created_at, str) or not isinstance(call_id, str):
            raise problem
        return _aware(datetime.fromisoformat(created_at)), call_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise problem from None


# -- dial policy helpers -------------------------------------------------------------------


def _counts(conn: Connection, now: datetime, number: str | None) -> Counts:
    import sqlalchemy as sa

    table = _schema()
    live = table.c.status.in_(_values(ACTIVE_STATUSES))
    hour = table.c.created_at >= now - timedelta(hours=1)
    columns = [
        sa.func.count().filter(live),
        sa.func.count().filter(hour),
    ]
    if number is not None:
        columns.append(
            sa.func.count().filter(table.c.phone_number == number, table.c.created_at >= now - timedelta(days=1))
        )
    row = conn.execute(sa.select(*columns).select_from(table)).one()
    return Counts(active=row[0], last_hour=row[1], to_number_24h=row[2] if number is not None else 0)


def _on_do_not_call(conn: Connection, number: str) -> bool:
    import sqlalchemy as sa

    dnc = _tables().do_not_call
    return conn.execute(sa.select(dnc.c.number).where(dnc.c.number == number)).first() is not None


@contextmanager
def _dial_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the store's write lock from its first statement.

    SQLite: BEGIN IMMEDIATE takes the database's write lock up front (a plain BEGIN would
    read first and fail to upgrade under contention); busy_timeout makes others wait for it.
    The driver's own transaction handling is switched off for this connection so it cannot
    issue a BEGIN of its own. PostgreSQL: a transaction-level advisory lock, released at
    commit or rollback, serializes every process placing calls on this database.
    """
    import sqlalchemy as sa

    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            else:
                conn.exec_driver_sql("COMMIT")
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DIAL_LOCK_KEY})
        yield conn


def _require_e164(number: str) -> None:
    if not isinstance(number, str) or not _E164.fullmatch(number):
        raise ValueError(f"{number!r} is not an E.164 number (like +14155550100); normalize it first")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _clean(text: str, *, keep_newlines: bool = False) -> str:
    # Escapes control characters, so stored text cannot move a terminal's cursor or fake lines.
    return "".join(
        c if c.isprintable() or (keep_newlines and c == "\n") else repr(c)[1:-1] for c in text
    )
