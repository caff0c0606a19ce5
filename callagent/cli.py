"""`callagent`: the operator's command line: place a call, the do-not-call list, the refusal
log, the dial policy, and the web console.

    callagent call NUMBER --goal G [--wait] [--json] [--yes] [--record]
                                          place a call through the service (same policy, same
                                          records, same refusals as the MCP tool); --wait
                                          follows it to its end
    callagent recording CALL_ID -o FILE   export a recorded call's audio (Ogg/Opus, channels
                                          callee and agent) to FILE, mode 0600 (`-o -`: stdout)
    callagent approvals                   calls waiting for the operator's approval (DIAL_CONFIRM_BY=operator)
    callagent approve CALL_ID [--always]  approve one: the dial policy is asked again, then it is placed
    callagent deny CALL_ID [--note N]     deny one; the client's model reads the note
    callagent dnc list                    every number on the do-not-call list, in full
    callagent dnc add NUMBER [--reason R]
    callagent dnc remove NUMBER
    callagent refusals [--limit N]        recent refused calls, numbers masked
    callagent policy                      what the dial policy currently allows (JSON)
    callagent console [--host H] [--port P]
                                          the operator's web console (CALLAGENT_CONSOLE_TOKEN)
    callagent --env-file PATH COMMAND ... settings from that file too (see callagent.settings)
    callagent mcp                         the MCP server on stdio (what the MCP registry's
                                          `uvx callagent mcp` runs)
    callagent bundle [-o FILE]            build the Claude Desktop bundle (.mcpb, default
                                          dist/callagent.mcpb) with npm's `mcpb`

It opens the same call store as the server and the worker (CALLAGENT_DB_URL), so a number
added here is refused by the next make_phone_call. Numbers are masked in output, except in
`dnc list`: the operator owns that list and must be able to read it.

Exit status: 0 done; 1 another failure; 2 a usage error; 3 refused by the dial policy; 4 not
placed; 5 hang-up not confirmed; 6 not configured; 7 the call store failed; 8 no such call or
recording.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO, TypedDict

# What is printed may have come from an MCP client or a callee: `printable` escapes control
# characters, so nothing drives the operator's terminal.
from callagent.numbers import printable

if TYPE_CHECKING:
    from callagent.settings import Settings
    from callagent.store import Database

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2

    from callagent.settings import SettingsProblem, load_settings

    try:
        settings = load_settings(args.env_file, invalid="bad configuration")
    except SettingsProblem as exc:
        print(f"callagent: {exc}", file=sys.stderr)
        return 2
    from callagent import redact
    from callagent.errors import CallagentError

    redact.install(redact.secrets_of(settings))
    try:
        return int(args.handler(args, settings, sys.stdout))
    except _Usage as exc:
        print(f"callagent: {exc}", file=sys.stderr)
        return 2
    except CallagentError as exc:
        print(f"callagent: {exc}", file=sys.stderr)
        return _exit_status(exc)


def _exit_status(exc: Exception) -> int:
    """The one translation from a use case's error to this door's exit status."""
    from callagent import errors

    table: dict[type[Exception], int] = {
        errors.Refused: 3,
        errors.PlacementFailed: 4,
        errors.HangUpNotConfirmed: 5,
        errors.NotConfigured: 6,
        errors.StoreUnavailable: 7,
        errors.NotFound: 8,
    }
    return next((code for kind, code in table.items() if isinstance(exc, kind)), 1)


class _Usage(Exception):
    """An operator error: printed without a traceback, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callagent",
        description="Manage callagent's do-not-call list, read the refusal log, show the dial policy.",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="read settings from this file too (below the environment, above ~/.config/callagent/.env)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = commands.add_parser("call", help="place a call (the same service as the MCP tool)")
    p.add_argument("number")
    p.add_argument("--goal", help="what the call should achieve")
    p.add_argument("--context", help="background the agent may use")
    p.add_argument("--greeting", help="said after the AI disclosure")
    p.add_argument("--max-duration", type=_positive_int, metavar="S", help="seconds (default CALLAGENT_MAX_DURATION_S)")
    p.add_argument("--ring-timeout", type=_positive_int, metavar="S", help="seconds (default CALLAGENT_RING_TIMEOUT_S)")
    p.add_argument("--idempotency-key", metavar="KEY", help="a retry with the same key returns the first call")
    p.add_argument("--dtmf", metavar="DIGITS", help="keyed in once answered, e.g. ww123 (w, W: pauses)")
    p.add_argument(
        "--result-schema",
        metavar="JSON",
        type=_json_object,
        help="a JSON Schema object of what the call should find out (the outcome's data)",
    )
    p.add_argument("--record", action="store_true", default=None, help="record the call (CALLAGENT_RECORDING)")
    p.add_argument(
        "--transfer-to", metavar="NUMBER", help="a person to hand the callee to (CALLAGENT_TRANSFER_NUMBERS)"
    )
    p.add_argument("--transfer-when", metavar="TEXT", help="when to hand over, in plain words")
    p.add_argument("--transfer-mode", choices=("warm", "cold"), help="warm (default: brief, then connect) or cold")
    p.add_argument("--reasoning", metavar="TEXT", help="why this call (shown to whoever approves it)")
    p.add_argument("--profile", metavar="NAME", help="the calling profile (callagent.toml; default: default)")
    p.add_argument("--caller-id", metavar="NUMBER", help="the number the callee sees: one of the profile's caller_ids")
    p.add_argument("--wait", action="store_true", help="follow the call until it ends")
    p.add_argument("--json", action="store_true", help="the final record as one JSON line on stdout")
    p.add_argument(
        "--yes", action="store_true", help="you confirm the call, where DIAL_CONFIRM asks for a person's confirmation"
    )
    p.set_defaults(handler=_call)

    p = commands.add_parser("approvals", help="calls waiting for the operator's approval")
    p.add_argument("--json", action="store_true", help="one JSON record per line")
    p.set_defaults(handler=_approvals)
    p = commands.add_parser("approve", help="approve a waiting call: it is placed now, if the policy still allows it")
    p.add_argument("call_id")
    p.add_argument("--always", action="store_true", help="and allow its number for good (kept with who and when)")
    p.add_argument("--by", default=None, help="who approves (default: your user name)")
    p.set_defaults(handler=_decide)
    p = commands.add_parser("deny", help="deny a waiting call; the client's model reads the note")
    p.add_argument("call_id")
    p.add_argument("--note", default=None, help="why, for the client")
    p.add_argument("--by", default=None, help="who denies (default: your user name)")
    p.set_defaults(handler=_decide)

    dnc = commands.add_parser("dnc", help="the do-not-call list")
    dnc_commands = dnc.add_subparsers(title="dnc commands", metavar="ACTION")
    dnc.set_defaults(handler=lambda *_: _usage(dnc))
    p = dnc_commands.add_parser("list", help="show every number on the list (unmasked)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=_dnc_list)
    p = dnc_commands.add_parser("add", help="never call NUMBER again")
    p.add_argument("number")
    p.add_argument("--reason", default="added by the operator")
    p.set_defaults(handler=_dnc_add)
    p = dnc_commands.add_parser("remove", help="allow calls to NUMBER again")
    p.add_argument("number")
    p.set_defaults(handler=_dnc_remove)

    p = commands.add_parser("refusals", help="recently refused calls (numbers masked)")
    p.add_argument("--limit", type=_positive_int, default=20, help="how many (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=_refusals)

    p = commands.add_parser("policy", help="what the dial policy allows now (JSON)")
    p.set_defaults(handler=_policy)

    p = commands.add_parser(
        "tenant-token", help="a new bearer token for a tenant, and the callagent.toml line that admits it"
    )
    p.add_argument("tenant", help="the tenant's name in callagent.toml ([tenants.NAME])")
    p.set_defaults(handler=_tenant_token)

    p = commands.add_parser("recording", help="export a recorded call's audio (Ogg/Opus: callee, agent)")
    p.add_argument("call_id")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write it (mode 0600); - for stdout")
    p.set_defaults(handler=_recording)

    p = commands.add_parser("console", help="the operator's web console: calls live, approvals, lists, policy")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8766, help="port (default 8766)")
    p.add_argument(
        "--proxy-headers",
        action="store_true",
        help="behind a TLS reverse proxy: trust its X-Forwarded-Proto/-For (from FORWARDED_ALLOW_IPS, default "
        "127.0.0.1), so session cookies are Secure",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="a host name browsers use to reach the console (e.g. behind a proxy); repeatable",
    )
    p.set_defaults(handler=_console)

    p = commands.add_parser("mcp", help="the MCP server on stdio (for MCP clients; the registry's entry runs this)")
    p.set_defaults(handler=_mcp)
    p = commands.add_parser("bundle", help="build the Claude Desktop bundle (.mcpb) with npm's mcpb")
    p.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="where to write it (default dist/callagent.mcpb)"
    )
    p.add_argument("--mcpb", default=None, metavar="PATH", help="the mcpb command (default: tests/ts's, then PATH)")
    p.set_defaults(handler=_bundle)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _json_object(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be at most 65535")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# -- commands -------------------------------------------------------------------------------


def _call(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import asyncio

    return asyncio.run(_place_and_follow(args, settings, out))


async def _place_and_follow(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.calls import TERMINAL_STATUSES
    from callagent.policy import NeedsConfirmation
    from callagent.service import CallArgs, CallService, ConfirmationIssued, Prepared

    service = CallService(settings)
    try:
        call = CallArgs(
            args.number,
            args.goal,
            args.context,
            args.greeting,
            args.ring_timeout,
            args.max_duration,
            args.idempotency_key,
            args.dtmf,
            args.result_schema,
            record=args.record,
            transfer_to=args.transfer_to,
            transfer_when=args.transfer_when,
            transfer_mode=args.transfer_mode,
            reasoning=args.reasoning,
            profile=args.profile,
            caller_id=args.caller_id,
        )
        approved: bool | None = True if args.yes else None
        if approved is None and sys.stdin.isatty():  # the operator at the terminal is the person asked
            prepared = await service.preflight(call)
            if isinstance(prepared, Prepared) and isinstance(prepared.decision, NeedsConfirmation):
                answer = input(f"{prepared.decision.message}. Place this call? [y/N] ")  # noqa: ASYNC250 - the command waits on the operator anyway; in a thread, input() would outlive Ctrl-C
                approved = answer.strip().lower() in ("y", "yes")
        placed = await service.place(call, approved=approved)
        if isinstance(placed, ConfirmationIssued):
            print(f"callagent: not dialed: {placed.reason}; run again with --yes to confirm it", file=sys.stderr)
            return 2
        record = placed.record
        _progress(f"call {record.call_id}: {record.status}")
        while args.wait and record.status not in TERMINAL_STATUSES:
            waited = await service.wait(record.call_id, 30)
            if waited.record.status != record.status:
                _progress(f"call {record.call_id}: {waited.record.status}")
            record = waited.record
    finally:
        await service.aclose()
    out.write(record.model_dump_json() + "\n" if args.json else record.to_text() + "\n")
    return 0


def _progress(message: str) -> None:
    from datetime import datetime

    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _dnc_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _store(settings) as db:
        entries = db.do_not_call.entries()
    if args.json:
        for e in entries:
            out.write(e.model_dump_json() + "\n")
        return 0
    if not entries:
        out.write("The do-not-call list is empty.\n")
        return 0
    for e in entries:
        source = f"call {e.call_id}" if e.call_id else "operator"
        out.write(f"{e.number}\t{e.added_at:%Y-%m-%d %H:%M} UTC\t{source}\t{printable(e.reason or '')}\n")
    return 0


def _dnc_add(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.numbers import mask

    number = _normalize(args.number, settings)
    with _store(settings) as db:
        already = db.do_not_call.contains(number)
        db.do_not_call.add(number, args.reason)
    if already:
        out.write(f"{mask(number)} was already on the do-not-call list.\n")
    else:
        out.write(f"Added {mask(number)} to the do-not-call list; calls to it are refused.\n")
    return 0


def _dnc_remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.numbers import mask

    number = _normalize(args.number, settings)
    with _store(settings) as db:
        removed = db.do_not_call.remove(number)
    if not removed:
        print(f"callagent: {mask(number)} is not on the do-not-call list", file=sys.stderr)
        return 1
    out.write(f"Removed {mask(number)} from the do-not-call list.\n")
    return 0


class _RefusalRow(TypedDict):
    """A refusal as `callagent refusals --json` prints it."""

    at: str
    number: str | None
    rule: str
    setting: str | None
    message: str
    repeats: int
    last_at: str | None


def _refusals(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.numbers import mask_numbers_in_text

    with _store(settings) as db:
        entries = db.refusals.recent(args.limit)
    # Stored masked already; masked again for rows written before the store did that.
    rows: list[_RefusalRow] = [
        {
            "at": e.at.isoformat(),
            "number": mask_numbers_in_text(e.number) if e.number else None,
            "rule": e.rule,
            "setting": e.setting,
            "message": mask_numbers_in_text(e.message),
            "repeats": e.repeats,
            "last_at": e.last_at.isoformat() if e.last_at else None,
        }
        for e in entries
    ]
    if args.json:
        for row in rows:
            out.write(json.dumps(row) + "\n")
        return 0
    if not rows:
        out.write("No refused calls.\n")
        return 0
    for e, row in zip(entries, rows, strict=True):
        setting = f" [{row['setting']}]" if row["setting"] else ""
        repeats = f" (x{e.repeats}, the last at {e.last_at:%H:%M:%S})" if e.repeats > 1 and e.last_at else ""
        out.write(
            f"{e.at:%Y-%m-%d %H:%M:%S} UTC  {printable(row['number'] or '-')}  {row['rule']}{setting}: "
            f"{printable(row['message'])}{repeats}\n"
        )
    return 0


def _tenant_token(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Print a fresh token (for the tenant's client only) and the hash for callagent.toml:
    the file never holds the token itself."""
    import re
    import secrets

    from callagent.calls import NAME_PATTERN, OPERATOR
    from callagent.profiles import hash_token

    if not re.fullmatch(NAME_PATTERN, args.tenant) or args.tenant == OPERATOR:
        print(f"callagent: {args.tenant!r} is not a tenant name (1-32 of a-z 0-9 - _; not 'operator')", file=sys.stderr)
        return 2
    token = secrets.token_hex(32)
    print(f"# Give this token to {args.tenant}'s MCP client (Authorization: Bearer <token>); it is not kept:", file=out)
    print(token, file=out)
    print("# and put this in callagent.toml:", file=out)
    print(f'[tenants.{args.tenant}]\ntoken_sha256 = "{hash_token(token)}"\nprofiles = ["default"]', file=out)
    return 0


def _policy(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.policy import DialPolicy, describe

    policy = DialPolicy.from_settings(settings)
    with _store(settings) as db:
        counts = db.calls.counts()
    out.write(json.dumps(describe(policy, counts=counts), indent=2) + "\n")
    return 0


def _approvals(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import asyncio

    from callagent.calls import CallRecord
    from callagent.numbers import mask
    from callagent.service import CallService

    async def waiting() -> list[CallRecord]:
        service = CallService(settings)
        try:
            return await service.approvals()
        finally:
            await service.aclose()

    records = asyncio.run(waiting())
    if args.json:
        for record in records:
            out.write(record.model_dump_json() + "\n")
        return 0
    if not records:
        out.write("No call is waiting for approval.\n")
        return 0
    for r in records:
        until = f"{r.approval_expires_at:%H:%M} UTC" if r.approval_expires_at else "-"
        out.write(printable(f"{r.call_id}  {mask(r.phone_number)}  until {until}  goal: {r.goal}") + "\n")
        if r.reasoning:
            out.write(printable(f"    why: {r.reasoning}") + "\n")
    return 0


def _decide(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """approve / deny: the same service the console uses."""
    import asyncio
    import getpass

    from callagent.calls import CallRecord
    from callagent.service import CallService

    by = args.by or f"{getpass.getuser()} (command line)"

    async def decide() -> CallRecord:
        service = CallService(settings)
        try:
            if hasattr(args, "always"):
                return await service.approve(args.call_id, by=by, always=args.always)
            return await service.deny(args.call_id, by=by, note=args.note)
        finally:
            await service.aclose()

    record = asyncio.run(decide())
    out.write(record.to_text() + "\n")
    return 0


def _console(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.console.server import serve

    return serve(
        settings, host=args.host, port=args.port, proxy_headers=args.proxy_headers, extra_hosts=args.allowed_host
    )


def _mcp(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    # The same program as `callagent-mcp` on stdio (--env-file, if given, is in the environment by now).
    from callagent.server_main import main as serve

    return serve([])


def _bundle(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from pathlib import Path

    from callagent import bundle

    try:
        path = bundle.build(Path(args.output) if args.output else bundle.DEFAULT_OUTPUT, mcpb=args.mcpb)
    except bundle.BundleError as exc:
        print(f"callagent: bundle: {exc}", file=sys.stderr)
        return 1
    print(f"{path} ({path.stat().st_size // 1024} KiB): install it in Claude Desktop", file=out)
    return 0


def _recording(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import asyncio

    return asyncio.run(_export_recording(args, settings, out))


async def _export_recording(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    import asyncio
    import hashlib

    from callagent.service import CallService

    service = CallService(settings)
    try:
        rec, path = await service.recording(args.call_id)
    finally:
        await service.aclose()
    try:
        data = await asyncio.to_thread(path.read_bytes)
        if args.output == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            await asyncio.to_thread(_write_private, args.output, data)
    except OSError as exc:
        where = "stdout" if args.output == "-" else printable(args.output)
        print(f"callagent: could not export the recording to {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if rec.sha256 and hashlib.sha256(data).hexdigest() != rec.sha256:
        print(
            f"callagent: warning: the file does not match its record (sha256 differs): it changed after call "
            f"{args.call_id} ended",
            file=sys.stderr,
        )
    length = f"{rec.duration_s:.1f} s, " if rec.duration_s is not None else ""
    note = f" ({printable(rec.note)})" if rec.note else ""
    report = (
        f"Call {args.call_id}'s recording ({rec.state}{note}): {length}{len(data)} bytes, {rec.mime_type} "
        f"{rec.codec}, channels: {', '.join(rec.channels)}"
    )
    if args.output == "-":
        print(report, file=sys.stderr)
    else:
        out.write(f"{report}; written to {printable(args.output)}\n")
    return 0


# -- helpers --------------------------------------------------------------------------------


def _write_private(name: str, data: bytes) -> None:
    """Write `data` to `name`, readable by its owner only (0600, also when it existed)."""
    import os

    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)
        f.write(data)


def _store(settings: Settings) -> Database:
    from callagent.store import Database

    return Database(settings.db_url)


def _normalize(raw: str, settings: Settings) -> str:
    from callagent.numbers import InvalidNumber, normalize

    try:
        return normalize(raw, settings.default_region)
    except InvalidNumber as exc:
        raise _Usage(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
