"""The conversation: the model's instructions and the tools it may use on the call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livekit.agents import Agent, RunContext, StopResponse, function_tool, llm
from livekit.agents.beta.tools import EndCallTool, send_dtmf_events

from callagent.agent.announcements import not_in_service
from callagent.agent.hold import is_hold_announcement
from callagent.agent.instructions import instructions_for
from callagent.agent.opening import hold_over_greeting
from callagent.calls import CallStatus, EndReason

if TYPE_CHECKING:
    from callagent.agent.job import CallJob

# The same recording heard this many times: the menu is a loop, and the call gives up.
MENU_LOOP_ROUNDS = 3
TRANSFER_CALL = (
    "Hand the callee over to a person (the operator's transfer target) when the TRANSFER block of your "
    "instructions says so. The callee is put on hold and hears that first; do not say anything before. If the "
    "transfer does not happen, the result starts with 'Not done:' and the call goes on with you."
)


class CallAgent(Agent):
    """The conversation. Its tool docstrings are the model's contract."""

    def __init__(self, call: CallJob, operator_tools: list[Any] | None = None) -> None:
        self.call = call
        self._heard: dict[str, int] = {}
        # LiveKit's own DTMF tool keys in phone-menu choices (RFC 4733, from the agent's side).
        tools: list[Any] = [EndCallTool(delete_room=True, on_tool_called=self._on_end_call), send_dtmf_events]
        if call.request.transfer_to:  # offered only when the call may be handed over
            tools.append(function_tool(self._transfer, name="transfer_call", description=TRANSFER_CALL))
        # The operator's MCP tools (callagent.agent.tooluse): only those its profile allows.
        tools += operator_tools or []
        super().__init__(instructions=instructions_for(call.request), tools=tools)

    async def _transfer(self) -> str:
        from callagent.agent.transfer import transfer

        return await transfer(self.call)

    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage) -> None:
        """Before the model answers what was heard: recordings get no answer. StopResponse keeps
        the model's reply, preemptive or not, from being spoken."""
        heard = " ".join((new_message.text_content or "").split())
        if not_in_service(heard):  # a carrier's announcement: end the call now
            self.call.settle(
                CallStatus.failed, EndReason.not_in_service, "the number is not in service (the carrier said so)"
            )
            self.call.spawn(self.call.hang_up())
            raise StopResponse()
        if heard and self._heard_again(heard) >= MENU_LOOP_ROUNDS:  # a recording going round in circles
            self.call.settle(
                CallStatus.failed,
                EndReason.ivr_dead_end,
                f"the phone menu repeated itself {MENU_LOOP_ROUNDS} times without reaching a person",
            )
            self.call.spawn(self.call.hang_up())
            raise StopResponse()
        if is_hold_announcement(heard) or (self.call.on_hold and not heard):
            self.call.hold()  # music and the queue's announcements: wait, silently
            raise StopResponse()
        if self.call.on_hold:  # the first words that are not the queue: a person picked up
            self.call.unhold()
            self.session.say(hold_over_greeting(self.call.request), allow_interruptions=False, add_to_chat_ctx=True)

    def _heard_again(self, heard: str) -> int:
        """How often these very words were heard on this call (people do not repeat a whole
        sentence word for word three times; menus do). Hold announcements are exempt."""
        if is_hold_announcement(heard):
            return 0
        key = heard.lower()
        self._heard[key] = self._heard.get(key, 0) + 1
        return self._heard[key]

    async def _on_end_call(self, _: Any) -> None:
        self.call.settle(
            CallStatus.completed, EndReason.agent_ended, "the agent ended the call when the conversation was done"
        )

    @function_tool
    async def leave_voicemail(self, ctx: RunContext[Any], message: str) -> None:
        """Use when the call reached an answering machine or voicemail box (a recorded greeting
        asking to leave a message). Leaves the message after the tone and hangs up.

        Args:
            message: What to say on the voicemail: who is calling, on whose behalf, why, and
                how to call back. One to three short sentences.
        """
        self.call.settle(CallStatus.voicemail, EndReason.voicemail_left, "reached voicemail; a message was left")
        handle = ctx.session.say(message, allow_interruptions=False)
        await handle.wait_for_playout()
        await self.call.hang_up()

    @function_tool
    async def give_up_on_menu(self, ctx: RunContext[Any], why: str) -> None:
        """Use when a recorded phone menu keeps repeating, or none of its options serves the
        goal: the call ends here, and says why.

        Args:
            why: In a few words, why the menu led nowhere.
        """
        self.call.settle(CallStatus.failed, EndReason.ivr_dead_end, f"the phone menu led nowhere: {why}")
        await self.call.hang_up()

    @function_tool
    async def add_to_do_not_call(self, ctx: RunContext[Any]) -> str:
        """Use when the callee asks not to be called again (take me off your list, stop
        calling, do not call me). Their number is added to the do-not-call list."""
        self.call.do_not_call_requested = True
        await self.call.add_to_do_not_call()
        return "The number is on the do-not-call list; confirm this briefly, say goodbye and end the call."
