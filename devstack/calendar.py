"""The bed's calendar: a small MCP server (streamable HTTP) the voice agent may use during a call.

The bed starts it on 127.0.0.1 (a free port) and hands its URL to commands as
DEVSTACK_CALENDAR_URL (http://127.0.0.1:PORT/mcp). It stands for an operator's booking system,
the kind of MCP server a worker is configured to use: it has tools to look up free slots and to
book one, and a destructive one (`cancel_all_appointments`) that an operator would not allow,
so the bed can show it is never offered to the model nor called.

Each call has a calendar of its own (kept by the X-Callagent-Call-Id request header; without
one, by the MCP session; failing both, one shared calendar), so calls and tests don't see each
other's bookings. Every calendar starts the same week: Tuesday 15:00 taken (Jamie's
appointment), Thursday 10:00 and Friday 15:00 free.

Every tool call is appended, one JSON object a line, to `<log_dir>/calls.jsonl` (the bed's
`$DEVSTACK_RUN_DIR/calendar/calls.jsonl`; read it with devstack.phonelog.calendar_calls):
{"at", "call" (the X-Callagent-Call-Id header, or null), "tool", "arguments", and "result"
(what the tool returned, as JSON) or "error" (the error's text)}.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel

from devstack.scenarios import CALL_ID_HEADER

log = logging.getLogger("devstack.calendar")

CALLS_LOG = "calls.jsonl"  # in the server's log_dir: one JSON object per tool call
PATH = "/mcp"  # the streamable HTTP endpoint (LiveKit's MCPServerHTTP wants a URL ending in /mcp)
SESSION_HEADER = "mcp-session-id"
KEEP_CALENDARS = 512  # calendars kept (one a call); the oldest is forgotten past that

# The week every calendar starts with: slot id -> label, in time order.
SLOTS: dict[str, str] = {
    "tue-1500": "Tuesday at 15:00",
    "thu-1000": "Thursday at 10:00",
    "fri-1500": "Friday at 15:00",
}
BOOKED_AT_START: dict[str, str] = {"tue-1500": "Jamie"}  # slot id -> whose appointment
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

INSTRUCTIONS = (
    "The practice's appointment calendar. Look up free slots with find_slots, and book one with "
    "book_slot only once the person it is for has agreed to that slot."
)


class Slot(BaseModel):
    slot_id: str
    label: str


class FreeSlots(BaseModel):
    date_range: str
    free_slots: list[Slot]


class Booking(BaseModel):
    booked: bool
    slot_id: str
    label: str
    name: str


class Cancellation(BaseModel):
    cancelled: int
    slot_ids: list[str]


def free_slots(bookings: Mapping[str, str], date_range: str = "") -> list[Slot]:
    """The slots of the week not in `bookings`, in time order; only the days `date_range`
    names, when it names any ("Thursday", "thursday or friday"), else the whole week."""
    days = [day for day in WEEKDAYS if re.search(rf"\b{day}\b", date_range.lower())]
    return [
        Slot(slot_id=slot_id, label=label)
        for slot_id, label in SLOTS.items()
        if slot_id not in bookings and (not days or label.lower().split()[0] in days)
    ]


class Calendars:
    """The calendars of the calls (each a dict slot id -> the name it is booked for), and the
    log of every tool call."""

    def __init__(self, log_path: Path | None = None) -> None:
        self._books: OrderedDict[str, dict[str, str]] = OrderedDict()
        self.log_path = log_path
        self._log: IO[str] | None = None
        self.calls: list[dict[str, Any]] = []  # what was logged, also in memory (tests)

    def open(self) -> None:
        if self.log_path is not None and self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # line-buffered: a reader sees whole lines
            self._log = open(self.log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed by close()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def of(self, key: str) -> dict[str, str]:
        """The bookings of calendar `key`, a fresh week the first time."""
        if key not in self._books:
            self._books[key] = dict(BOOKED_AT_START)
            while len(self._books) > KEEP_CALENDARS:
                self._books.popitem(last=False)
        self._books.move_to_end(key)
        return self._books[key]

    def record(self, call: str | None, tool: str, arguments: dict[str, Any], **outcome: Any) -> None:
        entry = {"at": time.time(), "call": call, "tool": tool, "arguments": arguments, **outcome}
        self.calls.append(entry)
        if self._log is not None:
            self._log.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _call_id(ctx: Context[Any, Any]) -> str | None:
    headers = ctx.headers or {}
    return headers.get(CALL_ID_HEADER) or headers.get(CALL_ID_HEADER.lower()) or None


def _calendar_key(ctx: Context[Any, Any]) -> str:
    call = _call_id(ctx)
    if call:
        return f"call:{call}"
    session = (ctx.headers or {}).get(SESSION_HEADER)
    return f"session:{session}" if session else "shared"


def create_server(calendars: Calendars | None = None) -> MCPServer[Any]:
    """The calendar MCP server over `calendars` (a fresh, unlogged set by default)."""
    cals = calendars if calendars is not None else Calendars()
    server: MCPServer[Any] = MCPServer("devstack-calendar", title="Harbor Dental calendar", instructions=INSTRUCTIONS)

    def logged(ctx: Context[Any, Any], tool: str, arguments: dict[str, Any], result: BaseModel) -> None:
        cals.record(_call_id(ctx), tool, arguments, result=result.model_dump())

    def failed(ctx: Context[Any, Any], tool: str, arguments: dict[str, Any], error: str) -> ToolError:
        cals.record(_call_id(ctx), tool, arguments, error=error)
        return ToolError(error)

    async def find_slots(date_range: str, ctx: Context[Any, Any]) -> FreeSlots:
        """Find the free appointment slots in a date range.

        date_range: the days to look in, in words, e.g. "this week", "Thursday", "next few
        days". Returns the free slots, each with the slot_id to book it by and a label saying
        when it is (weekday and 24-hour time).
        """
        result = FreeSlots(date_range=date_range, free_slots=free_slots(cals.of(_calendar_key(ctx)), date_range))
        logged(ctx, "find_slots", {"date_range": date_range}, result)
        return result

    async def book_slot(slot_id: str, name: str, ctx: Context[Any, Any]) -> Booking:
        """Book a free appointment slot for a person.

        slot_id: a slot_id that find_slots returned. name: the name of the person the
        appointment is for. Only book once that person has agreed to the slot. Fails when the
        slot does not exist or is already booked.
        """
        arguments = {"slot_id": slot_id, "name": name}
        bookings = cals.of(_calendar_key(ctx))
        if slot_id not in SLOTS:
            raise failed(ctx, "book_slot", arguments, f"There is no slot {slot_id!r}; use find_slots for free slots.")
        if slot_id in bookings:
            raise failed(ctx, "book_slot", arguments, f"{SLOTS[slot_id]} is already booked.")
        if not name.strip():
            raise failed(ctx, "book_slot", arguments, "A booking needs the name of the person it is for.")
        bookings[slot_id] = name.strip()
        result = Booking(booked=True, slot_id=slot_id, label=SLOTS[slot_id], name=name.strip())
        logged(ctx, "book_slot", arguments, result)
        return result

    async def cancel_all_appointments(ctx: Context[Any, Any]) -> Cancellation:
        """Cancel every appointment in the calendar, for everyone. This cannot be undone."""
        bookings = cals.of(_calendar_key(ctx))
        result = Cancellation(cancelled=len(bookings), slot_ids=sorted(bookings))
        bookings.clear()
        logged(ctx, "cancel_all_appointments", {}, result)
        return result

    server.add_tool(
        find_slots,
        description=inspect.getdoc(find_slots),
        title="Find free slots",
        annotations=ToolAnnotations(title="Find free slots", read_only_hint=True, open_world_hint=False),
    )
    server.add_tool(
        book_slot,
        description=inspect.getdoc(book_slot),
        title="Book a slot",
        annotations=ToolAnnotations(
            title="Book a slot", read_only_hint=False, destructive_hint=False, idempotent_hint=False
        ),
    )
    server.add_tool(
        cancel_all_appointments,
        description=inspect.getdoc(cancel_all_appointments),
        title="Cancel all appointments",
        annotations=ToolAnnotations(
            title="Cancel all appointments", read_only_hint=False, destructive_hint=True, idempotent_hint=True
        ),
    )
    return server


def url(host: str, port: int) -> str:
    """The MCP endpoint of a calendar server on host:port."""
    return f"http://{host}:{port}{PATH}"


def serve(host: str, port: int, log_dir: Path) -> None:
    """Serve the calendar on http://host:port/mcp until interrupted, logging to log_dir/calls.jsonl."""
    import uvicorn

    calendars = Calendars(log_dir / CALLS_LOG)
    calendars.open()
    try:
        app = create_server(calendars).streamable_http_app(streamable_http_path=PATH, host=host)
        log.info("calendar MCP server on %s", url(host, port))
        uvicorn.run(app, host=host, port=port, log_config=None, log_level="info", ws="none")
    finally:
        calendars.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.calendar")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-dir", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args.host, args.port, Path(args.log_dir))


if __name__ == "__main__":
    main()
