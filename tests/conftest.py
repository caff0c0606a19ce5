"""Shared fixtures (plain helpers are in helpers.py)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from callagent.store import Database
from fake_livekit import FakeLiveKit


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


def _postgres_bindir() -> Path:
    candidates = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()
    ]
    if not candidates:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin; "
            "install them with: apt-get install -y postgresql",
            pytrace=False,
        )
    return max(candidates, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL server for this test session (superuser `postgres`, no password).

    It runs from Debian's binaries in a temp dir and listens only on a unix socket inside that
    dir (no TCP port). PostgreSQL refuses to run as root, so as root it runs as the `postgres`
    system user. Tests wanting isolation create their own database in it.
    """
    bindir = _postgres_bindir()
    # Not pytest's tmp_path: that lives under a root-only 0700 directory the postgres user
    # cannot enter.
    base = Path(tempfile.mkdtemp(prefix="callagent-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres", group="postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = base / "data", base / "server.log"

    def run(*args: str) -> None:
        result = subprocess.run([*as_user, *args], cwd=base, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{server_log}",
                pytrace=False,
            )

    started = False
    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        )
        # Durability settings off: the data is thrown away at the end.
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{base}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "30", "start")
        started = True
        yield f"postgresql+psycopg://postgres@/postgres?host={base}"
    finally:
        if started:
            subprocess.run(
                [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                cwd=base,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


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
