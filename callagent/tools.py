"""The MCP door: tools to place and follow phone calls, and a resource per call.

An adapter only: argument schemas and descriptions, the elicitation resolver, result models,
text rendering, annotations and the server's assembly. Every tool body delegates to the
transport-free `callagent.service.CallService` (the lifespan context) in a few lines; what it
raises (`callagent.errors`) becomes an `isError` result whose text names the problem and the
setting that governs it.

Startup speed matters (an MCP client spawns this process and waits for `tools/list`), so no
voice stack is imported, and the store, `livekit.api` and the dialer load in a background
thread once the tools have been listed, or on first use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from functools import wraps
from typing import Annotated, Any, Literal, ParamSpec, TypeGuard, TypeVar, get_args

from mcp.server.elicitation import (
    AcceptedElicitation,
    CancelledElicitation,
    DeclinedElicitation,
    ElicitationResult,
)
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import CallToolResult, ResourceLink, TextContent, ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictInt

from callagent import notifications, recordings, redact
from callagent.calls import (
    DEFAULT_PROFILE,
    DEFAULT_TRANSFER_WHEN,
    MAX_DTMF,
    MAX_TRANSFER_WHEN,
    TERMINAL_STATUSES,
    CallRecord,
    CallRequest,
    CallStatus,
    EndReason,
    disclosure,
)
from callagent.errors import CallagentError, NotFound
from callagent.numbers import DialTarget, mask, printable
from callagent.policy import NeedsConfirmation, Rule
from callagent.profiles import TENANT_SCOPE_KEY
from callagent.service import (
    DEFAULT_GOAL,
    MAX_PAGE,
    MAX_WAIT_S,
    CallArgs,
    CallService,
    ConfirmationIssued,
    Placed,
    Prepared,
)
from callagent.settings import Settings, get_settings
from callagent.watch import CallWatcher

__all__ = [
    "CallList",
    "ConfirmationRequired",
    "DialConfirmation",
    "DialPolicyInfo",
    "EndCallResult",
    "MakeCallResult",
    "create_server",
]

log = logging.getLogger("callagent.tools")

# If no client lists the tools (an HTTP deployment), warm up anyway after this long.
WARMUP_FALLBACK_S = 2.0
WARMUP_AFTER_LISTING_S = 0.3

P = ParamSpec("P")
R = TypeVar("R")
Ctx = Context[CallService]

# The log levels MCPServer takes; CALLAGENT_LOG_LEVEL may name others logging knows (NOTSET, WARN).
_McpLogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


# -- results ---------------------------------------------------------------------------------


class CallList(BaseModel):
    """One page of calls, newest first."""

    calls: list[CallRecord]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class EndCallResult(CallRecord):
    """The call record after end_call, with a note when there was nothing to hang up."""

    note: str | None = None


class DialPreview(BaseModel):
    """Exactly what will be dialed, and said, once the call is confirmed."""

    phone_number: str = Field(description="The number that will be dialed, in E.164.")
    phone_number_display: str = Field(description="The same number, written for people.")
    region: str = Field(description="The number's region (ISO code), 001 for non-geographic numbers.")
    goal: str
    context: str | None = None
    greeting: str | None = Field(
        default=None,
        description="Said after the disclosure that an AI assistant is calling on behalf of caller_name.",
    )
    caller_name: str
    dtmf: str | None = Field(default=None, description="Keyed in once the call is answered.")
    transfer_to: str | None = Field(default=None, description="Who the callee may be handed to (E.164).")
    transfer_mode: str | None = None
    transfer_when: str | None = None
    record: bool = Field(default=False, description="Whether the call will be recorded.")
    max_duration_s: int
    ring_timeout_s: int
    idempotency_key: str | None = None
    profile: str = Field(default="default", description="The operator's calling profile it is made under.")
    language: str = Field(default="en", description="The language the agent speaks.")
    caller_id: str | None = Field(default=None, description="The number the callee sees, when one was chosen.")


class ProfileInfo(BaseModel):
    """A calling profile as a client may see it (callagent.toml; no trunk, persona or secrets)."""

    model_config = ConfigDict(extra="allow")

    name: str
    description: str | None = None
    caller_name: str = Field(description="On whose behalf the agent calls.")
    language: str
    language_name: str
    countries: list[str] = Field(description="Regions it may call (ISO codes; * for all).")
    caller_ids: list[str] = Field(description="Numbers make_phone_call(caller_id=...) may show with it.")
    transfer_targets: list[str] = Field(description="Who a call may be handed to (masked).")
    recording: str
    quiet_hours: str | None
    max_concurrent: int


class ConfirmationRequired(BaseModel):
    """make_phone_call's answer when a person must confirm the call first (DIAL_CONFIRM).

    Nothing was dialed. Show `call` to your user; if they approve, call make_phone_call again
    with the same arguments plus `confirmation_token`.
    """

    status: Literal["confirmation_required"] = "confirmation_required"
    rule: str = Rule.confirmation.value
    setting: str | None = Rule.confirmation.setting
    message: str = Field(description="Why a confirmation is needed.")
    confirmation_token: str = Field(
        description="Pass back as `confirmation_token`, with otherwise identical arguments. Single use."
    )
    expires_at: datetime = Field(description="The token is void after this moment (UTC).")
    expires_in_s: int
    call: DialPreview


class MakeCallResult(RootModel[CallRecord | ConfirmationRequired]):
    """The call record, or (status `confirmation_required`) what a person must confirm first.

    Published as one object schema: the properties of both shapes (so clients see every field
    a call record has), and `anyOf` saying which combinations are valid.
    """

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler.resolve_ref_schema(handler(core_schema))
        arms = schema["anyOf"]
        properties: dict[str, Any] = {}
        for arm in arms:
            for name, prop in handler.resolve_ref_schema(arm).get("properties", {}).items():
                if name in properties and properties[name] != prop:
                    properties[name] = {"anyOf": [properties[name], prop]}
                else:
                    properties[name] = prop
        return {
            "type": "object",
            "description": cls.__doc__.splitlines()[0] if cls.__doc__ else "",
            "properties": properties,
            "anyOf": arms,
        }


class DialConfirmation(BaseModel):
    """What a person is asked (MCP elicitation) before a call that needs confirmation."""

    confirm: bool = Field(title="Place this call", description="Yes to place the call now; no to cancel it.")


class DialPolicyInfo(BaseModel):
    """What the dial policy currently allows (see callagent.policy.describe)."""

    model_config = ConfigDict(extra="allow")

    default_region: str
    countries: list[str]
    allow_list: list[str]
    allow_list_mode: str
    deny_list: list[str]
    quiet_hours: str | None
    limits: dict[str, int]
    confirmation: str
    confirmation_ttl_s: int
    extensions_allowed: bool
    text_limits: dict[str, int]
    max_duration_s: dict[str, int]
    never_called: list[str]
    transfer_targets: list[str] = Field(default_factory=list, description="Numbers a call may be handed to (masked).")
    recording: str = Field("off", description="CALLAGENT_RECORDING: off, on_request or always.")
    settings: dict[str, str | None] = Field(description="Which setting governs each rule (null: none can).")
    usage: dict[str, int] | None = Field(default=None, description="Live calls and what is left right now.")
    profile: str = Field(default="default", description="The profile make_phone_call uses when it names none.")
    profiles: list[ProfileInfo] = Field(
        default_factory=list,
        description="The operator's calling profiles you may use (make_phone_call's profile and caller_id).",
    )


# -- the service, and how its errors reach the client --------------------------------------------


@asynccontextmanager
async def _lifespan(
    server: MCPServer[CallService], settings: Settings, watcher: CallWatcher
) -> AsyncIterator[CallService]:
    service = CallService(settings)
    service.warm_up_after(WARMUP_FALLBACK_S)
    service.reap_on_a_timer()
    watcher.attach(service)
    try:
        yield service
    finally:
        await watcher.aclose()
        await service.aclose()


def _service(ctx: Ctx) -> CallService:
    return ctx.request_context.lifespan_context


def _tenant(ctx: Ctx) -> str | None:
    """The tenant whose bearer token carried this request (the HTTP transport, callagent.toml
    [tenants]); None for the operator's own (stdio, MCP_HTTP_TOKEN). Every tool is scoped by it."""
    return _tenant_of(ctx.request_context.request)


def _tenant_of(request: object) -> str | None:
    """The tenant http_transport.BearerAndHostGuard put in the request's ASGI scope, if any."""
    scope = getattr(request, "scope", None)
    tenant = scope.get(TENANT_SCOPE_KEY) if isinstance(scope, dict) else None
    return tenant if isinstance(tenant, str) else None


def _translated(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The one translation: a use case's error becomes the tool's error result, as it is."""

    @wraps(fn)
    async def tool(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except CallagentError as exc:
            raise ToolError(str(exc)) from None

    return tool


async def _scope_tenant(ctx: Any, call_next: Any) -> Any:
    """Middleware: the tenant of the request (see _tenant) for what runs outside the tools:
    resource subscriptions and listen streams (notifications.TENANT)."""
    token = notifications.TENANT.set(_tenant_of(getattr(ctx, "request", None)))
    try:
        return await call_next(ctx)
    finally:
        notifications.TENANT.reset(token)


async def _warm_after_listing(ctx: Any, call_next: Any) -> Any:
    """Middleware: once the client has the tool list, load what a call needs in the background."""
    result = await call_next(ctx)
    if ctx.method in ("tools/list", "tools/call"):
        service = getattr(ctx, "lifespan_context", None)
        if isinstance(service, CallService):
            service.warm_up_after(WARMUP_AFTER_LISTING_S if ctx.method == "tools/list" else 0.0)
    return result


# -- tools ---------------------------------------------------------------------------------------


async def _ask_to_confirm(
    ctx: Ctx,
    phone_number: str,
    goal: str | None,
    context: str | None,
    greeting: str | None,
    dtmf: str | None,
    result_schema: dict[str, Any] | None,
    ring_timeout_s: int | None,
    max_hold_s: int | None,
    max_duration_s: int | None,
    idempotency_key: str | None,
    confirmation_token: str | None,
    transfer_to: str | None = None,
    transfer_when: str | None = None,
    transfer_mode: str | None = None,
    record: bool | None = None,
    reasoning: str | None = None,
    profile: str | None = None,
    caller_id: str | None = None,
) -> Elicit[DialConfirmation] | None:
    """Resolver for make_phone_call's `approval`: ask the person (MCP elicitation) when the
    policy wants a confirmation, the client can ask, and no confirmation_token was given.

    Runs before the tool body, so it only decides whether to ask; the body applies every rule
    again, from scratch, whatever the answer. A call the policy would refuse anyway is not put
    to the person. The question is a function of the arguments only, so it reads the same on
    every round of the 2026-07-28 input-required flow.
    """
    service = _service(ctx)
    if not service.asks_for_confirmation or confirmation_token is not None or not _client_can_elicit(ctx):
        return None
    args = CallArgs(
        phone_number,
        goal,
        context,
        greeting,
        ring_timeout_s,
        max_duration_s,
        idempotency_key,
        dtmf,
        result_schema,
        max_hold_s,
        transfer_to,
        transfer_when,
        transfer_mode,
        record,
        reasoning,
        profile,
        caller_id,
    )
    try:
        prepared = await service.preflight(args, tenant=_tenant(ctx))
    except CallagentError:
        return None  # the body says what is wrong
    if not isinstance(prepared, Prepared) or prepared.existing or not isinstance(prepared.decision, NeedsConfirmation):
        return None
    request = prepared.request
    lines = [
        f"Place a phone call to {_display(prepared.target)}?",
        f'The agent first says: "{_disclosure_of(request)}"',
        *([f"Profile: {request.profile} ({request.language})"] if request.profile != DEFAULT_PROFILE else []),
        *([f"The callee sees the number {request.caller_id}"] if request.caller_id else []),
        *_shown_texts(
            (
                ("Goal", request.goal),
                ("Context (background the agent is told)", request.context or ""),
                ("Greeting, after the AI disclosure", request.greeting or ""),
            )
        ),
        *([f"Once answered, it keys in: {request.dtmf}"] if request.dtmf else []),
        *(
            [
                f"It may hand the callee to {mask(request.transfer_to)} ({request.transfer_mode}), {request.transfer_when}."
            ]
            if request.transfer_to
            else []
        ),
        *(["The call is recorded."] if request.record else []),
        f"The call lasts at most {request.max_duration_s} s. Asked because {prepared.decision.message}.",
    ]
    return Elicit("\n".join(lines), DialConfirmation)


def _client_can_elicit(ctx: Ctx) -> bool:
    """Whether a form elicitation can reach this client: it declared the capability, and the
    connection can carry the question (the input-required flow, or a back-channel)."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, _INPUT_REQUIRED_VERSION):
        return True
    return bool(getattr(ctx.session, "can_send_request", False))


_INPUT_REQUIRED_VERSION = "2026-07-28"


# What a client can show in a confirmation dialog; past it, texts are cut (and say so).
ELICITATION_TEXT_CHARS = 1200


def _shown_texts(texts: tuple[tuple[str, str], ...]) -> list[str]:
    """`label: text` lines within ELICITATION_TEXT_CHARS in all, each cut one saying so, so a
    person approving a call sees everything the agent is told, or knows what they do not see."""
    present = [(label, text) for label, text in texts if text]
    budget = ELICITATION_TEXT_CHARS // max(1, len(present))
    lines = []
    for label, text in present:
        shown = printable(text)
        if len(shown) > budget:
            cut = len(shown) - budget
            shown = f"{shown[:budget]}… [{cut} more characters not shown; the full text is in the call's preview]"
        lines.append(f"{label}: {shown}")
    return lines


@_translated
async def make_phone_call(
    phone_number: Annotated[
        str, Field(description="The number to call, ideally in international form, e.g. +14155550100.")
    ],
    ctx: Ctx,
    approval: Annotated[ElicitationResult[DialConfirmation], Resolve(_ask_to_confirm)],
    goal: Annotated[
        str | None,
        Field(description=f"What the call should achieve, in plain words. Default: {DEFAULT_GOAL!r}."),
    ] = None,
    context: Annotated[
        str | None, Field(description="Background the agent may use during the call (names, dates, order ids).")
    ] = None,
    greeting: Annotated[
        str | None,
        Field(
            description="What the agent says once answered, right after it says it is an AI assistant "
            "calling on the operator's behalf (that disclosure is always said first)."
        ),
    ] = None,
    dtmf: Annotated[
        str | None,
        Field(
            max_length=MAX_DTMF,
            description="Digits to key in once the call is answered, e.g. an extension: 0-9, * and #, with pauses "
            "w (0.5 s) and W (1 s), e.g. 'ww123'. A number written with its extension (x123) is dialed the same "
            "way where the operator allows extensions.",
        ),
    ] = None,
    result_schema: Annotated[
        dict[str, Any] | None,
        Field(
            description="What the call should find out, as a JSON Schema object, e.g. "
            '{"type": "object", "properties": {"confirmed": {"type": "boolean"}, "time": {"type": "string"}}}. '
            "The final record's outcome.data follows it; what the call did not learn is null. Keywords: type, "
            "properties, required, items, enum, const, description, title, additionalProperties (false), anyOf.",
        ),
    ] = None,
    ring_timeout_s: Annotated[
        StrictInt | None,
        Field(description="Seconds to let the phone ring, 5-120. Default: CALLAGENT_RING_TIMEOUT_S."),
    ] = None,
    max_hold_s: Annotated[
        StrictInt | None,
        Field(
            description="Longest the agent waits on hold (music, 'please hold') for a person, in seconds. "
            "Default: CALLAGENT_MAX_HOLD_S; at most the call's max_duration_s."
        ),
    ] = None,
    max_duration_s: Annotated[
        StrictInt | None,
        Field(
            description="Longest the conversation may last, in seconds. Default: CALLAGENT_MAX_DURATION_S; "
            "at most CALLAGENT_MAX_DURATION_CAP_S."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Field(
            max_length=255,
            description="Any unique string; retrying with the same key returns the first call instead of dialing again.",
        ),
    ] = None,
    confirmation_token: Annotated[
        str | None,
        Field(
            max_length=200,
            description="Only after a `confirmation_required` result: the token it carried, sent with the "
            "same arguments once your user has approved the call. Single use, short-lived.",
        ),
    ] = None,
    transfer_to: Annotated[
        str | None,
        Field(
            max_length=64,
            description="A person to hand the callee to, e.g. your user or a front desk: only numbers the operator "
            "lists (CALLAGENT_TRANSFER_NUMBERS). The call's status becomes `transferred` once handed over.",
        ),
    ] = None,
    transfer_when: Annotated[
        str | None,
        Field(
            max_length=MAX_TRANSFER_WHEN,
            description=f"When to hand over, in plain words. Default: {DEFAULT_TRANSFER_WHEN!r}.",
        ),
    ] = None,
    transfer_mode: Annotated[
        Literal["warm", "cold"] | None,
        Field(
            description="warm (default): the callee waits on hold while the agent briefs the person, then they are "
            "connected; if nobody answers the agent goes back to the callee. cold: a SIP REFER, where the trunk "
            "allows it.",
        ),
    ] = None,
    record: Annotated[
        bool | None,
        Field(
            description="Record the call (the callee is told in the first sentence). Refused when the operator "
            "has recording off (CALLAGENT_RECORDING). The recording is the resource calls://{call_id}/recording.",
        ),
    ] = None,
    reasoning: Annotated[
        str | None,
        Field(
            max_length=2000,
            description="Why this call should be made, in a sentence or two: shown to the operator who approves "
            "calls, and kept on the record. Required when the operator says so (DIAL_REQUIRE_REASONING).",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        Field(
            max_length=64,
            description="The operator's calling profile to call under: on whose behalf, in which language and "
            "voice, under which rules. dial_policy lists the ones you may use. Default: your default profile.",
        ),
    ] = None,
    caller_id: Annotated[
        str | None,
        Field(
            max_length=64,
            description="The number the callee sees: only one of the profile's caller IDs (dial_policy lists them). "
            "Default: the phone line's own number.",
        ),
    ] = None,
) -> Annotated[CallToolResult, MakeCallResult]:
    """Place an outbound phone call; an AI voice agent holds the conversation toward `goal`.

    This rings a real phone: a person's time and attention, and minutes billed on the
    operator's phone line and for the voice models. It cannot be taken back once the phone
    rings; place a call only when your user asked for it.

    Returns as soon as the phone is ringing (within seconds), with the `call_id` and status.
    Then call `wait_for_call` with the `call_id` until the status is terminal (completed,
    voicemail, no_answer, busy, declined, transferred, failed, canceled, denied, expired) to
    get the transcript, summary and outcome. The agent always says first that it is an AI assistant calling on the operator's
    behalf.

    The dial policy applies before anything is dialed (see `dial_policy`): emergency numbers,
    crisis lines, premium-rate and invalid numbers, allowed countries, allow/deny and
    do-not-call lists, quiet hours in the callee's local time, volume limits. A refusal names
    the rule and the setting behind it. When the operator requires a person's confirmation,
    you are either asked directly, or get a `confirmation_required` result: show it to your
    user and, if they approve, repeat the call with the same arguments plus its
    `confirmation_token`. Where the operator approves calls, the answer is status
    `awaiting_approval` instead: nothing is dialed until they approve it (wait_for_call then
    shows it ringing), or it ends `denied` with their note, or `expired`. Give `reasoning`.
    """
    args = CallArgs(
        phone_number,
        goal,
        context,
        greeting,
        ring_timeout_s,
        max_duration_s,
        idempotency_key,
        dtmf,
        result_schema,
        max_hold_s,
        transfer_to,
        transfer_when,
        transfer_mode,
        record,
        reasoning,
        profile,
        caller_id,
    )
    outcome = await _service(ctx).place(
        args, approved=_answer(approval), confirmation_token=confirmation_token, tenant=_tenant(ctx)
    )
    if isinstance(outcome, ConfirmationIssued):
        return _confirmation_required(outcome)
    return _placed(outcome)


@_translated
async def wait_for_call(
    call_id: Annotated[str, Field(max_length=64, description="The call_id returned by make_phone_call.")],
    ctx: Ctx,
    timeout_s: Annotated[
        float, Field(description=f"How long to wait, in seconds: more than 0, at most {MAX_WAIT_S:g}.")
    ] = 30,
    last_status: Annotated[
        str | None,
        Field(
            description="The status you last saw (from make_phone_call or the previous wait_for_call); "
            "returns at once if the call has moved on from it. Default: its status when the wait starts."
        ),
    ] = None,
) -> Annotated[CallToolResult, CallRecord]:
    """Wait until a call changes status or ends, then return its record. Free: only waits.

    Returns early on any status change (e.g. ringing → in_progress), or after `timeout_s` with
    the call unchanged. Call it again until the status is terminal (completed, voicemail,
    no_answer, busy, declined, transferred, failed, canceled, denied, expired); the final record holds the transcript,
    summary and outcome. Sends progress notifications while waiting.
    """

    async def progress(elapsed: float, message: str) -> None:
        await ctx.report_progress(elapsed, timeout_s, message)

    waited = await _service(ctx).wait(call_id, timeout_s, last_status, progress, tenant=_tenant(ctx))
    record, text = waited.record, waited.record.to_text()
    if not waited.changed:
        text = f"Still {record.status} after waiting {timeout_s:g} s; call wait_for_call again to keep waiting.\n{text}"
    elif record.status not in TERMINAL_STATUSES:
        text += f"\n\nThe call is still live: call wait_for_call(call_id={record.call_id!r}) again."
    return _result(record, text)


@_translated
async def get_call(
    call_id: Annotated[str, Field(max_length=64, description="The call_id returned by make_phone_call.")],
    ctx: Ctx,
) -> Annotated[CallToolResult, CallRecord]:
    """Get one call's record: status, timings, transcript, summary and outcome. Free: reads the record."""
    record = await _service(ctx).get(call_id, tenant=_tenant(ctx))
    return _result(record, record.to_text())


@_translated
async def list_calls(
    ctx: Ctx,
    status: Annotated[
        str | None,
        Field(description="Only calls in this status: " + ", ".join(s.value for s in CallStatus) + "."),
    ] = None,
    end_reason: Annotated[
        str | None,
        Field(description="Only calls that ended for this reason: " + ", ".join(r.value for r in EndReason) + "."),
    ] = None,
    phone_number: Annotated[str | None, Field(max_length=64, description="Only calls to this number.")] = None,
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_PAGE, description="Calls per page.")] = 20,
    cursor: Annotated[
        str | None,
        Field(max_length=200, description="The next_cursor of the previous page, to get the page after it."),
    ] = None,
) -> Annotated[CallToolResult, CallList]:
    """List recent calls, newest first, optionally filtered by status, end reason or number; paginated.
    Free: reads the records."""
    records, next_cursor = await _service(ctx).list_calls(
        status=status,
        end_reason=end_reason,
        phone_number=phone_number,
        limit=limit,
        cursor=cursor,
        tenant=_tenant(ctx),
    )
    return CallToolResult(
        content=[TextContent(type="text", text=_list_text(records, next_cursor))],
        structured_content=CallList(calls=records, next_cursor=next_cursor).model_dump(mode="json"),
    )


@_translated
async def end_call(
    call_id: Annotated[str, Field(max_length=64, description="The call_id of the live call to hang up.")],
    ctx: Ctx,
) -> Annotated[CallToolResult, EndCallResult]:
    """Hang up a live call; its status becomes canceled once the hang-up is confirmed.

    The person on the line is cut off (they hear a short goodbye): end calls only when your
    user asks, or when the call must not go on. Free: it only stops a call; the minutes already
    used stay billed.

    Ending an ended call changes nothing. If the hang-up cannot be confirmed, the result is an
    error saying the line may still be up; the worker holding the call has then been asked to
    hang up by itself.
    """
    ended = await _service(ctx).end(call_id, tenant=_tenant(ctx))
    text = f"{ended.note}\n{ended.record.to_text()}" if ended.note else f"Hung up.\n{ended.record.to_text()}"
    return _result(EndCallResult(**_fields(ended.record), note=ended.note), text)


@_translated
async def dial_policy(ctx: Ctx) -> Annotated[CallToolResult, DialPolicyInfo]:
    """What the dial policy allows right now, before you place a call. Free: reads the policy and the live counts.

    Countries, allow and deny lists, quiet hours (callee's local time), volume limits with how
    many calls are live and left this hour, whether calls need a person's confirmation, size
    limits, what is never called (emergency numbers, crisis lines, premium-rate numbers, the
    do-not-call list), and every rule with the setting behind it. Every refusal of
    make_phone_call names one of these rules. Also the operator's calling profiles you may use
    (make_phone_call's `profile` and `caller_id`), each with its language and caller IDs.
    """
    info = await _service(ctx).policy_info(tenant=_tenant(ctx))
    return CallToolResult(
        content=[TextContent(type="text", text=_policy_text(info))],
        structured_content=DialPolicyInfo.model_validate(info).model_dump(mode="json"),
    )


def _disclosure_of(request: CallRequest) -> str:
    """The first sentence the call will say, in its language and its profile's words."""
    return disclosure(request.caller_name, recorded=request.record, language=request.language, phrases=request.phrases)


async def call_resource(call_id: str, ctx: Ctx) -> str:
    """One call's record (status, timings, transcript, summary, outcome) as JSON."""
    try:
        record = await _service(ctx).get(call_id, tenant=_tenant(ctx))
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except CallagentError as exc:
        raise ResourceError(str(exc)) from None
    return record.model_dump_json(indent=2)


async def recording_resource(call_id: str, ctx: Ctx) -> bytes:
    """A recorded call's audio: Ogg/Opus, channel 1 the callee, channel 2 the agent."""
    try:
        _, path = await _service(ctx).recording(call_id, tenant=_tenant(ctx))
        return await asyncio.to_thread(path.read_bytes)
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except CallagentError as exc:
        raise ResourceError(str(exc)) from None
    except OSError as exc:  # deleted or unreadable between the check and the read
        raise ResourceError(f"the recording of call {call_id} could not be read: {exc.strerror or exc}") from None


# -- rendering -------------------------------------------------------------------------------------


def _answer(approval: object) -> bool | None:
    """The person's answer to the confirmation question; None when they were not asked."""
    if isinstance(approval, AcceptedElicitation) and isinstance(approval.data, DialConfirmation):
        return approval.data.confirm
    if isinstance(approval, (DeclinedElicitation, CancelledElicitation)):
        return False
    return None


def _placed(placed: Placed) -> CallToolResult:
    record = placed.record
    if placed.existing:
        note = f"A call with idempotency_key {record.idempotency_key!r} already exists; it was not dialed again."
        return _result(record, f"{note}\n{record.to_text()}")
    text = record.to_text()
    if record.status not in TERMINAL_STATUSES:
        text += f"\n\nNext: call wait_for_call(call_id={record.call_id!r}) until the call has ended."
    return _result(record, text)


def _confirmation_required(issued: ConfirmationIssued) -> CallToolResult:
    prepared, request = issued.prepared, issued.prepared.request
    preview = DialPreview(
        phone_number=prepared.target.e164,
        phone_number_display=_display(prepared.target),
        region=prepared.target.region,
        goal=request.goal,
        context=request.context,
        greeting=request.greeting,
        caller_name=request.caller_name,
        dtmf=request.dtmf,
        transfer_to=request.transfer_to,
        transfer_mode=request.transfer_mode if request.transfer_to else None,
        transfer_when=request.transfer_when,
        record=request.record,
        max_duration_s=request.max_duration_s,
        ring_timeout_s=request.ring_timeout_s,
        idempotency_key=prepared.idempotency_key,
        profile=request.profile,
        language=request.language,
        caller_id=request.caller_id,
    )
    result = ConfirmationRequired(
        message=issued.reason,
        confirmation_token=issued.token,
        expires_at=issued.expires_at,
        expires_in_s=issued.ttl_s,
        call=preview,
    )
    lines = [
        f"Not dialed yet: a person must confirm this call first (rule 'confirmation', setting DIAL_CONFIRM="
        f"{issued.mode}): {issued.reason}.",
        "",
        "Ask your user to approve exactly this call:",
        f"  Number:   {preview.phone_number_display} ({preview.phone_number})",
        f"  Goal:     {preview.goal}",
    ]
    if preview.context:
        lines.append(f"  Context:  {preview.context}")
    lines.append(
        f'  Greeting: "{_disclosure_of(request)}"' + (f" then: {preview.greeting}" if preview.greeting else "")
    )
    if preview.profile != DEFAULT_PROFILE:
        lines.append(f"  Profile:  {preview.profile} (speaks {preview.language})")
    if preview.caller_id:
        lines.append(f"  Shows the number: {preview.caller_id}")
    if preview.dtmf:
        lines.append(f"  Keys in once answered: {preview.dtmf}")
    if preview.transfer_to:
        lines.append(
            f"  May hand the callee to: {preview.transfer_to} ({preview.transfer_mode}), {preview.transfer_when}"
        )
    if preview.record:
        lines.append("  The call is recorded.")
    lines += [
        f"  At most {preview.max_duration_s} s; rings for up to {preview.ring_timeout_s} s.",
        "",
        "If they approve, call make_phone_call again with exactly the same arguments plus "
        f"confirmation_token={issued.token!r}. The token works once, only for these arguments, until "
        f"{issued.expires_at:%H:%M:%S} UTC ({issued.ttl_s} s). If they do not approve, do not call.",
    ]
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(printable(line) for line in lines))],
        structured_content=result.model_dump(mode="json"),
    )


def _list_text(records: list[CallRecord], next_cursor: str | None) -> str:
    from callagent.numbers import mask

    if records:
        lines = [f"{len(records)} call(s), newest first:"]
        for r in records:
            line = f"- {r.call_id}  {r.status}  {mask(r.phone_number)}  {r.created_at:%Y-%m-%d %H:%M:%S} UTC"
            if r.ended_reason:
                line += f"  ({r.ended_reason}" + (f" [{r.end_reason}]" if r.end_reason else "") + ")"
            lines.append(printable(line))
    else:
        lines = ["No calls found."]
    if next_cursor:
        lines.append(f"More calls: pass cursor={next_cursor!r}.")
    return "\n".join(lines)


def _policy_text(info: dict[str, Any]) -> str:
    limits, usage = info["limits"], info.get("usage") or {}
    lines = [
        "Dial policy (every rule is checked before anything is dialed):",
        f"- Countries: {', '.join(info['countries'])} ({info['countries_note']})",
        f"- Allow list: {', '.join(info['allow_list']) or 'none'} ({info['allow_list_mode']})",
        f"- Deny list: {', '.join(info['deny_list']) or 'none'}",
        f"- Quiet hours: {info['quiet_hours'] or 'off'}"
        + (f" ({info['quiet_hours_note']})" if info["quiet_hours"] else ""),
        f"- At most {limits['max_concurrent']} calls at once, {limits['max_per_number_per_day']} per number "
        f"in 24 hours, {limits['max_per_hour']} per hour overall",
    ]
    if usage:
        lines.append(
            f"- Now: {usage['active_calls']} live call(s), {usage['concurrent_slots_left']} slot(s) free, "
            f"{usage['calls_left_this_hour']} call(s) left this hour"
        )
    confirm = {
        "never": "no (your own tool approval is the human step)",
        "unlisted": "for numbers not on the allow list",
        "always": "for every call",
    }.get(info["confirmation"], info["confirmation"])
    text_limits = info["text_limits"]
    lines += [
        f"- A person's confirmation needed: {confirm}",
        "- Extensions: "
        + ("dialed after the answer (x123, ;ext=123, or dtmf)" if info["extensions_allowed"] else "refused; use dtmf"),
        f"- Sizes: goal {text_limits['goal']}, context {text_limits['context']}, greeting "
        f"{text_limits['greeting']} characters; no control or invisible characters, and nothing "
        "that takes back the AI disclosure",
        f"- Call length: {info['max_duration_s']['default']} s by default, at most {info['max_duration_s']['cap']} s",
        f"- Never called: {'; '.join(info['never_called'])}",
        "- The agent always says first that it is an AI assistant calling on the operator's behalf.",
    ]
    profiles = info.get("profiles") or []
    if len(profiles) > 1 or any(p["caller_ids"] for p in profiles):
        lines.append(f"- Calling profiles (make_phone_call's profile; default {info.get('profile')!r}):")
        for p in profiles:
            lines.append(
                f"  - {p['name']}: on behalf of {p['caller_name']}, in {p['language_name']}, to "
                f"{', '.join(p['countries'])}"
                + (f"; caller IDs {', '.join(p['caller_ids'])}" if p["caller_ids"] else "")
            )
    return "\n".join(lines)


def _display(target: DialTarget) -> str:
    """The number in international format for people, e.g. "+1 415-555-0100"."""
    import phonenumbers

    return phonenumbers.format_number(phonenumbers.parse(target.e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _result(record: CallRecord, text: str) -> CallToolResult:
    content: list[TextContent | ResourceLink] = [TextContent(type="text", text=text)]
    rec = record.recording
    if rec is not None and recordings.available(rec):
        # The audio is not inlined (minutes of it are megabytes): a link the client reads if it wants.
        length = f", {rec.duration_s:.0f} s" if rec.duration_s is not None else ""
        content.append(
            ResourceLink(
                type="resource_link",
                uri=f"calls://{record.call_id}/recording",
                name=f"call-{record.call_id}-recording",
                title=f"Recording of call {record.call_id}",
                description=f"Ogg/Opus, channel 1 the callee, channel 2 the agent{length} ({rec.state})",
                mime_type=rec.mime_type,
                size=rec.bytes,
            )
        )
    return CallToolResult(content=content, structured_content=record.model_dump(mode="json"))


def _fields(record: CallRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CallRecord.model_fields}


def _quote(value: object, limit: int = 40) -> str:
    text = printable(str(value))
    return repr(text if len(text) <= limit else f"{text[: limit - 1]}…")


INSTRUCTIONS = """\
Places real outbound phone calls held by an AI voice agent.
Flow: make_phone_call (returns once the phone rings) → wait_for_call, repeatedly, until the
status is terminal → read transcript, summary and outcome. end_call hangs up a live call.
Each call is also readable as the resource calls://{call_id}; a recorded call's audio (Ogg/Opus,
channel 1 the callee, channel 2 the agent) as calls://{call_id}/recording, linked from its
result once the call has ended.
A dial policy set by the operator applies to every call; dial_policy shows it. A refused call
is an error naming the rule and the setting behind it: tell your user, do not work around it.
If make_phone_call answers `confirmation_required`, show the call to your user and, only if
they approve, call again with the same arguments plus the confirmation_token."""


# -- the server ----------------------------------------------------------------------------------

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def _is_mcp_log_level(level: str) -> TypeGuard[_McpLogLevel]:
    return level in get_args(_McpLogLevel)


def create_server(settings: Settings | None = None, **mcp_options: Any) -> MCPServer[CallService]:
    """The callagent MCP server.

    `settings` defaults to `get_settings()` (the environment and the project's `.env`).
    `mcp_options` go to `MCPServer` as they are, e.g. `auth=` and `token_verifier=` to require
    bearer tokens on the HTTP transport.
    """
    settings = settings if settings is not None else get_settings()
    log_level = settings.log_level
    # Who subscribed to which call, told when its status changes (callagent.watch).
    watcher = CallWatcher()
    server: MCPServer[CallService] = MCPServer(
        "callagent",
        title="callagent: outbound phone calls",
        instructions=INSTRUCTIONS,
        version=_version(),
        lifespan=lambda app: _lifespan(app, settings, watcher),
        log_level=log_level if _is_mcp_log_level(log_level) else "INFO",
        subscriptions=notifications.ListenBus(watcher),
        **mcp_options,
    )
    notifications.install(server, watcher)
    # A call to a person cannot be taken back: destructive, so that clients which approve
    # "non-destructive" tools on their own never dial.
    server.add_tool(
        make_phone_call,
        title="Make a phone call",
        annotations=ToolAnnotations(
            title="Make a phone call",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    for fn, title in (
        (wait_for_call, "Wait for a call to progress"),
        (get_call, "Get a call"),
        (list_calls, "List calls"),
        (dial_policy, "Dial policy"),
    ):
        server.add_tool(fn, title=title, annotations=_READ_ONLY.model_copy(update={"title": title}))
    server.add_tool(
        end_call,
        title="End a call",
        annotations=ToolAnnotations(
            title="End a call",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    server.resource(
        "calls://{call_id}",
        name="call",
        title="Call record",
        description="One call's record (status, timings, transcript, summary, outcome) as JSON.",
        mime_type="application/json",
    )(call_resource)
    server.resource(
        "calls://{call_id}/recording",
        name="call-recording",
        title="Call recording",
        description="A recorded call's audio from the answer to the hang-up: Ogg/Opus, 48 kHz, channel 1 the "
        "callee, channel 2 the agent. Only for calls placed with record=true (or CALLAGENT_RECORDING=always), "
        "once they have ended; deleted after CALLAGENT_RECORDING_RETENTION_DAYS.",
        mime_type=recordings.MIME_TYPE,
    )(recording_resource)
    for tool in server._tool_manager.list_tools():
        # Published: an argument this version does not know is refused, not dropped.
        tool.parameters["additionalProperties"] = False
    server.middleware.append(_scope_tenant)
    server.middleware.append(_warm_after_listing)
    server.middleware.append(_refuse_unknown_arguments(server))
    # Refusal texts and SDK log lines quote client input: numbers masked, secrets hidden.
    redact.install(redact.secrets_of(settings))
    return server


def _refuse_unknown_arguments(server: MCPServer[Any]) -> Callable[..., Any]:
    """Middleware: a tools/call with an argument the tool does not have is an error result
    naming it and the known ones. A misspelled `greting` or an argument of a newer version must
    not be dropped silently while the call goes out anyway."""

    async def middleware(ctx: Any, call_next: Any) -> Any:
        if ctx.method == "tools/call" and isinstance(ctx.params, Mapping):
            tool = server._tool_manager.get_tool(str(ctx.params.get("name")))
            arguments = ctx.params.get("arguments")
            if tool is not None and isinstance(arguments, Mapping):
                known = set(tool.parameters.get("properties", {}))
                unknown = sorted(str(k) for k in arguments if k not in known)
                if unknown:
                    shown = ", ".join(_quote(k) for k in unknown[:5]) + (" …" if len(unknown) > 5 else "")
                    return CallToolResult(
                        content=[
                            TextContent(
                                type="text",
                                text=(
                                    f"{tool.name} has no argument {shown}; nothing was done. Its arguments are: "
                                    f"{', '.join(sorted(known))}."
                                ),
                            )
                        ],
                        is_error=True,
                    )
        return await call_next(ctx)

    return middleware


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("callagent")
    except PackageNotFoundError:
        return "0"
