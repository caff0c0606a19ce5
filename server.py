"""callagent's MCP server: place outbound phone calls from any MCP client.

    uv run server.py                                   # stdio (what Claude Desktop spawns)
    MCP_HTTP_TOKEN=... uv run server.py --transport http --port 8765
                                                       # streamable HTTP on http://127.0.0.1:8765/mcp,
                                                       # clients send Authorization: Bearer <token>
    uv run server.py --transport http --no-auth        # no token: loopback addresses only
    uv --directory /abs/path/to/callagent run server.py

Settings come from the environment and from the project's `.env` (next to this file, whatever
the working directory). Logs go to stderr; on stdio, stdout is the protocol.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="callagent MCP server (outbound phone calls)")
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
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from callagent.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"callagent: invalid settings: {problems}", file=sys.stderr)
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
