"""The operator's console (callagent.console) over HTTP, against a real call store: access
(sign-in on every route, the session cookie, CSRF), the security headers, text from clients and
callees rendered as text, the pages over the service (filters, paging, approvals, the lists,
recordings), the live event stream, and one PostgreSQL store shared with two MCP servers.

The app runs under Starlette's TestClient, or under uvicorn on 127.0.0.1 where a test reads
the event stream; calls that would be dialed go to the fake LiveKit.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
import uvicorn
from mcp.client import Client
from pydantic import SecretStr
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from callagent import cli, recordings
from callagent.calls import CallRecord, CallStatus, EndReason, Recording, TranscriptLine, utcnow
from callagent.console import app as console_app
from callagent.console import present
from callagent.console.app import Console, create_app
from callagent.console.auth import COOKIE
from callagent.console.server import console_hosts, start_problem
from callagent.errors import NotConfigured
from callagent.http_transport import allowed_hosts
from callagent.service import CallArgs, CallService, Placed
from callagent.settings import Settings, recordings_dir
from callagent.store import Database
from callagent.tools import create_server
from fake_livekit import FakeLiveKit
from helpers import fake_livekit_settings, make_record

TOKEN = "console-test-secret-0123456789"
SECRET = "console-test-livekit-secret-long-enough"
BASE = "http://127.0.0.1:8766"
XSS = "<img src=x onerror=alert(1)>"
OPERATOR = {"DIAL_CONFIRM": "always", "DIAL_CONFIRM_BY": "operator"}


# The policy's own defaults, whatever the environment says (the bed lifts the volume limits).
DEFAULT_LIMITS = {"DIAL_MAX_CONCURRENT": "3", "DIAL_MAX_PER_HOUR": "30", "DIAL_MAX_PER_NUMBER_PER_DAY": "2"}


def settings_for(db_url: str, livekit_url: str = "http://127.0.0.1:9", **env: Any) -> Settings:
    return fake_livekit_settings(
        db_url, livekit_url, SECRET, CALLAGENT_CONSOLE_TOKEN=TOKEN, **{**DEFAULT_LIMITS, **env}
    )


@pytest.fixture
def settings(db_url: str, livekit: FakeLiveKit) -> Settings:
    return settings_for(db_url, livekit.url, **OPERATOR)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url=BASE) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(c: TestClient, name: str = "alice") -> str:
    """Sign in through the form; the session's CSRF token."""
    form = c.get("/signin")
    res = c.post(
        "/signin",
        data={"csrf": csrf_of(form.text), "token": TOKEN, "name": name, "next": "/calls"},
        follow_redirects=False,
    )
    assert res.status_code == 303 and res.headers["location"] == "/calls", res.text
    return csrf_of(c.get("/calls").text)


def ask(settings: Settings, number: str = "+14155550100", **args: Any) -> CallRecord:
    """A call placed by an MCP client's service, awaiting the operator's approval."""

    async def place() -> CallRecord:
        service = CallService(settings)
        try:
            placed = await service.place(CallArgs(number, goal="Confirm the appointment", **args))
        finally:
            await service.aclose()
        assert isinstance(placed, Placed) and placed.record.status is CallStatus.awaiting_approval
        return placed.record

    return anyio.run(place)


def routes(settings: Settings) -> list[tuple[str, str]]:
    """Every (method, path) the console serves, path parameters filled in; not the sign-in
    form or the static files, which must be reachable before signing in."""
    app = Console(settings).app()
    inner = app.app  # type: ignore[attr-defined]  # SecurityHeaders around the Starlette app
    found: list[tuple[str, str]] = []
    for route in inner.routes:
        if isinstance(route, Mount) or not isinstance(route, Route) or route.path == "/signin":
            continue
        path = route.path.replace("{call_id}", "abc123def456").replace("{view}", "calls")
        found.extend((method, path) for method in sorted(route.methods or ()) if method != "HEAD")
    return found


# -- access ------------------------------------------------------------------------------------


def test_every_route_needs_a_session(settings: Settings, store: Database) -> None:
    store.calls.create(make_record(call_id="abc123def456"))
    served = routes(settings)
    assert ("GET", "/calls") in served and ("POST", "/approvals/abc123def456/approve") in served
    assert len(served) == 16
    with TestClient(create_app(settings), base_url=BASE) as c:
        for method, path in served:
            res = c.request(method, path, follow_redirects=False)
            if method == "GET" and res.status_code == 303:
                assert res.headers["location"].startswith("/signin?next=" if path != "/" else "/signin"), path
            else:
                assert res.status_code == 401, (method, path, res.status_code)
            assert "abc123def456" not in res.text or res.status_code == 303
        # A GET of a page comes back to it after signing in.
        res = c.get("/calls/abc123def456?x=1", follow_redirects=False)
        assert res.headers["location"] == "/signin?next=%2Fcalls%2Fabc123def456%3Fx%3D1"
        # What a signed-in operator gets, nobody else does.
        assert c.get("/calls", follow_redirects=False).status_code == 303


def test_the_secret_signs_in_and_nothing_else(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_app, "FAILED_SIGN_IN_DELAY_S", 0)
    form = client.get("/signin")
    csrf = csrf_of(form.text)
    for wrong in ("", "console-test-secret-012345678", TOKEN + " ", TOKEN.upper()):
        res = client.post("/signin", data={"csrf": csrf, "token": wrong, "next": "/calls"}, follow_redirects=False)
        assert res.status_code == 401 and "not the console&#39;s secret" in res.text
    assert client.get("/calls", follow_redirects=False).status_code == 303
    # A script guessing is stopped after a few tries a minute, even with the right secret.
    for _ in range(6):
        client.post("/signin", data={"csrf": csrf, "token": "guess", "next": "/calls"})
    res = client.post("/signin", data={"csrf": csrf, "token": TOKEN, "next": "/calls"}, follow_redirects=False)
    assert res.status_code == 429


def test_the_session_cookie(client: TestClient, settings: Settings) -> None:
    form = client.get("/signin")
    res = client.post(
        "/signin",
        data={"csrf": csrf_of(form.text), "token": TOKEN, "name": "alice", "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert res.headers["location"] == "/calls"  # never off-site after signing in
    cookie = res.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes and "secure" not in attributes
    assert "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie
    # Over https (directly, or a proxy's X-Forwarded-Proto with --proxy-headers), it is Secure.
    with TestClient(create_app(settings), base_url="https://127.0.0.1:8766") as tls:
        res = tls.get("/signin")
        assert "secure" in res.headers["set-cookie"].lower()
        assert res.headers["strict-transport-security"].startswith("max-age=")
    # A cookie changed by hand, or signed with another secret, is no session.
    value = client.cookies[COOKIE]
    body, mac = value.split(".")
    client.cookies.clear()
    client.cookies.set(COOKIE, body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:] + "." + mac)
    assert client.get("/calls", follow_redirects=False).status_code == 303
    other = settings.model_copy(update={"console_token": SecretStr("another-secret-0123456789")})
    with TestClient(create_app(other), base_url=BASE) as c:
        c.cookies.set(COOKIE, value)
        assert c.get("/calls", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client)
    assert client.post("/signout", data={}, follow_redirects=False).status_code == 403
    res = client.post("/signout", data={"csrf": csrf}, follow_redirects=False)
    assert res.status_code == 303 and "max-age=0" in res.headers["set-cookie"].lower()
    client.cookies.clear()
    assert client.get("/calls", follow_redirects=False).status_code == 303


def test_a_forged_cross_site_post_is_refused(client: TestClient, store: Database) -> None:
    csrf = sign_in(client)
    number = {"number": "+1 415 555 0199", "reason": "forged"}
    # No token, a wrong one, the right one from another site: refused, nothing changes.
    attempts: list[tuple[dict[str, str], dict[str, str]]] = [
        (number, {}),
        ({**number, "csrf": "x" * len(csrf)}, {}),
        ({**number, "csrf": csrf}, {"origin": "https://evil.example"}),
        ({**number, "csrf": csrf}, {"sec-fetch-site": "cross-site"}),
    ]
    for data, headers in attempts:
        res = client.post("/dnc/add", data=data, headers=headers, follow_redirects=False)
        assert res.status_code == 403, (data, headers, res.status_code)
    # A browser's cross-site form post carries no cookie at all (SameSite=Strict): 401.
    anonymous = TestClient(client.app, base_url=BASE)
    assert anonymous.post("/dnc/add", data={**number, "csrf": csrf}, follow_redirects=False).status_code == 401
    assert store.do_not_call.entries() == []
    # The sign-in form has its token too: a login cannot be forged into someone's browser.
    assert anonymous.post("/signin", data={"token": TOKEN}, follow_redirects=False).status_code == 403
    # The real form works (Origin "null" is what a browser sends under Referrer-Policy no-referrer).
    res = client.post(
        "/dnc/add",
        data={**number, "csrf": csrf},
        headers={"origin": "null", "sec-fetch-site": "same-origin"},
        follow_redirects=False,
    )
    assert res.status_code == 303
    assert [e.number for e in store.do_not_call.entries()] == ["+14155550199"]


def test_security_headers_on_every_response(client: TestClient) -> None:
    responses = [client.get("/signin"), client.get("/calls", follow_redirects=False), client.get("/live/calls")]
    responses.append(client.get("/static/console.js"))
    sign_in(client)
    responses += [client.get(p) for p in ("/calls", "/approvals", "/refusals", "/dnc", "/policy", "/calls/nope")]
    for res in responses:
        h = res.headers
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
    assert responses[-1].status_code == 404
    assert responses[-2].headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script_or_style(client: TestClient, settings: Settings, store: Database) -> None:
    sign_in(client)
    record = ask(settings)
    store.calls.create(make_record(CallStatus.completed, end_reason=EndReason.agent_ended, summary="Done."))
    for path in ("/calls", f"/calls/{record.call_id}", "/approvals", "/refusals", "/dnc", "/policy"):
        html = client.get(path).text
        scripts = re.findall(r"<script[^>]*>", html)
        assert scripts == ['<script src="/static/console.js" defer>'], (path, scripts)
        assert "</script>" in html and not re.search(r"<script[^>]*>[^<]", html)
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no event handler attributes
        assert not re.search(r"\sstyle\s*=", html), path
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path  # every asset from the console


def test_the_host_must_be_the_consoles(settings: Settings) -> None:
    hosts = console_hosts("127.0.0.1", 8766, ["console.example.com"])
    with TestClient(create_app(settings, hosts=hosts), base_url=BASE) as c:
        assert c.get("/signin").status_code == 200
        # Behind a TLS proxy (--allowed-host console.example.com), the browser's name passes.
        assert c.get("/signin", headers={"host": "console.example.com"}).status_code == 200
        res = c.get("/signin", headers={"host": "attacker.example:8766"})
        assert res.status_code == 421 and res.headers["x-frame-options"] == "DENY"


def test_it_will_not_start_without_the_operator_secret(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = fake_livekit_settings(db_url, "http://127.0.0.1:9", SECRET)
    for host in ("127.0.0.1", "0.0.0.0", "::"):
        problem = start_problem(bare, host)
        assert problem is not None and "CALLAGENT_CONSOLE_TOKEN" in problem
    assert "reachable from other machines" in (start_problem(bare, "0.0.0.0") or "")
    short = bare.model_copy(update={"console_token": SecretStr("short")})
    assert "at least 16 characters" in (start_problem(short, "127.0.0.1") or "")
    assert start_problem(settings_for(db_url), "0.0.0.0") is None
    with pytest.raises(NotConfigured, match="CALLAGENT_CONSOLE_TOKEN"):
        Console(bare)
    # The command says so and exits 2, binding nothing.
    monkeypatch.delenv("CALLAGENT_CONSOLE_TOKEN", raising=False)
    monkeypatch.setattr("callagent.settings.get_settings", lambda: bare)
    assert cli.main(["console", "--host", "0.0.0.0", "--port", "1"]) == 2


def test_the_time_zone_setting_is_checked(db_url: str) -> None:
    assert settings_for(db_url, CALLAGENT_CONSOLE_TZ="Europe/Berlin").console_tz == "Europe/Berlin"
    for bad in ("Mars/Olympus", "../../etc/passwd"):
        with pytest.raises(ValueError, match="CALLAGENT_CONSOLE_TZ must be an IANA time zone"):
            settings_for(db_url, CALLAGENT_CONSOLE_TZ=bad)


# -- text from clients and callees -------------------------------------------------------------


def test_what_clients_and_callees_wrote_is_text(client: TestClient, settings: Settings, store: Database) -> None:
    sign_in(client)
    waiting = ask(settings, reasoning=f"Because {XSS}", context="<script>alert(2)</script>")
    record = store.calls.create(
        make_record(
            CallStatus.completed,
            goal=f"Ask about {XSS}",
            end_reason=EndReason.agent_ended,
            ended_reason="the agent ended the call",
            transcript=[TranscriptLine(role="agent", text="Hello."), TranscriptLine(role="callee", text=XSS)],
            summary=f"The callee said {XSS}",
        )
    )
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    for path in ("/calls", f"/calls/{record.call_id}", "/approvals", f"/calls/{waiting.call_id}"):
        html = client.get(path).text
        assert "<img" not in html and "<script>alert" not in html, path
        assert escaped in html or "&lt;script&gt;" in html, path
    call_page = client.get(f"/calls/{record.call_id}").text
    assert call_page.count(escaped) >= 3  # goal, transcript line, summary
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in client.get("/approvals").text


# -- the pages ---------------------------------------------------------------------------------


def test_calls_are_listed_newest_first_with_filters_and_pages(db_url: str, livekit: FakeLiveKit) -> None:
    settings = settings_for(db_url, livekit.url, CALLAGENT_CONSOLE_TZ="America/New_York")
    start = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    with Database(db_url) as db:
        for i in range(30):
            status = CallStatus.completed if i % 3 else CallStatus.busy
            db.calls.create(
                make_record(
                    status,
                    call_id=f"call{i:02d}",
                    phone_number="+14155550100" if i % 2 else "+14155550101",
                    created_at=start + timedelta(hours=i),
                    end_reason=EndReason.agent_ended if i % 3 else EndReason.busy,
                )
            )
    with TestClient(create_app(settings), base_url=BASE) as c:
        sign_in(c)
        page = c.get("/calls").text
        ids = re.findall(r'data-key="(call\d+)"', page)
        assert ids == [f"call{i:02d}" for i in range(29, 4, -1)]  # 25 a page, newest first
        older = re.search(r'href="(/calls\?cursor=[^"]+)"', page)
        assert older is not None
        rest = c.get(older.group(1).replace("&amp;", "&")).text
        assert re.findall(r'data-key="(call\d+)"', rest) == [f"call{i:02d}" for i in range(4, -1, -1)]
        assert "Older calls" not in rest and "Newest" in rest
        busy = c.get("/calls?status=busy").text
        assert set(re.findall(r'data-key="(call\d+)"', busy)) == {f"call{i:02d}" for i in range(0, 30, 3)}
        assert re.findall(r'data-key="(call\d+)"', c.get("/calls?end_reason=busy").text) == re.findall(
            r'data-key="(call\d+)"', busy
        )
        mine = c.get("/calls", params={"number": "(415) 555-0101"}).text
        assert set(re.findall(r'data-key="(call\d+)"', mine)) == {f"call{i:02d}" for i in range(0, 30, 2)}
        assert "+1 415-555-0101" in mine  # numbers as people write them
        # A day in the operator's zone (New York, UTC-4 in March after the 8th): 04:00 to 04:00 UTC.
        day = c.get("/calls?date=2026-03-11").text
        in_day = [f"call{i:02d}" for i in range(39, -1, -1) if 16 <= i < 40 and i < 30]
        assert re.findall(r'data-key="(call\d+)"', day) == in_day
        assert "Times are in America/New_York" in day
        # Bad filters say what is wrong; nothing fails.
        bad = c.get("/calls?number=not-a-number&date=2026-02-31")
        assert bad.status_code == 200 and "may only contain digits" in bad.text
        assert "not a date" in c.get("/calls?date=yesterday").text
        assert "invalid cursor" in c.get("/calls?cursor=zzz").text
        assert "No calls match these filters" in c.get("/calls?status=ringing").text


def test_an_empty_console_says_what_to_do(client: TestClient) -> None:
    sign_in(client)
    assert "No calls yet" in client.get("/calls").text
    approvals = client.get("/approvals").text
    assert "Nothing is waiting for approval" in approvals
    assert "No call has been refused" in client.get("/refusals").text
    assert "The list is empty" in client.get("/dnc").text


def test_a_calls_page_shows_its_timeline_transcript_and_outcome(client: TestClient, store: Database) -> None:
    sign_in(client)
    t0 = utcnow() - timedelta(minutes=3)
    record = store.calls.create(
        make_record(
            CallStatus.completed,
            created_at=t0,
            dialed_at=t0 + timedelta(seconds=1),
            answered_at=t0 + timedelta(seconds=5),
            ended_at=t0 + timedelta(seconds=65),
            end_reason=EndReason.agent_ended,
            ended_reason="the agent ended the call: the conversation was done",
            approved_at=t0 + timedelta(seconds=0.5),
            approved_by="bob (console)",
            dtmf="W123",
            transcript=[TranscriptLine(role="agent", text="Hello, this is an AI assistant.")],
            summary="They open at nine.",
        )
    )
    html = client.get(f"/calls/{record.call_id}").text
    steps = re.findall(r"<strong>([^<]+)</strong>", html.split('class="timeline"')[1].split("</ol>")[0])
    assert steps == [
        "Requested by an MCP client",
        "Approved by bob (console)",
        "Dialed",
        "Answered",
        "Keys sent after the answer",
        "Ended: completed",
    ]
    assert "They open at nine." in html and "Hello, this is an AI assistant." in html
    assert "1 min 00 s" in html or "1 min" in html
    assert "End this call" not in html  # it has ended


def test_approving_and_denying_from_the_console(
    client: TestClient, settings: Settings, store: Database, livekit: FakeLiveKit
) -> None:
    csrf = sign_in(client, "alice")
    first, second = ask(settings, reasoning="The user asked for it."), ask(settings, "+14155550101")
    page = client.get("/approvals").text
    assert "The user asked for it." in page and "+1 415-555-0100" in page and "+1 415-555-0101" in page
    assert "San Francisco, CA, United States" in page and "America/Los_Angeles" in page
    assert '<span data-key="n" class="badge"' in page and ">2</span>" in page
    assert livekit.count == 0

    res = client.post(f"/approvals/{second.call_id}/deny", data={"csrf": csrf, "note": "Not today."})
    assert res.status_code == 200 and "Denied: the client is told" in res.text
    denied = store.calls.get(second.call_id)
    assert denied is not None and denied.status is CallStatus.denied and denied.denial_note == "Not today."
    assert "alice" in (denied.ended_reason or "")

    res = client.post(f"/approvals/{first.call_id}/approve", data={"csrf": csrf, "always": "0"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"].startswith(f"/calls/{first.call_id}?done=")
    placed = store.calls.get(first.call_id)
    assert placed is not None and placed.approved_by == "alice (console)"
    assert placed.status is not CallStatus.awaiting_approval
    assert len(livekit.sip_requests) == 1  # placed from the console's process
    html = client.get(f"/calls/{first.call_id}").text
    assert "Approved by alice (console)" in html
    # Deciding twice is an error page, not a second call.
    again = client.post(f"/approvals/{first.call_id}/approve", data={"csrf": csrf, "always": "0"})
    assert again.status_code == 409 and "not awaiting approval" in again.text
    assert len(livekit.sip_requests) == 1
    assert "Nothing is waiting for approval" in client.get("/approvals").text


def test_allow_always_is_kept_with_who_allowed_it(client: TestClient, settings: Settings) -> None:
    csrf = sign_in(client, "carol")
    waiting = ask(settings)
    client.post(f"/approvals/{waiting.call_id}/approve", data={"csrf": csrf, "always": "1"})
    policy = client.get("/policy").text
    assert "+1 415-555-0100" in policy and "carol (console)" in policy


def test_ending_a_call_from_its_page(client: TestClient, settings: Settings, store: Database) -> None:
    csrf = sign_in(client)
    waiting = ask(settings)
    assert "End this call" not in client.get(f"/calls/{waiting.call_id}").text  # approve or deny it instead
    res = client.post(f"/calls/{waiting.call_id}/end", data={"csrf": csrf})
    assert res.status_code == 200
    ended = store.calls.get(waiting.call_id)
    assert ended is not None and ended.status is CallStatus.canceled
    live = store.calls.create(make_record(CallStatus.in_progress))
    assert "End this call" in client.get(f"/calls/{live.call_id}").text
    assert client.post("/calls/nope/end", data={"csrf": csrf}).status_code == 404


def test_the_recording_plays_from_the_calls_page(client: TestClient, settings: Settings, store: Database) -> None:
    sign_in(client)
    audio = b"OggS" + bytes(range(256)) * 40
    now = utcnow()
    record = store.calls.create(
        make_record(
            CallStatus.completed,
            record=True,
            answered_at=now - timedelta(seconds=20),
            ended_at=now,
            end_reason=EndReason.agent_ended,
            recording=Recording(
                file=recordings.file_name("rec000000001"), started_at=now - timedelta(seconds=20), state="complete"
            ),
            call_id="rec000000001",
        )
    )
    folder = recordings_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / recordings.file_name(record.call_id)).write_bytes(audio)
    html = client.get(f"/calls/{record.call_id}").text
    assert f'<audio controls preload="none" src="/calls/{record.call_id}/recording"></audio>' in html
    res = client.get(f"/calls/{record.call_id}/recording")
    assert res.status_code == 200 and res.content == audio and res.headers["content-type"] == "audio/ogg"
    part = client.get(f"/calls/{record.call_id}/recording", headers={"range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == b"OggS"  # the player can seek
    other = store.calls.create(make_record(CallStatus.completed, end_reason=EndReason.agent_ended))
    missing = client.get(f"/calls/{other.call_id}/recording")
    assert missing.status_code == 404 and "was not recorded" in missing.text


def test_the_do_not_call_list_and_the_refusals(client: TestClient, settings: Settings, store: Database) -> None:
    csrf = sign_in(client, "dana")
    res = client.post("/dnc/add", data={"csrf": csrf, "number": "(415) 555-0107", "reason": "asked"})
    assert "Added to the do-not-call list" in res.text and "+1 415-555-0107" in res.text
    assert "already on" in client.post("/dnc/add", data={"csrf": csrf, "number": "+14155550107"}).text
    bad = client.post("/dnc/add", data={"csrf": csrf, "number": "banana"})
    assert bad.status_code == 400 and "may only contain digits" in bad.text
    # A call to it is refused, and the refusal is in the audit log, masked.
    with pytest.raises(Exception, match="do-not-call"):
        ask(settings, "+14155550107")
    refusals = client.get("/refusals").text
    assert "do not call" in refusals and "+*******0107" in refusals and "4155550107" not in refusals
    res = client.post("/dnc/remove", data={"csrf": csrf, "number": "+14155550107"})
    assert "Removed from the do-not-call list" in res.text and store.do_not_call.entries() == []
    assert client.post("/dnc/remove", data={"csrf": csrf, "number": "+14155550107"}).status_code == 404


def test_the_policy_page_shows_live_usage(client: TestClient, store: Database) -> None:
    sign_in(client)
    store.calls.create(make_record(CallStatus.in_progress))
    html = client.get("/policy").text
    assert "<strong>1</strong> of 3 at once (2 free)" in html
    assert "DIAL_QUIET_HOURS" in html and "DIAL_CONFIRM_BY" in html


def test_numbers_and_times_are_written_for_people() -> None:
    assert present.people_number("+14155550100") == "+1 415-555-0100"
    assert present.people_number("+442079460000") == "+44 20 7946 0000"
    assert present.region("+442079460000") == "London, United Kingdom"
    now = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)
    there = present.callee_time("+14155550100", now)
    assert there is not None and there.text == "Wed 11:00 (America/Los_Angeles)"
    anywhere = present.callee_time("+18005550100", now)  # toll-free: any NANP zone, Guam included
    assert (
        anywhere is not None and anywhere.text == f"between Wed 07:00 and Thu 04:00 ({len(anywhere.zones)} time zones)"
    )
    assert [present.duration(s) for s in (None, 59, 60, 61, 3725)] == ["", "59 s", "1 min", "1 min 01 s", "1 h 02 min"]
    berlin = present.operator_zone("Europe/Berlin")
    assert present.when(now, berlin, now) == "20:00:00"
    assert present.when(now - timedelta(days=2), berlin, now) == "Mon 29 Jun 2026 20:00"


def test_a_denied_calls_timeline() -> None:
    t0 = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)
    record = make_record(
        CallStatus.denied,
        created_at=t0,
        approval_expires_at=t0 + timedelta(hours=1),
        ended_at=t0 + timedelta(minutes=2),
        end_reason=EndReason.denied,
        ended_reason="the operator (olga (console)) denied the call: not today",
    )
    steps = present.timeline(record)
    assert [s.what for s in steps] == ["Requested by an MCP client", "Ended: denied"]
    assert steps[0].detail == "awaiting the operator's approval"
    assert "not today" in steps[1].detail and steps[1].tone == "bad"


# -- live updates --------------------------------------------------------------------------------


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The console under uvicorn on 127.0.0.1 (a free port); its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, hosts=allowed_hosts("127.0.0.1", port))
    config = uvicorn.Config(app, log_config=None, ws="none", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def http_sign_in(http: httpx2.Client) -> None:
    form = http.get("/signin")
    res = http.post("/signin", data={"csrf": csrf_of(form.text), "token": TOKEN, "name": "eve", "next": "/calls"})
    assert res.status_code == 200 and "<h1>Calls</h1>" in res.text


def events(stream: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name = ""
    for line in stream:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            yield name, json.loads(line[6:])
            name = ""


def test_a_calls_page_changes_live(settings: Settings, store: Database) -> None:
    record = store.calls.create(make_record(CallStatus.ringing))
    with serving(settings) as base, httpx2.Client(base_url=base, timeout=20, follow_redirects=True) as http:
        http_sign_in(http)
        page = http.get(f"/calls/{record.call_id}").text
        assert f'data-live="/live/call/{record.call_id}"' in page
        with http.stream("GET", f"/live/call/{record.call_id}") as res:
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
            assert res.headers["x-content-type-options"] == "nosniff"
            seen = events(res.iter_lines())
            first = [next(seen) for _ in range(2)]  # each region once, at the start
            assert {data["id"] for _, data in first} == {"nav-approvals", "call-live"}
            assert "ringing" in first[1][1]["html"]
            store.calls.transition(record.call_id, CallStatus.in_progress)
            store.calls.update(record.call_id, transcript=[TranscriptLine(role="callee", text=XSS)])
            deadline = time.monotonic() + 15
            for name, data in seen:
                if name == "region" and data["id"] == "call-live" and "in progress" in data["html"]:
                    assert "&lt;img src=x onerror=alert(1)&gt;" in data["html"] and "<img" not in data["html"]
                    break
                assert time.monotonic() < deadline, "the change never came"
        # Live lists too, and not without a session.
        http.cookies.clear()
        assert http.get("/live/calls").status_code == 401


# -- one PostgreSQL store --------------------------------------------------------------------------


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A schema of this test's own in the session's PostgreSQL server."""
    schema = f"console_{uuid.uuid4().hex[:12]}"
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{postgres_url}&options=-csearch_path%3D{schema}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_two_servers_and_a_console_share_one_postgresql_store(
    pg_url: str, livekit: FakeLiveKit, tmp_path: Path
) -> None:
    def server_settings() -> Settings:
        # Each server process reads its own settings and opens its own connections.
        return settings_for(pg_url, livekit.url, CALLAGENT_RECORDINGS_DIR=str(tmp_path / "rec"), **OPERATOR)

    async def place_from_each() -> list[str]:
        ids = []
        for number in ("+14155550100", "+14155550101"):
            async with Client(create_server(server_settings())) as mcp:
                result = await mcp.call_tool(
                    "make_phone_call", {"phone_number": number, "reasoning": f"Server for {number[-4:]}"}
                )
                assert not result.is_error, result
                ids.append((result.structured_content or {})["call_id"])
        return ids

    first, second = anyio.run(place_from_each)
    with TestClient(create_app(server_settings()), base_url=BASE) as c:
        csrf = sign_in(c)
        listed = re.findall(r'<tr data-key="([0-9a-f]{12})"', c.get("/calls").text)
        assert listed == [second, first]
        approvals = c.get("/approvals").text
        assert "Server for 0100" in approvals and "Server for 0101" in approvals
        c.post(f"/approvals/{first}/deny", data={"csrf": csrf, "note": "Ask me tomorrow."})

    async def seen_by_the_other_server() -> dict[str, Any]:
        async with Client(create_server(server_settings())) as mcp:
            result = await mcp.call_tool("wait_for_call", {"call_id": first, "timeout_s": 1})
            return result.structured_content or {}

    record = anyio.run(seen_by_the_other_server)
    assert record["status"] == "denied" and record["denial_note"] == "Ask me tomorrow."
    assert livekit.count == 0
