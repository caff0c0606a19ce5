"""callagent's MCP server: place outbound phone calls from any MCP client.

    uv run server.py                                   # stdio (what Claude Desktop spawns)
    uv run server.py --transport http --port 8765      # streamable HTTP on http://127.0.0.1:8765/mcp
    uv --directory /abs/path/to/callagent run server.py

Settings come from the environment and from the project's `.env` (next to this file, whatever
the working directory). Logs go to stderr; on stdio, stdout is the protocol.
"""

from __future__ import annotations

import argparse
import logging
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="callagent MCP server (outbound phone calls)")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default: stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP only; default 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="HTTP only; default 8765")
    parser.add_argument("--path", default="/mcp", help="HTTP only: the endpoint path; default /mcp")
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from callagent.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"callagent: invalid settings: {problems}", file=sys.stderr)
        return 2

    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    from callagent.tools import create_server

    if args.transport == "stdio":
        create_server(settings).run("stdio")
        return 0

    # The seam for HTTP auth: pass `auth=` / `token_verifier=` to create_server.
    server = create_server(settings)
    if args.host not in LOOPBACK:
        logging.getLogger("callagent.server").warning(
            "serving on %s without authentication: anyone who can reach port %d can place calls",
            args.host,
            args.port,
        )
    server.run("streamable-http", host=args.host, port=args.port, streamable_http_path=args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
