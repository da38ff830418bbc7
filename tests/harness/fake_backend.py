"""A `Backend` in memory: the manager and the handlers run on it with no Codex process.

It records what the manager asked of it, and plays Codex's side on command: `notify` delivers a
notification as a child's connection would (parsed by the same wire code), `request` sends one of
Codex's requests and hands back the answer our side gives. Thread and turn ids are numbered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.lowlevel

from codex_mcp.backend_mode import BackendMode
from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.backend import (
    BackendEvents,
    Reattached,
    Responder,
    StartedThread,
    SteerRequest,
    TurnRequest,
)
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.state.store import StateStore
from codex_mcp.wire import app_server
from codex_mcp.wire.app_server import RequestId

Json = dict[str, Any]

FAKE_KEY: Final = "fake"
# Bound on every wait of a test on the fake: far above what an in-memory step takes.
STEP_BOUND_S: Final = 5.0


@dataclass
class _Answers:
    """Stands in for a child's connection: what our side answered Codex's requests with, in order."""

    given: list[tuple[RequestId, Json]] = field(default_factory=lambda: [])
    _arrived: anyio.Event = field(default_factory=anyio.Event)

    async def respond(self, request_id: RequestId, result: Any) -> None:
        self._add(request_id, json.loads(app_server.encode_response(request_id, result)))

    async def respond_error(self, request_id: RequestId, code: int, message: str) -> None:
        self._add(request_id, json.loads(app_server.encode_error(request_id, code, message)))

    def _add(self, request_id: RequestId, line: Json) -> None:
        self.given.append((request_id, line))
        self._arrived.set()
        self._arrived = anyio.Event()

    async def after(self, seen: int) -> tuple[RequestId, Json]:
        """The answer after the first `seen` ones, once it is given."""
        while len(self.given) <= seen:
            await self._arrived.wait()
        return self.given[seen]


@dataclass
class FakeBackend:
    """Codex as far as the manager can tell; `events` is the manager, set once it exists."""

    events: BackendEvents | None = None
    name: BackendMode = "app-server"
    key: str = FAKE_KEY
    threads: list[str] = field(default_factory=lambda: [])
    # The settings each thread was started with, in order.
    started: list[ThreadSettings] = field(default_factory=lambda: [])
    turns: list[tuple[str, TurnRequest]] = field(default_factory=lambda: [])
    interrupted: list[str] = field(default_factory=lambda: [])
    # (turn id, request) of every steer Codex took
    steered: list[tuple[str, SteerRequest]] = field(default_factory=lambda: [])
    # Codex's turn ended before the next steer reached it: that steer is refused (then this clears)
    steer_races_turn_end: bool = False
    stopped: list[str] = field(default_factory=lambda: [])
    prepared: list[str] = field(default_factory=lambda: [])
    cleaned: list[str] = field(default_factory=lambda: [])
    killed: bool = False
    closed: bool = False
    outlive: bool = False
    reattached: list[str] = field(default_factory=lambda: [])
    forgotten: list[str] = field(default_factory=lambda: [])
    busy_keys: list[set[str]] = field(default_factory=lambda: [])
    # thread id -> the turn as Codex ended it while no server was attached
    ended_while_away: dict[str, Json] = field(default_factory=lambda: {})
    codex_gone: bool = False
    answers: _Answers = field(default_factory=_Answers)
    _read: int = 0
    _next_id: int = 0

    def _id(self, kind: str) -> str:
        self._next_id += 1
        return f"{kind}-{self._next_id}"

    # --- Backend -----------------------------------------------------------------

    def outlives_us(self, key: str) -> bool:
        return self.outlive

    def close(self) -> None:
        self.closed = True

    async def reattach(self, session: Session) -> Reattached:
        self.reattached.append(session.thread_id)
        ended = self.ended_while_away.get(session.thread_id)
        return Reattached(ended, running=ended is None)

    async def forget(self, session: Session) -> None:
        self.forgotten.append(session.thread_id)

    def maintain(self, busy_keys: set[str]) -> None:
        self.busy_keys.append(busy_keys)

    async def warm_up(self) -> None:
        return None

    async def start_thread(self, settings: ThreadSettings) -> StartedThread:
        thread_id = self._id("thread")
        self.threads.append(thread_id)
        self.started.append(settings)
        return StartedThread(thread_id, model="fake-model")

    async def prepare(self, session: Session, warnings: list[str]) -> None:
        self.prepared.append(session.thread_id)

    async def start_turn(self, session: Session, turn: TurnRequest, warnings: list[str]) -> None:
        turn_id = self._id("turn")
        self.turns.append((session.thread_id, turn))
        session.active_turn_id = turn_id
        self.notify(
            "turn/started",
            {"threadId": session.thread_id, "turn": {"id": turn_id, "items": [], "status": "inProgress"}},
        )

    async def steer(self, session: Session, turn_id: str, steer: SteerRequest) -> None:
        await anyio.lowlevel.checkpoint()  # a call to Codex: others run meanwhile
        if self.steer_races_turn_end or turn_id != session.active_turn_id:
            self.steer_races_turn_end = False
            raise CodexMcpError("SESSION_NOT_RUNNING", f"turn {turn_id} ended before the steer reached it")
        self.steered.append((turn_id, steer))
        # As Codex shows it: a userMessage item of the same turn, its clientId the steer's.
        item: Json = {
            "type": "userMessage",
            "id": self._id("user"),
            "clientId": steer.client_message_id,
            "content": [{"type": "text", "text": steer.prompt, "text_elements": list[Json]()}],
        }
        ids = {"threadId": session.thread_id, "turnId": turn_id, "item": item}
        self.notify("item/started", {**ids, "startedAtMs": 0})
        self.notify("item/completed", {**ids, "completedAtMs": 0})

    async def interrupt(self, session: Session) -> None:
        if session.active_turn_id is None:
            raise CodexMcpError("SESSION_NOT_RUNNING", "the turn has not started yet; poll and retry")
        self.interrupted.append(session.active_turn_id)

    async def stop_quietly(self, session: Session, turn_id: str | None, why: str) -> None:
        if turn_id is not None:
            self.stopped.append(turn_id)

    async def fork(self, session: Session) -> str:
        thread_id = self._id("thread")
        self.threads.append(thread_id)
        return thread_id

    async def clean_background_terminals(self, session: Session) -> None:
        self.cleaned.append(session.thread_id)

    def responder(self, session: Session) -> Responder | None:
        return None if self.codex_gone else self.answers

    def kill_now(self) -> None:
        self.killed = True

    # --- Codex's side --------------------------------------------------------------

    def _manager(self) -> BackendEvents:
        assert self.events is not None, "open the manager with open_on_fake"
        return self.events

    def notify(self, method: str, params: Json) -> None:
        """Deliver a notification as a child's connection does: parsed, then handed to the manager."""
        message = app_server.parse_line(json.dumps({"method": method, "params": params}))
        assert isinstance(message, app_server.Notification), f"{method}: {message}"
        self._manager().on_notification(message)

    def complete_turn(
        self, session: Session, text: str, status: str = "completed", turn_id: str | None = None
    ) -> None:
        """Codex ends the turn `turn_id` (default: the running one) of `session` with the agent
        message `text`."""
        turn_id = turn_id or session.active_turn_id
        assert turn_id is not None
        item = {"type": "agentMessage", "id": self._id("msg"), "text": text}
        params = {"threadId": session.thread_id, "turnId": turn_id, "item": item, "completedAtMs": 0}
        self.notify("item/completed", params)
        self.notify(
            "turn/completed",
            {"threadId": session.thread_id, "turn": {"id": turn_id, "items": [], "status": status}},
        )

    async def request(self, method: str, params: Json) -> RequestId:
        """Send one of Codex's requests to the manager; its JSON-RPC id."""
        self._next_id += 1
        return await self.request_with_id(self._next_id, method, params)

    async def request_with_id(self, request_id: RequestId, method: str, params: Json) -> RequestId:
        """Send one of Codex's requests with the id `request_id` (a replay keeps its id)."""
        line = json.dumps({"method": method, "id": request_id, "params": params})
        message = app_server.parse_line(line)
        assert isinstance(message, app_server.ServerRequest), f"{method}: {message}"
        await self._manager().on_server_request(self.answers, message)
        return request_id

    async def answer(self) -> tuple[RequestId, Json]:
        """The next answer our side gave one of Codex's requests (bounded wait)."""
        with anyio.fail_after(STEP_BOUND_S):
            answer = await self.answers.after(self._read)
        self._read += 1
        return answer


@asynccontextmanager
async def open_on_fake(
    settings: Settings | None = None, backend: FakeBackend | None = None, store: StateStore | None = None
) -> AsyncGenerator[tuple[SessionManager, FakeBackend]]:
    """A manager running its sessions on a fake backend, with no state directory unless `store`.

    Turns still running at the end are waited for 1 ms (no drain to speak of).
    """
    fake = backend or FakeBackend()
    codex = CodexExecutable(Path("/nonexistent/codex"), "fake")
    settings = settings or Settings.from_env({"CODEX_MCP_DRAIN_TIMEOUT_MS": "1"})
    async with SessionManager.open(codex, settings, store=store, backend=fake) as manager:
        fake.events = manager
        yield manager, fake
