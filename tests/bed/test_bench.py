"""The benchmark's smoke run: `bench/run.py --quick` on the bed prints every measure, well formed.

Nothing here asserts speed (CI machines vary); the figures that matter live in bench/README.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.bed

ROOT = Path(__file__).resolve().parents[2]

# metric → fields it must carry (besides metric, n, unit)
EXPECTED: dict[str, tuple[str, ...]] = {
    "server_cold_start": ("p50_ms", "baseline_ms", "ratio"),
    "make_phone_call_latency": (
        "p50_ms",
        "baseline_ms",
        "ratio",
        "agent_join_ms",
        "baseline_agent_join_ms",
        "ratio_excl_join",
    ),
    "answer_to_first_audio": ("p50_ms", "p95_ms"),
    "turn_latency": ("p50_ms", "p95_ms"),
    "false_end_of_turn": ("utterances", "false", "pauses"),
    "concurrent_calls": (
        "started",
        "completed",
        "lost",
        "no_worker",
        "cpu_s_per_call",
        "peak_rss_mb_per_call",
    ),
}


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


@pytest.fixture(scope="module")
def quick_run(bed: None) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
    )
    lines: dict[str, dict[str, Any]] = {}
    for raw in res.stdout.splitlines():
        line = json.loads(raw)  # stdout holds JSON lines only; progress goes to stderr
        assert line["metric"] not in lines, f"metric printed twice: {line['metric']}"
        lines[line["metric"]] = line
    return res, lines


def test_quick_run_succeeds(quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    res, _ = quick_run
    assert res.returncode == 0, res.stderr[-4000:]


@pytest.mark.parametrize("metric", sorted(EXPECTED))
def test_every_measure_is_reported(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]], metric: str
) -> None:
    res, lines = quick_run
    assert metric in lines, f"no {metric} line; stderr:\n{res.stderr[-4000:]}"
    line = lines[metric]
    assert "error" not in line, line["error"]
    assert isinstance(line["unit"], str) and line["unit"]
    assert isinstance(line["n"], int) and line["n"] >= 1, line
    for field in EXPECTED[metric]:
        assert isinstance(line.get(field), (int, float)) and not isinstance(line[field], bool), (field, line)
    # Durations, counts, ratios: never negative. (Not the nested breakdowns: one of their steps
    # may legitimately come out a hair below zero from log timestamps in whole milliseconds.)
    for field, value in line.items():
        if not isinstance(value, dict):
            assert all(x >= 0 for x in _numbers(value)), (field, line)


def test_concurrent_calls_are_all_accounted_for(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]],
) -> None:
    line = quick_run[1]["concurrent_calls"]
    assert line["started"] == line["n"] >= 1
    # Every call either completed, ended some other way (a terminal status), or is lost.
    assert line["completed"] + line["ended_otherwise"] + line["lost"] == line["started"], line
    assert sum(line["statuses"].values()) == line["started"], line
