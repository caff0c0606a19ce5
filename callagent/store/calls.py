"""Call records: create, read, move through the lifecycle, page, count.

Every status change is a compare-and-set UPDATE whose allowed sources come from the lifecycle
(`callagent.calls.sources_of`), so two processes racing to end a call cannot both win: every
call ends in exactly one terminal status.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, TypeVar

import sqlalchemy as sa
from pydantic import TypeAdapter

from callagent.calls import (
    DEFAULT_PROFILE,
    LINE_STATUSES,
    NEVER_DIALED,
    OPERATOR,
    TERMINAL_STATUSES,
    CallRecord,
    CallStatus,
    EndReason,
    IllegalTransition,
    sources_of,
    utcnow,
)
from callagent.policy import Counts
from callagent.store import schema
from callagent.store.do_not_call import listed
from callagent.store.errors import CallNotFound, DuplicateKey, StoreError
from callagent.store.schema import aware

if TYPE_CHECKING:
    from callagent.store.db import Database

__all__ = ["Calls", "StaleCall"]

T = TypeVar("T")

_MAX_REASON = 2000
_MAX_CURSOR_CHARS = 200
# Fields that identify a call or are managed by the store itself; everything else may be
# written with update() / transition().
_FIXED_FIELDS = frozenset({"call_id", "phone_number", "idempotency_key", "created_at", "updated_at", "status"})
_JSON_FIELDS = frozenset({"transcript", "outcome", "result_schema", "transfers", "recording", "events"})

_t = schema.calls
# Live calls that hold a line (not those awaiting approval): the limits, heartbeats, the reaper.
_LIVE = _t.c.status.in_(sorted(s.value for s in LINE_STATUSES))
_DIALED = _t.c.status.not_in(sorted(s.value for s in NEVER_DIALED))
_LAST_SEEN = sa.func.coalesce(_t.c.heartbeat_at, _t.c.updated_at, type_=_t.c.updated_at.type)


class StaleCall(NamedTuple):
    """A live call whose worker has not been heard from: what the reaper acts on."""

    record: CallRecord
    last_seen: datetime  # the heartbeat (or update) the decision was based on
    reason: str  # the ended_reason the call gets


class Calls:
    """The calls table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- one call --------------------------------------------------------------------------

    def create(self, record: CallRecord) -> CallRecord:
        """Insert a new call; raises DuplicateKey if its idempotency key is taken."""
        return self._insert(record, None)

    def create_if_admitted(
        self, record: CallRecord, admit: Callable[[Counts, bool], T | None], *, now: datetime | None = None
    ) -> CallRecord | T:
        """Insert `record` only if `admit(counts, on_do_not_call)` has no objection.

        The facts are read and the row written in one transaction holding the store's write
        lock, so simultaneous requests from any number of processes are admitted one at a
        time: with a limit of 3 live calls, 20 racing requests create exactly 3 records. The
        store only gathers the facts; `admit` (the dial policy) decides and words a refusal,
        which is returned instead of the record. Raises DuplicateKey like create().
        """
        at = aware(now) if now is not None else utcnow()
        return self._insert(
            record,
            lambda conn: admit(
                _counts(conn, at, record.phone_number, profile=record.profile, tenant=record.tenant),
                listed(conn, record.phone_number, tenant=record.tenant),
            ),
        )

    def _insert(self, record: CallRecord, check: Callable[[sa.Connection], T | None] | None) -> CallRecord | T:
        stmt = sa.insert(_t).values(**_record_to_row(record)).returning(*_t.c)
        try:
            with self._db.write_lock() as conn:
                objection = check(conn) if check is not None else None
                if objection is not None:
                    return objection
                row = conn.execute(stmt).one()
        except sa.exc.IntegrityError:
            if record.idempotency_key is not None:
                existing = self.find_by_idempotency_key(record.idempotency_key)
                if existing is not None:
                    raise DuplicateKey(existing) from None
            raise StoreError(f"a call with id {record.call_id!r} already exists") from None
        return _row_to_record(row)

    def approve_if_admitted(
        self, call_id: str, approved_by: str, admit: Callable[[CallRecord, Counts, bool], T | None]
    ) -> CallRecord | T | None:
        """Move a call awaiting approval to queued, approved by `approved_by`, only if
        `admit(record, counts, on_do_not_call)` has no objection; under the store's write lock,
        like create_if_admitted. None when the call is not awaiting approval (any more)."""
        waiting = CallStatus.awaiting_approval.value
        with self._db.write_lock() as conn:
            row = conn.execute(_t.select().where(_t.c.call_id == call_id, _t.c.status == waiting)).first()
            if row is None:
                return None
            record = _row_to_record(row)
            now = utcnow()
            objection = admit(
                record,
                _counts(conn, now, record.phone_number, profile=record.profile, tenant=record.tenant),
                listed(conn, record.phone_number, tenant=record.tenant),
            )
            if objection is not None:
                return objection
            stmt = (
                sa.update(_t)
                .where(_t.c.call_id == call_id, _t.c.status == waiting)
                .values(status=CallStatus.queued.value, approved_at=now, approved_by=approved_by[:200], updated_at=now)
                .returning(*_t.c)
            )
            updated = conn.execute(stmt).first()
        return None if updated is None else _row_to_record(updated)

    def expire_approvals(self, now: datetime | None = None) -> list[CallRecord]:
        """End the calls whose approval lapsed (approval_expires_at passed): status expired."""
        at = aware(now) if now is not None else utcnow()
        waiting = CallStatus.awaiting_approval.value
        with self._db.engine.connect() as conn:
            ids = conn.execute(
                sa.select(_t.c.call_id).where(_t.c.status == waiting, _t.c.approval_expires_at < at)
            ).scalars()
            due = list(ids)
        expired = []
        for call_id in due:
            record = self.transition(
                call_id,
                CallStatus.expired,
                end_reason=EndReason.approval_expired,
                ended_reason="nobody approved the call in time (DIAL_APPROVAL_TTL_S); nothing was dialed",
                ended_at=at,
            )
            if record is not None:
                expired.append(record)
        return expired

    def get(self, call_id: str) -> CallRecord | None:
        return self._one(_t.c.call_id == call_id)

    def find_by_idempotency_key(self, key: str) -> CallRecord | None:
        return self._one(_t.c.idempotency_key == key)

    def _one(self, where: sa.ColumnElement[bool]) -> CallRecord | None:
        with self._db.engine.connect() as conn:
            row = conn.execute(_t.select().where(where)).first()
        return None if row is None else _row_to_record(row)

    def transition(
        self, call_id: str, status: CallStatus | str, /, *, where: sa.ColumnElement[bool] | None = None, **fields: Any
    ) -> CallRecord | None:
        """Move a call to `status` and set `fields`, if the lifecycle allows it.

        Returns the updated record, or None when the move does not apply (unknown call, a late
        event that would go backwards, the call already ended: the first terminal status
        wins). A status no call can ever move to is a bug and raises (IllegalTransition).
        Timestamps are filled in when not given: `dialed_at` once the call is dialing or
        later, `answered_at` on in_progress, `ended_at` on a terminal status.
        """
        status = CallStatus(status)
        sources = sorted(s.value for s in sources_of(status))
        values: dict[str, Any] = _column_values(fields)
        if status in TERMINAL_STATUSES and values.get("end_reason") is None:
            raise IllegalTransition(f"a call ends ({status}) with an end_reason, the code of why")
        now = utcnow()
        values["status"] = status.value
        values["updated_at"] = now
        if status not in TERMINAL_STATUSES and status is not CallStatus.queued:
            values.setdefault("dialed_at", sa.func.coalesce(_t.c.dialed_at, sa.literal(now, _t.c.dialed_at.type)))
        if status is CallStatus.in_progress:
            values.setdefault("answered_at", now)
        if status in TERMINAL_STATUSES:
            values.setdefault("ended_at", now)
        conditions = [_t.c.call_id == call_id, _t.c.status.in_(sources)]
        if where is not None:
            conditions.append(where)
        stmt = sa.update(_t).where(*conditions).values(**values).returning(*_t.c)
        with self._db.engine.begin() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _row_to_record(row)

    def update(self, call_id: str, /, **fields: Any) -> CallRecord:
        """Set non-status fields (transcript, summary, outcome, ...); works on ended calls too.

        Raises ValueError for unknown or read-only field names and CallNotFound for an
        unknown call.
        """
        values = _column_values(fields)
        values["updated_at"] = utcnow()
        stmt = sa.update(_t).where(_t.c.call_id == call_id).values(**values).returning(*_t.c)
        with self._db.engine.begin() as conn:
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
        stmt = sa.update(_t).where(_t.c.call_id == call_id, _LIVE).values(heartbeat_at=utcnow()).returning(*_t.c)
        with self._db.engine.begin() as conn:
            row = conn.execute(stmt).first()
        return _row_to_record(row) if row is not None else self.get(call_id)

    def request_hangup(
        self,
        call_id: str,
        reason: str,
        status: CallStatus = CallStatus.canceled,
        end_reason: EndReason = EndReason.canceled,
        *,
        now: datetime | None = None,
    ) -> CallRecord | None:
        """Note that a live call is to be hung up, why, and the terminal `status` and
        `end_reason` it then gets; the call stays live until someone confirms the hang-up with
        a terminal transition. The first request stands. The worker holding the call sees it
        at its next heartbeat and hangs up itself.

        Returns the record, or None when the call is unknown or already ended.
        """
        at = aware(now) if now is not None else utcnow()
        stmt = (
            sa.update(_t)
            .where(_t.c.call_id == call_id, _LIVE)
            .values(
                hangup_requested_at=sa.func.coalesce(
                    _t.c.hangup_requested_at, sa.literal(at, _t.c.hangup_requested_at.type)
                ),
                hangup_reason=sa.func.coalesce(_t.c.hangup_reason, sa.literal(reason[:_MAX_REASON])),
                hangup_status=sa.func.coalesce(_t.c.hangup_status, sa.literal(CallStatus(status).value)),
                hangup_end_reason=sa.func.coalesce(_t.c.hangup_end_reason, sa.literal(EndReason(end_reason).value)),
            )
            .returning(*_t.c)
        )
        with self._db.engine.begin() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _row_to_record(row)

    # -- calls whose worker went quiet -----------------------------------------------------

    def find_stale(
        self, stale_after_s: float, *, orphan_after_s: float | None = None, now: datetime | None = None
    ) -> list[StaleCall]:
        """Live calls whose worker has gone quiet.

        A call is stale when its last heartbeat (or, without one, its last update) is more
        than `stale_after_s` seconds before `now`. A call still queued or dialing that never
        had a heartbeat is stale after `orphan_after_s` already: its worker would have sent
        one on joining, so the server placing it died mid-dial.
        """
        now = aware(now) if now is not None else utcnow()
        condition = _LAST_SEEN < now - timedelta(seconds=stale_after_s)  # noqa: SIM300 - _LAST_SEEN is a SQL expression, not a constant
        if orphan_after_s is not None and orphan_after_s < stale_after_s:
            orphaned = sa.and_(
                _t.c.heartbeat_at.is_(None),
                _t.c.status.in_([CallStatus.queued.value, CallStatus.dialing.value]),
                _t.c.updated_at < now - timedelta(seconds=orphan_after_s),
            )
            condition = sa.or_(condition, orphaned)
        with self._db.engine.connect() as conn:
            rows = conn.execute(_t.select().where(_LIVE, condition)).all()
        stale: list[StaleCall] = []
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

    def fail_stale(
        self, stale: StaleCall, reason: str | None = None, *, now: datetime | None = None
    ) -> CallRecord | None:
        """End a stale call as failed, only if nothing moved since it was found (a heartbeat
        that just arrived saves it). Returns the failed record, or None."""
        fields: dict[str, Any] = {"ended_reason": reason or stale.reason, "end_reason": EndReason.worker_lost}
        if now is not None:
            fields["ended_at"] = now
        return self.transition(
            stale.record.call_id,
            CallStatus.failed,
            where=_LAST_SEEN == stale.last_seen,  # noqa: SIM300 - _LAST_SEEN is a SQL expression, not a constant
            **fields,
        )

    # -- many calls ------------------------------------------------------------------------

    def page(
        self,
        *,
        status: CallStatus | str | Iterable[CallStatus | str] | None = None,
        end_reason: EndReason | str | None = None,
        phone_number: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 20,
        cursor: str | None = None,
        tenant: str | None = None,
    ) -> tuple[list[CallRecord], str | None]:
        """Calls newest first, and a cursor for the next page (None on the last page).

        The cursor is the position (created_at, call_id) of the page's last call, so pages
        neither skip nor repeat calls when new ones are created meanwhile.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = _t.select()
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            query = query.where(_t.c.status.in_([CallStatus(s).value for s in wanted]))
        if end_reason is not None:
            query = query.where(_t.c.end_reason == EndReason(end_reason).value)
        if phone_number is not None:
            query = query.where(_t.c.phone_number == phone_number)
        if tenant is not None:  # one tenant's calls; OPERATOR: the operator's own (no tenant)
            query = query.where(_t.c.tenant.is_(None) if tenant == OPERATOR else _t.c.tenant == tenant)
        if since is not None:
            query = query.where(_t.c.created_at >= aware(since))
        if until is not None:  # the console's date filter: created before `until`
            query = query.where(_t.c.created_at < aware(until))
        if cursor is not None:
            created_at, call_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(_t.c.created_at < created_at, sa.and_(_t.c.created_at == created_at, _t.c.call_id < call_id))
            )
        query = query.order_by(_t.c.created_at.desc(), _t.c.call_id.desc()).limit(limit + 1)
        with self._db.engine.connect() as conn:
            rows = conn.execute(query).all()
        records = [_row_to_record(row) for row in rows[:limit]]
        next_cursor = _encode_cursor(records[-1]) if len(rows) > limit else None
        return records, next_cursor

    def changed_since(self, since: datetime) -> list[tuple[str, str, str | None]]:
        """(call_id, status, tenant) of the calls written since `since`, oldest change first:
        what a server watching calls for its subscribers polls."""
        query = (
            sa.select(_t.c.call_id, _t.c.status, _t.c.tenant)
            .where(_t.c.updated_at > aware(since))
            .order_by(_t.c.updated_at, _t.c.call_id)
        )
        with self._db.engine.connect() as conn:
            return [(row[0], row[1], row[2]) for row in conn.execute(query).all()]

    def counts(
        self,
        now: datetime | None = None,
        number: str | None = None,
        *,
        profile: str | None = None,
        tenant: str | None = None,
    ) -> Counts:
        """Live calls, calls in the last hour, and (given `number`) calls to it in the last
        24 hours: the facts the volume limits are checked against (see _counts)."""
        with self._db.engine.connect() as conn:
            at = aware(now) if now is not None else utcnow()
            return _counts(conn, at, number, profile=profile, tenant=tenant)

    def facts(
        self, number: str, now: datetime | None = None, *, profile: str | None = None, tenant: str | None = None
    ) -> tuple[Counts, bool]:
        """Everything the dial policy needs from the store about a call to `number`: the
        counts, and whether the number is on the do-not-call list (the tenant's own included)."""
        with self._db.engine.connect() as conn:
            at = aware(now) if now is not None else utcnow()
            return _counts(conn, at, number, profile=profile, tenant=tenant), listed(conn, number, tenant=tenant)


# -- helpers ---------------------------------------------------------------------------------


def _counts(
    conn: sa.Connection, now: datetime, number: str | None, *, profile: str | None = None, tenant: str | None = None
) -> Counts:
    """The counts the volume limits are checked against; with `profile` or `tenant`, also
    counted on that profile's or tenant's calls only (their own limits in callagent.toml)."""
    hour = sa.and_(_t.c.created_at >= now - timedelta(hours=1), _DIALED)
    day = sa.and_(_t.c.phone_number == (number or ""), _t.c.created_at >= now - timedelta(days=1), _DIALED)
    scopes: list[sa.ColumnElement[bool]] = [sa.true()]
    if profile is not None:
        scopes.append(
            _t.c.profile == profile
            if profile != DEFAULT_PROFILE
            else _t.c.profile.is_(None) | (_t.c.profile == profile)
        )
    if tenant is not None:
        scopes.append(_t.c.tenant == tenant)
    columns = [sa.func.count().filter(cond, scope) for scope in scopes for cond in (_LIVE, hour, day)]
    row = conn.execute(sa.select(*columns).select_from(_t)).one()
    found = [
        Counts(active=row[3 * i], last_hour=row[3 * i + 1], to_number_24h=row[3 * i + 2] if number is not None else 0)
        for i in range(len(scopes))
    ]
    overall = found.pop(0)
    return Counts(
        active=overall.active,
        last_hour=overall.last_hour,
        to_number_24h=overall.to_number_24h,
        profile=found.pop(0) if profile is not None else None,
        tenant=found.pop(0) if tenant is not None else None,
    )


def _record_to_row(record: CallRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in CallRecord.model_fields}
    row["status"] = record.status.value
    row["transcript"] = [line.model_dump(mode="json") for line in record.transcript]
    row["outcome"] = None if record.outcome is None else record.outcome.model_dump(mode="json")
    row["transfers"] = [t.model_dump(mode="json") for t in record.transfers]
    row["events"] = [e.model_dump(mode="json") for e in record.events]
    row["recording"] = None if record.recording is None else record.recording.model_dump(mode="json")
    return row


def _row_to_record(row: sa.Row[Any]) -> CallRecord:
    return CallRecord.model_validate(dict(row._mapping))


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    # Validates one field exactly as CallRecord would (constraints and UTC conversion included).
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
        return aware(datetime.fromisoformat(created_at)), call_id
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise problem from None
