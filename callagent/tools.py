"""The MCP server: tools to place and follow phone calls, and a resource per call.

Plain typed async functions; each docstring is the tool's description. Every result carries the
call record as structured content (the pydantic model, so clients get an output schema) plus
readable text. Anticipated failures raise `ToolError`, which the client receives as an
`isError` result whose text names the problem and the setting that governs it.

Startup speed matters (an MCP client spawns this process and waits for `tools/list`), so this
module imports no voice stack and defers the heavy parts: SQLAlchemy, `livekit.api` and the
dialer load in a background thread once the tools have been listed, or on first use.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar

import anyio.to_thread
from mcp.server.elicitation import (
    AcceptedElicitation,
    CancelledElicitation,
    DeclinedElicitation,
    ElicitationResult,
)
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictInt, ValidationError

from callagent.calls import (
    HEARTBEAT_S,
    TERMINAL_STATUSES,
    CallRecord,
    CallRequest,
    CallStatus,
    disclosure,
    new_call_id,
    utcnow,
)
from callagent.numbers import DialTarget, InvalidNumber, mask, normalize, printable
from callagent.policy import Counts, DialPolicy, Lists, Refusal, Rule, call_args_hash, describe
from callagent import redact
from callagent.redact import redact_url
from callagent.settings import ENV_FILE, Settings, get_settings, missing_livekit_settings

if TYPE_CHECKING:
    from callagent.dialer import Dialer
    from callagent.store import CallStore, StaleCall

__all__ = [
    "DEFAULT_GOAL",
    "CallList",
    "CallService",
    "ConfirmationRequired",
    "DialConfirmation",
    "DialPolicyInfo",
    "EndCallResult",
    "MakeCallResult",
    "create_server",
    "dial_policy",
    "end_call",
    "get_call",
    "list_calls",
    "make_phone_call",
    "wait_for_call",
]

log = logging.getLogger("callagent.tools")

DEFAULT_GOAL = "Have a short, friendly conversation"
RING_TIMEOUT_RANGE_S = (5, 120)
# A client gives up on a tool call after about 60 s; stay well inside that.
MAX_WAIT_S = 50.0
# Placing a call normally takes a few seconds; past this it is abandoned (and cleaned up, which
# may take a few more seconds against an unresponsive LiveKit).
PLACE_DEADLINE_S = 30.0
CLEANUP_GRACE_S = 5.0
# A call still queued or dialing without a worker's heartbeat after this long was left behind
# by a server that died placing it: a live server fails it itself within PLACE_DEADLINE_S.
ORPHAN_AFTER_S = PLACE_DEADLINE_S + CLEANUP_GRACE_S
# LiveKit ends a call on its own at max_duration_s + this (the dialer's max_call_duration).
LIVEKIT_CALL_MARGIN_S = 60
POLL_INTERVAL_S = 0.2
PROGRESS_INTERVAL_S = 1.0
REAP_INTERVAL_S = 5.0
# If no client lists the tools (an HTTP deployment), warm up anyway after this long.
WARMUP_FALLBACK_S = 2.0
WARMUP_AFTER_LISTING_S = 0.3
MAX_LIST_LIMIT = 100

T = TypeVar("T")


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
    caller_id: str | None = None
    max_duration_s: int
    ring_timeout_s: int
    idempotency_key: str | None = None


class ConfirmationRequired(BaseModel):
    """make_phone_call's answer when a person must confirm the call first (DIAL_CONFIRM).

    Nothing was dialed. Show `call` to your user; if they approve, call make_phone_call again
    with the same arguments plus `confirmation_token`.
    """

    status: Literal["confirmation_required"] = "confirmation_required"
    rule: str = Rule.confirmation.value
    setting: str = "DIAL_CONFIRM"
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
    settings: dict[str, str | None] = Field(description="Which setting governs each rule (null: none can).")
    usage: dict[str, int] | None = Field(default=None, description="Live calls and what is left right now.")


# -- the service behind the tools -------------------------------------------------------------


class CallService:
    """Settings, the call store and the dialer, opened lazily; one per server lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy = DialPolicy.from_settings(settings)
        self._store: CallStore | None = None
        self._dialer: Dialer | None = None
        self._lock = threading.Lock()
        self._last_reap = -math.inf
        self._warm_thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # Opening -----------------------------------------------------------------------------

    @property
    def store(self) -> CallStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from callagent.store import CallStore

                    self._store = CallStore(self.settings.db_url)
        return self._store

    def dialer(self) -> Dialer:
        """The dialer; only once the LiveKit settings are known to be present."""
        if self._dialer is None:
            from callagent.dialer import Dialer

            self._dialer = Dialer(self.settings, self.store)
        return self._dialer

    def start(self) -> None:
        self.warm_up_after(WARMUP_FALLBACK_S)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` in a task this service owns: it may outlive the request that started it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("background task ended: %r", task.exception())

    def warm_up_after(self, delay_s: float) -> None:
        """Load what placing a call needs in a background thread, `delay_s` from now.

        A client that lists the tools and leaves (a probe, a benchmark) is gone before that,
        so it never pays for the warm-up; one that stays gets a fast first call.
        """
        with self._lock:
            if self._warm_thread is not None or self._closed:
                return
            timer = threading.Timer(delay_s, self._start_warmup)
            timer.daemon = True
            self._timers.append(timer)
        timer.start()

    def _start_warmup(self) -> None:
        with self._lock:
            if self._warm_thread is not None or self._closed:
                return
            self._warm_thread = threading.Thread(target=self._warm, name="callagent-warmup", daemon=True)
            for timer in self._timers:
                timer.cancel()
        self._warm_thread.start()

    def _warm(self) -> None:
        try:
            self.store.count_active()  # imports SQLAlchemy, opens (and if need be creates) the database
            # Phone number metadata: emergency short codes, number types, time zones.
            self.policy.check("+14155550100", now=utcnow(), counts=Counts(), lists=Lists())
            if not missing_livekit_settings(self.settings):
                import aiohttp  # noqa: F401
                import livekit.api  # noqa: F401

                import callagent.dialer  # noqa: F401
            log.debug("warmed up")
        except Exception as exc:  # noqa: BLE001 - the first tool call reports it properly
            log.debug("warm-up failed: %s", exc)

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLEANUP_GRACE_S)
        thread = self._warm_thread
        if thread is not None and thread.is_alive():
            await anyio.to_thread.run_sync(thread.join, 10.0)
        if self._dialer is not None:
            await self._dialer.aclose()
        if self._store is not None:
            self._store.close()

    # Store access ------------------------------------------------------------------------

    def _due_stale(self) -> list[StaleCall]:
        """Live calls whose worker went quiet; looked for at most once every REAP_INTERVAL_S."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_reap < REAP_INTERVAL_S:
                return []
            self._last_reap = now
        return self.store.find_stale(self.settings.stale_after_s, orphan_after_s=ORPHAN_AFTER_S)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store operation in a thread; database trouble becomes a ToolError."""
        from callagent.store import StoreError

        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except (StoreError, ValueError, ToolError):
            raise
        except Exception as exc:
            log.exception("call store error")
            raise ToolError(
                f"the call store at CALLAGENT_DB_URL={redact_url(self.settings.db_url)} failed: "
                f"{exc.__class__.__name__}: {_first_line(exc)}"
            ) from exc

    async def reap(self) -> None:
        """End the calls whose worker died: hang the line up first, then fail the record.

        A call whose line cannot be hung up is not reported as ended: it stays live, marked
        with a hang-up request, and is tried again at the next reap, until LiveKit's own limit
        on the call's length has passed. Awaited, not spawned: a short-lived server (one tool
        call) would cancel it on exit.
        """
        stale = await self.db(self._due_stale)
        if stale:
            await asyncio.gather(*(self._reap_one(item) for item in stale))

    async def _reap_one(self, item: StaleCall) -> None:
        record = item.record
        problem = await self.hang_up(record, item.reason, CallStatus.failed)
        if problem is None:
            reason = f"{item.reason}; the server hung up the line"
        elif record.status is CallStatus.queued or utcnow() > _livekit_gives_up_at(record):
            # Nothing reached LiveKit yet, or LiveKit has ended the call on its own by now.
            reason = f"{item.reason}; hanging up failed ({problem}), but " + (
                "the call had not been dialed" if record.status is CallStatus.queued
                else "LiveKit's own limit on the call's length has passed"
            )
        else:
            log.warning("call %s: %s; hanging up failed, will try again: %s", record.call_id, item.reason, problem)
            return
        failed = await self.db(self.store.fail_stale, item, reason)
        if failed is not None:
            log.warning("call %s: failed: %s", record.call_id, reason)

    async def hang_up(
        self, record: CallRecord, reason: str, status: CallStatus = CallStatus.canceled
    ) -> str | None:
        """Ask for `record`'s call to be hung up and hang it up through LiveKit.

        The request is noted in the store first, so the worker holding the call hangs up by
        itself within one heartbeat if LiveKit cannot be reached from here. Returns None once
        LiveKit confirmed the hang-up, else the problem, in words; the call is not ended in
        the store either way (the caller does that, or not).
        """
        from callagent.dialer import HangUpFailed

        await self.db(self.store.request_hangup, record.call_id, reason, status)
        missing = missing_livekit_settings(self.settings)
        if missing:
            return f"this server cannot reach LiveKit itself ({', '.join(missing)} unset)"
        try:
            await self.dialer().hang_up(record.room_name)
        except HangUpFailed as exc:
            return str(exc)
        return None

    async def get(self, call_id: str) -> CallRecord:
        record = await self.db(self.store.get, call_id)
        if record is None:
            raise ToolError(f"no call with call_id {_quote(call_id)}; list_calls shows the recent calls")
        return record


@asynccontextmanager
async def _lifespan(server: MCPServer[CallService], settings: Settings) -> AsyncIterator[CallService]:
    service = CallService(settings)
    service.start()
    try:
        yield service
    finally:
        await service.aclose()


async def _warm_after_listing(ctx: Any, call_next: Any) -> Any:
    """Middleware: once the client has the tool list, load what a call needs in the background."""
    result = await call_next(ctx)
    if ctx.method in ("tools/list", "tools/call"):
        service = getattr(ctx, "lifespan_context", None)
        if isinstance(service, CallService):
            service.warm_up_after(WARMUP_AFTER_LISTING_S if ctx.method == "tools/list" else 0.0)
    return result


def _service(ctx: Context) -> CallService:
    return ctx.request_context.lifespan_context


# -- tools ---------------------------------------------------------------------------------------


async def _ask_to_confirm(
    ctx: Context,
    phone_number: str,
    goal: str | None,
    context: str | None,
    greeting: str | None,
    caller_id: str | None,
    ring_timeout_s: int | None,
    max_duration_s: int | None,
    idempotency_key: str | None,
    confirmation_token: str | None,
) -> Elicit[DialConfirmation] | None:
    """Resolver for make_phone_call's `approval`: ask the person (MCP elicitation) when the
    policy wants a confirmation, the client can ask, and no confirmation_token was given.

    Runs before the tool body, so it only decides whether to ask; the body applies every rule
    again, from scratch, whatever the answer. A call the policy would refuse anyway is not put
    to the person. The question is a function of the arguments only, so it reads the same on
    every round of the 2026-07-28 input-required flow.
    """
    service = _service(ctx)
    policy = service.policy
    if policy.confirm == "never" or confirmation_token is not None or not _client_can_elicit(ctx):
        return None
    target = policy.parse_number(phone_number)
    if isinstance(target, Refusal) or target.extension is not None:
        return None
    if policy.check_text_fields(goal, context, greeting, idempotency_key=idempotency_key) is not None:
        return None
    duration = policy.duration(max_duration_s)
    if isinstance(duration, Refusal) or missing_livekit_settings(service.settings):
        return None
    if idempotency_key is not None and await service.db(service.store.find_by_idempotency_key, idempotency_key):
        return None  # answered with the existing call; nothing to confirm
    now = utcnow()
    counts, lists = await service.db(service.store.policy_inputs, target.e164, now)
    decision = policy.check(target.e164, now=now, counts=counts, lists=lists, confirmed=False)
    if not decision.needs_confirmation:
        return None
    lines = [
        f"Place a phone call to {_display(target)}?",
        f"The agent first says: \"{disclosure(service.settings.caller_name)}\"",
        *_shown_texts((("Goal", (goal or "").strip() or DEFAULT_GOAL), ("Context (background the agent is told)",
                       (context or "").strip()), ("Greeting, after the AI disclosure", (greeting or "").strip()))),
        f"The call lasts at most {duration} s. Asked because {decision.message}.",
    ]
    return Elicit("\n".join(lines), DialConfirmation)


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



def _client_can_elicit(ctx: Context) -> bool:
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


async def make_phone_call(
    phone_number: Annotated[
        str, Field(description="The number to call, ideally in international form, e.g. +14155550100.")
    ],
    ctx: Context,
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
    caller_id: Annotated[
        str | None,
        Field(description="The number to show the callee as caller ID. Default: the outbound SIP trunk's number."),
    ] = None,
    ring_timeout_s: Annotated[
        StrictInt | None,
        Field(description="Seconds to let the phone ring, 5-120. Default: CALLAGENT_RING_TIMEOUT_S."),
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
) -> Annotated[CallToolResult, MakeCallResult]:
    """Place an outbound phone call; an AI voice agent holds the conversation toward `goal`.

    Returns as soon as the phone is ringing (within seconds), with the `call_id` and status.
    Then call `wait_for_call` with the `call_id` until the status is terminal (completed,
    voicemail, no_answer, busy, declined, failed, canceled) to get the transcript, summary and
    outcome. The agent always says first that it is an AI assistant calling on the operator's
    behalf.

    The dial policy applies before anything is dialed (see `dial_policy`): emergency,
    premium-rate and invalid numbers, allowed countries, allow/deny and do-not-call lists,
    quiet hours in the callee's local time, volume limits. A refusal names the rule and the
    setting behind it. When the operator requires a person's confirmation, you are either asked
    directly, or get a `confirmation_required` result: show it to your user and, if they
    approve, repeat the call with the same arguments plus its `confirmation_token`.
    """
    service = _service(ctx)
    settings = service.settings
    policy = service.policy

    # 1. What the client sent: the number, the texts, the duration. Refused before anything else.
    target = policy.parse_number(phone_number)
    if isinstance(target, Refusal):
        await _refuse(service, target, None, shown=_masked_input(phone_number))
    number = target.e164
    if target.extension is not None:  # allowed by DIAL_ALLOW_EXTENSIONS, but not dialed yet
        await _refuse(service, _EXTENSION_NOT_DIALED, number)
    refusal = policy.check_text_fields(goal, context, greeting, idempotency_key=idempotency_key)
    if refusal is not None:
        await _refuse(service, refusal, number)
    duration = policy.duration(max_duration_s)
    if isinstance(duration, Refusal):
        await _refuse(service, duration, number)

    if ring_timeout_s is None:
        ring_timeout_s = min(max(settings.ring_timeout_s, RING_TIMEOUT_RANGE_S[0]), RING_TIMEOUT_RANGE_S[1])
    elif not RING_TIMEOUT_RANGE_S[0] <= ring_timeout_s <= RING_TIMEOUT_RANGE_S[1]:
        raise ToolError(
            f"ring_timeout_s must be between {RING_TIMEOUT_RANGE_S[0]} and {RING_TIMEOUT_RANGE_S[1]} "
            f"seconds, not {ring_timeout_s} (leave it out to use CALLAGENT_RING_TIMEOUT_S={settings.ring_timeout_s})"
        )

    from_number = None
    if caller_id is not None:
        try:
            from_number = normalize(caller_id, settings.default_region)
        except InvalidNumber as exc:
            raise ToolError(f"caller_id: {exc}") from None
        if "caller_id" not in CallRequest.model_fields:
            raise ToolError(
                "caller_id is not supported by this server yet: calls show the number of the outbound "
                "trunk (SIP_OUTBOUND_TRUNK_ID); leave caller_id out"
            )

    missing = missing_livekit_settings(settings)
    if missing:
        raise ToolError(
            f"LiveKit is not configured: set {', '.join(missing)} in the environment or in {ENV_FILE} "
            "(see .env.example)"
        )

    await service.reap()

    # 2. A retry of a call already placed gets that call back, whatever the limits say now
    # (the call itself may be what fills them).
    if idempotency_key is not None:
        existing = await service.db(service.store.find_by_idempotency_key, idempotency_key)
        if existing is not None:
            return _same_key(existing, number, idempotency_key)

    try:
        request = CallRequest(
            call_id=new_call_id(),
            phone_number=number,
            goal=(goal or "").strip() or DEFAULT_GOAL,
            context=(context or "").strip() or None,
            greeting=(greeting or "").strip() or None,
            caller_name=settings.caller_name,
            max_duration_s=duration,
            ring_timeout_s=ring_timeout_s,
            **({"caller_id": from_number} if from_number else {}),
        )
        request.to_metadata()  # too big for LiveKit's dispatch metadata? Say so before dialing.
    except ValidationError as exc:
        raise ToolError(_validation_text(exc)) from None
    except ValueError as exc:
        raise ToolError(str(exc)) from None

    # 3. The policy: lists, countries, quiet hours, volume, then confirmation.
    now = utcnow()
    counts, lists = await service.db(service.store.policy_inputs, number, now)
    decision = policy.check(number, now=now, counts=counts, lists=lists, confirmed=False)
    if decision.refused and decision.refusal is not None:
        await _refuse(service, decision.refusal, number)
    if decision.needs_confirmation:
        args_hash = call_args_hash(
            phone_number=number,
            goal=request.goal,
            context=request.context,
            greeting=request.greeting,
            caller_id=from_number,
            ring_timeout_s=ring_timeout_s,
            max_duration_s=duration,
            idempotency_key=idempotency_key,
        )
        if isinstance(approval, (DeclinedElicitation, CancelledElicitation)) or (
            isinstance(approval, AcceptedElicitation)
            and isinstance(approval.data, DialConfirmation)
            and not approval.data.confirm
        ):
            await _refuse(service, Refusal(
                Rule.confirmation,
                f"your user did not approve calling {mask(number)} when asked to confirm it; nothing was dialed",
                "DIAL_CONFIRM",
            ), number)
        elif isinstance(approval, AcceptedElicitation) and isinstance(approval.data, DialConfirmation):
            log.info("call to %s confirmed by the user (elicitation)", mask(number))
        elif confirmation_token is not None:
            if not await service.db(service.store.consume_confirmation, confirmation_token, args_hash):
                await _refuse(service, Refusal(
                    Rule.confirmation,
                    "confirmation_token is not valid for this call: it is unknown, expired, already used, or "
                    "was issued for different arguments (every argument must be the same as in the call that "
                    "returned it); call make_phone_call again without confirmation_token to get a new one",
                    "DIAL_CONFIRM",
                ), number)
            log.info("call to %s confirmed with a confirmation token", mask(number))
        else:
            return await _confirmation_required(service, decision.message, args_hash, target, request, idempotency_key)

    # 4. Record the call, re-checking the volume limits under the store's write lock: of
    # simultaneous requests, only as many as the limits allow get a record.
    from callagent.store import DuplicateKey

    try:
        created = await service.db(
            service.store.create_if_within_limits,
            CallRecord.from_request(request, idempotency_key=idempotency_key),
            policy.limits,
            now=now,
        )
    except DuplicateKey as exc:  # a concurrent retry with the same key won the race
        return _same_key(exc.existing, number, idempotency_key or "")
    if isinstance(created, Refusal):
        await _refuse(service, created, number)
    record = created

    # 5. Only now does anything reach LiveKit.
    log.info("call %s: placing a call to %s", request.call_id, mask(number))
    record = await _place(service, record, request)
    text = record.to_text()
    if record.status not in TERMINAL_STATUSES:
        text += f"\n\nNext: call wait_for_call(call_id={record.call_id!r}) until the call has ended."
    return _result(record, text)


async def _refuse(service: CallService, refusal: Refusal, number: str | None, *, shown: str | None = None) -> NoReturn:
    """Keep the refusal for audit, log it (number masked) and end the tool call with it.

    `number` is the E.164 number when there is one; else `shown`, the client's input masked.
    """
    kept = number if number is not None else shown
    log.info(
        "refused a call to %s: rule %s", mask(number) if number else (shown or "(no number)"), refusal.rule
    )
    try:
        await service.db(service.store.record_refusal, kept, refusal.rule, refusal.message, setting=refusal.setting)
    except Exception:  # the refusal stands even when it cannot be written down
        log.exception("could not record a refusal (rule %s) for audit", refusal.rule)
    raise ToolError(refusal.text())


async def _confirmation_required(
    service: CallService,
    reason: str,
    args_hash: str,
    target: DialTarget,
    request: CallRequest,
    idempotency_key: str | None,
) -> CallToolResult:
    ttl = service.policy.confirm_ttl_s
    issued_at = utcnow()
    token = await service.db(service.store.issue_confirmation, args_hash, ttl, now=issued_at)
    preview = DialPreview(
        phone_number=target.e164,
        phone_number_display=_display(target),
        region=target.region,
        goal=request.goal,
        context=request.context,
        greeting=request.greeting,
        caller_name=request.caller_name,
        caller_id=getattr(request, "caller_id", None),
        max_duration_s=request.max_duration_s,
        ring_timeout_s=request.ring_timeout_s,
        idempotency_key=idempotency_key,
    )
    result = ConfirmationRequired(
        message=reason,
        confirmation_token=token,
        expires_at=issued_at + timedelta(seconds=ttl),
        expires_in_s=ttl,
        call=preview,
    )
    log.info("call to %s needs a confirmation; token issued (valid %d s)", mask(target.e164), ttl)
    lines = [
        f"Not dialed yet: a person must confirm this call first (rule 'confirmation', setting DIAL_CONFIRM="
        f"{service.policy.confirm}): {reason}.",
        "",
        "Ask your user to approve exactly this call:",
        f"  Number:   {preview.phone_number_display} ({preview.phone_number})",
        f"  Goal:     {preview.goal}",
    ]
    if preview.context:
        lines.append(f"  Context:  {preview.context}")
    lines.append(
        f"  Greeting: \"{disclosure(preview.caller_name)}\""
        + (f" then: {preview.greeting}" if preview.greeting else "")
    )
    lines += [
        f"  At most {preview.max_duration_s} s; rings for up to {preview.ring_timeout_s} s.",
        "",
        "If they approve, call make_phone_call again with exactly the same arguments plus "
        f"confirmation_token={token!r}. The token works once, only for these arguments, until "
        f"{result.expires_at:%H:%M:%S} UTC ({ttl} s). If they do not approve, do not call.",
    ]
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(lines))],
        structured_content=result.model_dump(mode="json"),
    )


# Dropping the extension would ring the main number and talk to whoever answers there.
_EXTENSION_NOT_DIALED = Refusal(
    Rule.extension,
    "this version of callagent cannot dial an extension after the call connects yet, and will not ring "
    "the main number instead; give the number without the extension only if the main number is who "
    "you mean to reach",
    "DIAL_ALLOW_EXTENSIONS",
)


def _masked_input(raw: object) -> str | None:
    """What the client sent as a number, fit for a log line or the audit: digits masked,
    unprintable characters escaped (no log injection), at most 32 characters."""
    if not isinstance(raw, str):
        return None
    shown = printable(mask(raw[:64]))
    return shown if len(shown) <= 32 and len(raw) <= 64 else shown[:31] + "…"


def _display(target: DialTarget) -> str:
    """The number in international format for people, e.g. "+1 415-555-0100"."""
    import phonenumbers

    return phonenumbers.format_number(phonenumbers.parse(target.e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


async def _place(service: CallService, record: CallRecord, request: CallRequest) -> CallRecord:
    """Hand the call to the dialer, bounded in time; on any failure the record ends failed.

    The dialer runs in its own task so that its clean-up (deleting the room and dispatch, which
    against an unresponsive LiveKit can take long) never holds up the tool's answer: past the
    deadline the call is marked failed, the dialer is cancelled, and it cleans up on its own.
    """
    reason = "the MCP client canceled the request while the call was being placed"
    task: asyncio.Task[CallRecord] | None = None
    try:
        from callagent.dialer import DialError

        task = service.spawn(service.dialer().place(record, request))
        await asyncio.wait({task}, timeout=PLACE_DEADLINE_S)
        if task.done():
            placed = task.result()
            reason = ""
            return placed
        reason = (
            f"placing the call took longer than {PLACE_DEADLINE_S:g} s; check that LiveKit at "
            f"LIVEKIT_URL={service.settings.livekit_url} is reachable and responsive"
        )
        log.warning("call %s not placed: %s", record.call_id, reason)
        _mark_failed(service, record.call_id, reason)  # before the dialer's cancellation can say otherwise
        task.cancel()
        await asyncio.wait({task}, timeout=CLEANUP_GRACE_S)
    except Exception as exc:
        if isinstance(exc, DialError):
            reason = str(exc)
        else:
            log.exception("call %s: placing the call failed", record.call_id)
            reason = f"placing the call failed: {exc.__class__.__name__}: {_first_line(exc)}"
    finally:
        final: CallRecord | None = None
        if reason:
            if task is not None and not task.done():
                task.cancel()  # cancelled ourselves: the dialer cleans up in the background
            # The dialer marks a failed call itself; this is the backstop, so that no record is
            # ever left queued or dialing (also when cancelled, hence no await here). The first
            # terminal status wins, so it never overrides what the dialer wrote.
            final = _mark_failed(service, record.call_id, reason)
    status = final.status if final is not None else CallStatus.failed
    raise ToolError(f"{reason} (call {record.call_id} is {status})")


def _mark_failed(service: CallService, call_id: str, reason: str) -> CallRecord | None:
    """Fail a call that is still live (blocking, one UPDATE); returns the record as it now is."""
    try:
        return service.store.transition(call_id, CallStatus.failed, ended_reason=reason) or service.store.get(
            call_id
        )
    except Exception:
        log.exception("call %s: could not mark the call failed", call_id)
        return None


def _same_key(existing: CallRecord, number: str, key: str) -> CallToolResult:
    if existing.phone_number != number:
        raise ToolError(
            f"idempotency_key {_quote(key, 60)} was already used for call {existing.call_id} to another number; "
            "use a new key for a new call"
        )
    note = f"A call with idempotency_key {_quote(key, 60)} already exists; it was not dialed again."
    return _result(existing, f"{note}\n{existing.to_text()}")


async def wait_for_call(
    call_id: Annotated[str, Field(max_length=64, description="The call_id returned by make_phone_call.")],
    ctx: Context,
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
    """Wait until a call changes status or ends, then return its record.

    Returns early on any status change (e.g. ringing → in_progress), or after `timeout_s` with
    the call unchanged. Call it again until the status is terminal (completed, voicemail,
    no_answer, busy, declined, failed, canceled); the final record holds the transcript,
    summary and outcome. Sends progress notifications while waiting.
    """
    if not 0 < timeout_s <= MAX_WAIT_S:
        raise ToolError(
            f"timeout_s must be more than 0 and at most {MAX_WAIT_S:g} seconds, not {timeout_s:g} "
            "(MCP clients give up on a tool call after about 60 s); call wait_for_call again to keep waiting"
        )
    if last_status is not None:
        try:
            last_status = CallStatus(last_status.strip().lower())
        except ValueError:
            raise ToolError(
                f"unknown last_status {_quote(last_status)}; use one of: {', '.join(s.value for s in CallStatus)}"
            ) from None
    service = _service(ctx)
    await service.reap()
    record = await service.get(call_id)
    entry_status = last_status or record.status
    started = time.monotonic()
    deadline = started + timeout_s
    next_progress = started
    while record.status == entry_status and record.status not in TERMINAL_STATUSES:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_progress:
            elapsed = now - started
            await ctx.report_progress(
                round(min(elapsed, timeout_s), 1), timeout_s, f"{record.status} ({_status_age(record):.0f} s)"
            )
            next_progress += PROGRESS_INTERVAL_S
        await anyio.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - now)))
        await service.reap()
        record = await service.get(call_id)

    text = record.to_text()
    if record.status == entry_status and record.status not in TERMINAL_STATUSES:
        text = (
            f"Still {record.status} after waiting {timeout_s:g} s; call wait_for_call again to keep waiting.\n"
            + text
        )
    elif record.status not in TERMINAL_STATUSES:
        text += f"\n\nThe call is still live: call wait_for_call(call_id={record.call_id!r}) again."
    return _result(record, text)


async def get_call(
    call_id: Annotated[str, Field(max_length=64, description="The call_id returned by make_phone_call.")],
    ctx: Context,
) -> Annotated[CallToolResult, CallRecord]:
    """Get one call's record: status, timings, transcript, summary and outcome."""
    service = _service(ctx)
    await service.reap()
    record = await service.get(call_id)
    return _result(record, record.to_text())


async def list_calls(
    ctx: Context,
    status: Annotated[
        str | None,
        Field(description="Only calls in this status: " + ", ".join(s.value for s in CallStatus) + "."),
    ] = None,
    phone_number: Annotated[str | None, Field(max_length=64, description="Only calls to this number.")] = None,
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_LIST_LIMIT, description="Calls per page.")] = 20,
    cursor: Annotated[
        str | None, Field(max_length=200, description="The next_cursor of the previous page, to get the page after it.")
    ] = None,
) -> Annotated[CallToolResult, CallList]:
    """List recent calls, newest first, optionally filtered by status or number; paginated."""
    service = _service(ctx)
    if status is not None:
        try:
            status = CallStatus(status.strip().lower()).value
        except ValueError:
            raise ToolError(
                f"unknown status {_quote(status)}; use one of: {', '.join(s.value for s in CallStatus)}"
            ) from None
    number = None
    if phone_number is not None:
        try:
            number = normalize(phone_number, service.settings.default_region)
        except InvalidNumber as exc:
            raise ToolError(str(exc)) from None
    await service.reap()
    try:
        records, next_cursor = await service.db(
            service.store.list, status=status, phone_number=number, limit=limit, cursor=cursor
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from None

    page = CallList(calls=records, next_cursor=next_cursor)
    if records:
        lines = [f"{len(records)} call(s), newest first:"]
        for r in records:
            line = f"- {r.call_id}  {r.status}  {mask(r.phone_number)}  {r.created_at:%Y-%m-%d %H:%M:%S} UTC"
            if r.ended_reason:
                line += f"  ({r.ended_reason})"
            lines.append(line)
    else:
        lines = ["No calls found."]
    if next_cursor:
        lines.append(f"More calls: pass cursor={next_cursor!r}.")
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(lines))],
        structured_content=page.model_dump(mode="json"),
    )


async def end_call(
    call_id: Annotated[str, Field(max_length=64, description="The call_id of the live call to hang up.")],
    ctx: Context,
) -> Annotated[CallToolResult, EndCallResult]:
    """Hang up a live call; its status becomes canceled once the hang-up is confirmed.

    Ending an ended call changes nothing. If the hang-up cannot be confirmed, the result is an
    error saying the line may still be up; the worker holding the call has then been asked to
    hang up by itself.
    """
    service = _service(ctx)
    await service.reap()
    record = await service.get(call_id)
    if record.status not in TERMINAL_STATUSES:
        reason = "ended by the MCP client"
        problem = await service.hang_up(record, reason)
        if problem is not None:
            log.warning("call %s: hang-up not confirmed: %s", call_id, problem)
            raise ToolError(
                f"could not confirm that call {call_id} was hung up: {problem}. The line may still be up. "
                f"The calling worker has been asked to hang up and checks every {HEARTBEAT_S:g} s: follow the "
                "call with wait_for_call or get_call, and call end_call again if it is still live."
            )
        ended = await service.db(service.store.transition, call_id, CallStatus.canceled, ended_reason=reason)
        if ended is not None:
            log.info("call %s: hung up by the MCP client", call_id)
            return _result(EndCallResult(**_fields(ended)), f"Hung up.\n{ended.to_text()}")
        record = await service.get(call_id)  # it ended on its own meanwhile
    note = f"The call had already ended ({record.status}); nothing to hang up."
    return _result(EndCallResult(**_fields(record), note=note), f"{note}\n{record.to_text()}")


async def dial_policy(ctx: Context) -> Annotated[CallToolResult, DialPolicyInfo]:
    """What the dial policy allows right now, before you place a call.

    Countries, allow and deny lists, quiet hours (callee's local time), volume limits with how
    many calls are live and left this hour, whether calls need a person's confirmation, size
    limits, and what is never called (emergency, premium-rate numbers, the do-not-call list).
    Every refusal of make_phone_call names one of these rules and the setting behind it.
    """
    service = _service(ctx)
    await service.reap()
    counts = await service.db(service.store.counts)
    info = describe(service.policy, counts=counts)
    return CallToolResult(
        content=[TextContent(type="text", text=_policy_text(info))],
        structured_content=DialPolicyInfo.model_validate(info).model_dump(mode="json"),
    )


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
        "- Extensions: refused (this version cannot dial them yet)",
        f"- Sizes: goal {text_limits['goal']}, context {text_limits['context']}, greeting "
        f"{text_limits['greeting']} characters; no control or invisible characters, and nothing "
        "that takes back the AI disclosure",
        f"- Call length: {info['max_duration_s']['default']} s by default, at most {info['max_duration_s']['cap']} s",
        f"- Never called: {'; '.join(info['never_called'])}",
        "- The agent always says first that it is an AI assistant calling on the operator's behalf.",
    ]
    return "\n".join(lines)


async def call_resource(call_id: str, ctx: Context) -> str:
    """One call's record (status, timings, transcript, summary, outcome) as JSON."""
    service = _service(ctx)
    try:
        await service.reap()
        record = await service.db(service.store.get, call_id)
    except ToolError as exc:
        raise ResourceError(str(exc)) from None
    if record is None:
        raise ResourceNotFoundError(f"no call with call_id {_quote(call_id)}")
    return record.model_dump_json(indent=2)


# -- helpers ------------------------------------------------------------------------------------


def _result(record: CallRecord, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=record.model_dump(mode="json"),
    )


def _fields(record: CallRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CallRecord.model_fields}


def _status_age(record: CallRecord) -> float:
    """Seconds the call has been in its current status (roughly: since the matching timestamp)."""
    since = {
        CallStatus.queued: record.created_at,
        CallStatus.dialing: record.dialed_at,
        CallStatus.ringing: record.dialed_at,
        CallStatus.in_progress: record.answered_at,
    }.get(record.status) or record.updated_at
    return max(0.0, (utcnow() - since).total_seconds())


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return _cap(text.splitlines()[0], 300) if text else exc.__class__.__name__


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _quote(value: object, limit: int = 40) -> str:
    """A client's input quoted in an error text: escaped, and cut, since it is echoed back."""
    return repr(_cap(printable(str(value)), limit))


def _livekit_gives_up_at(record: CallRecord) -> datetime:
    """When LiveKit ends the call by itself at the latest (ringing, then max_call_duration)."""
    started = record.dialed_at or record.created_at
    return started + timedelta(seconds=record.ring_timeout_s + record.max_duration_s + LIVEKIT_CALL_MARGIN_S)


# -- the server ----------------------------------------------------------------------------------

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

INSTRUCTIONS = """\
Places real outbound phone calls held by an AI voice agent.
Flow: make_phone_call (returns once the phone rings) → wait_for_call, repeatedly, until the
status is terminal → read transcript, summary and outcome. end_call hangs up a live call.
Each call is also readable as the resource calls://{call_id}.
A dial policy set by the operator applies to every call; dial_policy shows it. A refused call
is an error naming the rule and the setting behind it: tell your user, do not work around it.
If make_phone_call answers `confirmation_required`, show the call to your user and, only if
they approve, call again with the same arguments plus the confirmation_token."""


def create_server(settings: Settings | None = None, **mcp_options: Any) -> MCPServer[CallService]:
    """The callagent MCP server.

    `settings` defaults to `get_settings()` (the environment and the project's `.env`).
    `mcp_options` go to `MCPServer` as they are, e.g. `auth=` and `token_verifier=` to require
    bearer tokens on the HTTP transport.
    """
    settings = settings if settings is not None else get_settings()
    log_level = settings.log_level
    server: MCPServer[CallService] = MCPServer(
        "callagent",
        title="callagent: outbound phone calls",
        instructions=INSTRUCTIONS,
        version=_version(),
        lifespan=lambda app: _lifespan(app, settings),
        log_level=log_level if log_level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO",
        **mcp_options,
    )
    server.add_tool(
        make_phone_call,
        title="Make a phone call",
        annotations=ToolAnnotations(
            title="Make a phone call",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    server.add_tool(
        wait_for_call,
        title="Wait for a call to progress",
        annotations=_READ_ONLY.model_copy(update={"title": "Wait for a call to progress"}),
    )
    server.add_tool(
        get_call, title="Get a call", annotations=_READ_ONLY.model_copy(update={"title": "Get a call"})
    )
    server.add_tool(
        list_calls, title="List calls", annotations=_READ_ONLY.model_copy(update={"title": "List calls"})
    )
    server.add_tool(
        dial_policy,
        title="Dial policy",
        annotations=_READ_ONLY.model_copy(update={"title": "Dial policy"}),
    )
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
    for tool in server._tool_manager.list_tools():
        # Published: an argument this version does not know is refused, not dropped.
        tool.parameters["additionalProperties"] = False
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
                        content=[TextContent(type="text", text=(
                            f"{tool.name} has no argument {shown}; nothing was done. Its arguments are: "
                            f"{', '.join(sorted(known))}."
                        ))],
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
