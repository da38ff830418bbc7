"""SessionManager: owns every session, the Codex children they run on, and the tasks that serve them.

Process model: sessions whose spawn-time settings are equal share one `codex app-server` child. Today
that is every session of a server, since all settings, the config profile included, go on
`thread/start`/`turn/start`; the key stays so a setting that needs its own child can join it.
That makes the second session start without a spawn, and makes `fork` work: a forked thread belongs
to the process that forked it. A child that dies fails only its own running turns; the next call
that needs it starts a new child and resumes the thread there (`thread/resume`).

With a state directory, sessions outlive the server: they are written as they change
(`persistence.py`) and brought back when the next server opens the same directory; their threads
are resumed the same way, on the first call that needs them.

The backend (app-server or exec, `backend_mode.py`) is settled on first need too: the first call
that needs one probes Codex (once, however many calls ask at the same time), and the first spawn
of an app-server that was only assumed confirms it or falls back to exec. Every thread and exec
turn goes out with the recursion guard (`nesting.py`): the user's config entries that run
codex-mcp are disabled for our children.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from codex_mcp.backend_mode import BackendMode, ModeChoice, ModeResolver
from codex_mcp.backends.app_server import AppServerConnection
from codex_mcp.backends.process import kill_all_now
from codex_mcp.errors import (
    AppServerClosedError,
    AppServerRequestError,
    CodexMcpError,
    codex_refused,
    exec_not_supported,
    redact,
)
from codex_mcp.nesting import guard_config
from codex_mcp.profiles import codex_home
from codex_mcp.sessions.children import ChildPool
from codex_mcp.sessions.codex_requests import ANSWER_TIMEOUT_S, CodexRequests
from codex_mcp.sessions.disk_views import DiskViews
from codex_mcp.sessions.events import now_iso
from codex_mcp.sessions.exec_driver import ExecDriver, placeholder_thread_id
from codex_mcp.sessions.ingest import finish_turn, ingest_notification
from codex_mcp.sessions.persistence import SessionPersister, disk_only_matches
from codex_mcp.sessions.session import TERMINAL, Session, ThreadSettings
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.state.store import StateStore
from codex_mcp.wire import calls
from codex_mcp.wire.app_server import (
    Notification,
    ServerRequest,
    UnknownMessage,
)
from codex_mcp.wire.calls import ClientCall, R
from codex_mcp.wire.methods import (
    ERROR,
    ITEM_COMPLETED,
    TURN_COMPLETED,
    TURN_STARTED,
)

logger = logging.getLogger(__name__)

# How often the watchdog looks for turns stuck in Codex's reconnect loop.
_WATCHDOG_PERIOD_S: Final = 1.0
# JSON-RPC "invalid params"/"invalid request": Codex refused a value the caller gave.


@dataclass
class TurnRequest:
    """What a new turn carries (first turn or reply)."""

    prompt: str
    images: list[str] = field(default_factory=lambda: [])
    effort: str | None = None
    summary: str | None = None
    personality: str | None = None
    output_schema: dict[str, Any] | None = None
    collaboration_mode: str | None = None
    model: str | None = None
    approval_policy: str | None = None
    sandbox: str | None = None
    cwd: str | None = None


def _map_policy(policy: str, warnings: list[str]) -> str:
    if policy == "on-failure":
        warnings.append(
            "approvalPolicy 'on-failure' was removed from Codex; using 'on-request' "
            "(Codex asks when a command needs to leave the sandbox)"
        )
        return "on-request"
    return policy


class SessionManager:
    """Creates, drives and answers for sessions; one per server."""

    def __init__(
        self,
        task_group: TaskGroup,
        codex: CodexExecutable,
        settings: Settings,
        mode: BackendMode | ModeResolver,
        store: StateStore | None = None,
    ) -> None:
        self._tg = task_group
        self._codex = codex
        self._settings = settings
        self._store = store
        self._child_env = None if store is None else store.child_environment()
        self._persister = None if store is None else SessionPersister(store)
        self._backend = (
            mode if isinstance(mode, ModeResolver) else ModeResolver.fixed(ModeChoice(mode, "given"))
        )
        self._sessions: dict[str, Session] = {}
        self._by_thread: dict[str, Session] = {}
        self._children = ChildPool(task_group, str(codex.path), self, env=self._child_env, ledger=store)
        self._requests = CodexRequests(task_group)
        self._views = (
            None
            if self._persister is None
            else DiskViews(self._persister, filter_noise=settings.filter_noise)
        )
        # One adoption at a time: two calls for the same orphan must not load it twice.
        self._disk_lock = anyio.Lock()
        # Set once the backend is known to be exec; None while it is app-server or not known yet.
        self._exec: ExecDriver | None = None
        known = self._backend.current
        if known is not None and known.mode == "exec":
            self._use_exec()

    # --- lifetime ----------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        codex: CodexExecutable,
        settings: Settings,
        mode: BackendMode | ModeResolver = "app-server",
        store: StateStore | None = None,
    ) -> AsyncGenerator[SessionManager]:
        """A manager whose children and tasks all end when the context exits.

        With `store`, every change is written to it, every child is recorded in it, and the
        sessions it holds come back when a call needs them (`lookup`).
        """
        manager: SessionManager | None = None
        try:
            async with anyio.create_task_group() as task_group:
                manager = cls(task_group, codex, settings, mode, store)
                if manager._persister is not None:
                    task_group.start_soon(manager._persister.run, manager.sessions)
                task_group.start_soon(manager._watchdog)
                try:
                    yield manager
                    # A normal end (the client closed stdin) drains; a cancelled one (a signal) stops at once.
                    with anyio.CancelScope(shield=True):
                        await manager._drain(settings.drain_timeout_s)
                    manager._end_running_turns()
                finally:
                    task_group.cancel_scope.cancel()
        finally:
            if manager is not None and manager._persister is not None:
                for session in manager.sessions():
                    manager._persister.write(session)

    def stop_now(self, why: str) -> None:
        """Stop at once, as a client stopping us needs (its SIGKILL follows within ~100-400 ms): end
        every running turn as cut short by the client, write every session, kill every child."""
        self._fail_running_turns(
            None, "client_stopped", f"{why} while this turn ran; codex_reply continues it"
        )
        if self._persister is not None:
            for session in self.sessions():
                self._persister.write(session)
        kill_all_now()

    # --- backend -----------------------------------------------------------------

    @property
    def backend(self) -> ModeResolver:
        """The backend of this manager's sessions (settled on first need)."""
        return self._backend

    def _use_exec(self) -> None:
        """Run sessions on `codex exec` from now on (a forced or detected mode, or a fallback)."""
        if self._exec is not None:
            return
        self._exec = ExecDriver(
            self._tg, str(self._codex.path), self._name_thread, self._child_env, self._store
        )
        for session in self._sessions.values():
            if session.backend == "app-server":
                session.backend = "exec"
                session.connection_key = "exec"

    async def _ensure_backend(self) -> None:
        """Settle the backend (probing Codex the first time); on exec, use it."""
        choice = await self._backend.resolve()
        if choice.mode == "exec":
            self._use_exec()

    async def _app_server(self, key: str) -> AppServerConnection | None:
        """The live child of `key`, started if needed; None when its start showed that this Codex
        has no app-server (sessions then run on exec).

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED when the child did not start (and this Codex has
                an app-server, or may have).
        """
        try:
            connection = await self._children.connection(key)
        except CodexMcpError as exc:
            if exc.code != "APP_SERVER_START_FAILED":
                raise
            choice = await self._backend.spawn_failed(exc.message)
            if choice.mode != "exec":
                raise
            self._use_exec()
            return None
        self._backend.spawn_worked()
        return connection

    def _guarded(self, cwd: str, config: dict[str, Any] | None) -> dict[str, Any] | None:
        """`config` plus the recursion guard for a Codex child working in `cwd`."""
        return guard_config(codex_home(), cwd, config, self._settings.nesting)

    def _end_running_turns(self) -> None:
        """Close the turns the drain left running: their children are about to stop."""
        self._fail_running_turns(
            None, "server_shutdown", "codex-mcp shut down before this turn finished; codex_reply continues it"
        )

    def _fail_running_turns(self, key: str | None, reason: str, message: str) -> None:
        """End every running turn (of the child `key`, or of all) as an error; cancel what it waits on."""
        for session in list(self._sessions.values()):
            if session.status in ("running", "waiting_approval") and key in (None, session.connection_key):
                for request in list(session.pending.values()):
                    self._requests.resolve(session, request, decision="cancel")
                finish_turn(
                    session,
                    status="error",
                    turn_id=session.active_turn_id,
                    reason=reason,
                    error_message=message,
                )

    async def _drain(self, timeout_s: float) -> None:
        """Give running turns up to `timeout_s` to finish before their children are stopped."""
        with anyio.move_on_after(timeout_s):
            while True:
                running = [s for s in self._sessions.values() if s.status in ("running", "waiting_approval")]
                if not running:
                    return
                logger.info("waiting for %d running turn(s) before shutdown", len(running))
                await running[0].turn_finished.wait()
        logger.warning("shutting down with turns still running after %.1fs", timeout_s)

    # --- children ----------------------------------------------------------------

    def _session_key(self) -> str:
        """The connection key sessions of this server run on."""
        return "exec" if self._exec is not None else self._spawn_key()

    def _spawn_key(self) -> str:
        return str(self._codex.path)

    def on_closed(self, key: str, reason: str, stderr_tail: str) -> None:
        """Fail the running turns of a child that exited; the next call starts a new child."""
        message = f"codex app-server exited ({reason})"
        if stderr_tail.strip():
            message += f"; stderr: {stderr_tail.strip()[-800:]}"
        self._fail_running_turns(key, "app_server_exited", redact(message))

    # --- inbound from Codex ------------------------------------------------------

    def _session_for(self, thread_id: str | None) -> Session | None:
        return self._by_thread.get(thread_id) if thread_id is not None else None

    def on_notification(self, message: Notification) -> None:
        """Record a notification in the session whose thread it names."""
        session = self._session_for(message.thread_id)
        if session is None:
            logger.debug("notification %s for no session", message.method)
            return
        if session.status == "cancelled" and message.method in (TURN_STARTED, TURN_COMPLETED, ERROR):
            return
        # Codex re-streams the partial item on every retry, so only a finished item shows recovery.
        if message.method == ITEM_COMPLETED:
            session.reconnecting_since = None
        ingest_notification(session, message.method, message.raw_params)
        session.buffer.notify()

    async def on_server_request(self, connection: AppServerConnection, message: ServerRequest) -> None:
        """Answer a request from a child now, or show it as an action of its session."""
        session = self._session_for(message.thread_id)
        await self._requests.receive(connection, session, message)

    async def on_unknown(self, message: UnknownMessage) -> None:
        """A line from a child that no model recognises (the connection has logged it already)."""
        logger.debug("ignored message from codex app-server (%s)", message.reason)

    def _connection_of(self, session: Session) -> AppServerConnection | None:
        return self._children.live(session.connection_key)

    # --- watchdog ----------------------------------------------------------------

    async def _watchdog(self) -> None:
        while True:
            await anyio.sleep(_WATCHDOG_PERIOD_S)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                since = session.reconnecting_since
                if since is not None and now - since > self._settings.reconnect_timeout_s:
                    self._tg.start_soon(self._give_up_reconnecting, session)
                    session.reconnecting_since = None
                self._apply_ttl(session, now)

    def _apply_ttl(self, session: Session, now: float) -> None:
        """Cancel sessions idle or running too long (warning once first); forget finished ones."""
        ttl = self._settings.ttl
        inactive = now - session.last_active_monotonic
        if session.status in ("cancelled", "error"):
            if inactive > ttl.terminal_s:
                self._forget(session)
            return
        limit, reason = (
            (ttl.idle_s, "idle_timeout") if session.status == "idle" else (ttl.running_s, "running_timeout")
        )
        if inactive > limit:
            # cancel() touches the session, so the terminal TTL runs from now.
            self._tg.start_soon(self.cancel, session.session_id, reason)
        elif inactive > limit - ttl.warning_s and not session.ttl_warned:
            session.ttl_warned = True
            remaining = max(0.0, limit - inactive)
            session.buffer.append(
                "progress",
                {
                    "method": "codex-mcp/ttl_warning",
                    "reason": reason,
                    "message": f"{reason} in {remaining:.0f}s",
                },
                pinned=True,
            )

    def _register(self, session: Session, *, new: bool = True) -> None:
        """Keep `session` (and own it on disk: a `new` one is claimed, an adopted one is ours)."""
        self._sessions[session.session_id] = session
        self._by_thread[session.thread_id] = session
        if self._persister is not None:
            if new:
                self._persister.store.claim_new(session.session_id)
            self._persister.attach(session)

    def _forget(self, session: Session) -> None:
        """Drop a session from memory; its files stay until `clean` with `includeDisk`."""
        self._sessions.pop(session.session_id, None)
        if self._by_thread.get(session.thread_id) is session:
            del self._by_thread[session.thread_id]
        if self._persister is not None:
            session.forgotten = True
            self._persister.write(session)
            self._persister.forget(session.session_id)

    async def _interrupt_quietly(self, session: Session, turn_id: str | None, why: str) -> None:
        """Best-effort stop of the turn in Codex when we end it ourselves; bounded, never raises."""
        if self._exec is not None:
            self._exec.stop(session)
            return
        connection = self._connection_of(session)
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

    async def _give_up_reconnecting(self, session: Session) -> None:
        turn_id = session.active_turn_id
        await self._interrupt_quietly(session, turn_id, "stuck reconnecting")
        limit = self._settings.reconnect_timeout_s
        finish_turn(
            session,
            status="failed",
            turn_id=turn_id,
            reason="reconnect_timeout",
            error_message=f"Codex could not reach the model provider for {limit:.0f}s; the turn was stopped",
        )
        session.buffer.notify()

    # --- queries -----------------------------------------------------------------

    async def lookup(self, session_id: str) -> Session:
        """The session wherever it is: ours (adopted first if its server died) or, when another live
        server owns it, a read-only view of it (`read_only`); SESSION_NOT_FOUND otherwise."""
        session = self._sessions.get(session_id)
        if session is not None:
            return session
        if self._persister is None:
            raise _not_found(session_id)
        store = self._persister.store
        async with self._disk_lock:
            session = self._sessions.get(session_id)
            if session is not None:
                return session
            if not store.has_session(session_id):
                raise _not_found(session_id)
            # Adopting may first stop what a dead owner left running: seconds, so off the loop.
            before = await anyio.to_thread.run_sync(store.adopt, session_id)
            if before.kind == "other-server":
                assert self._views is not None  # there are views wherever there is a state directory
                view = self._views.view(session_id, before.describe())
                if view is None:
                    raise _not_found(session_id)
                return view
            session = self._persister.load(
                session_id,
                connection_key=self._session_key(),
                filter_noise=self._settings.filter_noise,
                view=False,
            )
            if session is None:
                raise _not_found(session_id)
            if before.kind == "none":
                logger.info("adopted session %s (its server has exited)", session_id)
            session.backend = "exec" if self._exec is not None else "app-server"
            if self._views is not None:
                self._views.drop(session_id)
            self._register(session, new=False)
            return session

    async def get(self, session_id: str) -> Session:
        """The session, to change: ours (adopted if need be), or an error naming who owns it."""
        session = await self.lookup(session_id)
        if session.read_only:
            raise CodexMcpError(
                "SESSION_OWNED_ELSEWHERE",
                f"session {session_id} is driven by {session.owner}: change it from the client whose "
                "codex-mcp runs it (polling it works from here); once that server exits, the next "
                "call here adopts the session",
                field="sessionId",
            )
        return session

    async def wait_for_news(self, session: Session, timeout_s: float) -> Session:
        """Wait until the session has news (or `timeout_s` passes); the session as it is then."""
        if not session.read_only:
            await session.buffer.wait_for_change(session.buffer.version, timeout_s)
            return session
        assert self._views is not None  # only a state directory holds other servers' sessions
        await self._views.wait_for_change(session.session_id, timeout_s)
        return await self.lookup(session.session_id)

    def sessions(self) -> list[Session]:
        """Every session this server drives, oldest first."""
        return list(self._sessions.values())

    def all_sessions(self) -> list[Session]:
        """Every session of the state directory: ours, then the others as their files show them
        (a session whose server died shows its cut turn ended, as adopting it will end it)."""
        found = self.sessions()
        if self._persister is None:
            return found
        store = self._persister.store
        for session_id in store.session_ids():
            if session_id in self._sessions:
                continue
            owner = store.owner(session_id)
            if owner.kind == "this-server":
                continue  # forgotten by this server, or not yet loaded: `lookup` decides
            session = self._persister.load(
                session_id, connection_key="", filter_noise=False, view=owner.kind != "none", events=False
            )
            if session is not None:
                session.ownership, session.owner = owner.kind, owner.describe()
                found.append(session)
        return found

    # --- commands ----------------------------------------------------------------

    def _name_thread(self, session: Session, thread_id: str) -> None:
        self._by_thread.pop(session.thread_id, None)
        session.thread_id = thread_id
        self._by_thread[thread_id] = session

    def _not_in_exec(self, what: str) -> None:
        if self._exec is not None:
            raise exec_not_supported(what)

    def _start_exec_turn(self, session: Session, turn: TurnRequest, warnings: list[str]) -> None:
        assert self._exec is not None
        if turn.collaboration_mode is not None:
            warnings.append("collaborationMode needs the app-server backend; ignored under codex exec")
        self._exec.start_turn(
            session,
            prompt=turn.prompt,
            images=turn.images,
            output_schema=turn.output_schema,
            effort=turn.effort,
            summary=turn.summary,
            warnings=warnings,
            config=self._guarded(session.settings.cwd, session.settings.config),
        )

    async def start(
        self,
        settings: ThreadSettings,
        turn: TurnRequest,
        warnings: list[str],
        begun: Callable[[Session], None] | None = None,
    ) -> Session:
        """Start a thread and its first turn; returns once Codex accepted the turn.

        `begun` is called with the session as soon as its turn has begun, before Codex accepted it:
        a caller cancelled after that point still has a session to account for.
        """
        await self._ensure_backend()
        key = self._spawn_key()
        connection = None if self._exec is not None else await self._app_server(key)
        settings.approval_policy = _map_policy(settings.approval_policy, warnings)
        if connection is None:
            session = Session(
                session_id=f"sess_{uuid.uuid4().hex[:12]}",
                thread_id=placeholder_thread_id(),
                settings=settings,
                connection_key="exec",
                backend="exec",
                filter_noise=self._settings.filter_noise,
            )
            self._register(session)
            self._start_exec_turn(session, turn, warnings)
            if begun is not None:
                begun(session)
            return session
        started = await self._call(
            connection,
            calls.thread_start(
                cwd=settings.cwd,
                approval_policy=settings.approval_policy,
                sandbox=settings.sandbox,
                model=settings.model,
                config=self._guarded(settings.cwd, settings.config),
                base_instructions=settings.base_instructions,
                developer_instructions=settings.developer_instructions,
                personality=settings.personality,
                ephemeral=settings.ephemeral,
            ),
        )
        thread_id = started.thread.id
        if settings.model is None:
            settings.model = started.model
        session = Session(
            session_id=f"sess_{uuid.uuid4().hex[:12]}",
            thread_id=thread_id,
            settings=settings,
            connection_key=key,
            filter_noise=self._settings.filter_noise,
        )
        self._children.loaded(key, thread_id)
        self._register(session)
        await self._start_turn(connection, session, turn, begun)
        return session

    async def reply(
        self,
        session_id: str,
        turn: TurnRequest,
        warnings: list[str],
        begun: Callable[[Session], None] | None = None,
    ) -> Session:
        """Start the next turn of an idle or errored session (`begun`: as for `start`)."""
        session = await self.get(session_id)
        if session.status == "cancelled":
            raise CodexMcpError("CANCELLED", f"session {session_id} was cancelled; start a new one")
        if session.status not in ("idle", "error"):
            raise CodexMcpError(
                "SESSION_BUSY", f"session {session_id} is {session.status}; wait or interrupt it"
            )
        if turn.approval_policy is not None:
            turn.approval_policy = _map_policy(turn.approval_policy, warnings)
        await self._ensure_backend()
        connection = None if self._exec is not None else await self._connection_for(session)
        self._apply_sticky_overrides(session, turn)
        if connection is None:
            self._start_exec_turn(session, turn, warnings)
            if begun is not None:
                begun(session)
            return session
        await self._start_turn(connection, session, turn, begun)
        return session

    def note_cancelled_call(self, session: Session) -> None:
        """The call that started `session`'s current turn was cancelled before it returned: its
        caller may never have seen the session id, so `list` marks the session."""
        session.started_by_cancelled_call = True
        logger.info(
            "the call that started a turn of session %s was cancelled (a client's tool timeout?); "
            "the turn goes on and codex_session list marks the session",
            session.session_id,
        )

    @staticmethod
    def _apply_sticky_overrides(session: Session, turn: TurnRequest) -> None:
        for name in ("model", "approval_policy", "sandbox", "cwd"):
            value = getattr(turn, name)
            if value is not None:
                setattr(session.settings, name, value)

    async def _connection_for(self, session: Session) -> AppServerConnection | None:
        """The live process that has the session's thread loaded, resuming it there if needed; None
        when starting that process showed this Codex has no app-server (the session is on exec now)."""
        connection = await self._app_server(session.connection_key)
        if connection is None:
            return None
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
            config=self._guarded(settings.cwd, None),
        )
        await self._call(connection, resume)
        self._children.loaded(session.connection_key, session.thread_id)
        return connection

    async def _start_turn(
        self,
        connection: AppServerConnection,
        session: Session,
        turn: TurnRequest,
        begun: Callable[[Session], None] | None,
    ) -> None:
        session.begin_turn(has_output_schema=turn.output_schema is not None)
        if begun is not None:
            begun(session)
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
            started = await self._call(connection, request)
        except CodexMcpError:
            session.status = "error"
            session.turn_finished.set()
            raise
        if session.active_turn_id is None and session.status == "running":
            session.active_turn_id = started.turn.id

    async def _call(self, connection: AppServerConnection, call: ClientCall[R]) -> R:
        try:
            return await connection.call(call, timeout_s=self._settings.request_timeout_s)
        except AppServerRequestError as exc:
            raise codex_refused(call.method, exc) from exc
        except AppServerClosedError as exc:
            raise CodexMcpError(
                "APP_SERVER_START_FAILED", f"codex app-server exited during {call.method}: {exc}"
            ) from exc

    async def cancel(self, session_id: str, reason: str = "cancelled by the caller") -> Session:
        """End a session for good: interrupt its turn, decline what it waits on."""
        session = await self.get(session_id)
        if session.status == "cancelled":
            return session
        await self._requests.decline_all(self._connection_of(session), session)
        turn_id = session.active_turn_id
        was_running = session.status in ("running", "waiting_approval")
        session.status = "cancelled"
        session.cancelled_at = now_iso()
        session.cancelled_reason = reason
        session.touch()
        session.buffer.append(
            "progress", {"method": "codex-mcp/cancelled", "message": "Session cancelled"}, pinned=True
        )
        if was_running:
            finish_turn(session, status="cancelled", turn_id=turn_id, reason=reason)
        await self._interrupt_quietly(session, turn_id, "cancel")
        session.buffer.notify()
        return session

    async def interrupt(self, session_id: str) -> Session:
        """Interrupt the running turn; the session goes idle when Codex confirms."""
        session = await self.get(session_id)
        if session.status not in ("running", "waiting_approval"):
            raise CodexMcpError(
                "SESSION_NOT_RUNNING", f"session {session_id} is {session.status}, not running"
            )
        if self._exec is not None:
            if not self._exec.stop(session):
                raise CodexMcpError("SESSION_NOT_RUNNING", f"session {session_id} has no running codex exec")
            return session
        connection = self._connection_of(session)
        if connection is None:
            raise CodexMcpError("SESSION_NOT_RUNNING", f"session {session_id} has no live Codex process")
        turn_id = session.active_turn_id
        if turn_id is None:
            raise CodexMcpError("SESSION_NOT_RUNNING", "the turn has not started yet; poll and retry")
        await self._call(connection, calls.turn_interrupt(thread_id=session.thread_id, turn_id=turn_id))
        return session

    async def fork(self, session_id: str) -> Session:
        """A new idle session on a fork of this session's thread, in the same Codex process."""
        source = await self.get(session_id)
        await self._ensure_backend()
        self._not_in_exec("fork")
        if source.status == "cancelled":
            raise CodexMcpError("CANCELLED", f"session {session_id} was cancelled")
        connection = await self._connection_for(source)
        if connection is None:
            raise exec_not_supported("fork")
        # A forked thread starts its MCP servers: the guard goes with it.
        guard = self._guarded(source.settings.cwd, None)
        forked = await self._call(connection, calls.thread_fork(thread_id=source.thread_id, config=guard))
        thread_id = forked.thread.id
        settings = ThreadSettings(**vars(source.settings))
        fork = Session(
            session_id=f"sess_{uuid.uuid4().hex[:12]}",
            thread_id=thread_id,
            settings=settings,
            connection_key=source.connection_key,
            status="idle",
            filter_noise=self._settings.filter_noise,
        )
        fork.phase = "finished"
        self._children.loaded(fork.connection_key, thread_id)
        self._register(fork)
        fork.buffer.append("progress", {"method": "codex-mcp/forked", "sourceSessionId": session_id})
        return fork

    async def clean_background_terminals(self, session_id: str) -> Session:
        """Stop the background terminals of the session's thread."""
        session = await self.get(session_id)
        await self._ensure_backend()
        self._not_in_exec("clean_background_terminals")
        if session.status == "cancelled":
            raise CodexMcpError("CANCELLED", f"session {session_id} was cancelled")
        connection = await self._connection_for(session)
        if connection is None:
            raise exec_not_supported("clean_background_terminals")
        await self._call(connection, calls.background_terminals_clean(thread_id=session.thread_id))
        session.buffer.append(
            "progress",
            {"method": "codex-mcp/background_terminals_cleaned", "message": "Background terminals cleaned"},
            pinned=True,
        )
        return session

    def clean(
        self, statuses: list[str], older_than_ms: int | None, *, dry_run: bool, include_disk: bool
    ) -> tuple[list[str], int]:
        """Ids of the finished sessions matching, and how many had their files deleted.

        Matches are removed unless `dry_run`; with `include_disk` their files go too, and so do the
        files of matching sessions no longer in memory.
        """
        now = time.monotonic()
        matched = [
            session.session_id
            for session in self._sessions.values()
            if session.status in statuses
            and session.status in TERMINAL
            and (older_than_ms is None or (now - session.last_active_monotonic) * 1000 > older_than_ms)
        ]
        persister = self._persister if include_disk else None
        if persister is not None:
            on_disk = disk_only_matches(persister.store, set(self._sessions), statuses, older_than_ms)
            # Another live server's sessions are its own to clean.
            matched += [i for i in on_disk if persister.store.owner(i).kind != "other-server"]
        disk_removed = 0
        if not dry_run:
            for session_id in matched:
                session = self._sessions.get(session_id)
                if session is not None:
                    self._forget(session)
                if persister is not None and persister.remove(session_id):
                    disk_removed += 1
        return matched, disk_removed

    async def respond_permission(
        self,
        session_id: str,
        request_id: str,
        *,
        decision: str,
        execpolicy_amendment: list[str] | None,
        network_policy_amendment: dict[str, Any] | None,
        deny_message: str | None,
    ) -> Session:
        """Answer an approval request."""
        session = await self.get(session_id)
        await self._requests.respond_permission(
            self._connection_of(session),
            session,
            request_id,
            decision=decision,
            execpolicy_amendment=execpolicy_amendment,
            network_policy_amendment=network_policy_amendment,
            deny_message=deny_message,
        )
        return session

    async def respond_user_input(self, session_id: str, request_id: str, answers: dict[str, Any]) -> Session:
        """Answer a user-input request."""
        session = await self.get(session_id)
        await self._requests.respond_user_input(self._connection_of(session), session, request_id, answers)
        return session


def _not_found(session_id: str) -> CodexMcpError:
    return CodexMcpError("SESSION_NOT_FOUND", f"no session {session_id!r}", field="sessionId")
