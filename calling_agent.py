"""The calling worker: run it in a terminal, it places the voice on every call.

    uv run calling_agent.py start     # production mode
    uv run calling_agent.py dev       # reloads on change, verbose
    uv run calling_agent.py console   # talk to the agent from this terminal

It registers under CALLAGENT_AGENT_NAME for explicit dispatch; the MCP server (server.py)
dispatches one job per call. Each finished call's summary is printed here.
"""

from __future__ import annotations

from livekit.agents import AgentServer, cli

from callagent import redact
from callagent.agent import entrypoint, prewarm
from callagent.agent.recording import expire_in_background
from callagent.settings import get_settings

settings = get_settings()
redact.install(redact.secrets_of(settings))  # numbers masked, secrets hidden in every log line


def calls_load(server: AgentServer) -> float:
    """Load as the share of CALLAGENT_WORKER_MAX_CALLS in use (LiveKit stops at the threshold)."""
    return len(server.active_jobs) / settings.worker_max_calls


server = AgentServer(
    setup_fnc=prewarm,
    load_fnc=calls_load,
    # Below 1, as LiveKit requires in production: full means every slot is taken.
    load_threshold=1 - 0.5 / settings.worker_max_calls,
    initialize_process_timeout=60.0,
    num_idle_processes=min(settings.worker_idle_processes, settings.worker_max_calls),
    host=settings.worker_host,
    port=settings.worker_port,
)
server.rtc_session(entrypoint, agent_name=settings.agent_name)

if __name__ == "__main__":
    # Recordings past CALLAGENT_RECORDING_RETENTION_DAYS go at start and hourly (the server's reaper too).
    expire_in_background(settings)
    cli.run_app(server)
