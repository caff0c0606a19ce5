"""Database on SQLite and on a real PostgreSQL server; every test runs on both."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from callagent.calls import (
    TERMINAL_STATUSES,
    CallRecord,
    CallStatus,
    EndReason,
    IllegalTransition,
    Outcome,
    TranscriptLine,
    new_call_id,
    utcnow,
)
from callagent.policy import Counts, DialPolicy, VolumeLimits
from callagent.rules import Refusal, Rule
from callagent.store import (
    CallNotFound,
    Database,
    DoNotCallEntry,
    DuplicateKey,
    RefusalEntry,
    StoreError,
    schema,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def record_refusal(
    store: Database, number: str | None, rule: str, message: str, at: datetime | None = None, setting: str | None = None
) -> RefusalEntry:
    refusal = Refusal(Rule(rule), message) if setting is None else Refusal(Rule(rule), message, setting)
    return store.refusals.record(refusal, number, at=at)


def within_limits(
    store: Database, record: CallRecord, limits: VolumeLimits, *, now: datetime, check_do_not_call: bool = True
) -> CallRecord | Refusal:
    """Create `record` if the policy admits it on the facts read under the write lock."""
    policy = DialPolicy(limits=limits)
    return store.calls.create_if_admitted(
        record, lambda counts, on_dnc: policy.admit(record.phone_number, counts, on_dnc and check_do_not_call), now=now
    )


def reap_stale(store: Database, stale_after_s: float, now: datetime) -> list[CallRecord]:
    reaped = (store.calls.fail_stale(s, now=now) for s in store.calls.find_stale(stale_after_s, now=now))
    return [r for r in reaped if r is not None]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test (on PostgreSQL: a fresh schema, much faster)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'calls.db'}"
        return
    server_url: str = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{server_url}&options=-csearch_path%3D{schema}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgres_tests_use_their_own_schema(store_url: str) -> None:
    with Database(store_url) as store:
        store.calls.create(make_record())
    schema = store_url.rsplit("%3D", 1)[1]
    conninfo = store_url.split("&options")[0].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'callagent_calls'"
        ).fetchall()
    assert row == [(schema,)]


@pytest.fixture
def store(store_url: str) -> Iterator[Database]:
    with Database(store_url) as s:
        yield s


def make_record(**overrides: object) -> CallRecord:
    fields: dict[str, object] = dict(
        call_id=new_call_id(),
        phone_number="+14155550100",
        goal="Confirm the appointment",
        caller_name="Ada",
        max_duration_s=300,
        ring_timeout_s=30,
        created_at=T0,
    )
    fields.update(overrides)
    return CallRecord(**fields)  # type: ignore[arg-type]


# -- create / get ----------------------------------------------------------------------------


def test_create_and_get_round_trip(store: Database) -> None:
    record = make_record(
        context="Appointment on Tuesday",
        greeting="Hello!",
        idempotency_key="key-1",
        transcript=[TranscriptLine(role="agent", text="Hi", at=T0)],
        outcome=Outcome(goal_achieved="partly", key_facts=["a"], follow_ups=["b"]),
        heartbeat_at=T0 + timedelta(seconds=1),
    )
    created = store.calls.create(record)
    assert created == record
    fetched = store.calls.get(record.call_id)
    assert fetched == record
    assert fetched is not None
    assert fetched.created_at == T0 and fetched.created_at.utcoffset() == timedelta(0)
    assert store.calls.get("nope") is None


def test_store_is_shared_between_instances(store_url: str) -> None:
    with Database(store_url) as a, Database(store_url) as b:
        record = a.calls.create(make_record())
        assert b.calls.get(record.call_id) == record
        assert b.calls.transition(record.call_id, "dialing") is not None
        after = a.calls.get(record.call_id)
        assert after is not None and after.status is CallStatus.dialing


def test_duplicate_call_id(store: Database) -> None:
    record = store.calls.create(make_record())
    with pytest.raises(StoreError, match="already exists"):
        store.calls.create(make_record(call_id=record.call_id))


def test_idempotency_key(store: Database) -> None:
    first = store.calls.create(make_record(idempotency_key="order-42"))
    store.calls.create(make_record())  # no key: no constraint
    store.calls.create(make_record())
    with pytest.raises(DuplicateKey) as info:
        store.calls.create(make_record(idempotency_key="order-42"))
    assert info.value.existing == first
    assert "order-42" in str(info.value)
    assert store.calls.find_by_idempotency_key("order-42") == first
    assert store.calls.find_by_idempotency_key("order-43") is None
    assert store.calls.page(limit=100)[0].__len__() == 3


# -- transition ------------------------------------------------------------------------------


def test_lifecycle_sets_timestamps(store: Database) -> None:
    record = store.calls.create(make_record())
    before = utcnow()
    dialing = store.calls.transition(record.call_id, CallStatus.dialing)
    assert dialing is not None and dialing.status is CallStatus.dialing
    assert dialing.dialed_at is not None and dialing.dialed_at >= before
    assert dialing.updated_at >= before

    ringing = store.calls.transition(record.call_id, "ringing")
    assert ringing is not None
    assert ringing.dialed_at == dialing.dialed_at  # kept, not reset

    answered = store.calls.transition(record.call_id, "in_progress")
    assert answered is not None and answered.answered_at is not None
    assert answered.ended_at is None

    done = store.calls.transition(
        record.call_id,
        "completed",
        ended_reason="the agent hung up: goal reached",
        sip_status_code=200,
        end_reason=EndReason.agent_ended,
    )
    assert done is not None
    assert done.status is CallStatus.completed
    assert done.ended_at is not None and done.ended_at >= answered.answered_at
    assert done.ended_reason == "the agent hung up: goal reached"
    assert done.sip_status_code == 200
    assert done.duration_s is not None and done.duration_s >= 0
    assert store.calls.get(record.call_id) == done


def test_transition_respects_given_timestamps(store: Database) -> None:
    record = store.calls.create(make_record())
    answered = store.calls.transition(record.call_id, "in_progress", answered_at=T0 + timedelta(seconds=5))
    assert answered is not None
    assert answered.answered_at == T0 + timedelta(seconds=5)
    assert answered.dialed_at is not None  # skipped dialing; still stamped
    ended = store.calls.transition(
        record.call_id, "busy", ended_at=T0 + timedelta(seconds=9), end_reason=EndReason.busy
    )
    assert ended is not None and ended.ended_at == T0 + timedelta(seconds=9)
    assert ended.duration_s == 4.0


def test_late_and_backward_transitions_are_refused(store: Database) -> None:
    record = store.calls.create(make_record())
    assert store.calls.transition(record.call_id, "in_progress") is not None
    assert store.calls.transition(record.call_id, "ringing") is None  # a late event
    assert store.calls.transition(record.call_id, "in_progress") is None  # not a change
    assert store.calls.transition(record.call_id, "queued") is None  # only an approval moves a call there
    with pytest.raises(IllegalTransition):  # no call is ever moved to awaiting approval: a bug, not a race
        store.calls.transition(record.call_id, "awaiting_approval")
    current = store.calls.get(record.call_id)
    assert current is not None and current.status is CallStatus.in_progress


def test_terminal_status_is_written_once(store: Database) -> None:
    record = store.calls.create(make_record())
    first = store.calls.transition(
        record.call_id, "no_answer", ended_reason="nobody picked up", end_reason=EndReason.no_answer
    )
    assert first is not None
    for status in set(CallStatus) - {CallStatus.awaiting_approval}:
        assert (
            store.calls.transition(record.call_id, status, ended_reason="late", end_reason=EndReason.worker_error)
            is None
        )
    assert store.calls.get(record.call_id) == first


def test_transition_unknown_call(store: Database) -> None:
    assert store.calls.transition("missing", "failed", end_reason=EndReason.not_placed) is None


def test_transition_rejects_bad_fields(store: Database) -> None:
    record = store.calls.create(make_record())
    with pytest.raises(ValueError, match="unknown"):
        store.calls.transition(record.call_id, "failed", reason="typo", end_reason=EndReason.not_placed)
    with pytest.raises(ValueError):
        store.calls.transition(
            record.call_id, "failed", sip_status_code="not a number", end_reason=EndReason.not_placed
        )
    with pytest.raises(ValueError):
        store.calls.transition(record.call_id, "exploded")
    current = store.calls.get(record.call_id)
    assert current is not None and current.status is CallStatus.queued


def test_racing_terminal_statuses_one_winner(store_url: str) -> None:
    terminal = sorted(TERMINAL_STATUSES)
    stores = [Database(store_url) for _ in terminal]  # separate engines, like separate processes
    try:
        for _ in range(5):
            call_id = stores[0].calls.create(make_record()).call_id
            stores[0].calls.transition(call_id, "in_progress")
            barrier = threading.Barrier(len(terminal))
            results: dict[str, CallRecord | None] = {}

            def finish(s: Database, status: str) -> None:
                barrier.wait()
                results[status] = s.calls.transition(
                    call_id, status, ended_reason=f"set by {status}", end_reason=EndReason.worker_error
                )

            threads = [threading.Thread(target=finish, args=(s, status)) for s, status in zip(stores, terminal)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert len(results) == len(terminal)
            winners = {status: rec for status, rec in results.items() if rec is not None}
            assert len(winners) == 1, winners
            ((status, rec),) = winners.items()
            final = stores[0].calls.get(call_id)
            assert final == rec
            assert final is not None and final.status == status
            assert final.ended_reason == f"set by {status}"
    finally:
        for s in stores:
            s.close()


# -- update / heartbeat ------------------------------------------------------------------------


def test_update_fields(store: Database) -> None:
    record = store.calls.create(make_record())
    store.calls.transition(record.call_id, "completed", end_reason=EndReason.agent_ended)
    updated = store.calls.update(
        record.call_id,
        transcript=[{"role": "agent", "text": "Hello"}, TranscriptLine(role="callee", text="Bye", at=T0)],
        summary="Short call.",
        outcome={"goal_achieved": "no", "follow_ups": ["call back"]},
        room_name="call-other",
    )
    assert updated.transcript == [
        TranscriptLine(role="agent", text="Hello"),
        TranscriptLine(role="callee", text="Bye", at=T0),
    ]
    assert updated.summary == "Short call."
    assert updated.outcome == Outcome(goal_achieved="no", follow_ups=["call back"])
    assert updated.room_name == "call-other"
    assert updated.status is CallStatus.completed  # untouched
    assert store.calls.get(record.call_id) == updated
    cleared = store.calls.update(record.call_id, outcome=None)
    assert cleared.outcome is None


@pytest.mark.parametrize(
    "fields,fragment",
    [
        ({"bogus": 1}, "unknown call record field"),
        ({"status": "failed"}, "transition()"),
        ({"call_id": "x"}, "cannot be changed"),
        ({"created_at": T0}, "cannot be changed"),
        ({"transcript": [{"role": "narrator", "text": "x"}]}, "role"),
    ],
)
def test_update_rejects(store: Database, fields: dict[str, object], fragment: str) -> None:
    record = store.calls.create(make_record())
    with pytest.raises(ValueError, match=fragment):
        store.calls.update(record.call_id, **fields)  # type: ignore[arg-type]
    assert store.calls.get(record.call_id) == record


def test_update_unknown_call(store: Database) -> None:
    with pytest.raises(CallNotFound):
        store.calls.update("missing", summary="x")


def test_heartbeat(store: Database) -> None:
    record = store.calls.create(make_record())
    live = store.calls.heartbeat(record.call_id)
    assert live is not None and live.status is CallStatus.queued and live.hangup_requested_at is None
    beat = store.calls.get(record.call_id)
    assert beat is not None and beat.heartbeat_at is not None and beat == live
    assert beat.updated_at == record.updated_at  # a heartbeat is not a change
    store.calls.transition(record.call_id, "canceled", end_reason=EndReason.canceled)
    ended = store.calls.heartbeat(record.call_id)  # tells the worker the call was ended elsewhere
    assert ended is not None and ended.status is CallStatus.canceled
    assert ended.heartbeat_at == beat.heartbeat_at  # an ended call's heartbeat is not moved
    assert store.calls.heartbeat("missing") is None


def test_request_hangup_keeps_the_call_live_until_confirmed(store: Database) -> None:
    record = store.calls.create(make_record(status=CallStatus.in_progress))
    asked = store.calls.request_hangup(record.call_id, "ended by the MCP client", now=T0)
    assert asked is not None and asked.status is CallStatus.in_progress  # still live: not confirmed
    assert asked.hangup_requested_at == T0 and asked.hangup_reason == "ended by the MCP client"
    assert asked.hangup_status is CallStatus.canceled
    assert store.calls.counts().active == 1  # and still counts toward DIAL_MAX_CONCURRENT
    again = store.calls.request_hangup(
        record.call_id, "the worker stopped responding", CallStatus.failed, now=T0 + timedelta(seconds=5)
    )
    assert again is not None and (again.hangup_requested_at, again.hangup_reason, again.hangup_status) == (
        T0,
        "ended by the MCP client",
        CallStatus.canceled,
    )
    beat = store.calls.heartbeat(record.call_id)
    assert beat is not None and beat.hangup_requested_at == T0  # what the worker sees
    done = store.calls.transition(
        record.call_id, CallStatus.canceled, ended_reason="ended by the MCP client", end_reason=EndReason.canceled
    )
    assert done is not None and done.status is CallStatus.canceled
    assert store.calls.request_hangup(record.call_id, "late") is None  # nothing to hang up any more
    assert store.calls.request_hangup("missing", "x") is None


# -- stale calls -------------------------------------------------------------------------------


def test_reap_stale(store: Database) -> None:
    now = utcnow()
    old, fresh = now - timedelta(seconds=300), now - timedelta(seconds=10)
    silent = store.calls.create(make_record(status=CallStatus.in_progress, heartbeat_at=old))
    alive = store.calls.create(make_record(status=CallStatus.in_progress, updated_at=old, heartbeat_at=fresh))
    never_beat = store.calls.create(make_record(status=CallStatus.queued, created_at=old))
    young = store.calls.create(make_record(status=CallStatus.ringing, created_at=fresh))
    ended = store.calls.create(make_record(status=CallStatus.completed, created_at=old, heartbeat_at=old))

    reaped = reap_stale(store, 60, now=now)
    assert {r.call_id for r in reaped} == {silent.call_id, never_beat.call_id}
    for r in reaped:
        assert r.status is CallStatus.failed
        assert r.ended_at == now
        assert r.ended_reason is not None and "stopped responding" in r.ended_reason
        assert f"{old:%Y-%m-%d %H:%M:%S}" in r.ended_reason
        assert store.calls.get(r.call_id) == r
    by_id = {r.call_id: r for r in reaped}
    assert "last heartbeat" in (by_id[silent.call_id].ended_reason or "")
    assert "before a worker took it" in (by_id[never_beat.call_id].ended_reason or "")
    for untouched in (alive, young, ended):
        assert store.calls.get(untouched.call_id) == untouched
    assert reap_stale(store, 60, now=now) == []  # failed once, never again


def test_a_call_orphaned_mid_dial_is_stale_sooner(store: Database) -> None:
    now = utcnow()
    mid_dial = store.calls.create(make_record(status=CallStatus.dialing, created_at=now - timedelta(seconds=20)))
    taken = store.calls.create(
        make_record(
            status=CallStatus.dialing, created_at=now - timedelta(seconds=20), heartbeat_at=now - timedelta(seconds=19)
        )
    )
    ringing = store.calls.create(make_record(status=CallStatus.ringing, created_at=now - timedelta(seconds=20)))
    found = store.calls.find_stale(60, orphan_after_s=15, now=now)
    assert [s.record.call_id for s in found] == [mid_dial.call_id]
    assert "server placing the call stopped responding" in found[0].reason
    assert store.calls.find_stale(60, now=now) == []  # without the shorter bound: not yet
    assert {
        s.record.call_id for s in store.calls.find_stale(60, orphan_after_s=15, now=now + timedelta(seconds=60))
    } == {mid_dial.call_id, taken.call_id, ringing.call_id}


def test_a_heartbeat_after_the_look_saves_the_call(store: Database) -> None:
    now = utcnow()
    call = store.calls.create(make_record(status=CallStatus.in_progress, heartbeat_at=now - timedelta(seconds=300)))
    (stale,) = store.calls.find_stale(60, now=now)
    store.calls.heartbeat(call.call_id)
    assert store.calls.fail_stale(stale, now=now) is None
    after = store.calls.get(call.call_id)
    assert after is not None and after.status is CallStatus.in_progress


# -- list / counts -----------------------------------------------------------------------------


def test_list_paginates_newest_first(store: Database) -> None:
    records = []
    for i in range(23):
        # Pairs share a created_at: the call_id breaks the tie.
        records.append(store.calls.create(make_record(created_at=T0 + timedelta(seconds=i // 2))))
    expected = sorted(records, key=lambda r: (r.created_at, r.call_id), reverse=True)

    seen: list[CallRecord] = []
    page, cursor = store.calls.page(limit=10)
    seen += page
    assert len(page) == 10 and cursor is not None
    # A call created between pages shows up on no later page, and shifts nothing.
    newcomer = store.calls.create(make_record(created_at=T0 + timedelta(hours=1)))
    page, cursor = store.calls.page(limit=10, cursor=cursor)
    seen += page
    assert len(page) == 10 and cursor is not None
    page, cursor = store.calls.page(limit=10, cursor=cursor)
    seen += page
    assert len(page) == 3 and cursor is None
    assert [r.call_id for r in seen] == [r.call_id for r in expected]

    first, _ = store.calls.page(limit=1)
    assert first == [newcomer]


def test_list_exact_last_page_has_no_cursor(store: Database) -> None:
    for i in range(4):
        store.calls.create(make_record(created_at=T0 + timedelta(seconds=i)))
    page, cursor = store.calls.page(limit=2)
    page, cursor = store.calls.page(limit=2, cursor=cursor)
    assert len(page) == 2 and cursor is None
    assert store.calls.page(limit=4)[1] is None
    assert store.calls.page()[1] is None


def test_list_filters(store: Database) -> None:
    a = store.calls.create(make_record(phone_number="+14155550101", created_at=T0))
    b = store.calls.create(make_record(phone_number="+14155550102", created_at=T0 + timedelta(minutes=1)))
    c = store.calls.create(make_record(phone_number="+14155550101", created_at=T0 + timedelta(minutes=2)))
    store.calls.transition(b.call_id, "busy", end_reason=EndReason.busy)
    store.calls.transition(c.call_id, "ringing")

    def ids(**kw: object) -> list[str]:
        return [r.call_id for r in store.calls.page(**kw)[0]]  # type: ignore[arg-type]

    assert ids() == [c.call_id, b.call_id, a.call_id]
    assert ids(status="busy") == [b.call_id]
    assert ids(status=["queued", CallStatus.ringing]) == [c.call_id, a.call_id]
    assert ids(phone_number="+14155550101") == [c.call_id, a.call_id]
    assert ids(since=T0 + timedelta(minutes=1)) == [c.call_id, b.call_id]
    assert ids(phone_number="+14155550101", since=T0 + timedelta(seconds=1)) == [c.call_id]
    assert ids(status="failed") == []


def test_list_rejects_bad_arguments(store: Database) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        store.calls.page(cursor="garbage!")
    with pytest.raises(ValueError, match="invalid cursor"):
        store.calls.page(cursor="WzFd")  # valid base64 of "[1]"
    import base64

    deep = base64.urlsafe_b64encode(b"[" * 100_000).decode()[:199]
    for hostile in (
        deep,
        base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(),
        "A" * 10_000,
        base64.urlsafe_b64encode(b'[["x"], {"a": 1}]').decode(),
    ):
        with pytest.raises(ValueError, match="invalid cursor") as info:
            store.calls.page(cursor=hostile)
        assert len(str(info.value)) < 200  # the input is not echoed back in full
    with pytest.raises(ValueError):
        store.calls.page(limit=0)
    with pytest.raises(ValueError):
        store.calls.page(status="unknown")


def test_counts(store: Database) -> None:
    store.calls.create(make_record(phone_number="+14155550101", created_at=T0))
    two = store.calls.create(make_record(phone_number="+14155550101", created_at=T0 + timedelta(minutes=5)))
    three = store.calls.create(make_record(phone_number="+14155550102", created_at=T0 + timedelta(minutes=10)))
    assert store.calls.counts().active == 3
    store.calls.transition(two.call_id, "in_progress")
    assert store.calls.counts().active == 3
    store.calls.transition(three.call_id, "declined", end_reason=EndReason.declined)
    assert store.calls.counts().active == 2
    assert store.calls.counts(now=T0 + timedelta(minutes=59)).last_hour == 3
    assert store.calls.counts(now=T0 + timedelta(minutes=64)).last_hour == 2
    assert store.calls.counts(now=T0 + timedelta(hours=23), number="+14155550101").to_number_24h == 2
    assert store.calls.counts(now=T0 + timedelta(hours=24, minutes=1), number="+14155550101").to_number_24h == 1
    assert store.calls.counts(now=T0, number="+14155550199").to_number_24h == 0


# -- backend specifics -------------------------------------------------------------------------


def test_sqlite_file_setup(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "calls.db"
    with Database(f"sqlite:///{path}") as store:
        assert not path.exists()  # nothing happens until first use
        store.calls.create(make_record())
        assert path.exists()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Reopening an existing database finds the table and the data.
    with Database(f"sqlite:///{path}") as store:
        assert len(store.calls.page()[0]) == 1


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://user:hunter2@db.example/calls",
        "postgresql://user@db.example/calls?password=hunter2&sslmode=require",
        "postgresql://user@db.example/calls?sslmode=require&sslpassword=hunter2",
        "postgresql://user:hun%40ter2@db.example/calls?PASSWORD=hunter2",
    ],
)
def test_repr_hides_password(url: str) -> None:
    store = Database(url)
    assert "hunter2" not in repr(store) and "hun%40ter2" not in repr(store)
    assert "user" in repr(store) and "db.example" in repr(store)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_store_is_private_whatever_the_umask(tmp_path: Path) -> None:
    import os

    path = tmp_path / "data" / "callagent" / "calls.db"
    old = os.umask(0o022)
    try:
        with Database(f"sqlite:///{path}") as store:
            store.calls.create(make_record())
            store.do_not_call.add("+14155550107")
            files = list(path.parent.iterdir())  # while open: the WAL and SHM files exist
            assert {p.name for p in files} >= {"calls.db", "calls.db-wal", "calls.db-shm"}
            assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
    finally:
        os.umask(old)
    assert _mode(path.parent) == 0o700


def test_an_existing_loose_store_is_tightened_and_said_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "callagent"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "calls.db"
    with Database(f"sqlite:///{path}") as store:
        store.calls.create(make_record())
    for p in [folder, *folder.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    with caplog.at_level("WARNING", logger="callagent.store"), Database(f"sqlite:///{path}") as store:
        assert len(store.calls.page()[0]) == 1
    assert _mode(folder) == 0o700 and all(_mode(p) == 0o600 for p in folder.iterdir())
    assert "tightened the permissions" in caplog.text and str(folder) in caplog.text


def test_a_shared_folder_is_left_alone_but_the_files_are_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "someone-elses-file").write_text("x")
    with caplog.at_level("WARNING", logger="callagent.store"), Database(f"sqlite:///{shared / 'calls.db'}") as store:
        store.calls.create(make_record())
    assert _mode(shared) == 0o755  # not ours to change
    assert _mode(shared / "calls.db") == 0o600
    assert "left as it is" in caplog.text


# -- dial policy: do-not-call list -----------------------------------------------------------


def test_do_not_call_list(store: Database) -> None:
    assert store.do_not_call.entries() == [] and not store.do_not_call.contains("+14155550107")
    first = store.do_not_call.add("+14155550107", "asked during a call", "abc123", at=T0)
    assert first == DoNotCallEntry(number="+14155550107", reason="asked during a call", call_id="abc123", added_at=T0)
    second = store.do_not_call.add("+14155550100", at=T0 + timedelta(minutes=1))
    assert second.reason is None and second.call_id is None
    # Adding again keeps the first entry: the earliest request is the one that counts.
    again = store.do_not_call.add("+14155550107", "operator", at=T0 + timedelta(hours=1))
    assert again == first
    assert store.do_not_call.contains("+14155550107") and not store.do_not_call.contains("+14155550101")
    assert store.do_not_call.entries() == [second, first]  # most recent first
    assert store.do_not_call.remove("+14155550107") is True
    assert store.do_not_call.remove("+14155550107") is False
    assert store.do_not_call.entries() == [second]


@pytest.mark.parametrize("bad", ["4155550107", "+1 415 555 0107", "", "+0123", "911", "+14155550107; DROP TABLE x"])
def test_do_not_call_wants_e164(store: Database, bad: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        store.do_not_call.add(bad)
    assert store.do_not_call.entries() == []


def test_do_not_call_is_shared_and_long_reasons_are_cut(store_url: str) -> None:
    with Database(store_url) as a, Database(store_url) as b:
        a.do_not_call.add("+14155550107", "x" * 5000)
        assert b.do_not_call.contains("+14155550107")
        (entry,) = b.do_not_call.entries()
        assert entry.reason == "x" * 500
        _, listed = b.calls.facts("+14155550107")
        assert listed is True
        assert b.calls.facts("+14155550100")[1] is False


# -- dial policy: refusals (audit) -------------------------------------------------------------


def test_refusals_are_kept_newest_first(store: Database) -> None:
    for i in range(5):
        record_refusal(
            store, "+14155550100", "quiet_hours", f"late {i}", at=T0 + timedelta(minutes=i), setting="DIAL_QUIET_HOURS"
        )
    record_refusal(store, None, "invalid_characters", "no number at all", at=T0 + timedelta(minutes=9))
    latest = store.refusals.recent(3)
    assert [r.message for r in latest] == ["no number at all", "late 4", "late 3"]
    assert latest[0].number is None and latest[0].setting is None
    assert latest[1] == RefusalEntry(
        id=latest[1].id,
        at=T0 + timedelta(minutes=4),
        number="+*******0100",
        rule="quiet_hours",
        message="late 4",
        setting="DIAL_QUIET_HOURS",
        repeats=1,
        last_at=T0 + timedelta(minutes=4),
    )
    assert len(store.refusals.recent()) == 6
    with pytest.raises(ValueError):
        store.refusals.recent(0)


def test_refusals_keep_hostile_input_harmless(store: Database) -> None:
    entry = record_refusal(
        store, "$(reboot)\x1b[2J" + "9" * 100, "invalid_characters", "bad\x00 input\nline 2" + "m" * 5000
    )
    assert entry.number is not None and len(entry.number) == 32 and "\x1b" not in entry.number
    assert entry.number.startswith("$(reboot)\\x1b[2J") and "9999999" not in entry.number
    assert "\x00" not in entry.message and "\\x00" in entry.message and "\nline 2" in entry.message
    assert len(entry.message) == 2000
    assert store.refusals.recent(1) == [entry]


def test_refusals_are_stored_masked(store: Database) -> None:
    entry = record_refusal(store, "+14155550123", "extension", "'+1 (415) 555-0123 x12' has an extension (12)")
    assert entry.number == "+*******0123"
    assert "555" not in entry.message and "0123" in entry.message
    # (The stored text only: a timestamp's microseconds may read 555.)
    assert all("555" not in f"{e.number} {e.message}" for e in store.refusals.recent())


def test_a_looping_client_cannot_fill_the_refusal_table(store: Database) -> None:
    for i in range(500):  # the same refusal, over and over
        record_refusal(store, "+14155550100", "quiet_hours", "late", at=T0 + timedelta(milliseconds=i))
    (row,) = store.refusals.recent(10)
    assert row.repeats == 500 and row.at == T0 and row.last_at == T0 + timedelta(milliseconds=499)
    # Varying the input: at most REFUSAL_ROWS_PER_WINDOW rows per window, and none lost.
    from callagent.store import REFUSAL_ROWS_PER_WINDOW

    t1 = T0 + timedelta(minutes=5)
    for i in range(300):
        record_refusal(
            store, f"+1415555{i:04d}", "invalid_number", f"bad number {i}", at=t1 + timedelta(milliseconds=i)
        )
    rows = [r for r in store.refusals.recent(1000) if r.rule == "invalid_number"]
    assert len(rows) == REFUSAL_ROWS_PER_WINDOW
    assert sum(r.repeats for r in rows) == 300
    # A new window starts afresh.
    later = record_refusal(store, "+14155550100", "quiet_hours", "late", at=T0 + timedelta(minutes=10))
    assert later.repeats == 1 and later.id != row.id


# -- dial policy: confirmation tokens ----------------------------------------------------------


def test_confirmation_token_is_single_use(store: Database) -> None:
    token = store.confirmations.issue("hash-a", 60, now=T0)
    assert len(token) >= 20
    assert store.confirmations.consume(token, "hash-a", now=T0 + timedelta(seconds=59)) is True
    assert store.confirmations.consume(token, "hash-a", now=T0 + timedelta(seconds=59)) is False


def test_confirmation_token_is_bound_to_its_call_and_burnt_by_misuse(store: Database) -> None:
    token = store.confirmations.issue("hash-a", 60, now=T0)
    assert store.confirmations.consume(token, "hash-b", now=T0) is False
    assert store.confirmations.consume(token, "hash-a", now=T0) is False  # spent by the attempt
    assert store.confirmations.consume("no-such-token", "hash-a", now=T0) is False
    assert store.confirmations.consume("", "hash-a", now=T0) is False


def test_confirmation_token_expires(store: Database) -> None:
    token = store.confirmations.issue("hash-a", 60, now=T0)
    assert store.confirmations.consume(token, "hash-a", now=T0 + timedelta(seconds=60)) is False
    # Expired tokens are swept when new ones are issued.
    store.confirmations.issue("hash-b", 60, now=T0)
    store.confirmations.issue("hash-c", 60, now=T0 + timedelta(seconds=61))
    engine = store.engine
    with engine.connect() as conn:
        rows = conn.execute(schema.confirmations.select()).all()
    assert [r.args_hash for r in rows] == ["hash-c"]
    with pytest.raises(ValueError):
        store.confirmations.issue("hash-a", 0)


def test_confirmation_token_is_not_stored_in_clear(store: Database) -> None:
    token = store.confirmations.issue("hash-a", 60)
    engine = store.engine
    with engine.connect() as conn:
        (row,) = conn.execute(schema.confirmations.select()).all()
    assert token not in tuple(str(v) for v in row)


def test_racing_consumers_of_one_token_one_wins(store_url: str) -> None:
    stores = [Database(store_url) for _ in range(8)]
    try:
        token = stores[0].confirmations.issue("hash-a", 60)
        for s in stores:
            s.refusals.recent(1)  # connected and set up: the race is on the token alone
        barrier = threading.Barrier(len(stores))
        results: list[bool] = []

        def consume(s: Database) -> None:
            barrier.wait()
            results.append(s.confirmations.consume(token, "hash-a"))

        threads = [threading.Thread(target=consume, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(results) == [False] * 7 + [True]
    finally:
        for s in stores:
            s.close()


# -- dial policy: counts and race-free creation ------------------------------------------------


def test_counts_and_policy_inputs(store: Database) -> None:
    now = T0 + timedelta(hours=3)
    store.calls.create(make_record(phone_number="+14155550101", created_at=now - timedelta(hours=25)))  # too old
    store.calls.create(make_record(phone_number="+14155550101", created_at=now - timedelta(hours=2)))
    ended = store.calls.create(make_record(phone_number="+14155550101", created_at=now - timedelta(minutes=30)))
    store.calls.create(make_record(phone_number="+14155550102", created_at=now - timedelta(minutes=10)))
    store.calls.transition(ended.call_id, "completed", end_reason=EndReason.agent_ended)
    assert store.calls.counts(now) == Counts(active=3, to_number_24h=0, last_hour=2)
    counts, listed = store.calls.facts("+14155550101", now)
    assert counts == Counts(active=3, to_number_24h=2, last_hour=2) and listed is False


def test_create_if_within_limits_checks_each_limit(store: Database) -> None:
    limits = VolumeLimits(max_concurrent=2, max_per_number_per_day=2, max_per_hour=3)
    now = T0 + timedelta(seconds=1)
    a = within_limits(store, make_record(phone_number="+14155550101"), limits, now=now)
    assert isinstance(a, CallRecord) and store.calls.get(a.call_id) == a
    b = within_limits(store, make_record(phone_number="+14155550101"), limits, now=now)
    assert isinstance(b, CallRecord)
    refused = within_limits(store, make_record(phone_number="+14155550102"), limits, now=now)
    assert isinstance(refused, Refusal) and refused.rule == Rule.max_concurrent
    assert refused.setting == "DIAL_MAX_CONCURRENT"
    store.calls.transition(a.call_id, "completed", end_reason=EndReason.agent_ended)
    store.calls.transition(b.call_id, "completed", end_reason=EndReason.agent_ended)
    refused = within_limits(store, make_record(phone_number="+14155550101"), limits, now=now)
    assert isinstance(refused, Refusal) and refused.rule == Rule.max_per_number_per_day
    c = within_limits(store, make_record(phone_number="+14155550102"), limits, now=now)
    assert isinstance(c, CallRecord)
    store.calls.transition(c.call_id, "busy", end_reason=EndReason.busy)
    refused = within_limits(store, make_record(phone_number="+14155550103"), limits, now=now)
    assert isinstance(refused, Refusal) and refused.rule == Rule.max_per_hour
    # An hour later the hourly limit has room again.
    d = within_limits(store, make_record(phone_number="+14155550103"), limits, now=now + timedelta(hours=1))
    assert isinstance(d, CallRecord)
    assert len(store.calls.page(limit=100)[0]) == 4  # refusals created nothing


def test_create_if_within_limits_checks_do_not_call(store: Database) -> None:
    store.do_not_call.add("+14155550107", "asked during a call")
    refused = within_limits(store, make_record(phone_number="+14155550107"), VolumeLimits(), now=T0)
    assert isinstance(refused, Refusal) and refused.rule == Rule.do_not_call
    assert store.calls.page()[0] == []
    allowed = within_limits(
        store, make_record(phone_number="+14155550107"), VolumeLimits(), now=T0, check_do_not_call=False
    )
    assert isinstance(allowed, CallRecord)


def test_create_if_within_limits_keeps_idempotency(store: Database) -> None:
    first = within_limits(store, make_record(idempotency_key="k1"), VolumeLimits(), now=T0)
    assert isinstance(first, CallRecord)
    with pytest.raises(DuplicateKey) as info:
        within_limits(store, make_record(idempotency_key="k1"), VolumeLimits(), now=T0)
    assert info.value.existing == first
    # The failed insert released the lock: the next call goes through.
    assert isinstance(within_limits(store, make_record(), VolumeLimits(), now=T0), CallRecord)


def test_twenty_simultaneous_requests_with_limit_three_create_exactly_three(store_url: str) -> None:
    limits = VolumeLimits(max_concurrent=3, max_per_number_per_day=2, max_per_hour=1000)
    stores = [Database(store_url) for _ in range(20)]  # own engines, like separate server processes
    try:
        for s in stores:
            s.calls.counts(T0)  # connected, tables exist: the race is on the limit alone
        for round_ in range(3):
            barrier = threading.Barrier(len(stores))
            results: list[CallRecord | Refusal] = []
            errors: list[BaseException] = []

            def place(i: int, s: Database) -> None:
                record = make_record(phone_number=f"+1415555{round_:02d}{i:02d}", created_at=T0)
                barrier.wait()
                try:
                    results.append(within_limits(s, record, limits, now=T0))
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=place, args=(i, s)) for i, s in enumerate(stores)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert errors == []
            created = [r for r in results if isinstance(r, CallRecord)]
            refused = [r for r in results if isinstance(r, Refusal)]
            assert len(created) == 3 and len(refused) == 17
            assert {r.rule for r in refused} == {"max_concurrent"}
            live = stores[0].calls.page(status=["queued"], limit=100)[0]
            assert sorted(r.call_id for r in live) == sorted(r.call_id for r in created)  # none lost
            for r in created:  # the calls end; the next round has room for 3 again
                stores[0].calls.transition(r.call_id, "completed", end_reason=EndReason.agent_ended)
        assert len(stores[0].calls.page(limit=100)[0]) == 9
    finally:
        for s in stores:
            s.close()


def test_an_existing_database_gets_the_new_tables(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    schema.calls.create(engine)  # a database from before the dial policy
    engine.dispose()
    with Database(url) as store:
        store.do_not_call.add("+14155550107")
        record_refusal(store, "+14155550100", "deny_list", "denied")
        assert store.do_not_call.contains("+14155550107") and len(store.refusals.recent()) == 1


def test_an_existing_database_gets_the_new_columns(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a store from before hang-up requests and refusal counts
        old_calls = sa.Table(
            "callagent_calls",
            sa.MetaData(),
            *[c._copy() for c in schema.calls.columns if c.name not in ("hangup_requested_at", "hangup_reason")],
        )
        old_calls.create(conn)
        old_refusals = sa.Table(
            "callagent_refusals",
            sa.MetaData(),
            *[c._copy() for c in schema.refusals.columns if c.name not in ("repeats", "last_at")],
        )
        old_refusals.create(conn)
        conn.execute(sa.insert(old_refusals).values(at=T0, number=None, rule="deny_list", message="old"))
    engine.dispose()
    with Database(url) as store:
        record = store.calls.create(make_record(status=CallStatus.in_progress))
        asked = store.calls.request_hangup(record.call_id, "ended by the MCP client")
        assert asked is not None and asked.hangup_reason == "ended by the MCP client"
        (old,) = store.refusals.recent()
        assert old.repeats == 1 and old.message == "old"


def test_events_transfers_and_recording_round_trip(store: Database) -> None:
    from callagent.calls import CallEvent, Recording, Transfer, utcnow

    record = store.calls.create(make_record(status=CallStatus.in_progress))
    now = utcnow()
    events = [CallEvent(at=now, kind="hold", detail="waiting"), CallEvent(at=now, kind="tool", detail="end_call({})")]
    transfers = [Transfer(to="+14155550112", mode="warm", started_at=now, outcome="connected")]
    recording = Recording(file=f"{record.call_id}.ogg", started_at=now, state="complete", duration_s=3.5)
    store.calls.update(record.call_id, events=events, transfers=transfers, recording=recording)
    got = store.calls.get(record.call_id)
    assert got is not None
    assert got.events == events and got.transfers == transfers and got.recording == recording
