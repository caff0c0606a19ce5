"""Tests on the telephony bed: every test here needs it (the `bed` marker is set on all of
them), and a module's calls share one calling worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import Worker, bed_env

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.bed)


@pytest.fixture(scope="module")
def env(bed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bed's environment with a call store of this module's own."""
    return bed_env(tmp_path_factory.mktemp("bed"), CALLAGENT_WORKER_PORT="0")


@pytest.fixture(scope="module")
def worker(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A calling worker for this module's calls, registered before the first test."""
    w = Worker(env, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        w.wait_registered()
        yield w
    finally:
        w.stop()
