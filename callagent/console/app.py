"""The console's web app: pages over the call service, for the operator.

Every page is rendered on the server (Jinja2, autoescaped: what a client or a callee wrote is
text, never markup) and works without script; /static/console.js only keeps the live parts
current, from a server-sent event stream per page (/live/...) that sends a region's HTML again
whenever it changed. The app has its own CallService on the shared call store, so it sees and
decides the same calls as every MCP server process and worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from callagent import errors
from callagent.calls import (
    ACTIVE_STATUSES,
    OPERATOR,
    TERMINAL_STATUSES,
    CallRecord,
    CallStatus,
    EndReason,
    disclosure,
    utcnow,
)
from callagent.console import present
from callagent.console.auth import COOKIE, Session, Signer, SignInThrottle, check_token, operator_name, same_origin
from callagent.console.guard import SecurityHeaders
from callagent.numbers import InvalidNumber, normalize
from callagent.service import CallService
from callagent.settings import Settings

__all__ = ["Console", "create_app"]

log = logging.getLogger("callagent.console")

HERE = Path(__file__).resolve().parent
PAGE_SIZE = 25
LIVE_INTERVAL_S = 1.0
LIVE_PING_S = 15.0
# An approval answers at once when the call is placed (or refused) this quickly; otherwise the
# operator is taken to the call's page, where it goes on live.
APPROVE_WAIT_S = 3.0
FAILED_SIGN_IN_DELAY_S = 0.5

# Fixed texts for after a redirect (?done=...): nothing a request carries is echoed.
DONE = {
    "approved": "Approved: the call is being placed.",
    "approved-always": "Approved, and the number is allowed from now on: the call is being placed.",
    "approve-failed": "Approved, but the call was not placed: the timeline says why.",
    "denied": "Denied: the client is told, with your note.",
    "ended": "Hung up.",
    "dnc-added": "Added to the do-not-call list: calls to it are refused.",
    "dnc-already": "That number was already on the do-not-call list.",
    "dnc-removed": "Removed from the do-not-call list.",
    "signed-out": "Signed out.",
}

_STATUS_CODES: dict[type[Exception], int] = {
    errors.NotFound: 404,
    errors.BadArgument: 409,
    errors.Refused: 409,
    errors.PlacementFailed: 502,
    errors.HangUpNotConfirmed: 502,
    errors.NotConfigured: 503,
    errors.StoreUnavailable: 503,
}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Console:
    """The console's state: settings, the call service, the session signer, the templates."""

    def __init__(self, settings: Settings, service: CallService | None = None) -> None:
        if settings.console_token is None:
            raise errors.NotConfigured("the console needs an operator secret: set CALLAGENT_CONSOLE_TOKEN")
        self.settings = settings
        self._own_service = service is None
        self.service = service or CallService(settings)
        self._token = settings.console_token.get_secret_value()
        self.signer = Signer(self._token)
        self.throttle = SignInThrottle()
        self.zone = present.operator_zone(settings.console_tz)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every template, every value: text a client or callee wrote stays text
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            number=present.people_number,
            region=present.region,
            duration=present.duration,
            status_label=present.status_label,
            when=lambda value: present.when(value, self.zone, utcnow()),
            iso=lambda value: value.isoformat() if value is not None else "",
            pretty_json=lambda value: json.dumps(value, indent=2, ensure_ascii=False, default=str),
        )
        self.templates.globals.update(
            zone_name=present.zone_name(self.zone),
            statuses=[(s.value, present.status_label(s)) for s in CallStatus],
            end_reasons=[r.value for r in EndReason],
        )

    # -- the app ---------------------------------------------------------------------------

    def app(self, hosts: list[str] | None = None) -> ASGIApp:
        """The ASGI app; `hosts`: the Host header values it answers (None: any)."""
        routes = [
            Route("/", self.home),
            Route("/signin", self.signin_form, methods=["GET"]),
            Route("/signin", self.signin, methods=["POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/calls", self.calls_page),
            Route("/calls/{call_id}", self.call_page),
            Route("/calls/{call_id}/recording", self.recording),
            Route("/calls/{call_id}/end", self.end_call, methods=["POST"]),
            Route("/approvals", self.approvals_page),
            Route("/approvals/{call_id}/approve", self.approve, methods=["POST"]),
            Route("/approvals/{call_id}/deny", self.deny, methods=["POST"]),
            Route("/refusals", self.refusals_page),
            Route("/dnc", self.dnc_page),
            Route("/dnc/add", self.dnc_add, methods=["POST"]),
            Route("/dnc/remove", self.dnc_remove, methods=["POST"]),
            Route("/policy", self.policy_page),
            Route("/live/{view}", self.live),
            Route("/live/{view}/{call_id}", self.live),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            if self._own_service:  # (a shared one is the MCP server's, which reaps already)
                self.service.reap_on_a_timer()
            try:
                yield
            finally:
                if self._own_service:
                    await self.service.aclose()

        app = Starlette(routes=routes, lifespan=lifespan)
        app.add_exception_handler(errors.CallagentError, self._on_error)
        return SecurityHeaders(app, hosts=hosts)

    # -- sessions --------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.signer.loads(request.cookies.get(COOKIE))

    def operator(self, request: Request) -> Session | None:
        session = self.session(request)
        return session if session is not None and session.signed_in else None

    def _unauthenticated(self, request: Request) -> Response:
        """A page is sent to the sign-in form (and back after it); anything else gets 401."""
        if _is_page(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/signin?{urlencode({'next': target})}", status_code=303)
        return Response("Sign in to the console first.", status_code=401, media_type="text/plain")

    async def _form(self, request: Request) -> tuple[Session, dict[str, str]] | Response:
        """A signed-in operator's POST, from this site with the session's CSRF token; or the
        response refusing it."""
        session = self.operator(request)
        if session is None:
            return self._unauthenticated(request)
        form = await _form_fields(request)
        if not same_origin(request) or not _same(form.get("csrf", ""), session.csrf):
            return _forbidden()
        return session, form

    def render(
        self, request: Request, name: str, session: Session | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """A page; `c` in the template is its data with the session's CSRF token (what the live
        regions are rendered from too)."""
        c = {**context, "csrf": session.csrf if session else ""}
        html = self.templates.get_template(name).render(
            c=c,
            operator=session.operator if session else None,
            done=DONE.get(request.query_params.get("done", "")),
            path=request.url.path,
        )
        return HTMLResponse(html, status_code=status_code)

    async def _on_error(self, request: Request, exc: Exception) -> Response:
        status = next((code for kind, code in _STATUS_CODES.items() if isinstance(exc, kind)), 500)
        session = self.operator(request)
        return self.render(
            request, "error.html", session, status_code=status, message=str(exc), pending=await self._pending()
        )

    async def _pending(self) -> int:
        """How many calls wait for approval (the navigation's badge); 0 if the store fails."""
        try:
            return len(await self.service.approvals())
        except errors.CallagentError:
            return 0

    # -- signing in and out ----------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/calls" if self.operator(request) else "/signin", status_code=303)

    async def signin_form(self, request: Request) -> Response:
        if self.operator(request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        return self._signin_page(request)

    def _signin_page(self, request: Request, problem: str | None = None, status_code: int = 200) -> Response:
        session = self.session(request)
        if session is None or session.signed_in:
            session = Session.anonymous()
        response = self.render(
            request,
            "signin.html",
            None,
            status_code=status_code,
            form_csrf=session.csrf,
            next=_safe_next(request.query_params.get("next")),
            problem=problem,
        )
        self.signer.set_cookie(response, request, session)
        return response

    async def signin(self, request: Request) -> Response:
        form = await _form_fields(request)
        session = self.session(request)
        if session is None or not same_origin(request) or not _same(form.get("csrf", ""), session.csrf):
            return _forbidden("The sign-in form expired or came from another site: reload the page and sign in again.")
        if self.throttle.blocked():
            log.warning("console: sign-in refused: too many wrong secrets in the last minute")
            return self._signin_page(request, "Too many failed sign-ins: wait a minute.", 429)
        if not check_token(form.get("token", ""), self._token):
            self.throttle.failed()
            log.warning("console: failed sign-in from %s", request.client.host if request.client else "?")
            await asyncio.sleep(FAILED_SIGN_IN_DELAY_S)
            return self._signin_page(request, "That is not the console's secret (CALLAGENT_CONSOLE_TOKEN).", 401)
        name = operator_name(form.get("name", ""))
        log.info("console: %s signed in", name)
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        self.signer.set_cookie(response, request, Session.for_operator(name))
        return response

    async def signout(self, request: Request) -> Response:
        checked = await self._form(request)
        if isinstance(checked, Response):
            return checked
        response = RedirectResponse("/signin?done=signed-out", status_code=303)
        self.signer.clear_cookie(response, request)
        return response

    # -- calls -----------------------------------------------------------------------------

    async def calls_page(self, request: Request) -> Response:
        session = self.operator(request)
        if session is None:
            return self._unauthenticated(request)
        context = await self._calls(request)
        return self.render(request, "calls.html", session, **context, pending=await self._pending())

    async def _calls(self, request: Request) -> dict[str, Any]:
        """The calls list as filtered by the query string, and what the filters were."""
        q = request.query_params
        filters = {k: q.get(k, "").strip() for k in ("status", "end_reason", "number", "date", "tenant")}
        problems: list[str] = []
        query: dict[str, Any] = {"limit": PAGE_SIZE, "cursor": q.get("cursor") or None}
        if filters["status"] == "live":
            query["status"] = sorted(ACTIVE_STATUSES)
        elif filters["status"] in CallStatus.__members__:
            query["status"] = CallStatus(filters["status"])
        else:
            filters["status"] = ""
        if filters["end_reason"] in EndReason.__members__:
            query["end_reason"] = EndReason(filters["end_reason"])
        else:
            filters["end_reason"] = ""
        tenants = self._tenants()
        if filters["tenant"] in tenants:
            query["tenant"] = filters["tenant"]  # OPERATOR: the operator's own calls
        else:
            filters["tenant"] = ""
        if filters["number"]:
            try:
                query["phone_number"] = normalize(filters["number"], self.settings.default_region)
            except InvalidNumber as exc:
                problems.append(str(exc))
        if filters["date"]:
            day = _day(filters["date"])
            if day is None:
                problems.append(f"{filters['date'][:20]!r} is not a date like 2026-12-01")
            else:
                start = day.replace(tzinfo=self.zone)
                query["since"], query["until"] = start, (day + timedelta(days=1)).replace(tzinfo=self.zone)
        records: list[CallRecord] = []
        next_cursor: str | None = None
        if not problems:
            await self.service.reap()
            try:
                records, next_cursor = await self.service.run(self.service.db.calls.page, **query)
            except ValueError as exc:  # a cursor that is not one
                problems.append(str(exc))
        shown = {k: v for k, v in filters.items() if v}
        return {
            "records": records,
            "filters": filters,
            "tenants": tenants,
            "filtered": bool(shown),
            "problem": "; ".join(problems) or None,
            "older": f"/calls?{urlencode({**shown, 'cursor': next_cursor})}" if next_cursor else None,
            "newest": f"/calls?{urlencode(shown)}" if query["cursor"] else None,
            "live_url": f"/live/calls?{request.url.query}",
        }

    async def call_page(self, request: Request) -> Response:
        session = self.operator(request)
        if session is None:
            return self._unauthenticated(request)
        record = await self.service.get(request.path_params["call_id"])
        return self.render(request, "call.html", session, **self._call(record), pending=await self._pending())

    def _call(self, record: CallRecord) -> dict[str, Any]:
        now = utcnow()
        return {
            "r": record,
            "live": record.status not in TERMINAL_STATUSES,
            "waiting": record.status is CallStatus.awaiting_approval,
            "steps": present.timeline(record),
            "callee_time": present.callee_time(record.phone_number, now),
            "playable": record.recording is not None and record.recording.state in ("complete", "incomplete"),
            "disclosure": self._disclosure(record),
            "tenants": self._tenants(),
            "live_url": f"/live/call/{record.call_id}",
        }

    def _tenants(self) -> list[str]:
        """Whose calls the console tells apart: the operator's own and each tenant's (callagent.toml);
        none when there are no tenants, and the pages show no tenant at all."""
        names = list(self.service.profiles.tenants)
        return [OPERATOR, *names] if names else []

    def _disclosure(self, record: CallRecord) -> str:
        """What the callee heard first: in the call's language, its profile's words if it still exists."""
        profile = self.service.profiles.profiles.get(record.profile)
        phrases = profile.phrases if profile is not None else None
        return disclosure(record.caller_name, recorded=record.record, language=record.language, phrases=phrases)

    async def recording(self, request: Request) -> Response:
        if self.operator(request) is None:
            return self._unauthenticated(request)
        call_id = request.path_params["call_id"]
        rec, path = await self.service.recording(call_id)
        return FileResponse(
            path,
            media_type=rec.mime_type,
            content_disposition_type="inline",
            filename=f"call-{call_id}.ogg",
        )

    async def end_call(self, request: Request) -> Response:
        checked = await self._form(request)
        if isinstance(checked, Response):
            return checked
        session, _ = checked
        call_id = request.path_params["call_id"]
        ended = await self.service.end(call_id, by=f"ended by the operator ({session.operator}) in the console")
        log.info("console: %s ended call %s", session.operator, call_id)
        done = "ended" if ended.note is None else ""
        return RedirectResponse(f"/calls/{ended.record.call_id}?done={done}", status_code=303)

    # -- approvals -------------------------------------------------------------------------

    async def approvals_page(self, request: Request) -> Response:
        session = self.operator(request)
        if session is None:
            return self._unauthenticated(request)
        context = await self._approvals()
        return self.render(request, "approvals.html", session, **context, pending=len(context["waiting"]))

    async def _approvals(self) -> dict[str, Any]:
        now = utcnow()
        waiting = await self.service.approvals()
        return {
            "waiting": [
                {
                    "r": r,
                    "callee_time": present.callee_time(r.phone_number, now),
                    "disclosure": self._disclosure(r),
                }
                for r in waiting
            ],
            "confirm": self.settings.dial_confirm,
            "confirm_by": self.settings.dial_confirm_by,
            "live_url": "/live/approvals",
        }

    async def approve(self, request: Request) -> Response:
        checked = await self._form(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        call_id = request.path_params["call_id"]
        always = form.get("always") == "1"
        by = f"{session.operator} (console)"
        service = self.service
        # Placing takes a few seconds (until the phone rings): answer once it is done or after
        # APPROVE_WAIT_S, and let it go on in a task of the service's own.
        task = service.spawn(service.approve(call_id, by=by, always=always))
        task.add_done_callback(_retrieve)
        await asyncio.wait({task}, timeout=APPROVE_WAIT_S)
        done = "approved-always" if always else "approved"
        if task.done():
            exc = task.exception()
            if isinstance(exc, errors.NotFound | errors.BadArgument):
                raise exc  # nothing was decided: said on an error page
            if exc is not None:
                done = "approve-failed"  # refused by the policy now, or not placed: the call's page says why
        log.info("console: %s approved call %s%s", session.operator, call_id, " and its number for good" * always)
        return RedirectResponse(f"/calls/{call_id}?done={done}", status_code=303)

    async def deny(self, request: Request) -> Response:
        checked = await self._form(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        call_id = request.path_params["call_id"]
        note = form.get("note", "").strip() or None
        await self.service.deny(call_id, by=f"{session.operator} (console)", note=note)
        log.info("console: %s denied call %s", session.operator, call_id)
        return RedirectResponse("/approvals?done=denied", status_code=303)

    # -- the records around calls ----------------------------------------------------------

    async def refusals_page(self, request: Request) -> Response:
        session = self.operator(request)
        if session is None:
            return self._unauthenticated(request)
        return self.render(request, "refusals.html", session, **await self._refusals(), pending=await self._pending())

    async def _refusals(self) -> dict[str, Any]:
        entries = await self.service.run(self.service.db.refusals.recent, 100)
        return {"entries": entries, "tenants": self._tenants(), "live_url": "/live/refusals"}

    async def dnc_page(self, request: Request, problem: str | None = None, status_code: int = 200) -> Response:
        session = self.operator(request)
        if session is None:
            return self._unauthenticated(request)
        entries = await self.service.run(self.service.db.do_not_call.entries)
        return self.render(
            request,
            "dnc.html",
            session,
            status_code=status_code,
            entries=entries,
            tenants=self._tenants(),
            problem=problem,
            pending=await self._pending(),
            live_url="/live/dnc",
        )

    async def dnc_add(self, request: Request) -> Response:
        checked = await self._form(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        try:
            number = normalize(form.get("number", ""), self.settings.default_region)
        except InvalidNumber as exc:
            return await self.dnc_page(request, str(exc), 400)
        reason = form.get("reason", "").strip() or f"added by {session.operator} in the console"
        db = self.service.db
        already = await self.service.run(db.do_not_call.contains, number)
        await self.service.run(db.do_not_call.add, number, reason)
        log.info("console: %s added a number to the do-not-call list", session.operator)
        return RedirectResponse(f"/dnc?done={'dnc-already' if already else 'dnc-added'}", status_code=303)

    async def dnc_remove(self, request: Request) -> Response:
        checked = await self._form(request)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        try:
            number = normalize(form.get("number", ""), self.settings.default_region)
        except InvalidNumber as exc:
            return await self.dnc_page(request, str(exc), 400)
        # A tenant's own entry names its tenant; the global list's none.
        tenant = form.get("tenant", "").strip() or None
        if not await self.service.run(self.service.db.do_not_call.remove, number, tenant=tenant):
            return await self.dnc_page(request, "That number is not on the do-not-call list.", 404)
        log.info("console: %s removed a number from the do-not-call list", session.operator)
        return RedirectResponse("/dnc?done=dnc-removed", status_code=303)

    async def policy_page(self, request: Request) -> Response:
        session = self.operator(request)
        if session is None:
            return self._unauthenticated(request)
        return self.render(request, "policy.html", session, **await self._policy(), pending=await self._pending())

    async def _policy(self) -> dict[str, Any]:
        info = await self.service.policy_info()
        return {
            "p": info,
            "usage": info.get("usage", {}),
            "allowed": await self.service.allowed_numbers(),
            "confirm_by": self.settings.dial_confirm_by,
            "live_url": "/live/policy",
        }

    # -- live updates ----------------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        """Server-sent events: each live region of a page, again whenever its HTML changed."""
        if self.operator(request) is None:
            return self._unauthenticated(request)
        view = request.path_params["view"]
        regions = self._regions(view, request)
        if regions is None:
            return Response("No such live view.", status_code=404, media_type="text/plain")
        return StreamingResponse(
            self._events(request, regions),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},  # nginx: pass each event on at once
        )

    def _regions(self, view: str, request: Request) -> Callable[[], Awaitable[dict[str, str]]] | None:
        """The function rendering a view's live regions (id → HTML), or None for no such view.
        Each region is a macro of _regions.html, given the same data as the page."""
        macros: Any = self.templates.get_template("_regions.html").module
        session = self.operator(request)
        csrf = session.csrf if session else ""

        async def badge(pending: int | None = None) -> dict[str, str]:
            count = await self._pending() if pending is None else pending
            return {"nav-approvals": str(macros.badge(count))}

        async def calls() -> dict[str, str]:
            c = {**await self._calls(request), "csrf": csrf}
            return {**await badge(), "calls-rows": str(macros.call_rows(c))}

        async def call() -> dict[str, str]:
            c = {**self._call(await self.service.get(request.path_params.get("call_id", ""))), "csrf": csrf}
            return {**await badge(), "call-live": str(macros.call_live(c))}

        async def approvals() -> dict[str, str]:
            c = {**await self._approvals(), "csrf": csrf}
            return {**await badge(len(c["waiting"])), "approvals-list": str(macros.approval_list(c))}

        async def refusals() -> dict[str, str]:
            c = await self._refusals()
            return {**await badge(), "refusal-rows": str(macros.refusal_rows(c))}

        async def policy() -> dict[str, str]:
            c = await self._policy()
            return {**await badge(), "policy-usage": str(macros.usage(c))}

        views: dict[str, Callable[[], Awaitable[dict[str, str]]]] = {
            "calls": calls,
            "call": call,
            "approvals": approvals,
            "refusals": refusals,
            "policy": policy,
            "dnc": badge,
        }
        return views.get(view)

    async def _events(self, request: Request, regions: Callable[[], Awaitable[dict[str, str]]]) -> AsyncIterator[str]:
        """Each region once, then again whenever it changed; a problem (the store is down)
        shown while it lasts. Ends when the session does, or the call is gone."""
        loop = asyncio.get_running_loop()
        sent: dict[str, str] = {}
        problem = ""
        last_write = loop.time()
        yield "retry: 3000\n\n"
        while True:
            if self.operator(request) is None:  # the session expired while watching
                yield "event: signed-out\ndata: {}\n\n"
                return
            try:
                fresh, now_problem = await regions(), ""
            except errors.NotFound:
                return
            except errors.CallagentError as exc:
                fresh, now_problem = {}, str(exc)
            if now_problem != problem:
                problem = now_problem
                yield _event("problem", {"text": problem})
                last_write = loop.time()
            for region, html in fresh.items():
                if sent.get(region) != html:
                    sent[region] = html
                    yield _event("region", {"id": region, "html": html})
                    last_write = loop.time()
            if loop.time() - last_write > LIVE_PING_S:
                yield ": ping\n\n"  # keeps proxies from closing an idle stream
                last_write = loop.time()
            await asyncio.sleep(LIVE_INTERVAL_S)


def create_app(settings: Settings, service: CallService | None = None, hosts: list[str] | None = None) -> ASGIApp:
    """The console as an ASGI app (CALLAGENT_CONSOLE_TOKEN must be set)."""
    return Console(settings, service).app(hosts)


# -- helpers ---------------------------------------------------------------------------------


def _event(name: str, data: dict[str, str]) -> str:
    # JSON keeps the HTML on one `data:` line whatever newlines it holds.
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def _form_fields(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    form = await request.form(max_files=0, max_fields=20)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _same(given: str, expected: str) -> bool:
    import hmac

    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _forbidden(text: str = "") -> Response:
    return Response(
        text or "This form expired or came from another site: reload the page and try again.",
        status_code=403,
        media_type="text/plain",
    )


def _is_page(request: Request) -> bool:
    """A GET of a page (not a stream or a file): sent to the sign-in form rather than 401."""
    if request.method != "GET":
        return False
    path = request.url.path
    return not path.startswith("/live/") and not path.endswith("/recording")


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //host or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/calls"
    if any(not c.isprintable() or c.isspace() for c in target) or len(target) > 500:
        return "/calls"
    return target


def _day(text: str) -> datetime | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return None


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Consume a background approval's outcome: its record says it; the log says the rest."""
    exc = None if task.cancelled() else task.exception()
    if exc is not None and not isinstance(exc, errors.CallagentError):
        log.error("console: approving a call failed", exc_info=exc)
