"""`callagent`: the operator's command line for the do-not-call list, the refusal log and the
dial policy.

    callagent dnc list                    every number on the do-not-call list, in full
    callagent dnc add NUMBER [--reason R]
    callagent dnc remove NUMBER
    callagent refusals [--limit N]        recent refused calls, numbers masked
    callagent policy                      what the dial policy currently allows (JSON)

It opens the same call store as the server and the worker (CALLAGENT_DB_URL), so a number
added here is refused by the next make_phone_call. Numbers are masked in output, except in
`dnc list`: the operator owns that list and must be able to read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

# What is printed may have come from an MCP client or a callee: `printable` escapes control
# characters, so nothing drives the operator's terminal.
from callagent.numbers import printable

if TYPE_CHECKING:
    from callagent.settings import Settings
    from callagent.store import CallStore

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2

    from pydantic import ValidationError

    from callagent.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        print(f"callagent: bad configuration: {problems}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args, settings, sys.stdout))
    except _Usage as exc:
        print(f"callagent: {exc}", file=sys.stderr)
        return 2


class _Usage(Exception):
    """An operator error: printed without a traceback, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callagent",
        description="Manage callagent's do-not-call list, read the refusal log, show the dial policy.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

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
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# -- commands -------------------------------------------------------------------------------


def _dnc_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    with _store(settings) as store:
        entries = store.list_do_not_call()
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
    with _store(settings) as store:
        already = store.is_do_not_call(number)
        store.add_do_not_call(number, args.reason)
    if already:
        out.write(f"{mask(number)} was already on the do-not-call list.\n")
    else:
        out.write(f"Added {mask(number)} to the do-not-call list; calls to it are refused.\n")
    return 0


def _dnc_remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.numbers import mask

    number = _normalize(args.number, settings)
    with _store(settings) as store:
        removed = store.remove_do_not_call(number)
    if not removed:
        print(f"callagent: {mask(number)} is not on the do-not-call list", file=sys.stderr)
        return 1
    out.write(f"Removed {mask(number)} from the do-not-call list.\n")
    return 0


def _refusals(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.numbers import mask_numbers_in_text

    with _store(settings) as store:
        entries = store.list_refusals(args.limit)
    # Stored masked already; masked again for rows written before the store did that.
    rows = [
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
    for e, row in zip(entries, rows):
        setting = f" [{row['setting']}]" if row["setting"] else ""
        repeats = f" (x{e.repeats}, the last at {e.last_at:%H:%M:%S})" if e.repeats > 1 and e.last_at else ""
        out.write(
            f"{e.at:%Y-%m-%d %H:%M:%S} UTC  {printable(row['number'] or '-')}  {row['rule']}{setting}: "
            f"{printable(row['message'])}{repeats}\n"
        )
    return 0


def _policy(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from callagent.policy import DialPolicy, describe

    policy = DialPolicy.from_settings(settings)
    with _store(settings) as store:
        counts = store.counts()
    out.write(json.dumps(describe(policy, counts=counts), indent=2) + "\n")
    return 0


# -- helpers --------------------------------------------------------------------------------


def _store(settings: Settings) -> CallStore:
    from callagent.store import CallStore

    return CallStore(settings.db_url)


def _normalize(raw: str, settings: Settings) -> str:
    from callagent.numbers import InvalidNumber, normalize

    try:
        return normalize(raw, settings.default_region)
    except InvalidNumber as exc:
        raise _Usage(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
