"""How the console shows things to people: numbers as people write them, times in the
operator's zone and the callee's, durations, and a call's timeline derived from its record.

Pure: no I/O beyond the time zone database. What is returned is plain text; the templates
escape it (a goal, a note or a callee's words never become markup).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callagent.calls import ACTIVE_STATUSES, CallRecord, CallStatus, ToolUse
from callagent.numbers import time_zones

__all__ = [
    "LocalTime",
    "Step",
    "callee_time",
    "duration",
    "operator_zone",
    "people_number",
    "region",
    "status_label",
    "timeline",
    "when",
    "zone_name",
]

_STATUS_LABELS = {
    CallStatus.awaiting_approval: "awaiting approval",
    CallStatus.in_progress: "in progress",
    CallStatus.no_answer: "no answer",
}


def status_label(status: CallStatus | str) -> str:
    status = CallStatus(status)
    return _STATUS_LABELS.get(status, status.value.replace("_", " "))


def operator_zone(name: str | None) -> tzinfo:
    """CALLAGENT_CONSOLE_TZ, else this machine's zone (TZ, /etc/localtime), else its UTC offset."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":") or None):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    localtime = Path("/etc/localtime")
    if localtime.exists():
        try:
            with localtime.open("rb") as f:
                return ZoneInfo.from_file(f, key=_zone_key(localtime))
        except (OSError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def _zone_key(link: Path) -> str:
    """The IANA name /etc/localtime points to ("Europe/Berlin"), for display; else "local"."""
    try:
        target = str(link.resolve())
    except OSError:
        return "local"
    _, found, key = target.partition("zoneinfo/")
    return key if found and key else "local"


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or zone.tzname(None) or "local"


@cache
def _parsed(e164: str) -> object | None:
    import phonenumbers

    try:
        return phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None


def people_number(e164: str | None) -> str:
    """ "+14155550100" → "+1 415-555-0100" (phonenumbers' INTERNATIONAL format)."""
    if not e164:
        return ""
    import phonenumbers

    number = _parsed(e164)
    if not isinstance(number, phonenumbers.PhoneNumber):
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def region(e164: str) -> str:
    """Where a number rings, as well as the number's metadata says: "San Francisco, CA, United States"."""
    import phonenumbers
    from phonenumbers import geocoder

    number = _parsed(e164)
    if not isinstance(number, phonenumbers.PhoneNumber):
        return ""
    place = geocoder.description_for_number(number, "en")
    country = geocoder.country_name_for_number(number, "en")
    return ", ".join(p for p in dict.fromkeys((place, country)) if p)


@dataclass(frozen=True)
class LocalTime:
    """The callee's local time: one zone, or the earliest and latest of several."""

    text: str
    zones: tuple[str, ...]


def callee_time(e164: str, now: datetime) -> LocalTime | None:
    """What time it is where the number rings; None when its zone is not known."""
    zones = tuple(z for z in time_zones(e164) if _loadable(z))
    if not zones:
        return None
    # By wall-clock time there (the offset): the instants are all the same.
    local = sorted((now.astimezone(ZoneInfo(z)) for z in zones), key=lambda t: t.utcoffset() or timedelta(0))
    first, last = local[0], local[-1]
    if len(zones) == 1 or first.utcoffset() == last.utcoffset():
        return LocalTime(f"{first:%a %H:%M} ({zones[0]})", zones)
    return LocalTime(f"between {first:%a %H:%M} and {last:%a %H:%M} ({len(zones)} time zones)", zones)


@cache
def _loadable(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def when(value: datetime | None, zone: tzinfo, now: datetime | None = None) -> str:
    """A time for the operator: "14:05:09" today, "Mon 30 Nov 14:05" otherwise."""
    if value is None:
        return ""
    local = value.astimezone(zone)
    if now is not None and local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M:%S}"
    return f"{local:%a %d %b %Y %H:%M}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


@dataclass(frozen=True)
class Step:
    """One moment in a call's life, for the timeline."""

    at: datetime | None
    what: str
    detail: str = ""
    tone: str = ""  # "", "good", "bad": how the step is drawn


_GOOD_TRANSFER = ("connected", "accepted")


_EVENT_TITLES = {
    "hold": "On hold",
    "off_hold": "Off hold",
    "dtmf": "Keys sent",
    "tool": "The agent used a tool",
}


def _tool_step(at: datetime, use: ToolUse) -> Step:
    args = ", ".join(f"{k}={v!r}" for k, v in use.arguments.items())
    took = f" in {use.duration_s:.1f} s" if use.duration_s is not None else ""
    title = f"Tool {use.server}.{use.tool}" + (" (changes something)" if use.side_effect else "")
    if use.outcome == "ok":
        return Step(at, title, f"({args}) → {use.result or 'done'}{took}", "good")
    return Step(at, f"{title}: {use.outcome}", f"({args}) {use.error or ''}{took}".strip(), "bad")


def timeline(record: CallRecord) -> list[Step]:
    """The call's life, in order, from what its record says (a record keeps timestamps, not a
    log: a step without a time of its own is placed at the moment that implies it)."""
    r = record
    steps: list[Step] = []
    requested = "Requested by an MCP client"
    if r.approval_expires_at is not None or r.approved_at is not None or r.status is CallStatus.awaiting_approval:
        steps.append(Step(r.created_at, requested, "awaiting the operator's approval"))
    else:
        steps.append(Step(r.created_at, requested, "queued"))
    if r.approved_at is not None:
        steps.append(Step(r.approved_at, f"Approved by {r.approved_by or 'the operator'}", tone="good"))
    if r.dialed_at is not None:
        steps.append(Step(r.dialed_at, "Dialed", people_number(r.phone_number)))
    if r.answered_at is not None:
        steps.append(Step(r.answered_at, "Answered", tone="good"))
        if r.dtmf and not any(e.kind == "dtmf" for e in r.events):
            steps.append(Step(r.answered_at, "Keys sent after the answer", r.dtmf))
    for event in r.events:  # what the worker noted on the line: hold, digits, the agent's tools
        if event.tool is not None:  # an operator's MCP tool: what was asked, what came back, how long
            steps.append(_tool_step(event.at, event.tool))
            continue
        steps.append(Step(event.at, _EVENT_TITLES.get(event.kind, event.kind), event.detail or ""))
    for n, t in enumerate(r.transfers, 1):
        target = f"{people_number(t.to)} ({t.mode})"
        steps.append(Step(t.started_at, f"Transfer {n} started", target))
        if t.answered_at is not None:
            steps.append(Step(t.answered_at, f"Transfer {n}: the target answered"))
        if t.ended_at is not None or t.outcome is not None:
            detail = "; ".join(
                x for x in (t.reason or "", f"SIP {t.sip_status_code}" if t.sip_status_code else "") if x
            )
            steps.append(
                Step(
                    t.ended_at or t.started_at,
                    f"Transfer {n}: {(t.outcome or 'under way').replace('_', ' ')}",
                    detail,
                    "good" if t.outcome in _GOOD_TRANSFER else "bad",
                )
            )
    rec = r.recording
    if rec is not None:
        steps.append(Step(rec.started_at, "Recording started"))
        if rec.state != "recording":
            size = f"{rec.duration_s:.0f} s" if rec.duration_s is not None else ""
            detail = "; ".join(x for x in (size, rec.note or "") if x)
            steps.append(Step(r.ended_at or rec.started_at, f"Recording {rec.state}", detail))
    if r.hangup_requested_at is not None and r.status in ACTIVE_STATUSES:
        steps.append(Step(r.hangup_requested_at, "Hang-up requested, not confirmed yet", r.hangup_reason or "", "bad"))
    if r.ended_at is not None:
        code = f"{r.end_reason}" if r.end_reason else ""
        sip = f"SIP {r.sip_status_code}" if r.sip_status_code is not None else ""
        detail = "; ".join(x for x in (r.ended_reason or "", code, sip) if x)
        tone = "good" if r.status in (CallStatus.completed, CallStatus.transferred) else "bad"
        steps.append(Step(r.ended_at, f"Ended: {status_label(r.status)}", detail, tone))
    elif r.status is CallStatus.awaiting_approval and r.approval_expires_at is not None:
        steps.append(Step(r.approval_expires_at, "Lapses unless approved by then"))
    # Stable: steps at the same moment keep the order they were added in.
    return sorted(steps, key=lambda s: s.at.timestamp() if s.at is not None else float("inf"))
