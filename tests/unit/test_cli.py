"""The operator's `callagent` command: do-not-call list, refusal log, dial policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callagent import settings as settings_module
from callagent.cli import main
from callagent.policy import DialPolicy
from callagent.rules import Refusal, Rule
from callagent.settings import Settings, get_settings
from callagent.store import Database

ENV_NAMES = [str(f.validation_alias) for f in Settings.model_fields.values() if f.validation_alias]
T0 = datetime(2025, 1, 15, 20, 0, tzinfo=UTC)


@pytest.fixture
def db_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite store named by CALLAGENT_DB_URL; no other configuration leaks in."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(settings_module, "ENV_FILE", tmp_path / "no-project" / ".env")
    url = f"sqlite:///{tmp_path / 'store' / 'calls.db'}"
    monkeypatch.setenv("CALLAGENT_DB_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    get_settings.cache_clear()  # each run reads the environment afresh, like a new process
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dnc_add_list_remove(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "dnc", "list")
    assert (code, out, err) == (0, "The do-not-call list is empty.\n", "")

    code, out, _ = run(capsys, "dnc", "add", "(415) 555-0107", "--reason", "asked by letter")
    assert code == 0
    assert out == "Added +*******0107 to the do-not-call list; calls to it are refused.\n"
    assert "4155550107" not in out  # masked, except in `dnc list`

    code, out, _ = run(capsys, "dnc", "add", "+1 415 555 0107")
    assert (code, out) == (0, "+*******0107 was already on the do-not-call list.\n")

    code, out, _ = run(capsys, "dnc", "list")
    assert code == 0
    number, added, source, reason = out.rstrip("\n").split("\t")
    assert (number, source, reason) == ("+14155550107", "operator", "asked by letter")  # in full
    assert added.endswith(" UTC")

    with Database(db_url) as store:  # what make_phone_call will consult
        assert store.calls.facts("+14155550107")[1] is True

    code, out, _ = run(capsys, "dnc", "remove", "415.555.0107")
    assert (code, out) == (0, "Removed +*******0107 from the do-not-call list.\n")
    code, out, err = run(capsys, "dnc", "remove", "415.555.0107")
    assert code == 1 and out == ""
    assert err == "callagent: +*******0107 is not on the do-not-call list\n"
    with Database(db_url) as store:
        assert not store.do_not_call.contains("+14155550107")


def test_dnc_list_shows_what_the_agent_added(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The worker's add_to_do_not_call tool calls exactly this during a call.
    with Database(db_url) as store:
        store.do_not_call.add("+14155550107", "asked during a call", "a1b2c3d4e5f6", at=T0)
        store.do_not_call.add("+14155550100", "operator\x1b[31m", at=T0 + timedelta(minutes=1))
    code, out, _ = run(capsys, "dnc", "list")
    assert code == 0
    assert out.splitlines() == [
        "+14155550100\t2025-01-15 20:01 UTC\toperator\toperator\\x1b[31m",  # escaped, not executed
        "+14155550107\t2025-01-15 20:00 UTC\tcall a1b2c3d4e5f6\tasked during a call",
    ]
    code, out, _ = run(capsys, "dnc", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["number"] for r in rows] == ["+14155550100", "+14155550107"]
    assert rows[1]["call_id"] == "a1b2c3d4e5f6"


@pytest.mark.parametrize("bad", ["911", "+1 415 555", "$(reboot)", "+14155550100; DROP TABLE x"])
def test_dnc_add_refuses_what_is_not_a_number(db_url: str, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, err = run(capsys, "dnc", "add", bad)
    assert code == 2 and out == ""
    assert err.startswith("callagent: ") and ("not a valid phone number" in err or "contains" in err)
    with Database(db_url) as store:
        assert store.do_not_call.entries() == []


def test_dnc_numbers_follow_the_default_region(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLAGENT_DEFAULT_REGION", "GB")
    assert run(capsys, "dnc", "add", "020 7946 0958")[0] == 0
    assert run(capsys, "dnc", "list")[1].startswith("+442079460958\t")


def test_refusals(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "refusals")
    assert (code, out) == (0, "No refused calls.\n")
    with Database(db_url) as store:
        store.refusals.record(Refusal(Rule.quiet_hours, "it is 22:30 in America/Los_Angeles"), "+14155550100", at=T0)
        store.refusals.record(
            Refusal(Rule.invalid_characters, "'$(reboot)' contains '$beort'\x1b[2J"),
            "$(reboot)",
            at=T0 + timedelta(seconds=1),
        )
        store.refusals.record(
            Refusal(Rule.deny_list, "'+1 415 555 0101' matched +1415*"), "+14155550101", at=T0 + timedelta(seconds=2)
        )
    code, out, _ = run(capsys, "refusals")
    assert code == 0
    assert out.splitlines() == [
        "2025-01-15 20:00:02 UTC  +*******0101  deny_list [DIAL_DENY]: '+* *** *** 0101' matched +1415*",
        "2025-01-15 20:00:01 UTC  $(reboot)  invalid_characters: '$(reboot)' contains '$beort'\\x1b[2J",
        "2025-01-15 20:00:00 UTC  +*******0100  quiet_hours [DIAL_QUIET_HOURS]: it is 22:30 in America/Los_Angeles",
    ]
    assert "4155550101" not in out and "4155550100" not in out

    code, out, _ = run(capsys, "refusals", "--limit", "1", "--json")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row == {
        "at": "2025-01-15T20:00:02+00:00",
        "number": "+*******0101",
        "rule": "deny_list",
        "setting": "DIAL_DENY",
        "message": "'+* *** *** 0101' matched +1415*",
        "repeats": 1,
        "last_at": "2025-01-15T20:00:02+00:00",
    }

    # A looping client's refusals share a row, and the listing says how many.
    with Database(db_url) as store:
        for i in range(3):
            store.refusals.record(
                Refusal(Rule.deny_list, "'+1 415 555 0101' matched +1415*"),
                "+14155550101",
                at=T0 + timedelta(seconds=2 + i),
            )
    code, out, _ = run(capsys, "refusals", "--limit", "1")
    assert out.rstrip().endswith("(x4, the last at 20:00:04)"), out


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_refusals_limit_must_be_positive(db_url: str, capsys: pytest.CaptureFixture[str], limit: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["refusals", "--limit", limit])
    assert info.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_policy_prints_what_is_allowed_now(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, "policy")
    assert code == 0
    info = json.loads(out)
    assert info["quiet_hours"] == "21:00-08:00" and info["countries"] == ["US"]
    assert info["limits"] == {"max_concurrent": 3, "max_per_number_per_day": 2, "max_per_hour": 30}
    assert info["usage"] == {
        "active_calls": 0,
        "calls_last_hour": 0,
        "concurrent_slots_left": 3,
        "calls_left_this_hour": 30,
    }

    monkeypatch.setenv("DIAL_QUIET_HOURS", "off")
    monkeypatch.setenv("DIAL_MAX_CONCURRENT", "5")
    monkeypatch.setenv("DIAL_ALLOW", "+1 415 555 0100,+1212*")
    monkeypatch.setenv("DIAL_CONFIRM", "unlisted")
    info = json.loads(run(capsys, "policy")[1])
    assert info["quiet_hours"] is None and info["limits"]["max_concurrent"] == 5
    assert info["allow_list"] == ["+*******0100", "+1212*"] and info["confirmation"] == "unlisted"
    get_settings.cache_clear()
    assert DialPolicy.from_settings(get_settings()).limits.max_concurrent == 5


def test_bad_configuration_is_named(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIAL_CONFIRM", "sometimes")
    code, out, err = run(capsys, "dnc", "list")
    assert code == 2 and out == ""
    assert err.startswith("callagent: bad configuration: DIAL_CONFIRM: ")
    assert "Traceback" not in err


def test_env_file_gives_settings_and_a_missing_one_is_named(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_file = tmp_path / "operator.env"
    settings_file.write_text("DIAL_MAX_CONCURRENT=7\nDIAL_QUIET_HOURS=off\n")
    code, out, _ = run(capsys, "--env-file", str(settings_file), "policy")
    assert code == 0
    info = json.loads(out)
    assert info["limits"]["max_concurrent"] == 7 and info["quiet_hours"] is None

    missing = tmp_path / "missing.env"
    code, out, err = run(capsys, "--env-file", str(missing), "policy")
    assert code == 2 and out == ""
    assert err == f"callagent: the settings file {missing} (--env-file, CALLAGENT_ENV_FILE) does not exist\n"


def test_no_command_prints_help(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys)[0] == 2
    code, _, err = run(capsys, "dnc")
    assert code == 2 and "remove" in err


def test_console_script(db_url: str, tmp_path: Path) -> None:
    """The `callagent` script pyproject.toml declares, as an operator runs it."""
    script = Path(sys.executable).parent / "callagent"
    assert script.exists(), "run `uv sync` to install the callagent console script"
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env["CALLAGENT_DB_URL"] = db_url
    added = subprocess.run(
        [script, "dnc", "add", "+1 415 555 0107"], env=env, capture_output=True, text=True, timeout=60
    )
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([script, "dnc", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.startswith("+14155550107\t")


def test_the_approval_queue_from_the_command_line(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`approvals`, `deny` and `approve` are the console's decisions at a terminal: the same
    service. A denied call ends denied with the note; approving asks the policy again (here the
    number went on the do-not-call list meanwhile, so it is refused, exit 3)."""
    from callagent.calls import CallRecord, CallStatus, new_call_id, utcnow

    with Database(db_url) as db:
        ids = []
        for _ in range(2):
            record = CallRecord(
                call_id=new_call_id(),
                phone_number="+14155550142",
                status=CallStatus.awaiting_approval,
                goal="Confirm the booking",
                caller_name="Ops",
                max_duration_s=60,
                ring_timeout_s=30,
                reasoning="The user asked.",
                approval_expires_at=utcnow() + timedelta(hours=1),
            )
            ids.append(db.calls.create(record).call_id)
    code, out, _ = run(capsys, "approvals")
    assert code == 0 and all(i in out for i in ids) and "why: The user asked." in out
    assert "4155550142" not in out

    code, out, _ = run(capsys, "deny", ids[0], "--note", "Not today.", "--by", "olga")
    assert code == 0 and "Operator's note: Not today." in out
    code, _, err = run(capsys, "deny", ids[0])
    assert code == 1 and "not awaiting approval" in err

    monkeypatch.setenv("DIAL_QUIET_HOURS", "off")
    code, _, err = run(capsys, "approve", ids[1])
    assert code == 6 and "LIVEKIT_URL" in err  # an approved call is dialed from here: LiveKit first
    # Nothing listens there: the policy refuses before anything would be dialed.
    for name, value in {
        "LIVEKIT_URL": "ws://127.0.0.1:9",
        "LIVEKIT_API_KEY": "k",
        "SIP_OUTBOUND_TRUNK_ID": "t",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s" * 32)
    run(capsys, "dnc", "add", "+14155550142")
    code, _, err = run(capsys, "approve", ids[1], "--by", "olga")
    assert code == 3 and "rule 'do_not_call'" in err
    with Database(db_url) as db:
        denied, refused = db.calls.get(ids[0]), db.calls.get(ids[1])
    assert denied is not None and denied.status is CallStatus.denied and denied.denied_by == "olga"
    assert refused is not None and refused.end_reason == "policy_refused"
    code, out, _ = run(capsys, "approvals")
    assert (code, out) == (0, "No call is waiting for approval.\n")
