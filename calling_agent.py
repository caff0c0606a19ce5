"""The calling worker, from a checkout: the same program as the `callagent-worker` command
(callagent/worker_main.py). Run it in a terminal, it places the voice on every call.

    uv run calling_agent.py start     # production mode
    uv run calling_agent.py dev       # verbose
    uv run calling_agent.py console   # talk to the agent from this terminal
    uv run calling_agent.py --log-format json start    # JSON lines even in a terminal

It registers under CALLAGENT_AGENT_NAME for explicit dispatch; the MCP server (server.py)
dispatches one job per call. In a terminal each call's start, answer and end are readable lines
and each finished call's summary is printed here; piped, it writes JSON lines.
"""

from __future__ import annotations

import sys

from callagent.worker_main import main

if __name__ == "__main__":
    sys.exit(main())
