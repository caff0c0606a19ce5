"""`callagent-mcp`: callagent's MCP server (also `uv run server.py` in a checkout).

    callagent-mcp                                      # stdio (what Claude Desktop spawns)
    callagent-mcp --env-file ~/callagent.env           # settings from that file too
    MCP_HTTP_TOKEN=... callagent-mcp --transport http --port 8765
                                                       # streamable HTTP on http://127.0.0.1:8765/mcp,
                                                       # clients send Authorization: Bearer <token>
    callagent-mcp --transport http --no-auth           # no token: loopback addresses only

Settings come from the environment, then `--env-file`, then `~/.config/callagent/.env`, then
(in a checkout) the project's `.env` (callagent.settings). Logs go to stderr; on stdio, stdout
is the protocol. It starts fast: nothing here imports the voice stack (livekit.agents,
livekit.rtc, onnxruntime) or the database before a tool needs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callagent-mcp", description="callagent MCP server (outbound phone calls)")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default: stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP only; default 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="HTTP only; default 8765")
    parser.add_argument("--path", default="/mcp", help="HTTP only: the endpoint path; default /mcp")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="HTTP only: serve without a bearer token (also MCP_HTTP_NO_AUTH=1); refused unless --host is loopback",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="HTTP only: another Host header to answer (the bind address and localhost always are); repeatable",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="read settings from this file too (below the environment, above ~/.config/callagent/.env)",
    )
    args = parser.parse_args(argv)

    from callagent.settings import SettingsProblem, load_settings

    try:
        settings = load_settings(args.env_file)
    except SettingsProblem as exc:
        print(f"callagent: {exc}", file=sys.stderr)
        return 2

    from callagent import logs

    logs.configure(settings)

    from callagent.tools import create_server

    if args.transport == "stdio":
        create_server(settings).run("stdio")
        return 0

    from callagent.http_transport import serve

    return serve(
        create_server(settings),
        settings,
        host=args.host,
        port=args.port,
        path=args.path,
        no_auth=args.no_auth,
        extra_hosts=args.allowed_host,
    )


if __name__ == "__main__":
    sys.exit(main())
