"""The call store's database: one engine, private files, the write lock, and the repositories.

Both processes open the same database (an SQLite file by default, PostgreSQL across machines).
`Database(url)` connects on first use and creates or upgrades the tables; its repositories
(`calls`, `do_not_call`, `refusals`, `confirmations`) hold the queries, one kind of data each.
All methods are blocking; async code calls them in a thread.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from callagent.redact import redact_url
from callagent.store import schema
from callagent.store.allowed import AllowedNumbers
from callagent.store.calls import Calls
from callagent.store.confirmations import Confirmations
from callagent.store.do_not_call import DoNotCall
from callagent.store.errors import StoreError
from callagent.store.refusals import Refusals

__all__ = ["Database"]

log = logging.getLogger("callagent.store")

# Advisory lock keys (PostgreSQL): one for creating tables, one for admitting writes that count.
_DDL_LOCK_KEY = 7305982763
_WRITE_LOCK_KEY = 7305982764

# SQLite's companions of a database file: they hold the same data.
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


class Database:
    """The call store. `url` is an SQLAlchemy URL: `sqlite:///path/to/calls.db` (folders are
    created, private) or `postgresql://user:pass@host/db`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self.calls = Calls(self)
        self.do_not_call = DoNotCall(self)
        self.refusals = Refusals(self)
        self.confirmations = Confirmations(self)
        self.allowed = AllowedNumbers(self)

    def __repr__(self) -> str:
        return f"Database({redact_url(self.url)!r})"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connections (the database reconnects if used again)."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    @property
    def engine(self) -> sa.Engine:
        engine = self._engine
        if engine is None:
            with self._lock:
                if self._engine is None:
                    new_engine = _create_engine(self.url)
                    _create_tables(new_engine)
                    self._engine = new_engine
                engine = self._engine
        return engine

    @contextmanager
    def write_lock(self) -> Iterator[sa.Connection]:
        """A transaction that holds the store's write lock from its first statement: what is
        counted in it and what is written after agree, across processes.

        SQLite: BEGIN IMMEDIATE takes the database's write lock up front (a plain BEGIN would
        read first and fail to upgrade under contention); busy_timeout makes others wait for
        it. The driver's own transaction handling is switched off for this connection so it
        cannot issue a BEGIN of its own. PostgreSQL: a transaction-level advisory lock,
        released at commit or rollback, serializes every process on this database.
        """
        engine = self.engine
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
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK_KEY})
            yield conn


def _create_engine(url: str) -> sa.Engine:
    try:
        u = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"CALLAGENT_DB_URL={redact_url(url)} is not a database URL ({exc})") from None
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
            log.warning(
                "the call store's folder %s is readable by others (mode %03o); it is shared, so it was left "
                "as it is: keep the store in a folder of its own",
                target,
                current,
            )
            return
        os.chmod(target, mode)
        log.warning(
            "tightened the permissions of %s from %03o to %03o: the call store is private", target, current, mode
        )


def _create_tables(engine: sa.Engine) -> None:
    # Several processes may start at once on a fresh database. PostgreSQL: serialize them on
    # an advisory lock. SQLite: DDL autocommits per statement, so a loser just tries again.
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK_KEY})
                schema.METADATA.create_all(conn, checkfirst=True)
                schema.add_missing_columns(conn)
            return
        except sa.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(0.05 * (attempt + 1))
