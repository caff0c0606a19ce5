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
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from callagent.calls import (
    TERMINAL_STATUSES,
    CallRecord,
    CallRequest,
    CallStatus,
    new_call_id,
    utcnow,
)
from callagent.numbers import InvalidNumber, mask, normalize
from callagent.settings import ENV_FILE, Settings, get_settings, missing_livekit_settings

if TYPE_CHECKING:
    from callagent.dialer import Dialer
    from callagent.store import CallStore

__all__ = [
    "DEFAULT_GOAL",
    "CallList",
    "CallService",
    "EndCallResult",
    "create_server",
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


# -- the service behind the tools -------------------------------------------------------------


class CallService:
    """Settings, the call store and the dialer, opened lazily; one per server lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
            self.maybe_reap()  # imports SQLAlchemy, opens (and if need be creates) the database
            normalize("+14155550100", self.settings.default_region)  # phone number metadata
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

    def maybe_reap(self) -> None:
        """Fail calls whose worker went quiet; at most once every REAP_INTERVAL_S. Blocking."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_reap < REAP_INTERVAL_S:
                return
            self._last_reap = now
        for record in self.store.reap_stale(self.settings.stale_after_s):
            log.warning("call %s: %s", record.call_id, record.ended_reason)

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
                f"the call store at CALLAGENT_DB_URL={_hide_password(self.settings.db_url)} failed: "
                f"{exc.__class__.__name__}: {_first_line(exc)}"
            ) from exc

    async def reap(self) -> None:
        await self.db(self.maybe_reap)

    async def get(self, call_id: str) -> CallRecord:
        record = await self.db(self.store.get, call_id)
        if record is None:
            raise ToolError(f"no call with call_id {call_id!r}; list_calls shows the recent calls")
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


async def make_phone_call(
    phone_number: Annotated[
        str, Field(description="The number to call, ideally in international form, e.g. +14155550100.")
    ],
    ctx: Context,
    goal: Annotated[
        str | None,
        Field(description=f"What the call should achieve, in plain words. Default: {DEFAULT_GOAL!r}."),
    ] = None,
    context: Annotated[
        str | None, Field(description="Background the agent may use during the call (names, dates, order ids).")
    ] = None,
    greeting: Annotated[
        str | None,
        Field(description="The first sentence the agent says once answered; by default it introduces itself."),
    ] = None,
    caller_id: Annotated[
        str | None,
        Field(description="The number to show the callee as caller ID. Default: the outbound SIP trunk's number."),
    ] = None,
    ring_timeout_s: Annotated[
        int | None,
        Field(description="Seconds to let the phone ring, 5-120. Default: CALLAGENT_RING_TIMEOUT_S."),
    ] = None,
    max_duration_s: Annotated[
        int | None,
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
) -> Annotated[CallToolResult, CallRecord]:
    """Place an outbound phone call; an AI voice agent holds the conversation toward `goal`.

    Returns as soon as the phone is ringing (within seconds), with the `call_id` and status.
    Then call `wait_for_call` with the `call_id` until the status is terminal (completed,
    voicemail, no_answer, busy, declined, failed, canceled) to get the transcript, summary and
    outcome. The agent says it is an AI assistant calling on the caller's behalf.
    """
    service = _service(ctx)
    settings = service.settings

    try:
        number = normalize(phone_number, settings.default_region)
    except InvalidNumber as exc:
        raise ToolError(str(exc)) from None

    if ring_timeout_s is None:
        ring_timeout_s = min(max(settings.ring_timeout_s, RING_TIMEOUT_RANGE_S[0]), RING_TIMEOUT_RANGE_S[1])
    elif not RING_TIMEOUT_RANGE_S[0] <= ring_timeout_s <= RING_TIMEOUT_RANGE_S[1]:
        raise ToolError(
            f"ring_timeout_s must be between {RING_TIMEOUT_RANGE_S[0]} and {RING_TIMEOUT_RANGE_S[1]} "
            f"seconds, not {ring_timeout_s} (leave it out to use CALLAGENT_RING_TIMEOUT_S={settings.ring_timeout_s})"
        )
    cap = settings.max_duration_cap_s
    if max_duration_s is None:
        max_duration_s = min(settings.max_duration_s, cap)
    elif not 0 < max_duration_s <= cap:
        raise ToolError(
            f"max_duration_s must be between 1 and {cap} seconds, not {max_duration_s} "
            f"(the cap is CALLAGENT_MAX_DURATION_CAP_S={cap})"
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
            max_duration_s=max_duration_s,
            ring_timeout_s=ring_timeout_s,
            **({"caller_id": from_number} if from_number else {}),
        )
        request.to_metadata()  # too big for LiveKit's dispatch metadata? Say so before dialing.
    except ValidationError as exc:
        raise ToolError(_validation_text(exc)) from None
    except ValueError as exc:
        raise ToolError(str(exc)) from None

    from callagent.store import DuplicateKey

    try:
        record = await service.db(
            service.store.create, CallRecord.from_request(request, idempotency_key=idempotency_key)
        )
    except DuplicateKey as exc:  # a concurrent retry with the same key won the race
        return _same_key(exc.existing, number, idempotency_key or "")

    log.info("call %s: placing a call to %s", request.call_id, mask(number))
    record = await _place(service, record, request)
    text = record.to_text()
    if record.status not in TERMINAL_STATUSES:
        text += f"\n\nNext: call wait_for_call(call_id={record.call_id!r}) until the call has ended."
    return _result(record, text)


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
    status = final.status if final is not None else CallStatus.FAILED
    raise ToolError(f"{reason} (call {record.call_id} is {status})")


def _mark_failed(service: CallService, call_id: str, reason: str) -> CallRecord | None:
    """Fail a call that is still live (blocking, one UPDATE); returns the record as it now is."""
    try:
        return service.store.transition(call_id, CallStatus.FAILED, ended_reason=reason) or service.store.get(
            call_id
        )
    except Exception:
        log.exception("call %s: could not mark the call failed", call_id)
        return None


def _same_key(existing: CallRecord, number: str, key: str) -> CallToolResult:
    if existing.phone_number != number:
        raise ToolError(
            f"idempotency_key {key!r} was already used for call {existing.call_id} to another number; "
            "use a new key for a new call"
        )
    note = f"A call with idempotency_key {key!r} already exists; it was not dialed again."
    return _result(existing, f"{note}\n{existing.to_text()}")


async def wait_for_call(
    call_id: Annotated[str, Field(description="The call_id returned by make_phone_call.")],
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
                f"unknown last_status {last_status!r}; use one of: {', '.join(s.value for s in CallStatus)}"
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
    call_id: Annotated[str, Field(description="The call_id returned by make_phone_call.")],
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
    phone_number: Annotated[str | None, Field(description="Only calls to this number.")] = None,
    limit: Annotated[int, Field(ge=1, le=MAX_LIST_LIMIT, description="Calls per page.")] = 20,
    cursor: Annotated[
        str | None, Field(description="The next_cursor of the previous page, to get the page after it.")
    ] = None,
) -> Annotated[CallToolResult, CallList]:
    """List recent calls, newest first, optionally filtered by status or number; paginated."""
    service = _service(ctx)
    if status is not None:
        try:
            status = CallStatus(status.strip().lower()).value
        except ValueError:
            raise ToolError(
                f"unknown status {status!r}; use one of: {', '.join(s.value for s in CallStatus)}"
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
    call_id: Annotated[str, Field(description="The call_id of the live call to hang up.")],
    ctx: Context,
) -> Annotated[CallToolResult, EndCallResult]:
    """Hang up a live call; its status becomes canceled. Ending an ended call changes nothing."""
    service = _service(ctx)
    await service.reap()
    record = await service.get(call_id)
    if record.status not in TERMINAL_STATUSES:
        ended = await service.db(
            service.store.transition, call_id, CallStatus.CANCELED, ended_reason="ended by the MCP client"
        )
        if ended is not None:
            log.info("call %s: ended by the MCP client", call_id)
            if not missing_livekit_settings(service.settings):
                try:
                    await service.dialer().hang_up(call_id)
                except Exception as exc:
                    log.warning("call %s: hanging up failed: %s", call_id, exc)
                    raise ToolError(
                        f"call {call_id} is marked canceled but hanging up failed "
                        f"({exc.__class__.__name__}: {_first_line(exc)}); check that LiveKit at "
                        f"LIVEKIT_URL={service.settings.livekit_url} is reachable"
                    ) from exc
            return _result(EndCallResult(**_fields(ended)), f"Hung up.\n{ended.to_text()}")
        record = await service.get(call_id)  # it ended on its own meanwhile
    note = f"The call had already ended ({record.status}); nothing to hang up."
    return _result(EndCallResult(**_fields(record), note=note), f"{note}\n{record.to_text()}")


async def call_resource(call_id: str, ctx: Context) -> str:
    """One call's record (status, timings, transcript, summary, outcome) as JSON."""
    service = _service(ctx)
    try:
        await service.reap()
        record = await service.db(service.store.get, call_id)
    except ToolError as exc:
        raise ResourceError(str(exc)) from None
    if record is None:
        raise ResourceNotFoundError(f"no call with call_id {call_id!r}")
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
        CallStatus.QUEUED: record.created_at,
        CallStatus.DIALING: record.dialed_at,
        CallStatus.RINGING: record.dialed_at,
        CallStatus.IN_PROGRESS: record.answered_at,
    }.get(record.status) or record.updated_at
    return max(0.0, (utcnow() - since).total_seconds())


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# -- the server ----------------------------------------------------------------------------------

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

INSTRUCTIONS = """\
Places real outbound phone calls held by an AI voice agent.
Flow: make_phone_call (returns once the phone rings) → wait_for_call, repeatedly, until the
status is terminal → read transcript, summary and outcome. end_call hangs up a live call.
Each call is also readable as the resource calls://{call_id}."""


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
    server.middleware.append(_warm_after_listing)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("callagent")
    except PackageNotFoundError:
        return "0"
