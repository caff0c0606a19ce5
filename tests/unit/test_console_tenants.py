"""The console with tenants (callagent.toml [tenants]): every call shows whose it is, and the
calls page filters by tenant; without tenants the pages show none of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_console import BASE, settings_for, sign_in

from callagent.calls import CallStatus
from callagent.console.app import create_app
from callagent.profiles import hash_token
from callagent.settings import Settings
from callagent.store import Database
from helpers import make_record

# Settings built here must not take the bed's DIAL_* and CALLAGENT_* variables.
pytestmark = pytest.mark.usefixtures("no_operator_env")

TENANTS = f"""
[profiles.es]
language = "es"
caller_name = "Clínica Sol"

[tenants.clinic]
token_sha256 = "{hash_token("clinic-token-0123456789")}"
profiles = ["es"]

[tenants.shop]
token_sha256 = "{hash_token("shop-token-0123456789ab")}"
profiles = ["default"]
"""


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    path = tmp_path / "callagent.toml"
    path.write_text(TENANTS, encoding="utf-8")
    return settings_for(db_url, CALLAGENT_PROFILES_FILE=str(path))


@pytest.fixture
def client(settings: Settings, store: Database) -> Iterator[TestClient]:
    store.calls.create(
        make_record(
            call_id="clinic1", tenant="clinic", profile="es", language="es", goal="Cita", caller_name="Clínica Sol"
        )
    )
    store.calls.create(make_record(call_id="shop1", tenant="shop", goal="Order status"))
    store.calls.create(make_record(call_id="mine1", goal="Operator's own"))
    with TestClient(create_app(settings), base_url=BASE) as c:
        sign_in(c)
        yield c


def rows(html: str) -> list[str]:
    return [key for key in ("clinic1", "shop1", "mine1") if f'data-key="{key}"' in html]


def test_every_call_shows_its_tenant_and_the_list_filters_by_it(client: TestClient) -> None:
    page = client.get("/calls").text
    assert rows(page) == ["clinic1", "shop1", "mine1"] or set(rows(page)) == {"clinic1", "shop1", "mine1"}
    assert "<th>Tenant</th>" in page
    assert '<option value="clinic"' in page and '<option value="operator"' in page
    assert rows(client.get("/calls?tenant=clinic").text) == ["clinic1"]
    assert rows(client.get("/calls?tenant=shop").text) == ["shop1"]
    assert rows(client.get("/calls?tenant=operator").text) == ["mine1"]
    # An unknown tenant is no filter at all, not an empty page.
    assert set(rows(client.get("/calls?tenant=nobody").text)) == {"clinic1", "shop1", "mine1"}


def test_a_call_page_says_whose_call_it_was_and_in_which_language(client: TestClient) -> None:
    page = client.get("/calls/clinic1").text
    assert "clinic" in page and "profile es" in page and "speaking es" in page
    # What the callee heard first, in the call's language.
    assert "Clínica Sol" in page and "Hola" in page


def test_without_tenants_no_tenant_is_shown(db_url: str, store: Database) -> None:
    store.calls.create(make_record(call_id="plain1", status=CallStatus.completed))
    with TestClient(create_app(settings_for(db_url)), base_url=BASE) as c:
        sign_in(c)
        page = c.get("/calls").text
    assert 'data-key="plain1"' in page and "<th>Tenant</th>" not in page and 'name="tenant"' not in page


def test_a_tool_the_agent_used_is_on_the_call_page(settings: Settings, store: Database) -> None:
    from callagent.calls import CallEvent, ToolUse, TranscriptLine, utcnow

    use = ToolUse(
        server="calendar",
        tool="book_slot",
        arguments={"slot_id": "thu-1000"},
        side_effect=True,
        outcome="ok",
        result="booked Thursday at 10:00",
        duration_s=0.4,
    )
    store.calls.create(
        make_record(
            call_id="tool1",
            status=CallStatus.completed,
            events=[CallEvent(at=utcnow(), kind="tool", detail="calendar.book_slot: ok", tool=use)],
            transcript=[TranscriptLine(role="event", text='calendar.book_slot(slot_id="thu-1000") → booked')],
        )
    )
    with TestClient(create_app(settings), base_url=BASE) as c:
        sign_in(c)
        page = c.get("/calls/tool1").text
    assert "Tool calendar.book_slot (changes something)" in page and "booked Thursday at 10:00" in page
    assert '<li class="event">' in page and "Event" in page
