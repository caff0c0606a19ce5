"""The calling agent: one LiveKit job per call, from ringing to the written record.

The job joins the call's room before the phone rings (the MCP server waits for that), renders
the greeting while it rings, and speaks the moment the SIP participant reports
`sip.callStatus == active`, never before. At the end it writes the transcript, a summary and an
outcome to the call store, which is how the MCP server learns how the call went, and prints
them in the worker's terminal.

- `job`: the call's wiring (`CallJob`, `entrypoint`);
- `opening`: the AI disclosure, pre-rendered and played on answer;
- `instructions`: the model's instructions, client text as delimited data;
- `conversation`: the agent and its tools;
- `ending`: how the call ended, decided once;
- `timers`: maximum duration, silence, and the heartbeat that hears of ends elsewhere;
- `summary`: transcript, summary and outcome, and the terminal print;
- `session`: the voice pipeline, the shared model client, the process warm-up.
"""

from callagent.agent.instructions import as_data, data_block, instructions_for, new_boundary
from callagent.agent.job import CallJob, entrypoint
from callagent.agent.opening import greeting_for, play_opening, prepare_opening
from callagent.agent.session import prewarm
from callagent.agent.summary import summary_messages
from callagent.agent.timers import GOODBYE_MAX_S

__all__ = [
    "GOODBYE_MAX_S",
    "CallJob",
    "as_data",
    "data_block",
    "entrypoint",
    "greeting_for",
    "instructions_for",
    "new_boundary",
    "play_opening",
    "prepare_opening",
    "prewarm",
    "summary_messages",
]
