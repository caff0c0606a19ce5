"""A LiveKit server API stand-in on 127.0.0.1 whose every Twirp method can be made to fail.

It speaks LiveKit's Twirp protocol (protobuf over HTTP POST) for the methods callagent uses and
keeps a little state (rooms, participants, dispatches), so an ordinary call can be placed
against it: the agent "joins" on dispatch and the phone "answers" at once. Any method can
instead be set to one of the faults a real network produces:

- "ok"       answer like LiveKit
- "500"      HTTP 500 with a Twirp "internal" error
- "401"      HTTP 401, the answer to bad credentials
- "404"      HTTP 404 "not_found"
- "hang"     read the request and never answer (until `hang_s` passes or the fake closes)
- "close"    read the request and close the connection without a word
- "garbage"  HTTP 200 with a body that is not the expected protobuf

Every request is recorded (method and time), so a test can assert what reached "LiveKit".
With `upstream` (a real LiveKit's URL), "ok" means "forward to it": a proxy that fails only the
chosen methods, which is how the bed tests make LiveKit refuse DeleteRoom to one process while
the worker's own requests go through.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from livekit.protocol import agent as pa
from livekit.protocol import agent_dispatch as pd
from livekit.protocol import models as pm
from livekit.protocol import room as pr
from livekit.protocol import sip as ps

FAULTS = ("ok", "500", "401", "404", "hang", "close", "garbage")

# A field-1 length prefix that overflows: no protobuf message parses it.
GARBAGE = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"


@dataclass
class Room:
    name: str
    participants: list[pm.ParticipantInfo] = field(default_factory=list)
    dispatches: list[pd.AgentDispatch] = field(default_factory=list)


class FakeLiveKit:
    """`faults` maps a Twirp method name ("DeleteRoom", "CreateSIPParticipant", ...) to one
    of FAULTS; methods not named get `default`. Change them at any time with `set()`."""

    def __init__(
        self,
        default: str = "ok",
        *,
        agent_joins: bool = True,
        agent_joins_after_s: float = 0.0,
        job_taken: bool = False,
        hang_s: float = 60.0,
        hold_s: dict[str, float] | None = None,
        upstream: str | None = None,
        **faults: str,
    ) -> None:
        self.default = default
        self.upstream = upstream.rstrip("/") if upstream else None
        self.faults: dict[str, str] = dict(faults)
        self.agent_joins = agent_joins
        # A loaded worker: it takes the job at once (the dispatch lists it) and joins this late.
        self.agent_joins_after_s = agent_joins_after_s
        self.job_taken = job_taken
        self.hang_s = hang_s
        self.hold_s = dict(hold_s or {})  # per method: does the work, then answers this late
        self.rooms: dict[str, Room] = {}
        self.requests: list[tuple[float, str, str]] = []  # (time, method, fault applied)
        self.deleted_rooms: list[str] = []
        self.deleted_dispatches: list[str] = []
        self.sip_requests: list[ps.CreateSIPParticipantRequest] = []  # what was asked of the SIP bridge
        self._lock = threading.Lock()
        self._closing = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                method = self.path.rsplit("/", 1)[-1]
                fault = fake.fault(method)
                with fake._lock:
                    fake.requests.append((time.monotonic(), method, fault))
                if fault == "hang":
                    fake._closing.wait(fake.hang_s)
                    self.close_connection = True
                    return
                if fault == "close":
                    self.close_connection = True
                    return
                if fault == "garbage":
                    reply = (200, GARBAGE, "application/protobuf")
                elif fault in ("500", "401", "404"):
                    reply = self._error(int(fault))
                elif fake.upstream:
                    reply = fake._forward(self.path, body, self.headers)
                else:
                    try:
                        status, answer = fake._handle(method, body)
                    except Exception as exc:  # noqa: BLE001 - a bug in the fake shows up as an internal error
                        status, answer = 500, f"fake: {exc!r}"
                    reply = (
                        (200, answer.SerializeToString(), "application/protobuf")
                        if status == 200
                        else self._error(status, str(answer))
                    )
                if fake.hold_s.get(method):  # the work is done, but the answer is late
                    fake._closing.wait(fake.hold_s[method])
                self._send(*reply)

            do_GET = do_POST  # noqa: N815

            def _error(self, status: int, msg: str = "") -> tuple[int, bytes, str]:
                code = {401: "unauthenticated", 404: "not_found"}.get(status, "internal")
                text = msg or {401: "invalid API key (fake)", 404: "not found (fake)"}.get(
                    status, "internal error (fake)"
                )
                return status, json.dumps({"code": code, "msg": text}).encode(), "application/json"

            def _send(self, status: int, data: bytes, ctype: str) -> None:
                if fake._closing.is_set():
                    return
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    # -- control ---------------------------------------------------------------------------

    def fault(self, method: str) -> str:
        with self._lock:
            return self.faults.get(method, self.default)

    def set(self, default: str | None = None, **faults: str) -> None:
        with self._lock:
            if default is not None:
                self.default = default
            self.faults.update(faults)

    def calls(self, method: str | None = None) -> list[str]:
        """Methods requested so far (only `method`'s, if given), in order."""
        with self._lock:
            return [m for _, m, _ in self.requests if method is None or m == method]

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def create_rooms(self) -> int:
        return len(self.calls("CreateRoom"))

    def live_rooms(self) -> list[str]:
        with self._lock:
            return sorted(self.rooms)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # -- LiveKit, as far as callagent uses it ------------------------------------------------

    def _forward(self, path: str, body: bytes, headers: Any) -> tuple[int, bytes, str]:
        import urllib.error
        import urllib.request

        wanted = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "user-agent")}
        request = urllib.request.Request(f"{self.upstream}{path}", data=body, headers=wanted, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.read(), resp.headers.get("content-type", "application/protobuf")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("content-type", "application/json")

    def _handle(self, method: str, body: bytes) -> tuple[int, Any]:
        with self._lock:
            if method == "CreateRoom":
                req = pr.CreateRoomRequest.FromString(body)
                self.rooms.setdefault(req.name, Room(req.name))
                return 200, pm.Room(name=req.name, sid=f"RM_{secrets.token_hex(4)}")
            if method == "ListRooms":
                return 200, pr.ListRoomsResponse(rooms=[pm.Room(name=n) for n in self.rooms])
            if method == "DeleteRoom":
                req = pr.DeleteRoomRequest.FromString(body)
                if self.rooms.pop(req.room, None) is None:
                    return 404, "room not found"
                self.deleted_rooms.append(req.room)
                return 200, pr.DeleteRoomResponse()
            if method == "ListParticipants":
                req = pr.ListParticipantsRequest.FromString(body)
                room = self.rooms.get(req.room)
                return 200, pr.ListParticipantsResponse(participants=room.participants if room else [])
            if method == "RemoveParticipant":
                req = pr.RoomParticipantIdentity.FromString(body)
                room = self.rooms.get(req.room)
                if room is None or not any(p.identity == req.identity for p in room.participants):
                    return 404, "participant not found"
                room.participants = [p for p in room.participants if p.identity != req.identity]
                return 200, pr.RemoveParticipantResponse()
            if method == "CreateDispatch":
                req = pd.CreateAgentDispatchRequest.FromString(body)
                dispatch = pd.AgentDispatch(
                    id=f"AD_{secrets.token_hex(4)}", agent_name=req.agent_name, room=req.room, metadata=req.metadata
                )
                room = self.rooms.setdefault(req.room, Room(req.room))
                room.dispatches.append(dispatch)
                if self.job_taken:
                    dispatch.state.jobs.append(
                        pa.Job(id="AJ_fake", state=pa.JobState(status=pa.JobStatus.JS_RUNNING, worker_id="AW_fake"))
                    )
                agent = pm.ParticipantInfo(identity=f"agent-{dispatch.id}", kind=pm.ParticipantInfo.Kind.AGENT)
                if self.agent_joins and self.agent_joins_after_s > 0:
                    timer = threading.Timer(self.agent_joins_after_s, room.participants.append, (agent,))
                    timer.daemon = True
                    timer.start()
                elif self.agent_joins:
                    room.participants.append(agent)
                return 200, dispatch
            if method == "ListDispatch":
                req = pd.ListAgentDispatchRequest.FromString(body)
                room = self.rooms.get(req.room)
                found = [d for d in (room.dispatches if room else []) if not req.dispatch_id or d.id == req.dispatch_id]
                return 200, pd.ListAgentDispatchResponse(agent_dispatches=found)
            if method == "DeleteDispatch":
                req = pd.DeleteAgentDispatchRequest.FromString(body)
                room = self.rooms.get(req.room)
                match = [d for d in (room.dispatches if room else []) if d.id == req.dispatch_id]
                if not match or room is None:
                    return 404, "dispatch not found"
                room.dispatches = [d for d in room.dispatches if d.id != req.dispatch_id]
                self.deleted_dispatches.append(req.dispatch_id)
                return 200, match[0]
            if method == "CreateSIPParticipant":
                req = ps.CreateSIPParticipantRequest.FromString(body)
                self.sip_requests.append(req)
                room = self.rooms.get(req.room_name)
                if room is None:
                    return 404, "room not found"
                room.participants.append(
                    pm.ParticipantInfo(
                        identity=req.participant_identity,
                        kind=pm.ParticipantInfo.Kind.SIP,
                        attributes={"sip.callStatus": "active"},
                    )
                )
                return 200, ps.SIPParticipantInfo(
                    participant_id=f"PA_{secrets.token_hex(4)}",
                    participant_identity=req.participant_identity,
                    room_name=req.room_name,
                    sip_call_id=f"SCL_{secrets.token_hex(4)}",
                )
        return 404, f"method {method} is not emulated by the fake"


@contextmanager
def fake_livekit(default: str = "ok", **kwargs: Any) -> Iterator[FakeLiveKit]:
    lk = FakeLiveKit(default, **kwargs)
    try:
        yield lk
    finally:
        lk.close()
