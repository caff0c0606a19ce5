"""Shared fixtures (plain helpers are in helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from callagent.store import Database
from devstack.postgres import PostgresError, throwaway_postgres
from fake_livekit import FakeLiveKit


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def no_operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings a test builds read only what it gives them: the operator's DIAL_*, CALLAGENT_*
    and MCP_HTTP_* variables and the SIP trunk (`devstack run` sets some) are taken out of the
    environment."""
    for name in list(os.environ):
        if name.startswith(("DIAL_", "CALLAGENT_", "MCP_HTTP_", "SIP_OUTBOUND_TRUNK_ID")):
            monkeypatch.delenv(name)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite call store for the test."""
    return f"sqlite:///{tmp_path / 'db' / 'calls.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Database]:
    with Database(db_url) as db:
        yield db


@pytest.fixture
def livekit() -> Iterator[FakeLiveKit]:
    """The fake LiveKit API on 127.0.0.1, answering like LiveKit until a test sets faults."""
    lk = FakeLiveKit("ok", hang_s=10)
    try:
        yield lk
    finally:
        lk.close()


# -- postgres_url: a throwaway PostgreSQL server --------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL server for this test session (devstack.postgres: Debian's
    binaries, a unix socket in a temp dir, superuser `postgres`, no password). Tests wanting
    isolation create their own database or schema in it."""
    try:
        with throwaway_postgres() as pg:
            yield pg.url
    except PostgresError as exc:
        pytest.fail(str(exc), pytrace=False)


# -- bed: the local telephony bed ----------------------------------------------------------

BED_VARS = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "SIP_OUTBOUND_TRUNK_ID", "DEVSTACK_PHONE_DIR")


@pytest.fixture(scope="session")
def bed() -> None:
    """The tests that need real LiveKit, SIP and a phone run inside `devstack run`, which sets
    these variables. Outside it they fail (never skip): a missing bed is a broken test run."""
    missing = [v for v in BED_VARS if not os.environ.get(v)]
    if missing:
        pytest.fail(
            f"this test needs the telephony bed ({', '.join(missing)} unset); "
            "run the suite as `uv run devstack run -- pytest`",
            pytrace=False,
        )
