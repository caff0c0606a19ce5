"""Drive callagent's MCP server over stdio with the MCP client SDK, as Claude Desktop would.

    uv run test_mcp_client.py                          # list the tools
    uv run test_mcp_client.py call +14155550100 --goal "Ask about opening hours" [--reasoning WHY] [--json]
    uv run test_mcp_client.py get CALL_ID [--json]
    uv run test_mcp_client.py list [--status completed] [--number +1415...] [--limit 20] [--cursor C]
    uv run test_mcp_client.py end CALL_ID

`call` places the call, then loops `wait_for_call` until the call has ended, printing status
changes to stderr, and finally the outcome, summary and transcript. With --json the last line on
stdout is the final call record as one JSON object. Exit status: 0 when the call reached a
terminal status (whichever), 1 on a tool error (its text goes to stderr) or if it never ended.

The server is `server.py` next to this file, run with this Python and this environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, TextContent

from callagent.calls import TERMINAL_STATUSES

HERE = Path(__file__).resolve().parent
TERMINAL = {status.value for status in TERMINAL_STATUSES}  # one source of truth: callagent.calls
WAIT_S = 30  # per wait_for_call; the server allows up to 50
# A tool call's own bound, above the server's (make_phone_call returns in < 45 s).
READ_TIMEOUT_S = 70


class ToolFailed(Exception):
    pass


def server_params() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=[str(HERE / "server.py")],
        env=dict(os.environ),  # the whole environment, as an MCP client's "env" block would add to
        cwd=HERE,
    )


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def call_tool(client: Client, name: str, arguments: dict[str, Any], **kwargs: Any) -> CallToolResult:
    result = await client.call_tool(name, arguments, read_timeout_seconds=READ_TIMEOUT_S, **kwargs)
    if result.is_error:
        raise ToolFailed(text_of(result) or f"{name} failed")
    return result


# -- rendering ------------------------------------------------------------------------------------


def final_json(record: dict[str, Any]) -> dict[str, Any]:
    """The record as returned by the server, plus the timings gathered in one place."""
    out = dict(record)
    out["transcript"] = [
        {"role": line.get("role"), "text": line.get("text"), **({"at": line["at"]} if line.get("at") else {})}
        for line in record.get("transcript") or []
    ]
    out["timings"] = {
        key: record.get(key) for key in ("created_at", "dialed_at", "answered_at", "ended_at", "duration_s")
    }
    return out


def render(record: dict[str, Any]) -> str:
    lines = [f"Call {record['call_id']}: {record['status']}"]
    if record.get("ended_reason"):
        lines.append(f"Reason:  {record['ended_reason']}")
    if record.get("sip_status_code") is not None:
        lines.append(f"SIP:     {record['sip_status_code']}")
    if record.get("duration_s") is not None:
        lines.append(f"Length:  {record['duration_s']:.0f} s")
    outcome = record.get("outcome")
    if outcome:
        lines.append(f"Outcome: goal achieved: {outcome.get('goal_achieved')}")
        lines.extend(f"  fact: {fact}" for fact in outcome.get("key_facts") or [])
        lines.extend(f"  follow-up: {item}" for item in outcome.get("follow_ups") or [])
    if record.get("summary"):
        lines.append(f"Summary: {record['summary']}")
    transcript = record.get("transcript") or []
    if transcript:
        lines.append("Transcript:")
        for line in transcript:
            who = "Agent " if line.get("role") == "agent" else "Callee"
            lines.append(f"  {who}: {line.get('text')}")
    return "\n".join(lines)


def emit(record: dict[str, Any], as_json: bool, text: str | None = None) -> None:
    print(text if text is not None else render(record), flush=True)
    if as_json:
        print(json.dumps(final_json(record), ensure_ascii=False), flush=True)


# -- commands ----------------------------------------------------------------------------------------


async def list_tools(client: Client) -> int:
    result = await client.list_tools()
    width = max((len(t.name) for t in result.tools), default=0)
    for tool in result.tools:
        first = (tool.description or "").strip().splitlines()[0] if tool.description else ""
        print(f"{tool.name:<{width}}  {first}")
    return 0


async def place_call(client: Client, args: argparse.Namespace) -> int:
    arguments: dict[str, Any] = {"phone_number": args.number}
    for key in (
        "goal",
        "context",
        "greeting",
        "dtmf",
        "result_schema",
        "ring_timeout_s",
        "max_duration_s",
        "idempotency_key",
        "transfer_to",
        "transfer_when",
        "transfer_mode",
        "record",
        "reasoning",
        "profile",
        "caller_id",
    ):
        value = getattr(args, key)
        if value is not None:
            arguments[key] = value

    started = time.monotonic()
    log("placing the call")
    result = await call_tool(client, "make_phone_call", arguments)
    record = result.structured_content or {}
    call_id = record["call_id"]
    log(f"{record['status']}  (call {call_id}, make_phone_call took {time.monotonic() - started:.2f} s)")

    last_status = record["status"]
    last_message = ""

    async def progress(_progress: float, _total: float | None, message: str | None) -> None:
        nonlocal last_message
        if args.verbose and message and message != last_message:
            last_message = message
            log(message)

    deadline = time.monotonic() + args.max_wait
    while record["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            print(
                f"call {call_id} had not ended after {args.max_wait:g} s (still {record['status']}); "
                f"follow it with `get {call_id}` or hang up with `end {call_id}`",
                file=sys.stderr,
            )
            emit(record, args.json)
            return 1
        result = await call_tool(
            client,
            "wait_for_call",
            {"call_id": call_id, "timeout_s": WAIT_S, "last_status": record["status"]},
            progress_callback=progress,
        )
        record = result.structured_content or record
        if record["status"] != last_status:
            last_status = record["status"]
            detail = f" ({record['ended_reason']})" if record.get("ended_reason") else ""
            log(f"{last_status}{detail}")
    print(flush=True)
    emit(record, args.json)
    return 0


async def get_call(client: Client, args: argparse.Namespace) -> int:
    result = await call_tool(client, "get_call", {"call_id": args.call_id})
    emit(result.structured_content or {}, args.json, text_of(result))
    return 0


async def end_call(client: Client, args: argparse.Namespace) -> int:
    result = await call_tool(client, "end_call", {"call_id": args.call_id})
    emit(result.structured_content or {}, args.json, text_of(result))
    return 0


async def list_calls(client: Client, args: argparse.Namespace) -> int:
    arguments: dict[str, Any] = {"limit": args.limit}
    if args.status:
        arguments["status"] = args.status
    if args.number:
        arguments["phone_number"] = args.number
    if args.cursor:
        arguments["cursor"] = args.cursor
    result = await call_tool(client, "list_calls", arguments)
    print(text_of(result), flush=True)
    if args.json:
        print(json.dumps(result.structured_content, ensure_ascii=False), flush=True)
    return 0


async def run(args: argparse.Namespace) -> int:
    async with Client(server_params(), mode=args.mode) as client:
        try:
            match args.command:
                case None | "tools":
                    return await list_tools(client)
                case "call":
                    return await place_call(client, args)
                case "get":
                    return await get_call(client, args)
                case "end":
                    return await end_call(client, args)
                case "list":
                    return await list_calls(client, args)
        except ToolFailed as exc:
            print(str(exc), file=sys.stderr, flush=True)
            return 1
    raise AssertionError(args.command)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Drive callagent's MCP server over stdio.")
    parser.add_argument(
        "--mode",
        default="legacy",
        help="protocol negotiation: legacy (the initialize handshake, as Claude Desktop does; default) or auto",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("tools", help="list the tools (the default)")

    call = sub.add_parser("call", help="place a call and follow it to the end")
    call.add_argument("number")
    call.add_argument("--goal")
    call.add_argument("--context")
    call.add_argument("--greeting")
    call.add_argument("--dtmf", help="digits keyed in once answered, e.g. ww123 (w, W: pauses)")
    call.add_argument(
        "--result-schema", dest="result_schema", type=json.loads, help="a JSON Schema object of what to find out"
    )
    call.add_argument("--ring-timeout", dest="ring_timeout_s", type=int)
    call.add_argument("--max-duration", dest="max_duration_s", type=int)
    call.add_argument("--idempotency-key", dest="idempotency_key")
    call.add_argument("--transfer-to", dest="transfer_to", help="a person to hand the callee to")
    call.add_argument("--transfer-when", dest="transfer_when", help="when to hand over, in plain words")
    call.add_argument("--transfer-mode", dest="transfer_mode", choices=("warm", "cold"))
    call.add_argument("--record", action="store_true", default=None, help="record the call")
    call.add_argument("--reasoning", help="why the call should be made, for the operator who approves it")
    call.add_argument("--profile", help="the operator's calling profile (callagent.toml)")
    call.add_argument("--caller-id", dest="caller_id", help="the number the callee sees: one of the profile's")
    call.add_argument("--max-wait", type=float, default=3600, help="give up following the call after this long (s)")
    call.add_argument("--json", action="store_true", help="last stdout line: the final record as JSON")
    call.add_argument("-v", "--verbose", action="store_true", help="also show progress while waiting")

    get = sub.add_parser("get", help="show one call")
    get.add_argument("call_id")
    get.add_argument("--json", action="store_true")

    end = sub.add_parser("end", help="hang up a live call")
    end.add_argument("call_id")
    end.add_argument("--json", action="store_true")

    lst = sub.add_parser("list", help="list recent calls")
    lst.add_argument("--status")
    lst.add_argument("--number")
    lst.add_argument("--limit", type=int, default=20)
    lst.add_argument("--cursor")
    lst.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return anyio.run(run, args)
    except KeyboardInterrupt:
        print("interrupted; a call in progress keeps going — hang up with `end CALL_ID`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
