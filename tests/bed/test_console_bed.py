"""The operator's console in a real browser, on the bed: headless Chromium (Debian's, driven by
Playwright) against `callagent console`, while an MCP client (test_mcp_client.py → server.py
over stdio) asks for calls that wait for the operator (DIAL_CONFIRM=always,
DIAL_CONFIRM_BY=operator), and the calling worker holds them with the simulated phone.

Screenshots of every page are kept in the test run's directory (printed with -s); the calls
page is also copied to docs/console-calls.png for the README when CALLAGENT_UPDATE_SCREENSHOTS is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from callagent.calls import TranscriptLine
from callagent.store import Database
from devstack import phonelog
from helpers import ROOT, Worker, bed_env, client

TOKEN = "bed-console-secret-0123456789abcdef"
NUMBER = "+14155550100"  # answers after one ring and holds a scripted conversation
GOAL = "Confirm the appointment tomorrow at 10 am"
XSS = "<img src=x onerror=alert(1)>"
CHROMIUM = "/usr/bin/chromium"
# This machine's network is closed: nothing may try to reach out (and wait for it).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def env(bed: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The bed, with every call waiting for the operator's approval."""
    return bed_env(
        tmp_path_factory.mktemp("console"),
        CALLAGENT_WORKER_PORT="0",
        DIAL_CONFIRM="always",
        DIAL_CONFIRM_BY="operator",
        CALLAGENT_CONSOLE_TOKEN=TOKEN,
    )


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nconsole screenshots: {folder}")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def console(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`callagent console` as the operator starts it; its base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("console-log") / "console.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "callagent.cli", "console", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/signin", timeout=2) as res:
                if res.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the console did not start:\n{log_path.read_text()[-3000:]}", pytrace=False)
        time.sleep(0.2)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        text = log_path.read_text()
        # Numbers are never logged in full, not even the ones the calls page filtered by.
        assert "4155550100" not in text.replace(" ", "").replace("-", ""), text[-3000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def dialogs() -> list[str]:
    """Every dialog (alert, confirm, ...) a page opened: none may."""
    return []


@pytest.fixture
def page(browser: Browser, console: str, dialogs: list[str]) -> Iterator[Page]:
    """A signed-in operator's page."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=console)
    p = context.new_page()
    p.set_default_timeout(30_000)
    p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.goto("/calls")
    expect(p).to_have_url(re.compile(r"/signin\?next="))
    p.get_by_label("Your name").fill("Olga")
    p.get_by_label("Operator secret").fill(TOKEN)
    p.get_by_role("button", name="Sign in").click()
    expect(p).to_have_url(re.compile(r"/calls$"))
    try:
        yield p
    finally:
        context.close()


def ask(env: dict[str, str], reasoning: str) -> subprocess.Popen[str]:
    """An MCP client asks for a call and follows it (wait_for_call) until it ends."""
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "test_mcp_client.py"),
            "call",
            NUMBER,
            "--goal",
            GOAL,
            "--reasoning",
            reasoning,
            "--json",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def final_record(proc: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    record: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return record | {"_stdout": out}


def waiting_card(page: Page, reasoning: str) -> Any:
    page.goto("/approvals")
    card = page.locator("article.approval").filter(has_text=reasoning.split("<")[0].strip())
    expect(card).to_have_count(1, timeout=60_000)  # it arrives live, while the page is open
    return card


def test_an_approved_call_rings_and_its_page_follows_it_live(
    env: dict[str, str], worker: Worker, page: Page, dialogs: list[str], shots: Path
) -> None:
    reasoning = f"The user asked me to confirm their appointment. {XSS}"
    proc = ask(env, reasoning)
    card = waiting_card(page, reasoning)
    # What would be dialed and said, and why, as the client wrote it: text, not markup.
    expect(card.locator(".reasoning")).to_have_text(reasoning)
    expect(card).to_contain_text("+1 415-555-0100")
    expect(card).to_contain_text("San Francisco, CA, United States")
    expect(card).to_contain_text("America/Los_Angeles")
    expect(card).to_contain_text(GOAL)
    assert card.locator("img").count() == 0
    page.screenshot(path=shots / "approvals.png", full_page=True)

    card.get_by_role("button", name="Allow once").click()
    expect(page).to_have_url(re.compile(r"/calls/[0-9a-f]{12}\?done=approved$"))
    call_id = re.findall(r"/calls/([0-9a-f]{12})", page.url)[0]
    # From here on the page is never reloaded: a reload would lose this mark.
    page.evaluate("window.consoleTestMark = 'not reloaded'")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    phonelog.wait_for(call_id, lambda c: bool(c.get("answered_at")), timeout=60)  # the phone rang, and answered
    status = page.locator(".call-head .status")
    seen: list[str] = []
    deadline = time.monotonic() + 180
    while not seen or seen[-1] != "completed":
        assert time.monotonic() < deadline, f"the page never showed the call completed: {seen}"
        now = status.inner_text().strip()
        if not seen or seen[-1] != now:
            seen.append(now)
            if now == "in progress":
                page.screenshot(path=shots / "call-in-progress.png", full_page=True)
        page.wait_for_timeout(150)
    assert "in progress" in seen, seen
    expect(page.locator(".summary")).not_to_be_empty()
    expect(page.locator(".transcript li.agent").first).to_contain_text("AI assistant")
    assert page.locator(".transcript li.callee").count() >= 1
    expect(page.locator(".timeline")).to_contain_text("Approved by Olga (console)")
    expect(page.locator(".timeline")).to_contain_text("Answered")
    expect(page.locator(".timeline")).to_contain_text("Ended: completed")
    assert page.evaluate("window.consoleTestMark") == "not reloaded" and navigations == []

    record = final_record(proc)
    assert record["call_id"] == call_id and record["status"] == "completed", record
    assert record["approved_by"] == "Olga (console)" and record["reasoning"] == reasoning

    # A callee line with markup (as a worker would write it) shows up live, as text; nothing runs.
    with Database(env["CALLAGENT_DB_URL"]) as db:
        stored = db.calls.get(call_id)
        assert stored is not None
        db.calls.update(call_id, transcript=[*stored.transcript, TranscriptLine(role="callee", text=XSS)])
    expect(page.locator(".transcript li.callee .said").last).to_have_text(XSS, timeout=15_000)
    assert page.locator("#call-live img").count() == 0
    page.wait_for_timeout(500)
    assert dialogs == [], dialogs
    assert page.evaluate("window.consoleTestMark") == "not reloaded"
    page.screenshot(path=shots / "call.png", full_page=True)


def test_a_denied_call_tells_the_client_the_note(
    env: dict[str, str], page: Page, dialogs: list[str], shots: Path
) -> None:
    note = "Not before the patient confirms by email."
    reasoning = "The user wants the follow-up booked."
    before = {c.get("call_key") for c in phonelog.calls()}
    proc = ask(env, reasoning)
    card = waiting_card(page, reasoning)
    card.get_by_label("Note for the client").fill(note)
    card.get_by_role("button", name="Deny").click()
    expect(page.locator(".banner.good")).to_contain_text("Denied")
    expect(page.locator("#approvals-list")).to_contain_text("Nothing is waiting for approval")

    record = final_record(proc, timeout=60)  # its wait_for_call returned
    assert record["status"] == "denied" and record["end_reason"] == "denied", record
    assert record["denial_note"] == note and note in record["ended_reason"]
    assert note in record["_stdout"]  # what the client (and its model) reads
    assert {c.get("call_key") for c in phonelog.calls()} == before  # nothing rang
    page.goto(f"/calls/{record['call_id']}")
    expect(page.locator(".verdict")).to_contain_text(note)
    page.screenshot(path=shots / "call-denied.png", full_page=True)
    assert dialogs == []


def test_every_page_in_the_browser(env: dict[str, str], page: Page, dialogs: list[str], shots: Path) -> None:
    # The do-not-call list: add a number, see a call to it refused in the audit, remove it.
    page.goto("/dnc")
    page.get_by_label("Number").fill("(415) 555-0107")
    page.get_by_label("Reason").fill("asked not to be called again")
    page.get_by_role("button", name="Add to the list").click()
    expect(page.locator("table.dnc")).to_contain_text("+1 415-555-0107")
    page.screenshot(path=shots / "dnc.png", full_page=True)
    refused = client(env, "call", "+14155550107", "--goal", GOAL, timeout=60)
    assert refused.returncode == 1 and "do-not-call" in refused.stderr
    page.goto("/refusals")
    expect(page.locator("#refusal-rows")).to_contain_text("+*******0107")
    expect(page.locator("#refusal-rows")).to_contain_text("do not call")
    page.screenshot(path=shots / "refusals.png", full_page=True)
    page.goto("/dnc")
    page.locator("table.dnc tr", has_text="+1 415-555-0107").get_by_role("button", name="Remove").click()
    expect(page.locator("table.dnc")).to_contain_text("The list is empty")

    page.goto("/policy")
    expect(page.locator("#policy-usage")).to_contain_text(re.compile(r"\d+ of \d+ at once"))
    page.screenshot(path=shots / "policy.png", full_page=True)

    page.goto("/calls")
    rows = page.locator("#calls-rows tr")
    expect(rows).to_have_count(2)  # the completed call and the denied one
    expect(rows.first.locator(".status")).to_have_text("denied")
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    page.goto("/calls")
    expect(page.locator("#live-state")).to_have_text("live")
    page.screenshot(path=shots / "calls.png", full_page=True)
    if os.environ.get("CALLAGENT_UPDATE_SCREENSHOTS"):  # refresh the README's picture on purpose only
        shutil.copyfile(shots / "calls.png", ROOT / "docs" / "console-calls.png")

    # And on a phone's screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=shots / "calls-phone.png", full_page=True)
    page.goto("/approvals")
    page.screenshot(path=shots / "approvals-phone.png", full_page=True)
    assert dialogs == []
