"""On the bed: a callee who asks not to be called again is not called again.

+1 415 555 0107 answers and asks to be taken off the list; the agent uses its
add_to_do_not_call tool, says goodbye and ends the call. The next make_phone_call to that
number is refused by the dial policy (rule do_not_call) and the phone never rings again.
"""

from __future__ import annotations

import subprocess
import sys
import time

from callagent.numbers import mask
from callagent.store import Database
from devstack import phonelog
from helpers import Worker, client, place

DNC = "+14155550107"


def test_a_callee_who_asks_not_to_be_called_is_not_called_again(env: dict[str, str], worker: Worker) -> None:
    db_url = env["CALLAGENT_DB_URL"]
    with Database(db_url) as store:
        assert not store.do_not_call.contains(DNC)

    # The call: the callee asks, the agent puts the number on the list and ends the call.
    rec = place(env, "+1 415 555 0107", "--goal", "Tell them about our spring offer")
    assert rec["status"] == "completed", rec
    assert "the agent ended the call" in rec["ended_reason"], rec
    said = [(line["role"], line["text"]) for line in rec["transcript"]]
    assert said[0][0] == "agent" and "AI assistant" in said[0][1]
    assert any(role == "callee" and "do not call me again" in text for role, text in said), said
    assert any("do-not-call" in item for item in rec["outcome"]["follow_ups"]), rec["outcome"]
    phone = phonelog.wait_for(rec["call_id"], lambda c: bool(c.get("ended")), timeout=15)
    assert phone["answered_at"] is not None

    with Database(db_url) as store:
        (entry,) = [e for e in store.do_not_call.entries() if e.number == DNC]
    assert entry.call_id == rec["call_id"]  # put there by the agent, during that call

    # The next call to that number is refused before LiveKit: the phone never rings.
    rings_before = len(phonelog.calls())
    started = time.monotonic()
    res = client(env, "call", DNC, "--json", timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "rule 'do_not_call'" in res.stderr and "do-not-call list" in res.stderr, res.stderr
    assert res.stdout.strip() == ""
    assert time.monotonic() - started < 20
    time.sleep(2)
    assert len(phonelog.calls()) == rings_before

    with Database(db_url) as store:
        refusal = store.refusals.recent()[0]
        assert (refusal.rule, refusal.number) == ("do_not_call", mask(DNC))  # the audit keeps it masked
        calls_to_it = store.calls.page(phone_number=DNC, limit=10)[0]
    assert [c.call_id for c in calls_to_it] == [rec["call_id"]]  # no second record

    # The operator sees it on the list, with the call it came from, and can take it off.
    listed = subprocess.run(
        [sys.executable, "-m", "callagent.cli", "dnc", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert DNC in listed.stdout and f"call {rec['call_id']}" in listed.stdout
    removed = subprocess.run(
        [sys.executable, "-m", "callagent.cli", "dnc", "remove", DNC],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert removed.returncode == 0, removed.stderr
    with Database(db_url) as store:
        assert not store.do_not_call.contains(DNC)
