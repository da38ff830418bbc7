"""Sessions on `codex app-server`: threads and turns as JSON-RPC calls to pooled children.

Sessions whose spawn-time settings are equal share one child (`children.py`). Today that is every
session of a server, since all settings, the config profile included, go on `thread/start`/
`turn/start`; the key stays so a setting that needs its own child can join it. That makes the
second session start without a spawn, and makes `fork` work: a forked thread belongs to the
process that forked it. A child that dies fails only its own running turns; the next call that
needs it starts a new child and resumes the thread there (`thread/resume`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from codex_mcp.backend_mode import BackendMode, ModeResolver
from codex_mcp.backends.app_server import AppServerConnection
from codex_mcp.backends.process import SpawnLedger, kill_all_now
from codex_mcp.errors import AppServerClosedError, AppServerRequestError, CodexMcpError, codex_refused
from codex_mcp.hosts import Host, host_key, host_named
from codex_mcp.service.attach import SharedService
from codex_mcp.sessions.backend import (
    BackendEvents,
    NoAppServerError,
    Reattached,
    Responder,
    StartedThread,
    SteerRequest,
    TurnRequest,
)
from codex_mcp.sessions.children import ChildPool
from codex_mcp.sessions.codex_requests import ANSWER_TIMEOUT_S
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.wire import calls
from codex_mcp.wire.calls import ClientCall, R

logger = logging.getLogger(__name__)

# JSON-RPC "Invalid Request": how Codex refuses a steer of a turn that is not the running one.
INVALID_REQUEST = -32600

# The recursion guard: `config` plus what keeps a Codex child working in `cwd` from running us.
Guard = Callable[[str, dict[str, Any] | None], dict[str, Any] | None]


class AppServerBackend:
    """The `Backend` of `codex app-server` children, all run in `task_group`."""

    def __init__(
        self,
        task_group: TaskGroup,
        codex: str,
        events: BackendEvents,
        *,
        mode: ModeResolver,
        guard: Guard,
        request_timeout_s: float,
        env: dict[str, str] | None,
        ledger: SpawnLedger | None,
        service: SharedService | None = None,
        max_rss_mb: float | None = None,
        hosts: tuple[Host, ...] = (),
    ) -> None:
        self._service = service
        self._max_rss_bytes = None if max_rss_mb is None else int(max_rss_mb * 2**20)
        self._mode = mode
        self._guard = guard
        self._request_timeout_s = request_timeout_s
        self._key = codex if service is None else f"service:{service.layout.key}"
        self._children = ChildPool(
            task_group, codex, events, env=env, ledger=ledger, service=service, hosts=hosts
        )

    @property
    def name(self) -> BackendMode:
        return "app-server"

    @property
    def key(self) -> str:
        return self._key

    async def _connection(self, key: str) -> AppServerConnection:
        """The live child of `key`, started if needed.

        Raises:
            NoAppServerError: its start showed that this Codex has no app-server.
            CodexMcpError: APP_SERVER_START_FAILED when the child did not start (and this Codex has
                an app-server, or may have).
        """
        if host_named(key) is not None:
            return await self._children.connection(key)  # another machine's: says nothing of ours
        try:
            connection = await self._children.connection(key)
        except CodexMcpError as exc:
            if exc.code != "APP_SERVER_START_FAILED":
                raise
            choice = await self._mode.spawn_failed(exc.message)
            if choice.mode != "exec":
                raise
            raise NoAppServerError(exc.message) from exc
        self._mode.spawn_worked()
        return connection

    async def _call(self, connection: AppServerConnection, call: ClientCall[R]) -> R:
        """`call` on `connection`, with Codex's refusals and exits as tool errors."""
        try:
            with self._children.requesting():
                return await connection.call(call, timeout_s=self._request_timeout_s)
        except AppServerRequestError as exc:
            raise codex_refused(call.method, exc) from exc
        except AppServerClosedError as exc:
            raise CodexMcpError(
                "APP_SERVER_START_FAILED", f"codex app-server exited during {call.method}: {exc}"
            ) from exc

    def outlives_us(self, key: str) -> bool:
        return self._children.shared or host_named(key) is not None

    def close(self) -> None:
        if self._service is not None:
            self._service.detach()

    async def reattach(self, session: Session) -> Reattached:
        # Resuming makes Codex replay the requests the turn waits on, to this connection.
        connection = await self._loaded(session)
        read = await self._call(
            connection, calls.thread_read(thread_id=session.thread_id, include_turns=True)
        )
        return Reattached(calls.last_turn(read.thread), running=calls.is_active(read.thread))

    async def forget(self, session: Session) -> None:
        connection = self._children.live(session.connection_key)
        if connection is None or not self._children.has_loaded(session.connection_key, session.thread_id):
            return
        self._children.unloaded(session.connection_key, session.thread_id)
        with anyio.move_on_after(ANSWER_TIMEOUT_S):
            try:
                await connection.call(
                    calls.thread_unsubscribe(thread_id=session.thread_id), timeout_s=ANSWER_TIMEOUT_S
                )
            except (AppServerRequestError, AppServerClosedError, CodexMcpError):
                logger.info("could not unsubscribe thread %s", session.thread_id, exc_info=True)

    def maintain(self, busy_keys: set[str]) -> None:
        self._children.recycle_grown(self._max_rss_bytes, busy_keys)

    async def warm_up(self) -> None:
        await self._connection(self._key)

    async def _placed(self, settings: ThreadSettings) -> tuple[str, AppServerConnection]:
        """Where a new thread goes: the host it names, else the least busy host that answers, else
        here; and the connection there. `settings.host` is set to the host chosen."""
        if settings.host is not None:
            key = host_key(settings.host)
            return key, await self._connection(key)
        keys = self._children.host_keys()
        if not keys:
            return self._key, await self._connection(self._key)
        failed: CodexMcpError | None = None
        for key in keys:
            try:
                with self._children.placing(key):
                    connection = await self._connection(key)
            except CodexMcpError as exc:
                logger.warning("%s; placing the session on another host", exc.message)
                failed = exc
                continue
            settings.host = host_named(key)
            return key, connection
        assert failed is not None
        raise CodexMcpError("APP_SERVER_START_FAILED", f"no host answered; the last: {failed.message}")

    async def start_thread(self, settings: ThreadSettings) -> StartedThread:
        key, connection = await self._placed(settings)
        with self._children.placing(key):  # held from here until loaded, for the next placement
            started = await self._call(
                connection,
                calls.thread_start(
                    cwd=settings.cwd,
                    approval_policy=settings.approval_policy,
                    sandbox=settings.sandbox,
                    model=settings.model,
                    config=self._guard(settings.cwd, settings.config),
                    base_instructions=settings.base_instructions,
                    developer_instructions=settings.developer_instructions,
                    personality=settings.personality,
                    ephemeral=settings.ephemeral,
                ),
            )
            self._children.loaded(key, started.thread.id)
        return StartedThread(started.thread.id, started.model, key=key)

    async def _loaded(self, session: Session) -> AppServerConnection:
        """The live process that has the session's thread loaded, resuming it there if needed."""
        connection = await self._connection(session.connection_key)
        if self._children.has_loaded(session.connection_key, session.thread_id):
            return connection
        if session.settings.ephemeral:
            raise CodexMcpError(
                "SESSION_NOT_RUNNING",
                "this ephemeral session's Codex process is gone (it exited, or codex-mcp restarted); "
                "its thread cannot resume: start a new session",
            )
        settings = session.settings
        resume = calls.thread_resume(
            thread_id=session.thread_id,
            cwd=settings.cwd,
            approval_policy=settings.approval_policy,
            sandbox=settings.sandbox,
            model=settings.model,
            # Resuming starts the thread's MCP servers again: the guard goes with it.
            config=self._guard(settings.cwd, None),
        )
        await self._call(connection, resume)
        self._children.loaded(session.connection_key, session.thread_id)
        return connection

    async def prepare(self, session: Session, warnings: list[str]) -> None:
        await self._loaded(session)

    async def start_turn(self, session: Session, turn: TurnRequest, warnings: list[str]) -> None:
        settings = session.settings
        request = calls.turn_start(
            thread_id=session.thread_id,
            prompt=turn.prompt,
            images=turn.images,
            effort=turn.effort or settings.effort,
            summary=turn.summary or settings.summary,
            personality=turn.personality,
            output_schema=turn.output_schema,
            model=turn.model,
            approval_policy=turn.approval_policy,
            cwd=turn.cwd,
            sandbox=turn.sandbox,
            collaboration_mode=turn.collaboration_mode,
            collaboration_model=settings.model,
        )
        session.buffer.append("progress", {"method": "codex-mcp/turn_requested", "phase": "starting"})
        try:
            connection = self._children.live(session.connection_key)
            if connection is None:
                raise CodexMcpError("APP_SERVER_START_FAILED", "codex app-server exited before turn/start")
            started = await self._call(connection, request)
        except CodexMcpError:
            session.status = "error"
            session.turn_finished.set()
            raise
        if session.active_turn_id is None and session.status == "running":
            session.active_turn_id = started.turn.id

    async def steer(self, session: Session, turn_id: str, steer: SteerRequest) -> None:
        connection = self._children.live(session.connection_key)
        if connection is None:
            raise CodexMcpError(
                "SESSION_NOT_RUNNING", f"session {session.session_id} has no live Codex process"
            )
        request = calls.turn_steer(
            thread_id=session.thread_id,
            expected_turn_id=turn_id,
            prompt=steer.prompt,
            images=steer.images,
            client_message_id=steer.client_message_id,
        )
        try:
            await connection.call(request, timeout_s=self._request_timeout_s)
        except AppServerRequestError as exc:
            if exc.code != INVALID_REQUEST:
                raise codex_refused(request.method, exc) from exc
            # "no active turn to steer", "expected active turn id `X` but found `Y`": the turn ended
            # (and maybe another began) before the steer reached Codex. Nothing was added.
            raise CodexMcpError(
                "SESSION_NOT_RUNNING",
                f"turn {turn_id} of session {session.session_id} ended before the steer reached it "
                f"(Codex: {exc.message}); nothing was sent: poll for its result, and codex_reply "
                "without steer starts a new turn",
            ) from exc
        except AppServerClosedError as exc:
            raise CodexMcpError(
                "SESSION_NOT_RUNNING", f"codex app-server exited during {request.method}: {exc}"
            ) from exc

    async def interrupt(self, session: Session) -> None:
        connection = self._children.live(session.connection_key)
        if connection is None:
            raise CodexMcpError(
                "SESSION_NOT_RUNNING", f"session {session.session_id} has no live Codex process"
            )
        turn_id = session.active_turn_id
        if turn_id is None:
            raise CodexMcpError("SESSION_NOT_RUNNING", "the turn has not started yet; poll and retry")
        await self._call(connection, calls.turn_interrupt(thread_id=session.thread_id, turn_id=turn_id))

    async def stop_quietly(self, session: Session, turn_id: str | None, why: str) -> None:
        connection = self._children.live(session.connection_key)
        if connection is None or turn_id is None:
            return
        with anyio.move_on_after(ANSWER_TIMEOUT_S):
            try:
                await connection.call(
                    calls.turn_interrupt(thread_id=session.thread_id, turn_id=turn_id),
                    timeout_s=ANSWER_TIMEOUT_S,
                )
            except (AppServerRequestError, AppServerClosedError, CodexMcpError):
                logger.info("could not interrupt the turn (%s)", why, exc_info=True)

    async def fork(self, session: Session) -> str:
        connection = await self._loaded(session)
        # A forked thread starts its MCP servers: the guard goes with it.
        guard = self._guard(session.settings.cwd, None)
        forked = await self._call(connection, calls.thread_fork(thread_id=session.thread_id, config=guard))
        self._children.loaded(session.connection_key, forked.thread.id)
        return forked.thread.id

    async def clean_background_terminals(self, session: Session) -> None:
        connection = await self._loaded(session)
        await self._call(connection, calls.background_terminals_clean(thread_id=session.thread_id))

    def responder(self, session: Session) -> Responder | None:
        return self._children.live(session.connection_key)

    def kill_now(self) -> None:
        kill_all_now()
