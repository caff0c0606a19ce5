"""Calling profiles on the bed: a Spanish profile calls +1 415 555 0115, who answers in Spanish;
its caller ID reaches the phone as the SIP From number. Calls go test_mcp_client.py → server.py
→ LiveKit → livekit-sip → the simulated phone, with the real calling worker; the model server
logs what each call asked it to say and transcribe (devstack.phonelog)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callagent.store import Database
from devstack import phonelog
from helpers import Worker, bed_env, client, phone_call, place

SPANISH, PERSON = "+14155550115", "+14155550100"
TRUNK_NUMBER, CLINIC_LINE, NOT_OURS = "+14155550199", "+14155550190", "+14155550191"
GOAL = "Confirmar la cita de mañana a las diez"

PROFILES = f"""
[profiles.clinica]
description = "Recordatorios en español"
caller_name = "Clínica Sol"
language = "es"
voice = "nova"
caller_ids = ["{CLINIC_LINE}"]

[profiles.clinica.policy]
max_concurrent = 2
"""


@pytest.fixture(scope="module")
def env(bed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bed, with a callagent.toml holding a Spanish profile."""
    tmp = tmp_path_factory.mktemp("profiles")
    (tmp / "callagent.toml").write_text(PROFILES, encoding="utf-8")
    return bed_env(tmp, CALLAGENT_WORKER_PORT="0", CALLAGENT_PROFILES_FILE=str(tmp / "callagent.toml"))


def test_a_spanish_profile_holds_the_call_in_spanish_and_shows_its_caller_id(
    env: dict[str, str], worker: Worker
) -> None:
    rec = place(env, SPANISH, "--goal", GOAL, "--profile", "clinica", "--caller-id", CLINIC_LINE)
    assert rec["status"] == "completed", rec
    assert (rec["profile"], rec["language"], rec["caller_id"]) == ("clinica", "es", CLINIC_LINE)
    assert rec["caller_name"] == "Clínica Sol"
    said = [line["text"] for line in rec["transcript"] if line["role"] == "callee"]
    assert said and "Bueno" in said[0], said
    assert rec["summary"] and rec["outcome"]["goal_achieved"] == "yes", rec

    # What the agent said first was the Spanish disclosure, in the profile's voice.
    greeting = phonelog.greeting_speech(rec["call_id"])
    assert greeting is not None
    assert greeting["text"].startswith("Hola") and "Clínica Sol" in greeting["text"], greeting
    assert "inteligencia artificial" in greeting["text"].lower(), greeting
    assert greeting["voice"] == "nova", greeting
    # The callee's speech was transcribed as Spanish.
    hints = phonelog.stt_language_hints(rec["call_id"])
    assert hints and set(hints) == {"es"}, hints
    # The phone saw the profile's number as the caller, and heard the agent speak.
    call = phone_call(rec)
    assert call["from_number"] == CLINIC_LINE, call.get("from_uri")
    assert call["answered_at"]


def test_a_caller_id_off_the_profiles_list_is_refused_before_dialing(env: dict[str, str]) -> None:
    res = client(env, "call", PERSON, "--profile", "clinica", "--caller-id", NOT_OURS, "--json")
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "caller_id" in out and "[profiles.clinica] caller_ids" in out, out
    with Database(env["CALLAGENT_DB_URL"]) as db:
        assert all(r.phone_number != PERSON for r in db.calls.page(limit=100)[0])
        refused = db.refusals.recent(5)
    assert refused and refused[0].rule == "caller_id"


def test_without_a_profile_the_call_is_as_before(env: dict[str, str], worker: Worker) -> None:
    rec = place(env, PERSON, "--goal", "Ask about opening hours")
    assert rec["status"] == "completed" and rec["profile"] == "default" and rec["language"] == "en", rec
    assert rec["caller_id"] is None
    greeting = phonelog.greeting_speech(rec["call_id"])
    assert greeting is not None and greeting["text"].startswith("Hello, this is an AI assistant"), greeting
    assert phone_call(rec)["from_number"] == TRUNK_NUMBER


def test_a_profile_that_widens_the_policy_stops_the_server(env: dict[str, str], tmp_path: Path) -> None:
    wide = tmp_path / "callagent.toml"
    wide.write_text('[profiles.wide.policy]\ncountries = ["*"]\n', encoding="utf-8")
    res = client({**env, "CALLAGENT_PROFILES_FILE": str(wide)}, "list", timeout=60)
    assert res.returncode != 0
    assert "[profiles.wide.policy] countries" in res.stderr and "only narrow" in res.stderr, res.stderr[-2000:]
