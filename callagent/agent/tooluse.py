"""Tools during the call: the operator's MCP servers (callagent.toml [tools]), offered to the
model through LiveKit Agents' MCPToolset. Only the tools the operator allowed are offered; each
use is timed out, a side-effecting one needs the callee's spoken agreement first and counts
toward CALLAGENT_MAX_TOOL_ACTIONS, the callee hears a filler instead of silence, and every use
goes on the call's timeline and transcript. The client's goal and context can add nothing here:
the servers and tools come from the operator's profile alone."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any

from livekit.agents import RunContext, function_tool
from livekit.agents.llm import ToolError
from livekit.agents.llm.tool_context import get_raw_function_info

from callagent.calls import CALL_ID_HEADER, CallEvent, ToolServer, ToolUse, utcnow
from callagent.languages import phrase
from callagent.numbers import mask_numbers_in_text

if TYPE_CHECKING:
    from callagent.agent.job import CallJob

log = logging.getLogger(__name__)

# What the model gets back when a tool did not do its job; the instructions tell it what to say.
NOT_DONE = "Not done:"
RESULT_CHARS = 300  # of a tool's result kept on the record
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ToolBox:
    """The operator's MCP tools of one call, wrapped."""

    def __init__(self, call: CallJob) -> None:
        self.call = call
        self.request = call.request
        self.actions = 0  # side-effecting uses so far
        self.names: set[str] = set()  # the tools offered, by name
        self.uses: dict[str, ToolUse] = {}  # by the model's function call id
        self._toolsets: list[Any] = []

    async def open(self) -> list[Any]:
        """The tools to offer the model: each allowed tool of each of the profile's servers.
        A server that cannot be reached still has its allowed tools offered, as stand-ins that
        answer "not done", so the agent can tell the callee and the record shows it."""
        offered: list[Any] = []
        for server in self.request.tools:
            try:
                tools = await self._connect(server)
            except Exception as exc:  # noqa: BLE001 - any failure is the same to the call: not reachable
                reason = _why(exc)
                log.warning("tool server %s cannot be used: %s", server.name, reason)
                offered += [self._stand_in(server, name, reason) for name in server.allow]
                continue
            found = {get_raw_function_info(t).name: t for t in tools}
            for name in server.allow:
                if name in found:
                    offered.append(self._wrap(server, name, found[name]))
                else:
                    log.warning("tool server %s has no tool %s (callagent.toml allows it)", server.name, name)
        self.names = {get_raw_function_info(t).name for t in offered}
        return offered

    async def _connect(self, server: ToolServer) -> list[Any]:
        from livekit.agents.llm.mcp import MCPServerHTTP, MCPServerStdio, MCPToolset

        mcp: Any
        if server.url is not None:
            mcp = MCPServerHTTP(
                server.url,
                transport_type="streamable_http",
                allowed_tools=list(server.allow),  # nothing else is ever listed to the model
                # The call's id, as on the SIP INVITE and the model requests: the operator's
                # server can tell which call asks.
                headers={**resolve_headers(server.headers), CALL_ID_HEADER: self.request.call_id},
                timeout=server.timeout_s,
                client_session_timeout_seconds=server.timeout_s,
            )
        else:
            assert server.command
            mcp = MCPServerStdio(server.command[0], server.command[1:], client_session_timeout_seconds=server.timeout_s)
        toolset = MCPToolset(id=f"mcp-{server.name}", mcp_server=mcp)
        self._toolsets.append(toolset)
        await asyncio.wait_for(toolset.setup(), server.timeout_s)
        return list(toolset.tools)

    async def aclose(self) -> None:
        for toolset in self._toolsets:
            try:
                await asyncio.wait_for(toolset.aclose(), 3.0)
            except Exception as exc:  # noqa: BLE001 - closing at the end of the call: only log
                log.debug("closing a tool server: %s", exc)

    # -- each use ------------------------------------------------------------------------------

    def _wrap(self, server: ToolServer, name: str, tool: Any) -> Any:
        info = get_raw_function_info(tool)

        async def use(raw_arguments: dict[str, Any], context: RunContext[Any]) -> str:
            return await self._use(server, name, raw_arguments, context, lambda: tool(raw_arguments))

        return function_tool(use, raw_schema=info.raw_schema)

    def _stand_in(self, server: ToolServer, name: str, reason: str) -> Any:
        async def use(raw_arguments: dict[str, Any], context: RunContext[Any]) -> str:
            async def unreachable() -> Any:
                raise ToolError(f"the {server.name} server could not be reached ({reason})")

            return await self._use(server, name, raw_arguments, context, unreachable)

        schema = {
            "name": name,
            "description": f"{name}, on the operator's {server.name} server (it could not be reached at the start "
            "of the call; using it says whether it can be now).",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": True},
        }
        return function_tool(use, raw_schema=schema)

    async def _use(
        self, server: ToolServer, name: str, arguments: dict[str, Any], context: RunContext[Any], run: Any
    ) -> str:
        req = self.request
        side_effect = name in server.side_effects
        started = time.monotonic()
        call_id = getattr(getattr(context, "function_call", None), "call_id", None) or f"{name}-{started}"

        def done(outcome: str, result: str | None = None, error: str | None = None) -> ToolUse:
            use = ToolUse(
                server=server.name,
                tool=name,
                arguments=_masked(arguments),
                side_effect=side_effect,
                outcome=outcome,
                result=None if result is None else mask_numbers_in_text(result[:RESULT_CHARS]),
                error=error,
                duration_s=round(time.monotonic() - started, 3),
            )
            self.uses[call_id] = use
            self.call.note_tool(use)
            return use

        if side_effect:
            if self.actions >= req.max_tool_actions:
                why = f"at most {req.max_tool_actions} such actions per call (CALLAGENT_MAX_TOOL_ACTIONS)"
                done("refused", error=why)
                return f"{NOT_DONE} {name} was not used: {why}. Tell the callee it will be followed up instead."
            if not callee_agreed(_turns(context), req.language):
                why = "the callee has not agreed to it in their last answer"
                done("refused", error=why)
                return (
                    f"{NOT_DONE} {name} was not used: {why}. Say exactly what you are about to do and ask the "
                    "callee to confirm; use it only after they say yes."
                )
            self.actions += 1  # counted before it runs: a failed attempt is still an attempt
        # The callee hears this instead of silence while the tool runs.
        context.session.say(
            phrase("tool_filler", req.language, req.phrases), allow_interruptions=False, add_to_chat_ctx=False
        )
        try:
            result = await asyncio.wait_for(run(), server.timeout_s)
        except TimeoutError:
            why = f"the {server.name} server did not answer within {server.timeout_s:g} s"
            done("failed", error=why)
            return f"{NOT_DONE} {why}. Tell the callee politely you cannot do this right now and offer a callback."
        except Exception as exc:  # noqa: BLE001 - the server's error, whatever it is, goes to the model and the record
            why = _why(exc)
            done("failed", error=why)
            return f"{NOT_DONE} {name} failed ({why}). Tell the callee politely you cannot do this right now and offer a callback."
        text = _plain(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str))
        done("ok", result=text)
        return text

    def transcript_line(self, call_id: str) -> str | None:
        """The transcript's event line for the model's function call `call_id`, if it was one of these."""
        use = self.uses.get(call_id)
        if use is None:
            return None
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in use.arguments.items())
        what = f"{use.server}.{use.tool}({args})"
        if use.outcome == "ok":
            return f"{what} → {use.result or 'done'}"
        return f"{what} → {use.outcome}: {use.error}"


def resolve_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers with each `${VAR}` read from this process's environment (the worker's).
    Raises KeyError naming a variable that is not set: the server is then not used."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(f"{name} is not set in the worker's environment (a tool server header needs it)")
        return os.environ[name]

    return {key: _ENV_REF.sub(value, template) for key, template in headers.items()}


# -- did the callee agree? ---------------------------------------------------------------------

# Words of agreement and of refusal, per language (lowercase). Agreement counts only without a
# refusal in the same answer: "yes, but not Thursday" is not a yes.
_AGREE = {
    "en": r"yes|yeah|yep|yup|sure|ok|okay|please do|go ahead|sounds good|that works|works for me|book it|"
    r"correct|absolutely|of course|fine|perfect|great|do it|that's right|alright|all right",
    "es": r"s[ií]|claro|vale|de acuerdo|est[aá] bien|perfecto|por supuesto|adelante|me parece bien|res[eé]rvel[oa]|"
    r"h[aá]galo|me queda bien|ok|okay",
    "fr": r"oui|d'accord|ok|parfait|bien s[uû]r|allez-y|volontiers|[cç]a marche|[cç]a me va|tr[eè]s bien",
    "de": r"ja|gern|gerne|einverstanden|okay|ok|passt|genau|in ordnung|machen sie das|klar|perfekt",
    "hi": r"हाँ|हां|जी|ठीक है|बिल्कुल|ज़रूर|जरूर|haan|haa|han|theek hai|thik hai|ji|bilkul|ok|okay",
    "ta": r"ஆம்|ஆமாம்|சரி|ஓகே|நிச்சயமாக|sari|aam|aamaa|ok|okay",
}
_REFUSE = {
    "en": r"no|not|nope|don't|do not|wait|hold on|never mind|cancel",
    "es": r"no|espere|cancele|todav[ií]a no",
    "fr": r"non|pas|attendez|annulez",
    "de": r"nein|nicht|warten sie|moment",
    "hi": r"नहीं|नही|मत|रुकिए|nahi|nahin|mat",
    "ta": r"இல்லை|வேண்டாம்|illai|vendam",
}


def _words(alternatives: str) -> re.Pattern[str]:
    # Word boundaries that also hold for Devanagari and Tamil, whose vowel signs are not \w.
    return re.compile(rf"(?<![\w\u0900-\u097f\u0b80-\u0bff])(?:{alternatives})(?![\w\u0900-\u097f\u0b80-\u0bff])")


_AGREE_RE = {lang: _words(words) for lang, words in _AGREE.items()}
_REFUSE_RE = {lang: _words(words) for lang, words in _REFUSE.items()}


_QUESTION = re.compile(r"[?¿\uff1f]")  # also the full-width question mark


def callee_agreed(turns: list[tuple[str, str]], language: str = "en") -> bool:
    """Whether the conversation so far ends with the agent asking and the callee agreeing:
    the last agent line before the callee's last answer is a question, and that answer says
    yes (in the call's language or English) without saying no, and the agent has asked
    nothing since. `turns` are (role, text) with role "agent" or "callee", in order."""
    last = len(turns) - 1
    while last >= 0 and turns[last][0] != "callee":
        last -= 1
    if last < 1:
        return False
    asked = next((text for role, text in reversed(turns[:last]) if role == "agent"), "")
    if not _QUESTION.search(asked):
        return False
    if any(_QUESTION.search(text) for _, text in turns[last + 1 :]):  # asked something else since
        return False
    answer = " ".join(turns[last][1].lower().split())
    languages = dict.fromkeys([language, "en"])
    if any(_REFUSE_RE[lang].search(answer) for lang in languages if lang in _REFUSE_RE):
        return False
    return any(_AGREE_RE[lang].search(answer) for lang in languages if lang in _AGREE_RE)


def _turns(context: RunContext[Any]) -> list[tuple[str, str]]:
    """The conversation so far, as (role, text), from the session's history."""
    from livekit.agents import llm

    turns = []
    for item in context.session.history.items:
        if isinstance(item, llm.ChatMessage) and item.role in ("assistant", "user"):
            text = (item.text_content or "").strip()
            if text:
                turns.append(("agent" if item.role == "assistant" else "callee", text))
    return turns


def note_event(use: ToolUse) -> CallEvent:
    """The timeline entry of a tool use."""
    detail = f"{use.server}.{use.tool}: {use.outcome}" + (f" ({use.error})" if use.error else "")
    return CallEvent(at=utcnow(), kind="tool", detail=mask_numbers_in_text(detail)[:300], tool=use)


def _masked(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the record keeps them: phone numbers masked in every string."""

    def mask(value: Any) -> Any:
        if isinstance(value, str):
            return mask_numbers_in_text(value)[:500]
        if isinstance(value, dict):
            return {str(k): mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value[:50]]
        return value

    return {str(k): mask(v) for k, v in arguments.items()}


def _plain(text: str) -> str:
    """A tool's result as one line: MCP content items shortened to their text."""
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())
    if isinstance(data, dict) and data.get("type") == "text" and isinstance(data.get("text"), str):
        return " ".join(data["text"].split())
    return " ".join(json.dumps(data, ensure_ascii=False).split())


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _why(exc.exceptions[0])
    return mask_numbers_in_text(text)[:200]
