"""The MCP door's resource notifications: `resources/updated` for `calls://{call_id}` when the
call's status changes (callagent.watch tells when).

Both protocol eras: a client on the handshake wire sends `resources/subscribe` and gets the
notification on its session; a 2026-07-28 client opens a `subscriptions/listen` stream and the
SDK's subscription bus delivers the event to the streams that asked for that URI.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ServerEvent
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from callagent.errors import CallagentError
from callagent.watch import CallWatcher

__all__ = ["TENANT", "ListenBus", "install"]

# The tenant of the request being served (None: the operator), set by the tools' middleware
# (tools._scope_tenant) for every method, subscriptions included.
TENANT: ContextVar[str | None] = ContextVar("callagent_tenant", default=None)


class ListenBus(InMemorySubscriptionBus):
    """The SDK's bus for `subscriptions/listen` streams: while any stream is open, the watcher
    tells it of every call whose status changes (the SDK filters by each stream's URIs)."""

    def __init__(self, watcher: CallWatcher) -> None:
        super().__init__()
        self._watcher = watcher
        self._streams = 0

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        # A tenant's stream hears only of its own calls (the SDK filters by URI only): the
        # tenant is the one whose request opened the stream (tools.TENANT).
        tenant = TENANT.get()
        if tenant is not None:
            listener = self._only_of(tenant, listener)
        unsubscribe = super().subscribe(listener)
        self._streams += 1
        if self._streams == 1:
            self._watcher.listen_all(self, self._updated)
        done = False

        def close() -> None:
            nonlocal done
            if done:
                return
            done = True
            unsubscribe()
            self._streams -= 1
            if self._streams == 0:
                self._watcher.forget(self)

        return close

    def _only_of(self, tenant: str, listener: Callable[[ServerEvent], None]) -> Callable[[ServerEvent], None]:
        def deliver(event: ServerEvent) -> None:
            if isinstance(event, ResourceUpdated) and self._watcher.owner(event.uri) == tenant:
                listener(event)

        return deliver

    async def _updated(self, uri: str) -> None:
        await self.publish(ResourceUpdated(uri=uri))


def install(server: MCPServer[Any], watcher: CallWatcher) -> None:
    """Serve `resources/subscribe` and `resources/unsubscribe` (handshake-era clients)."""

    async def subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
        session = ctx.session

        async def notify(uri: str) -> None:
            await session.send_resource_updated(uri)

        try:
            await watcher.subscribe(str(params.uri), session, notify, tenant=TENANT.get())
        except (ValueError, CallagentError) as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from None
        return EmptyResult()

    async def unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
        watcher.unsubscribe(str(params.uri), ctx.session)
        return EmptyResult()

    # MCPServer has no public hook for these two methods; the low-level server serves them.
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
