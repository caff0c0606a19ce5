"""A throwaway PostgreSQL server from Debian's binaries, for the store's tests and the scale-out
benchmark: `with throwaway_postgres() as pg: pg.url`.

It runs in a temp dir and listens only on a unix socket inside that dir (no TCP port), with
durability off (the data is thrown away). PostgreSQL refuses to run as root, so as root it
runs as the `postgres` system user. Superuser `postgres`, no password.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Postgres", "PostgresError", "postgres_bindir", "throwaway_postgres"]


class PostgresError(RuntimeError):
    """The server's binaries are missing, or it did not start (the message has its output)."""


@dataclass(frozen=True)
class Postgres:
    url: str  # SQLAlchemy URL (psycopg 3), to the `postgres` database
    base: Path  # the temp dir: the socket, the data directory, the server's log
    data: Path

    def postmaster_pid(self) -> int | None:
        """The server's main process, from its pid file (None once it is gone)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl."""
    candidates = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()
    ]
    if not candidates:
        raise PostgresError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin; "
            "install them with: apt-get install -y postgresql"
        )
    return max(candidates, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


@contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A fresh PostgreSQL server for the duration of the block; stopped and removed after it."""
    bindir = postgres_bindir()
    # Not a root-only 0700 directory (such as pytest's tmp_path): the postgres user must enter it.
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
            raise PostgresError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{server_log}"
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
        yield Postgres(f"postgresql+psycopg://postgres@/postgres?host={base}", base, data)
    finally:
        if started:
            subprocess.run(
                [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                cwd=base,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)
