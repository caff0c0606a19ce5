"""callagent's MCP server, from a checkout: the same program as the `callagent-mcp` command
(callagent/server_main.py), with the same flags.

    uv run server.py                                   # stdio (what Claude Desktop spawns)
    MCP_HTTP_TOKEN=... uv run server.py --transport http --port 8765
                                                       # streamable HTTP on http://127.0.0.1:8765/mcp,
                                                       # clients send Authorization: Bearer <token>
    uv run server.py --transport http --no-auth        # no token: loopback addresses only
    uv run server.py --env-file ~/callagent.env        # settings from that file too
    uv --directory /abs/path/to/callagent run server.py

Settings come from the environment, `--env-file`, `~/.config/callagent/.env` and the project's
`.env` (next to this file, whatever the working directory), in that order. Logs go to stderr;
on stdio, stdout is the protocol.
"""

from __future__ import annotations

import sys

from callagent.server_main import main

if __name__ == "__main__":
    sys.exit(main())
