"""Replay a recorded app-server transcript through the session code, with no Codex process.

What Codex sent (`"dir": "in"`) goes where the server sends it: a notification into ingest (`ingest`,
the one call into `codex_mcp.sessions.ingest`: adapt it when ingest's signature changes), a request
into `CodexRequests.receive`. What the recording client sent (`"dir": "out"`) drives the session as
`SessionManager` does when it sends the same: a `thread/start` or `thread/fork` answered by Codex
makes a session for the new thread, a `turn/start` begins a turn (its answer names the active turn),
and an answer to one of Codex's requests is given through `CodexRequests` with the recorded decision;
what our code then sends Codex must be what was recorded. Notifications are routed by `threadId`,
as the manager routes them; those naming no session's thread are dropped, as there.

The result is what `codex_check` in `full` mode shows of each session when read once at the end
(so the deltas of one item are merged into one event, as for a client that polls after the turn):
its events, status, phase, result and pending actions. Events the manager adds itself
(`codex-mcp/turn_requested`, `codex-mcp/forked`, ...) are not part of it: they come from no
Codex message. What our side stamps with the time is taken out (event `timestamp`, the result's
`completedAt`, an action's `createdAt`/`expiresAt`; Codex's own times are recorded, so they stay),
and our random request ids are numbered in order of appearance.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import anyio
from pydantic import BaseModel

from codex_mcp.backends.app_server import AppServerConnection
from codex_mcp.sessions.codex_requests import CodexRequests
from codex_mcp.sessions.ingest import ingest_notification
from codex_mcp.sessions.session import PendingRequest, Session, ThreadSettings
from codex_mcp.sessions.shaping import shape_event
from codex_mcp.wire import app_server
from codex_mcp.wire.tools import output_json

Json = dict[str, Any]

_OUR_REQUEST_ID: Final = re.compile(r"req_[0-9a-f]{8}")


def ingest(session: Session, message: Json) -> None:
    """Feed one notification from Codex to `session`, as `SessionManager.on_notification` does.

    (The manager also drops turn events for a cancelled session and clears the reconnect clock on
    `item/completed`: a replay cancels nothing, and shows no clock.)
    """
    parsed = app_server.parse_line(json.dumps(message))
    if not isinstance(parsed, app_server.Notification):
        return  # the connection hands these to `on_unknown`, which drops them
    params = message.get("params")
    ingest_notification(session, parsed.method, cast(Json, params) if isinstance(params, dict) else {})
    session.buffer.notify()


@dataclass
class _CodexSide:
    """Stands in for the connection `CodexRequests` answers Codex on; keeps the lines it would write."""

    sent: list[Json] = field(default_factory=lambda: [])

    async def respond(self, request_id: app_server.RequestId, result: Json | BaseModel) -> None:
        self.sent.append(json.loads(app_server.encode_response(request_id, result)))

    async def respond_error(self, request_id: app_server.RequestId, code: int, message: str) -> None:
        self.sent.append(json.loads(app_server.encode_error(request_id, code, message)))


@dataclass
class _Replay:
    requests: CodexRequests
    codex: _CodexSide = field(default_factory=_CodexSide)
    sessions: list[Session] = field(default_factory=lambda: [])
    by_thread: dict[str, Session] = field(default_factory=lambda: {})
    ours: dict[app_server.RequestId, Json] = field(default_factory=lambda: {})

    @property
    def connection(self) -> AppServerConnection:
        return cast(AppServerConnection, self.codex)

    def session_for(self, message: Json) -> Session | None:
        params = message.get("params")
        thread_id = cast(Json, params).get("threadId") if isinstance(params, dict) else None
        return self.by_thread.get(thread_id) if isinstance(thread_id, str) else None

    async def inbound(self, message: Json) -> None:
        if "method" in message and "id" in message:
            parsed = app_server.parse_line(json.dumps(message))
            assert isinstance(parsed, app_server.ServerRequest), parsed
            await self.requests.receive(self.connection, self.session_for(message), parsed)
        elif "method" in message:
            session = self.session_for(message)
            if session is not None:
                ingest(session, message)
        elif message.get("id") in self.ours:
            self.answered(self.ours.pop(message["id"]), message)

    def sent_by_us(self, message: Json) -> None:
        """A request or notification the recording client sent Codex."""
        if "id" in message:
            self.ours[message["id"]] = message
        if message["method"] == "turn/start":
            params = message["params"]
            self.by_thread[params["threadId"]].begin_turn(has_output_schema="outputSchema" in params)

    def answered(self, request: Json, response: Json) -> None:
        """Codex's answer to one of our requests: what the manager makes of it."""
        method, params, result = request["method"], request["params"], response.get("result")
        if not isinstance(result, dict):
            return  # an error: the manager raises it to the caller and keeps no state of it
        result = cast(Json, result)
        if method == "thread/start":
            settings = ThreadSettings(
                approval_policy=params["approvalPolicy"], sandbox=params["sandbox"], cwd=params["cwd"]
            )
            self._new(result["thread"]["id"], settings)
        elif method == "thread/fork":
            source = self.by_thread[params["threadId"]]
            fork = self._new(result["thread"]["id"], ThreadSettings(**vars(source.settings)))
            fork.status, fork.phase = "idle", "finished"
        elif method == "turn/start":
            session = self.by_thread[params["threadId"]]
            if session.active_turn_id is None and session.status == "running":
                session.active_turn_id = result["turn"]["id"]

    def _new(self, thread_id: str, settings: ThreadSettings) -> Session:
        number = len(self.sessions) + 1
        session = Session(
            session_id=f"sess_replay{number}", thread_id=thread_id, settings=settings, connection_key="replay"
        )
        self.sessions.append(session)
        self.by_thread[thread_id] = session
        return session

    async def answer(self, message: Json) -> None:
        """Give the recorded answer to a request of Codex through `CodexRequests`, as a caller would."""
        session, request = self._pending(message["id"])
        result = message.get("result")
        assert isinstance(result, dict), f"replaying an error answer to Codex is not supported: {message}"
        recorded = cast(Json, result)
        before = len(self.codex.sent)
        if request.action_type == "user_input":
            await self.requests.respond_user_input(
                self.connection, session, request.request_id, recorded["answers"]
            )
        else:
            decision = recorded.get("decision")
            assert isinstance(decision, str), f"teach the replay to give this answer: {recorded}"
            await self.requests.respond_permission(
                self.connection,
                session,
                request.request_id,
                decision=decision,
                execpolicy_amendment=None,
                network_policy_amendment=None,
                deny_message=None,
            )
        assert self.codex.sent[before:] == [message], "our answer to Codex is not the recorded one"

    def _pending(self, codex_id: object) -> tuple[Session, PendingRequest]:
        for session in self.sessions:
            for request in session.pending.values():
                if request.codex_id == codex_id:
                    return session, request
        raise AssertionError(f"the recording answers Codex's request {codex_id!r}, which no session holds")


def records(path: Path) -> list[Json]:
    """The lines of a transcript."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def replay(path: Path) -> Json:
    """What the sessions of transcript `path` show once it has been replayed (see the module doc)."""
    shown: Json = {"transcript": path.name}
    async with anyio.create_task_group() as task_group:
        state = _Replay(CodexRequests(task_group))
        for record in records(path):
            message = record["msg"]
            if record["dir"] == "in":
                await state.inbound(message)
            elif record["dir"] == "out" and "method" in message:
                state.sent_by_us(message)
            elif record["dir"] == "out":
                await state.answer(message)
        shown["sessions"] = [_shown(session) for session in state.sessions]
        shown["answersToCodex"] = state.codex.sent
        task_group.cancel_scope.cancel()  # the expiry timers of requests still pending
    return _stable(shown, _Numbering())


def _shown(session: Session) -> Json:
    """The session as `codex_check` shows it, without the times our side stamped on it."""
    events = [
        _without(output_json(shape_event(event, "full")), "timestamp") for event in session.buffer.events()
    ]
    for event in events:
        if event["type"] == "result":
            event["data"] = _without(event["data"], "completedAt")
    return {
        "threadId": session.thread_id,
        "status": session.status,
        "phase": session.phase,
        "result": None if session.result is None else _without(session.result, "completedAt"),
        "actions": [_without(output_json(action), "createdAt", "expiresAt") for action in session.actions()],
        "events": events,
    }


def _without(value: Json, *keys: str) -> Json:
    return {key: item for key, item in value.items() if key not in keys}


@dataclass
class _Numbering:
    names: dict[str, str] = field(default_factory=lambda: {})

    def __call__(self, request_id: str) -> str:
        return self.names.setdefault(request_id, f"req_{len(self.names) + 1}")


def _stable(value: Any, numbering: _Numbering) -> Any:
    """`value` with our random request ids numbered in order of appearance."""
    if isinstance(value, dict):
        return {key: _stable(item, numbering) for key, item in cast(Json, value).items()}
    if isinstance(value, list):
        return [_stable(item, numbering) for item in cast(list[Any], value)]
    if isinstance(value, str) and _OUR_REQUEST_ID.fullmatch(value):
        return numbering(value)
    return value
