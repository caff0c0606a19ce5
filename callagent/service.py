"""The use cases of callagent, one place for every door (MCP tools, the CLI, the console).

How a call is placed (`place`), in order, before anything reaches LiveKit:

1. `preflight`: the number, the texts and the duration are checked, the dial policy is asked
   with the store's facts (lists, counts), and an earlier call with the same idempotency key
   is found. The answer is what would be dialed, or a refusal.
2. A call that needs a person's confirmation gets it from the door (an approval) or from a
   confirmation token; otherwise a token is issued and nothing is dialed.
3. The record is created only if the policy still admits it under the store's write lock.
4. The dialer places it; any failure is a `PlacementFailed`, the record failed with the reason.

Everything here is transport-free: typed arguments in, domain results and `callagent.errors`
out. A refused call is kept for audit whichever door asked.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from callagent import recordings, result_schema
from callagent.calls import (
    DEFAULT_PROFILE,
    DEFAULT_TRANSFER_WHEN,
    DTMF_CHARS,
    HEARTBEAT_S,
    MAX_DTMF,
    MAX_TRANSFER_WHEN,
    TERMINAL_STATUSES,
    CallRecord,
    CallRequest,
    CallStatus,
    EndReason,
    Recording,
    new_call_id,
    utcnow,
)
from callagent.errors import (
    BadArgument,
    CallagentError,
    HangUpNotConfirmed,
    NotConfigured,
    NotFound,
    PlacementFailed,
    Refused,
    StoreUnavailable,
)
from callagent.numbers import DialTarget, InvalidNumber, mask, normalize, printable
from callagent.policy import (
    Allowed,
    Counts,
    DialPolicy,
    Lists,
    NeedsConfirmation,
    Refusal,
    Rule,
    call_args_hash,
    check_text,
    describe,
)
from callagent.profiles import Profile, Profiles
from callagent.redact import redact_url
from callagent.settings import Settings, env_files, load_profiles, missing_livekit_settings, recordings_dir

if TYPE_CHECKING:
    from callagent.dialer import Dialer
    from callagent.store import Database, StaleCall

__all__ = [
    "DEFAULT_GOAL",
    "CallArgs",
    "CallService",
    "ConfirmationIssued",
    "Ended",
    "Placed",
    "Prepared",
    "Waited",
]

log = logging.getLogger("callagent.service")

T = TypeVar("T")

DEFAULT_GOAL = "Have a short, friendly conversation"
RING_TIMEOUT_RANGE_S = (5, 120)
# A client gives up on a tool call after about 60 s; stay well inside that.
MAX_WAIT_S = 50.0
# Placing a call normally takes a few seconds; past this it is abandoned (and cleaned up, which
# may take a few more seconds against an unresponsive LiveKit).
PLACE_DEADLINE_S = 40.0  # a worker's join (5 + 15 s at most by default) and the dial
CLEANUP_GRACE_S = 5.0
# A call still queued or dialing without a worker's heartbeat after this long was left behind
# by a server that died placing it: a live server fails it itself within PLACE_DEADLINE_S.
ORPHAN_AFTER_S = PLACE_DEADLINE_S + CLEANUP_GRACE_S
# LiveKit ends a call on its own at max_duration_s + this (the dialer's max_call_duration).
LIVEKIT_CALL_MARGIN_S = 60
POLL_INTERVAL_S = 0.2
PROGRESS_INTERVAL_S = 1.0
REAP_INTERVAL_S = 5.0
# Recordings past CALLAGENT_RECORDING_RETENTION_DAYS are looked for at most this often per
# process (one directory listing; the worker looks too).
EXPIRE_INTERVAL_S = 3600.0
# A recording still marked "recording" this long after its call ended lost its worker: the
# worker closes the file into the record within seconds of the end.
RECORDING_SETTLE_S = 120.0
MAX_PAGE = 100
MAX_REASONING = 2000
ENDED_BY_CLIENT = "ended by the MCP client"


# -- what the use cases take and give ----------------------------------------------------------


@dataclass(frozen=True)
class CallArgs:
    """What a door asks for: a number and how the call should go."""

    phone_number: str
    goal: str | None = None
    context: str | None = None
    greeting: str | None = None
    ring_timeout_s: int | None = None
    max_duration_s: int | None = None
    idempotency_key: str | None = None
    dtmf: str | None = None  # digits to send once answered: 0-9 * #, pauses w (0.5 s) and W (1 s)
    result_schema: dict[str, Any] | None = None  # a JSON Schema of what the call should learn
    max_hold_s: int | None = None  # how long to wait on hold for a person (CALLAGENT_MAX_HOLD_S)
    transfer_to: str | None = None  # a person to hand the call to (CALLAGENT_TRANSFER_NUMBERS)
    transfer_when: str | None = None  # when to hand it over, in plain words
    transfer_mode: str | None = None  # warm (default) or cold
    record: bool | None = None  # record the call (CALLAGENT_RECORDING)
    reasoning: str | None = None  # why the client wants the call, for the operator (DIAL_REQUIRE_REASONING)
    profile: str | None = None  # the operator's calling profile (callagent.toml); None: the caller's default
    caller_id: str | None = None  # the number the callee sees: one of the profile's caller_ids


@dataclass(frozen=True)
class Prepared:
    """What `preflight` found: the call that would be dialed, and whether a person must confirm
    it first; or `existing`, the call an earlier request with the same idempotency key made."""

    target: DialTarget
    request: CallRequest
    decision: Allowed | NeedsConfirmation
    args_hash: str
    idempotency_key: str | None = None
    existing: CallRecord | None = None
    policy: DialPolicy = field(
        default_factory=DialPolicy
    )  # the profile's, with its tenant's limits: what admits the call
    tenant: str | None = None  # whose client asks; None: the operator


@dataclass(frozen=True)
class ConfirmationIssued:
    """Nothing dialed: a person must confirm first. The door shows `prepared` to its user and
    comes back with `token` (single use, these arguments only, until `expires_at`)."""

    reason: str
    token: str
    expires_at: datetime
    ttl_s: int
    prepared: Prepared
    mode: str  # DIAL_CONFIRM's value: why this call is asked about


@dataclass(frozen=True)
class Placed:
    """The call, ringing or already ended; `existing` when it is an earlier call returned for a
    retry with the same idempotency key (not dialed again)."""

    record: CallRecord
    existing: bool = False


@dataclass(frozen=True)
class Waited:
    record: CallRecord
    changed: bool  # False: the wait timed out with the call as it was


@dataclass(frozen=True)
class Ended:
    record: CallRecord
    note: str | None = None  # set when there was nothing to hang up


Progress = Callable[[float, str], Awaitable[None]]


# -- the service -------------------------------------------------------------------------------


class CallService:
    """Settings, the call store, the dial policy and the dialer; one per process lifetime.

    The store and the dialer open lazily (the MCP server must start fast), and `warm_up_after`
    loads them in a background thread once a client is known to stay.
    """

    def __init__(self, settings: Settings, profiles: Profiles | None = None) -> None:
        self.settings = settings
        # The profiles and tenants (callagent.toml); the default profile's policy is the settings'.
        self.profiles: Profiles = profiles if profiles is not None else load_profiles(settings)
        self.policy = self.profiles.default.policy
        self._db: Database | None = None
        self._dialer: Dialer | None = None
        self._lock = threading.Lock()
        self._last_reap = -math.inf
        self._last_expiry = -math.inf
        self._warm_thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- opening and closing ---------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            with self._lock:
                if self._db is None:
                    from callagent.store import Database

                    self._db = Database(self.settings.db_url)
        return self._db

    def dialer(self) -> Dialer:
        """The dialer; only once the LiveKit settings are known to be present."""
        if self._dialer is None:
            from callagent.dialer import Dialer

            self._dialer = Dialer(self.settings, self.db)
        return self._dialer

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
            self.db.calls.counts()  # imports SQLAlchemy, opens (and if need be creates) the database
            # Phone number metadata: emergency short codes, number types, time zones.
            self.policy.check("+14155550100", now=utcnow(), counts=Counts(), lists=Lists())
            if not missing_livekit_settings(self.settings):
                import aiohttp  # noqa: F401
                import livekit.api  # noqa: F401

                import callagent.dialer  # noqa: F401
            log.debug("warmed up")
        except Exception as exc:  # noqa: BLE001 - only a warm-up: the first use reports it properly
            log.debug("warm-up failed: %s", exc)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` in a task this service owns: it may outlive the request that started it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
            await asyncio.to_thread(thread.join, 10.0)
        if self._dialer is not None:
            await self._dialer.aclose()
        if self._db is not None:
            self._db.close()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking store operation, in a thread; database trouble becomes StoreUnavailable."""
        from callagent.store import StoreError

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (StoreError, ValueError, CallagentError):
            raise
        except Exception as exc:
            log.exception("call store error")
            raise StoreUnavailable(
                f"the call store at CALLAGENT_DB_URL={redact_url(self.settings.db_url)} failed: "
                f"{exc.__class__.__name__}: {_first_line(exc)}"
            ) from exc

    # -- placing a call --------------------------------------------------------------------

    @property
    def asks_for_confirmation(self) -> bool:
        """Whether a door should ask its own user to confirm calls (DIAL_CONFIRM, when the
        client confirms: DIAL_CONFIRM_BY=client). With the operator confirming, it never asks."""
        confirms = any(p.policy.confirm != "never" for p in self.profiles.profiles.values())
        return confirms and self.settings.dial_confirm_by == "client"

    async def preflight(self, args: CallArgs, *, tenant: str | None = None) -> Prepared | Refusal:
        """What `place` would dial for `args` when `tenant`'s client asks (None: the
        operator's), and whether a person must confirm it; or the refusal, naming the setting
        that governs it (a profile's own where it narrowed the rule). Nothing is written,
        dialed or recorded for audit: a door may ask before it asks its user."""
        profile = self.profiles.resolve(args.profile, tenant)
        if isinstance(profile, Refusal):
            return profile
        policy = self.profiles.policy_for(profile, tenant)
        prepared = await self._preflight(args, tenant, profile, policy)
        if isinstance(prepared, Refusal):
            try:
                number: str | None = normalize(args.phone_number, policy.default_region)
            except (InvalidNumber, TypeError):
                number = None
            return policy.named(prepared, number)
        return prepared

    async def _preflight(
        self, args: CallArgs, tenant: str | None, profile: Profile, policy: DialPolicy
    ) -> Prepared | Refusal:
        settings = self.settings
        target = policy.parse_number(args.phone_number)
        if isinstance(target, Refusal):
            return target
        refusal = policy.check_text_fields(args.goal, args.context, args.greeting, idempotency_key=args.idempotency_key)
        if refusal is not None:
            return refusal
        refusal = self._check_reasoning(args.reasoning)
        if refusal is not None:
            return refusal
        duration = policy.duration(args.max_duration_s)
        if isinstance(duration, Refusal):
            return duration
        ring_timeout_s = _ring_timeout(args.ring_timeout_s, settings)
        self._require_livekit()
        dtmf = _dtmf(args.dtmf, target.extension)
        if args.result_schema is not None:
            try:
                result_schema.check(args.result_schema)
            except result_schema.InvalidSchema as exc:
                raise BadArgument(str(exc)) from None
        max_hold_s = _max_hold(args.max_hold_s, settings)
        record = policy.record(args.record)
        if isinstance(record, Refusal):
            return record
        transfer = _transfer(args)
        if isinstance(transfer, Refusal):
            return transfer
        caller_id = profile.caller_id(args.caller_id)
        if isinstance(caller_id, Refusal):
            return caller_id
        transfer_to: str | None = None
        if args.transfer_to is not None:
            found = policy.transfer_target(args.transfer_to)
            if isinstance(found, Refusal):
                return found
            transfer_to = found.e164
            if transfer_to == target.e164:
                raise BadArgument("transfer_to is the number being called; give the number of someone else")
        request = _request(
            args,
            target,
            profile,
            caller_id,
            duration,
            ring_timeout_s,
            dtmf,
            max_hold_s,
            record,
            transfer_to,
            transfer,
        )
        args_hash = call_args_hash(
            phone_number=target.e164,
            goal=request.goal,
            context=request.context,
            greeting=request.greeting,
            ring_timeout_s=ring_timeout_s,
            max_duration_s=duration,
            idempotency_key=args.idempotency_key,
            transfer_to=request.transfer_to,
            transfer_when=request.transfer_when,
            transfer_mode=request.transfer_mode,
            record=request.record,
            # Only when not the default, so that tokens issued before profiles stay valid.
            **({"profile": profile.name} if profile.name != DEFAULT_PROFILE else {}),
            **({"caller_id": caller_id} if caller_id is not None else {}),
        )
        if args.idempotency_key is not None:
            # A retry of a call already placed gets that call back, whatever the limits say
            # now (the call itself may be what fills them).
            existing = await self.run(self.db.calls.find_by_idempotency_key, args.idempotency_key)
            if existing is not None:
                _same_number(existing, target.e164, args.idempotency_key, tenant)
                return Prepared(target, request, Allowed(), args_hash, args.idempotency_key, existing, policy, tenant)
        now = utcnow()
        counts, on_dnc = await self.run(self.db.calls.facts, target.e164, now, profile=profile.name, tenant=tenant)
        allowed = await self.run(self.db.allowed.listed, target.e164)
        lists = Lists(
            do_not_call=frozenset({target.e164}) if on_dnc else frozenset(),
            allowed=frozenset({target.e164}) if allowed else frozenset(),
        )
        decision = policy.check(target.e164, now=now, counts=counts, lists=lists, confirmed=False)
        if isinstance(decision, Refusal):
            return decision
        if transfer_to is not None:
            refusal = await self._leg_refusal(transfer_to, policy, profile.name, tenant)
            if refusal is not None:
                return refusal
        return Prepared(target, request, decision, args_hash, args.idempotency_key, None, policy, tenant)

    async def place(
        self,
        args: CallArgs,
        *,
        approved: bool | None = None,
        confirmation_token: str | None = None,
        tenant: str | None = None,
    ) -> Placed | ConfirmationIssued:
        """Place a call: returns once the phone rings (or the call already ended), or with a
        confirmation token when a person must confirm first.

        `approved` is a person's answer the door got when it asked (None: it did not ask);
        `confirmation_token` one issued by an earlier `place` with the same arguments.
        Raises Refused (kept for audit), PlacementFailed (the record failed with the reason),
        BadArgument, NotConfigured or StoreUnavailable.
        """
        await self.reap()
        prepared = await self.preflight(args, tenant=tenant)
        if isinstance(prepared, Refusal):
            await self.refuse(prepared, None, shown=_masked_input(args.phone_number), tenant=tenant)
        number = prepared.target.e164
        if prepared.existing is not None:
            return Placed(prepared.existing, existing=True)
        if isinstance(prepared.decision, NeedsConfirmation):
            if approved is False:
                await self.refuse(
                    Refusal(
                        Rule.confirmation,
                        f"your user did not approve calling {mask(number)} when asked to confirm it; nothing was dialed",
                    ),
                    number,
                    tenant=tenant,
                )
            elif approved:
                log.info("call to %s confirmed by the user (elicitation)", mask(number))
            elif confirmation_token is not None:
                if not await self.run(self.db.confirmations.consume, confirmation_token, prepared.args_hash):
                    await self.refuse(_TOKEN_NOT_VALID, number, tenant=tenant)
                log.info("call to %s confirmed with a confirmation token", mask(number))
            elif self.settings.dial_confirm_by == "operator":
                return Placed(await self._await_approval(prepared, args))
            else:
                return await self._issue_confirmation(prepared)

        from callagent.store import DuplicateKey

        record = CallRecord.from_request(prepared.request, idempotency_key=args.idempotency_key, tenant=tenant)
        policy = prepared.policy
        try:
            created = await self.run(
                self.db.calls.create_if_admitted,
                record,
                lambda counts, on_dnc: policy.admit(number, counts, on_dnc),
            )
        except DuplicateKey as exc:  # a concurrent retry with the same key won the race
            _same_number(exc.existing, number, args.idempotency_key or "", tenant)
            return Placed(exc.existing, existing=True)
        if isinstance(created, Refusal):
            await self.refuse(policy.named(created, number), number, tenant=tenant)
        log.info("call %s: placing a call to %s", record.call_id, mask(number))
        return Placed(await self._dial(created, prepared.request))

    def _require_livekit(self) -> None:
        missing = missing_livekit_settings(self.settings)
        if missing:
            raise NotConfigured(
                f"LiveKit is not configured: set {', '.join(missing)} in the environment or in a settings file "
                f"({' or '.join(map(str, env_files(check=False)))}; see .env.example)"
            )

    def _check_reasoning(self, reasoning: str | None) -> Refusal | None:
        if self.settings.dial_require_reasoning and not (reasoning or "").strip():
            raise BadArgument(
                "reasoning is required: say in a sentence or two why this call should be made, for the operator "
                "who approves it and for the record (DIAL_REQUIRE_REASONING=true)"
            )
        return check_text("reasoning", reasoning, MAX_REASONING)

    async def _await_approval(self, prepared: Prepared, args: CallArgs) -> CallRecord:
        """Record the call as awaiting the operator's approval: nothing is dialed until then."""
        from callagent.store import DuplicateKey

        ttl = self.settings.dial_approval_ttl_s
        record = CallRecord.from_request(
            prepared.request, idempotency_key=args.idempotency_key, tenant=prepared.tenant
        ).model_copy(
            update={
                "status": CallStatus.awaiting_approval,
                "reasoning": (args.reasoning or "").strip() or None,
                "approval_expires_at": utcnow() + timedelta(seconds=ttl),
            }
        )
        try:
            created = await self.run(self.db.calls.create, record)
        except DuplicateKey as exc:
            _same_number(exc.existing, record.phone_number, args.idempotency_key or "", prepared.tenant)
            return exc.existing
        log.info(
            "call %s to %s awaits the operator's approval (%d s)", created.call_id, mask(created.phone_number), ttl
        )
        return created

    # -- the operator's approval queue ------------------------------------------------------

    async def approvals(self) -> list[CallRecord]:
        """Calls waiting for the operator's approval, oldest first."""
        await self.reap()
        records, _ = await self.run(self.db.calls.page, status=CallStatus.awaiting_approval, limit=MAX_PAGE)
        return sorted(records, key=lambda r: r.created_at)

    async def approve(self, call_id: str, *, by: str, always: bool = False) -> CallRecord:
        """The operator approves a waiting call: the whole dial policy is asked again, now
        (quiet hours may have begun, the limits filled), and the call is placed from here.
        `always` first allows the number for good (kept with who and when). Raises NotFound,
        BadArgument (not awaiting approval), Refused (the call then ends policy_refused),
        PlacementFailed."""
        record = await self._waiting(call_id)
        number = record.phone_number
        self._require_livekit()  # before anything is decided: an approved call is dialed from here
        if always:
            await self.run(self.db.allowed.add, number, by, call_id)
            log.info("%s allowed %s for good (approving call %s)", by, mask(number), call_id)
        profile = self.profiles.profiles.get(record.profile)
        if profile is None:  # the operator took the profile out of callagent.toml meanwhile
            gone = Refusal(
                Rule.profile, f"call {call_id} was asked for under profile {record.profile!r}, which is gone"
            )
            # Ended, like a call the policy refuses at approval: it must not wait on to expire.
            await self.run(
                self.db.calls.transition,
                call_id,
                CallStatus.failed,
                end_reason=EndReason.policy_refused,
                ended_reason=f"approved by {by}, but it could not be placed: {gone.text()}",
            )
            await self.refuse(gone, number, tenant=record.tenant)
        request = profile.apply(record.to_request())
        policy = (
            self.profiles.policy_for(profile, record.tenant) if self._tenant_known(record.tenant) else profile.policy
        )
        leg: Refusal | None = None
        if record.transfer_to is not None:
            leg = await self._leg_refusal(record.transfer_to, policy, profile.name, record.tenant)

        def admit(rec: CallRecord, counts: Counts, on_dnc: bool) -> Refusal | None:
            lists = Lists(do_not_call=frozenset({number}) if on_dnc else frozenset())
            decision = policy.check(number, now=utcnow(), counts=counts, lists=lists, confirmed=True)
            return decision if isinstance(decision, Refusal) else leg

        approved = await self.run(self.db.calls.approve_if_admitted, call_id, by, admit)
        if approved is None:
            await self._waiting(call_id)  # says what became of it meanwhile
            raise BadArgument(f"call {call_id} is no longer awaiting approval")
        if isinstance(approved, Refusal):
            approved = policy.named(approved, number)
            await self.run(
                self.db.calls.transition,
                call_id,
                CallStatus.failed,
                end_reason=EndReason.policy_refused,
                ended_reason=f"approved by {by}, but the dial policy refused it then: {approved.text()}",
            )
            await self.refuse(approved, number, tenant=record.tenant)
        log.info("call %s approved by %s; placing it", call_id, by)
        return await self._dial(approved, request)

    def _tenant_known(self, tenant: str | None) -> bool:
        return tenant is None or tenant in self.profiles.tenants

    async def _leg_refusal(self, target: str, policy: DialPolicy, profile: str, tenant: str | None) -> Refusal | None:
        """The dial policy on a transfer leg to `target`, dialed while the call is live (one line more)."""
        now = utcnow()
        counts, on_dnc = await self.run(self.db.calls.facts, target, now, profile=profile, tenant=tenant)
        return policy.check_transfer(
            target,
            now=now,
            counts=_one_more(counts),
            lists=Lists(do_not_call=frozenset({target}) if on_dnc else frozenset()),
        )

    async def deny(self, call_id: str, *, by: str, note: str | None = None) -> CallRecord:
        """The operator denies a waiting call: it ends `denied` with their note, which the
        client reads. Nothing was dialed."""
        await self._waiting(call_id)
        note = (note or "").strip()[:MAX_REASONING] or None
        reason = f"the operator ({by}) denied the call" + (f": {note}" if note else "")
        denied = await self.run(
            self.db.calls.transition,
            call_id,
            CallStatus.denied,
            where=None,
            end_reason=EndReason.denied,
            ended_reason=reason,
            denied_by=by[:200],
            denial_note=note,
        )
        if denied is None:
            raise BadArgument(f"call {call_id} is no longer awaiting approval")
        log.info("call %s denied by %s", call_id, by)
        return denied

    async def allowed_numbers(self) -> list[Any]:
        """The numbers the operator allowed for good, newest first, with who and when."""
        return await self.run(self.db.allowed.all)

    async def _waiting(self, call_id: str) -> CallRecord:
        record = await self.get(call_id)
        if record.status is not CallStatus.awaiting_approval:
            raise BadArgument(f"call {call_id} is {record.status}, not awaiting approval; nothing to decide")
        return record

    async def refuse(
        self, refusal: Refusal, number: str | None, *, shown: str | None = None, tenant: str | None = None
    ) -> NoReturn:
        """Keep the refusal for audit (as `tenant`'s), log it (masked) and raise it as Refused.

        `number` is the E.164 number when there is one; else `shown`, the client's input masked.
        """
        log.info("refused a call to %s: rule %s", mask(number) if number else (shown or "(no number)"), refusal.rule)
        try:
            await self.run(self.db.refusals.record, refusal, number if number is not None else shown, tenant=tenant)
        except Exception:  # the refusal stands even when it cannot be written down
            log.exception("could not record a refusal (rule %s) for audit", refusal.rule)
        raise Refused(refusal)

    async def _issue_confirmation(self, prepared: Prepared) -> ConfirmationIssued:
        assert isinstance(prepared.decision, NeedsConfirmation)
        ttl = prepared.policy.confirm_ttl_s
        issued_at = utcnow()
        token = await self.run(self.db.confirmations.issue, prepared.args_hash, ttl, now=issued_at)
        log.info("call to %s needs a confirmation; token issued (valid %d s)", mask(prepared.target.e164), ttl)
        return ConfirmationIssued(
            prepared.decision.message, token, issued_at + timedelta(seconds=ttl), ttl, prepared, prepared.policy.confirm
        )

    async def _dial(self, record: CallRecord, request: CallRequest) -> CallRecord:
        """Hand the call to the dialer, bounded in time; on any failure the record ends failed.

        The dialer runs in its own task so that its clean-up (deleting the room and dispatch,
        which against an unresponsive LiveKit can take long) never holds up the answer: past
        the deadline the call is marked failed, the dialer is cancelled, and it cleans up on
        its own.
        """
        from callagent.dialer import DialError

        reason = "the request was canceled while the call was being placed"
        task: asyncio.Task[CallRecord] | None = None
        try:
            task = self.spawn(self.dialer().place(record, request))
            await asyncio.wait({task}, timeout=PLACE_DEADLINE_S)
            if task.done():
                placed = task.result()
                reason = ""
                return placed
            reason = (
                f"placing the call took longer than {PLACE_DEADLINE_S:g} s; check that LiveKit at "
                f"LIVEKIT_URL={self.settings.livekit_url} is reachable and responsive"
            )
            log.warning("call %s not placed: %s", record.call_id, reason)
            self._mark_failed(record.call_id, reason)  # before the dialer's cancellation can say otherwise
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
                # The dialer marks a failed call itself; this is the backstop, so that no
                # record is ever left queued or dialing (also when cancelled, hence no await
                # here). The first terminal status wins: it never overrides the dialer's.
                final = self._mark_failed(record.call_id, reason)
        status = final.status if final is not None else CallStatus.failed
        raise PlacementFailed(f"{reason} (call {record.call_id} is {status})", final)

    def _mark_failed(self, call_id: str, reason: str) -> CallRecord | None:
        """Fail a call that is still live (blocking, one UPDATE); returns the record as it is."""
        try:
            calls = self.db.calls
            failed = calls.transition(call_id, CallStatus.failed, ended_reason=reason, end_reason=EndReason.not_placed)
            return failed or calls.get(call_id)
        except Exception:
            log.exception("call %s: could not mark the call failed", call_id)
            return None

    # -- following calls -------------------------------------------------------------------

    async def get(self, call_id: str, *, tenant: str | None = None) -> CallRecord:
        """A call's record; `tenant`'s client gets only its own (another's is "no such call")."""
        await self.reap()
        record = await self._get(call_id, tenant)
        rec = record.recording
        if (
            rec is not None
            and rec.state == "recording"
            and record.ended_at is not None
            and (utcnow() - record.ended_at).total_seconds() > RECORDING_SETTLE_S
        ):
            record = await self._recording_lost_with_worker(record, rec)  # its worker died before closing it
        return record

    async def recording(self, call_id: str, *, tenant: str | None = None) -> tuple[Recording, Path]:
        """A recorded call's audio file (Ogg/Opus; channels: callee, agent) and what its record
        says of it. NotFound, naming why, when there is none to read: no such call, not
        recorded, not answered, still live, lost, deleted after the retention period."""
        record = await self.get(call_id, tenant=tenant)
        rec, ref = record.recording, f"call {record.call_id}"
        if rec is None:
            if not record.record:
                raise NotFound(
                    f"{ref} was not recorded: make_phone_call(record=true) asks for a recording where the operator "
                    f"allows it (CALLAGENT_RECORDING={self.settings.recording}; on_request or always)"
                )
            if record.status in TERMINAL_STATUSES:
                raise NotFound(
                    f"{ref} was to be recorded, but it was never answered ({record.status}): there is no audio"
                )
            if record.answered_at is None:
                raise NotFound(f"{ref} has not been answered yet; its recording starts at the answer")
            raise NotFound(f"{ref} is still being recorded; the recording can be read once the call has ended")
        if rec.state == "recording":
            raise NotFound(f"{ref} is still being recorded; the recording can be read once the call has ended")
        if rec.state in ("lost", "deleted"):
            raise NotFound(f"the recording of {ref} is {rec.state}: {rec.note or 'no reason was recorded'}")
        # The file's name comes from the call id, never from the stored record.
        path = recordings_dir(self.settings) / recordings.file_name(record.call_id)
        if not path.is_file():
            raise NotFound(
                f"the recording of {ref} is missing from the recordings folder (CALLAGENT_RECORDINGS_DIR={path.parent}); "
                "it was moved or deleted outside callagent"
            )
        return rec, path

    async def _recording_lost_with_worker(self, record: CallRecord, rec: Recording) -> CallRecord:
        """Mark the recording of a call whose worker died: incomplete (what was written is
        playable) or lost. The file is left alone: retention deletes it in time."""
        path = recordings_dir(self.settings) / recordings.file_name(record.call_id)
        settled = recordings.lost_with_worker(rec, await asyncio.to_thread(recordings.inspect, path))
        log.warning("call %s: recording %s: %s", record.call_id, settled.state, settled.note)
        return await self.run(self.db.calls.update, record.call_id, recording=settled)

    async def _get(self, call_id: str, tenant: str | None = None) -> CallRecord:
        record = await self.run(self.db.calls.get, call_id)
        # Another tenant's call is no call at all: the same answer as for an unknown id.
        if record is None or (tenant is not None and record.tenant != tenant):
            raise NotFound(f"no call with call_id {_quote(call_id)}; list_calls shows the recent calls")
        return record

    async def wait(
        self,
        call_id: str,
        timeout_s: float,
        last_status: str | None = None,
        progress: Progress | None = None,
        *,
        tenant: str | None = None,
    ) -> Waited:
        """Until the call leaves `last_status` (default: its status now) or ends, at most
        `timeout_s` seconds; `progress(elapsed_s, message)` about once a second meanwhile."""
        if not 0 < timeout_s <= MAX_WAIT_S:
            raise BadArgument(
                f"timeout_s must be more than 0 and at most {MAX_WAIT_S:g} seconds, not {timeout_s:g} "
                "(MCP clients give up on a tool call after about 60 s); call wait_for_call again to keep waiting"
            )
        seen = _status(last_status, "last_status") if last_status is not None else None
        record = await self.get(call_id, tenant=tenant)
        entry_status = seen or record.status
        started = time.monotonic()
        deadline = started + timeout_s
        next_progress = started
        while record.status == entry_status and record.status not in TERMINAL_STATUSES:
            now = time.monotonic()
            if now >= deadline:
                return Waited(record, changed=False)
            if progress is not None and now >= next_progress:
                await progress(
                    round(min(now - started, timeout_s), 1), f"{record.status} ({_status_age(record):.0f} s)"
                )
                next_progress += PROGRESS_INTERVAL_S
            await asyncio.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - now)))
            record = await self.get(call_id, tenant=tenant)
        return Waited(record, changed=True)

    async def list_calls(
        self,
        *,
        status: str | None = None,
        end_reason: str | None = None,
        phone_number: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        tenant: str | None = None,
    ) -> tuple[list[CallRecord], str | None]:
        """Calls newest first, optionally of one status, end reason or number; and the next
        page's cursor. `tenant`'s client sees only its own calls."""
        wanted = _status(status, "status") if status is not None else None
        why = _enum(EndReason, end_reason, "end_reason") if end_reason is not None else None
        number = None
        if phone_number is not None:
            try:
                number = normalize(phone_number, self.settings.default_region)
            except InvalidNumber as exc:
                raise BadArgument(str(exc)) from None
        if not 1 <= limit <= MAX_PAGE:
            raise BadArgument(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        await self.reap()
        try:
            return await self.run(
                self.db.calls.page,
                status=wanted,
                end_reason=why,
                phone_number=number,
                limit=limit,
                cursor=cursor,
                tenant=tenant,
            )
        except ValueError as exc:
            raise BadArgument(str(exc)) from None

    async def policy_info(self, *, tenant: str | None = None) -> dict[str, Any]:
        """What the dial policy allows right now, with how many calls are live and left: the
        caller's default profile's policy, its own usage against its own limits, and the
        profiles it may use."""
        await self.reap()
        profile = self.profiles.resolve(None, tenant)
        assert not isinstance(profile, Refusal)  # a caller's default profile always exists
        policy = self.profiles.policy_for(profile, tenant)
        counts = await self.run(self.db.calls.counts, profile=profile.name, tenant=tenant)
        info = describe(policy, counts=counts)
        if policy.quotas:
            # What binds this caller: the lowest of each limit, and the fewest calls left under
            # any of them (a tenant's own calls, not the other tenants', are shown as live).
            scoped = [(counts, policy.limits)] + [
                (counts.profile if q.scope == "profile" else counts.tenant, q.limits) for q in policy.quotas
            ]
            own = counts.tenant if tenant is not None else counts
            limits = {k: min(getattr(lim, k) for _, lim in scoped) for k in info["limits"]}
            info["limits"] = limits
            info["usage"] = {
                "active_calls": (own or counts).active,
                "calls_last_hour": (own or counts).last_hour,
                "concurrent_slots_left": max(0, min(lim.max_concurrent - (c.active if c else 0) for c, lim in scoped)),
                "calls_left_this_hour": max(0, min(lim.max_per_hour - (c.last_hour if c else 0) for c, lim in scoped)),
            }
        elif tenant is not None and counts.tenant is not None:
            info["usage"] = {
                **info["usage"],
                "active_calls": counts.tenant.active,
                "calls_last_hour": counts.tenant.last_hour,
            }
        info["profile"] = profile.name
        info["profiles"] = [p.listing() for p in self.profiles.usable_by(tenant)]
        if tenant is not None:
            info["tenant"] = tenant
        return info

    def usable_profiles(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """The profiles `tenant`'s client may call with, as it may see them (no secrets)."""
        return [p.listing() for p in self.profiles.usable_by(tenant)]

    # -- ending calls ----------------------------------------------------------------------

    async def end(self, call_id: str, *, by: str = ENDED_BY_CLIENT, tenant: str | None = None) -> Ended:
        """Hang up a live call; canceled once LiveKit confirmed it. Raises HangUpNotConfirmed
        (the call stays live, the worker was asked to hang up) when it did not. `by` is the
        reason the record gets (who ended it); `tenant`'s client may end only its own calls."""
        record = await self.get(call_id, tenant=tenant)
        if record.status is CallStatus.awaiting_approval:  # nothing dialed: nothing to hang up
            canceled = await self.run(
                self.db.calls.transition,
                call_id,
                CallStatus.canceled,
                ended_reason=f"{by} before the operator approved it",
                end_reason=EndReason.canceled,
            )
            return Ended(canceled or await self._get(call_id))
        if record.status not in TERMINAL_STATUSES:
            problem = await self.hang_up(record, by)
            if problem is not None:
                log.warning("call %s: hang-up not confirmed: %s", call_id, problem)
                raise HangUpNotConfirmed(
                    f"could not confirm that call {call_id} was hung up: {problem}. The line may still be up. "
                    f"The calling worker has been asked to hang up and checks every {HEARTBEAT_S:g} s: follow "
                    "the call with wait_for_call or get_call, and call end_call again if it is still live."
                )
            ended = await self.run(
                self.db.calls.transition,
                call_id,
                CallStatus.canceled,
                ended_reason=by,
                end_reason=EndReason.canceled,
            )
            log.info("call %s: hung up (%s)", call_id, by)
            # None: the worker recorded the end first (with the reason asked for), or the call
            # ended on its own a moment before; the record says which.
            return Ended(ended or await self._get(call_id))
        return Ended(record, f"The call had already ended ({record.status}); nothing to hang up.")

    async def hang_up(
        self,
        record: CallRecord,
        reason: str,
        status: CallStatus = CallStatus.canceled,
        end_reason: EndReason = EndReason.canceled,
    ) -> str | None:
        """Ask for `record`'s call to be hung up and hang it up through LiveKit.

        The request is noted in the store first, so the worker holding the call hangs up by
        itself within one heartbeat if LiveKit cannot be reached from here. Returns None once
        LiveKit confirmed the hang-up, else the problem, in words; the call is not ended in the
        store either way (the caller does that, or not).
        """
        from callagent.dialer import HangUpFailed

        await self.run(self.db.calls.request_hangup, record.call_id, reason, status, end_reason)
        missing = missing_livekit_settings(self.settings)
        if missing:
            return f"this server cannot reach LiveKit itself ({', '.join(missing)} unset)"
        try:
            await self.dialer().hang_up(record.room_name)
        except HangUpFailed as exc:
            return str(exc)
        return None

    async def reap(self) -> None:
        """End the calls whose worker died: hang the line up first, then fail the record.

        A call whose line cannot be hung up is not reported as ended: it stays live, marked
        with a hang-up request, and is tried again at the next reap, until LiveKit's own limit
        on the call's length has passed. At most once every REAP_INTERVAL_S; awaited, not
        spawned: a short-lived process (one tool call) would cancel it on exit.
        """
        stale = await self.run(self._due_stale)
        if stale:
            await asyncio.gather(*(self._reap_one(item) for item in stale))
        await self._expire_recordings()

    def reap_on_a_timer(self) -> None:
        """In a long-lived process (the MCP server, the console): reap every REAP_INTERVAL_S, so
        a dead worker's calls are hung up and failed within CALLAGENT_STALE_AFTER_S (and one
        interval) even when no request comes in; until then they count toward
        DIAL_MAX_CONCURRENT and the callee is on a line nobody speaks on."""
        self.spawn(self._reap_forever())

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            try:
                await self.reap()
            except Exception:  # the store or LiveKit away for a moment: the next round tries again
                log.exception("could not look for calls whose worker stopped")

    async def _expire_recordings(self) -> None:
        """Delete the recordings past CALLAGENT_RECORDING_RETENTION_DAYS, marking their records;
        at most once every EXPIRE_INTERVAL_S. A failure is logged: no use case fails for it."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_expiry < EXPIRE_INTERVAL_S:
                return
            self._last_expiry = now
        directory, days = recordings_dir(self.settings), self.settings.recording_retention_days
        try:
            names = await asyncio.to_thread(recordings.due, directory, days)
            if names:
                await self.run(recordings.expire, directory, names, self.db, days)
        except Exception:
            log.exception("could not apply the recordings' retention period in %s", directory)

    def _due_stale(self) -> list[StaleCall]:
        now = time.monotonic()
        with self._lock:
            if now - self._last_reap < REAP_INTERVAL_S:
                return []
            self._last_reap = now
        for record in self.db.calls.expire_approvals():
            log.info("call %s: nobody approved it within DIAL_APPROVAL_TTL_S; expired", record.call_id)
        return self.db.calls.find_stale(self.settings.stale_after_s, orphan_after_s=ORPHAN_AFTER_S)

    async def _reap_one(self, item: StaleCall) -> None:
        record = item.record
        problem = await self.hang_up(record, item.reason, CallStatus.failed, EndReason.worker_lost)
        if problem is None:
            reason = f"{item.reason}; the server hung up the line"
        elif record.status is CallStatus.queued or utcnow() > _livekit_gives_up_at(record):
            # Nothing reached LiveKit yet, or LiveKit has ended the call on its own by now.
            reason = f"{item.reason}; hanging up failed ({problem}), but " + (
                "the call had not been dialed"
                if record.status is CallStatus.queued
                else "LiveKit's own limit on the call's length has passed"
            )
        else:
            log.warning("call %s: %s; hanging up failed, will try again: %s", record.call_id, item.reason, problem)
            return
        failed = await self.run(self.db.calls.fail_stale, item, reason)
        if failed is not None:
            log.warning("call %s: failed: %s", record.call_id, reason)
            if failed.recording is not None and failed.recording.state == "recording":
                await self._recording_lost_with_worker(failed, failed.recording)


# -- helpers -------------------------------------------------------------------------------------

_TOKEN_NOT_VALID = Refusal(
    Rule.confirmation,
    "confirmation_token is not valid for this call: it is unknown, expired, already used, or was issued "
    "for different arguments (every argument must be the same as in the call that returned it); call "
    "make_phone_call again without confirmation_token to get a new one",
)


def _ring_timeout(requested: int | None, settings: Settings) -> int:
    low, high = RING_TIMEOUT_RANGE_S
    if requested is None:
        return min(max(settings.ring_timeout_s, low), high)
    if isinstance(requested, bool) or not low <= requested <= high:
        raise BadArgument(
            f"ring_timeout_s must be between {low} and {high} seconds, not {requested} (leave it out to use "
            f"CALLAGENT_RING_TIMEOUT_S={settings.ring_timeout_s})"
        )
    return requested


def _max_hold(requested: int | None, settings: Settings) -> int:
    if requested is None:
        return settings.max_hold_s
    if isinstance(requested, bool) or requested < 1:
        raise BadArgument(
            f"max_hold_s must be a number of seconds of at least 1, not {requested} (leave it out to use "
            f"CALLAGENT_MAX_HOLD_S={settings.max_hold_s}); it is capped by the call's max_duration_s"
        )
    return requested


def _dtmf(requested: str | None, extension: str | None) -> str | None:
    """The digits to send once the call is answered: the client's, or the extension written
    with the number (allowed by DIAL_ALLOW_EXTENSIONS), after a one-second pause."""
    if requested is not None:
        if extension is not None:
            raise BadArgument(
                f"the number has an extension ({extension}) and dtmf was given too; give the digits in one place"
            )
        if not requested or len(requested) > MAX_DTMF or any(c not in DTMF_CHARS for c in requested):
            raise BadArgument(
                f"dtmf may hold only the digits 0-9, * and #, and the pauses w (0.5 s) and W (1 s), at most "
                f"{MAX_DTMF} characters; not {_quote(requested)}"
            )
        return requested
    return f"W{extension}" if extension is not None else None


def _transfer(args: CallArgs) -> tuple[str, str] | Refusal:
    """transfer_mode and transfer_when, checked; they mean nothing without transfer_to."""
    if args.transfer_to is None:
        given = [name for name in ("transfer_when", "transfer_mode") if getattr(args, name) is not None]
        if given:
            raise BadArgument(f"{' and '.join(given)} only apply with transfer_to; give transfer_to or leave them out")
        return ("warm", DEFAULT_TRANSFER_WHEN)
    mode = (args.transfer_mode or "warm").strip().lower()
    if mode not in ("warm", "cold"):
        raise BadArgument(
            f"transfer_mode must be 'warm' (the agent briefs the person, then connects the callee) or 'cold' "
            f"(a SIP REFER), not {_quote(args.transfer_mode)}"
        )
    when = (args.transfer_when or "").strip() or DEFAULT_TRANSFER_WHEN
    refusal = check_text("transfer_when", when, MAX_TRANSFER_WHEN)
    if refusal is not None:
        return refusal
    return (mode, when)


def _request(
    args: CallArgs,
    target: DialTarget,
    profile: Profile,
    caller_id: str | None,
    duration: int,
    ring_timeout_s: int,
    dtmf: str | None,
    max_hold_s: int,
    record: bool,
    transfer_to: str | None,
    transfer: tuple[str, str],
) -> CallRequest:
    from pydantic import ValidationError

    try:
        request = CallRequest(
            call_id=new_call_id(),
            phone_number=target.e164,
            goal=(args.goal or "").strip() or DEFAULT_GOAL,
            context=(args.context or "").strip() or None,
            greeting=(args.greeting or "").strip() or None,
            dtmf=dtmf,
            result_schema=args.result_schema,
            caller_name=profile.caller_name,
            max_duration_s=duration,
            ring_timeout_s=ring_timeout_s,
            max_hold_s=min(max_hold_s, duration),
            transfer_to=transfer_to,
            transfer_mode=transfer[0],
            transfer_when=transfer[1] if transfer_to else None,
            record=record,
        )
        request = profile.apply(request).model_copy(update={"caller_id": caller_id})
        request.to_metadata()  # too big for LiveKit's dispatch metadata? Say so before dialing.
    except ValidationError as exc:
        raise BadArgument(
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        ) from None
    except ValueError as exc:
        raise BadArgument(str(exc)) from None
    return request


def _one_more(counts: Counts) -> Counts:
    """`counts` with one more live call, everywhere it is counted (a transfer leg's line)."""
    from dataclasses import replace

    return replace(
        counts,
        active=counts.active + 1,
        profile=None if counts.profile is None else replace(counts.profile, active=counts.profile.active + 1),
        tenant=None if counts.tenant is None else replace(counts.tenant, active=counts.tenant.active + 1),
    )


def _same_number(existing: CallRecord, number: str, key: str, tenant: str | None = None) -> None:
    if tenant is not None and existing.tenant != tenant:  # another tenant's key: its call stays unseen
        raise BadArgument(f"idempotency_key {_quote(key, 60)} is already taken; use a new key for a new call")
    if existing.phone_number != number:
        raise BadArgument(
            f"idempotency_key {_quote(key, 60)} was already used for call {existing.call_id} to another number; "
            "use a new key for a new call"
        )


def _status(value: str, name: str) -> CallStatus:
    return _enum(CallStatus, value, name)


E = TypeVar("E", CallStatus, EndReason)


def _enum(kind: type[E], value: str, name: str) -> E:
    try:
        return kind(value.strip().lower())
    except ValueError:
        raise BadArgument(f"unknown {name} {_quote(value)}; use one of: {', '.join(v.value for v in kind)}") from None


def _status_age(record: CallRecord) -> float:
    """Seconds the call has been in its current status (roughly: since the matching timestamp)."""
    since = {
        CallStatus.queued: record.created_at,
        CallStatus.dialing: record.dialed_at,
        CallStatus.ringing: record.dialed_at,
        CallStatus.in_progress: record.answered_at,
    }.get(record.status) or record.updated_at
    return max(0.0, (utcnow() - since).total_seconds())


def _livekit_gives_up_at(record: CallRecord) -> datetime:
    """When LiveKit ends the call by itself at the latest (ringing, then max_call_duration)."""
    started = record.dialed_at or record.created_at
    return started + timedelta(seconds=record.ring_timeout_s + record.max_duration_s + LIVEKIT_CALL_MARGIN_S)


def _masked_input(raw: object) -> str | None:
    """What the client sent as a number, fit for a log line or the audit: digits masked,
    unprintable characters escaped (no log injection), at most 32 characters."""
    if not isinstance(raw, str):
        return None
    shown = printable(mask(raw[:64]))
    return shown if len(shown) <= 32 and len(raw) <= 64 else shown[:31] + "…"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return _cap(text.splitlines()[0], 300) if text else exc.__class__.__name__


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _quote(value: object, limit: int = 40) -> str:
    """A client's input quoted in an error text: escaped, and cut, since it is echoed back."""
    return repr(_cap(printable(str(value)), limit))
