"""Scale-out on LiveKit's own distribution, on the bed: two calling workers (two processes, two
health-check ports) under one agent name, two MCP servers over streamable HTTP and the console,
all on ONE PostgreSQL store; calls placed alternately through both servers under
DIAL_MAX_CONCURRENT, then one worker killed (SIGKILL) with calls live on both.

The run is bench/scale_out.py's, with fewer calls; what is checked here is behaviour, never
speed: nothing lost, both workers used, the limit held across servers, the killed worker's
calls failed as worker_lost within the stale window, later calls completed on the survivor.
The store (PostgreSQL, a database of this module's own) is read directly to confirm it.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.scale_out import REAP_INTERVAL_S, measure_scale_out
from callagent.store import Database

CALLS = 6  # through two servers, LIMIT + 2 at a time: the limit refuses some, they retry
LIMIT = 4
AFTER_KILL = 1
KILL_BURST = 3  # below the limit: the call placed after the kill starts at once
STALE_AFTER_S = 20.0


@pytest.fixture(scope="module")
def store_url(bed: None, postgres_url: str) -> Iterator[str]:
    """A database of its own in the session's PostgreSQL server."""
    name = f"scale_{uuid.uuid4().hex[:10]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = urllib.parse.parse_qs(urllib.parse.urlsplit(postgres_url).query)["host"][0]
    yield f"postgresql+psycopg://postgres@/{name}?host={host}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def run(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir: Path = tmp_path_factory.mktemp("scale-out")
    result = asyncio.run(
        measure_scale_out(
            dict(os.environ),
            workdir,
            calls=CALLS,
            limit=LIMIT,
            after_kill=AFTER_KILL,
            stale_after_s=STALE_AFTER_S,
            budget_s=240,
            db_url=store_url,
            idle_processes=2,
            kill_burst=KILL_BURST,
        )
    )
    print(f"\nscale-out logs: {workdir}")
    return result


def records(store_url: str, call_ids: list[str]) -> dict[str, Any]:
    with Database(store_url) as db:
        return {cid: db.calls.get(cid) for cid in call_ids}


def calls_of(run: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    return [c for c in run["calls"] if c["phase"] == phase]


def test_the_calls_spread_over_both_workers_and_servers_and_none_is_lost(run: dict[str, Any], store_url: str) -> None:
    spread = calls_of(run, "spread")
    assert len(spread) == CALLS and all(c["call_id"] for c in spread), spread
    final = records(store_url, [c["call_id"] for c in spread])
    assert {cid: r.status.value for cid, r in final.items()} == {c["call_id"]: "completed" for c in spread}
    assert run["started"] == run["completed"] == CALLS and run["lost"] == 0
    # LiveKit chose: both workers took calls, and each call was held by exactly one of them.
    assert run["workers_used"] == 2, run["calls_per_worker"]
    assert {c["worker"] for c in spread} == {"w1", "w2"}
    assert run["calls_per_server"] == {"s1": CALLS // 2, "s2": CALLS - CALLS // 2}
    assert set(run["worker_health"].values()) == {200}  # each its own port
    # The console, a third process on the store, shows every call as the store has it.
    assert run["console_pages_ok"] == len([c for c in run["calls"] if c["call_id"]])


def test_the_concurrency_limit_holds_across_both_servers(run: dict[str, Any], store_url: str) -> None:
    assert run["limit"] == LIMIT
    assert 0 < run["max_live"] <= LIMIT, run["max_live"]
    # The limit was reached and refused calls (counted by the run and kept in the store's
    # audit, whichever server refused them); each such call was placed later.
    assert run["refused_for_limit"] > 0
    with Database(store_url) as db:
        audit = [e for e in db.refusals.recent(500) if e.rule == "max_concurrent"]
    assert sum(e.repeats for e in audit) == run["refused_for_limit"]
    assert all(e.setting == "DIAL_MAX_CONCURRENT" for e in audit)
    assert all(c["call_id"] for c in run["calls"]), [c for c in run["calls"] if not c["call_id"]]


def test_a_killed_workers_calls_fail_as_worker_lost_and_later_calls_go_to_the_survivor(
    run: dict[str, Any], store_url: str
) -> None:
    assert run["live_on_both_at_kill"], run["calls"]
    victim = run["killed_worker"]
    survivor = "w1" if victim == "w2" else "w2"
    kill = calls_of(run, "kill")
    on_victim = [c["call_id"] for c in kill if c["worker"] == victim]
    assert run["killed_call_ids"] and set(run["killed_call_ids"]) <= set(on_victim)
    assert run["killed_worker_calls"] == len(run["killed_call_ids"]) == run["killed_worker_calls_worker_lost"]
    # Every call the killed worker held ended failed, worker_lost, as the store says: hung up
    # and failed by a server's reaper once the heartbeats stopped.
    for cid, record in records(store_url, on_victim).items():
        assert record is not None and record.status.value == "failed", (cid, record)
        assert record.end_reason is not None and record.end_reason.value == "worker_lost", record.ended_reason
        assert "the worker stopped responding" in (record.ended_reason or "")
        assert record.ended_at is not None
        # Within the stale window: the last heartbeat was at most a beat before the kill, a
        # server reaps at most every REAP_INTERVAL_S; the rest is slack for a loaded machine.
        assert record.ended_at.timestamp() - run["killed_at"] <= STALE_AFTER_S + REAP_INTERVAL_S + 15
    # The survivor's calls went on to the end.
    kept = [c for c in kill if c["worker"] == survivor]
    assert kept and all(c["status"] == "completed" for c in kept), kept
    # Calls placed after the kill went to the survivor, and completed.
    later = calls_of(run, "after_kill")
    assert len(later) == AFTER_KILL
    assert all(c["worker"] == survivor and c["status"] == "completed" for c in later), later
    assert run["after_kill_completed"] == run["after_kill_on_survivor"] == AFTER_KILL
    # Nothing anywhere was left live.
    assert run["lost_all_phases"] == 0
    everything = records(store_url, [c["call_id"] for c in run["calls"]])
    assert all(r is not None and r.ended_at is not None for r in everything.values())
