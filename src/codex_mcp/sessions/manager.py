"""SessionManager: owns every session and the tasks that serve them; a `Backend` runs them in Codex.

The manager keeps sessions, their lifetimes and the commands on them; how a thread or turn reaches
Codex is the backend's (`backend.py`: app-server children or `codex exec` turns). Whatever the
backend, what Codex says comes back here, is routed to its session by thread id, and ingested.

With a state directory, sessions outlive the server: they are written as they change
(`persistence.py`) and brought back when the next server opens the same directory; their threads
are resumed the same way, on the first call that needs them.

The backend (app-server or exec, `backend_mode.py`) is settled on first need too: the first call
that needs one probes Codex (once, however many calls ask at the same time), and the first spawn
of an app-server that was only assumed confirms it or falls back to exec. Every thread and exec
turn goes out with the recursion guard (`nesting.py`), which the backends apply: the user's config
entries that run codex-mcp are disabled for our children.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from codex_mcp.backend_mode import BackendMode, ModeChoice, ModeResolver
from codex_mcp.errors import CodexMcpError, exec_not_supported, redact
from codex_mcp.hosts import host_named
from codex_mcp.nesting import guard_config
from codex_mcp.profiles import codex_home
from codex_mcp.resources.records import EventLog
from codex_mcp.service.attach import SharedService
from codex_mcp.service.layout import SERVICE_VARIABLE, ServiceLayout, service_key
from codex_mcp.sessions.app_server_backend import AppServerBackend
from codex_mcp.sessions.backend import (
    Backend,
    BackendSwitch,
    NoAppServerError,
    Responder,
    SteerRequest,
    TurnRequest,
)
from codex_mcp.sessions.codex_requests import CodexRequests
from codex_mcp.sessions.disk_views import DiskViews
from codex_mcp.sessions.events import now_iso
from codex_mcp.sessions.exec_backend import ExecBackend
from codex_mcp.sessions.ingest import finish_turn, ingest_notification, recover_turn
from codex_mcp.sessions.persistence import SessionPersister, disk_only_matches, stored_worktree
from codex_mcp.sessions.records import event_log, turn_records
from codex_mcp.sessions.session import TERMINAL, Session, SteerRecord, ThreadSettings, steer_key
from codex_mcp.sessions.worktree_sessions import CleanEntry, Patch, SessionWorktrees
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.state.reaper import RUN_VARIABLE
from codex_mcp.state.store import StateStore
from codex_mcp.wire.app_server import Notification, ServerRequest
from codex_mcp.wire.methods import (
    ERROR,
    ITEM_COMPLETED,
    TURN_COMPLETED,
    TURN_STARTED,
)
from codex_mcp.worktrees import Finished, Worktree

logger = logging.getLogger(__name__)

# How often the watchdog looks for turns stuck in Codex's reconnect loop.
_WATCHDOG_PERIOD_S: Final = 1.0
_T = TypeVar("_T")


# The event a steer adds to the session's stream as soon as Codex took it (Codex's own userMessage
# item for it comes when the model's next request starts).
STEERED_EVENT: Final = "codex-mcp/steered"


@dataclass(frozen=True)
class Steered:
    """Where a steer went: the turn that took it, the clientId Codex shows it with, and whether this
    call was a retry of one already sent (and so sent nothing)."""

    turn_id: str
    client_message_id: str
    duplicate: bool


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
        *,
        backend: Backend | None = None,
    ) -> None:
        self._tg = task_group
        self._settings = settings
        child_env = None if store is None else store.child_environment()
        self._persister = None if store is None else SessionPersister(store)
        resolver = mode if isinstance(mode, ModeResolver) else ModeResolver.fixed(ModeChoice(mode, "given"))
        self._backends = (
            BackendSwitch.only(backend)
            if backend is not None
            else BackendSwitch(
                resolver,
                lambda: AppServerBackend(
                    task_group,
                    str(codex.path),
                    self,
                    mode=resolver,
                    guard=self._guarded,
                    request_timeout_s=settings.request_timeout_s,
                    env=child_env,
                    ledger=store,
                    service=_shared_service(codex, settings, store),
                    max_rss_mb=settings.recycle_rss_mb,
                    hosts=settings.hosts,
                ),
                lambda: ExecBackend(
                    task_group, str(codex.path), self, guard=self._guarded, env=child_env, ledger=store
                ),
            )
        )
        self._sessions: dict[str, Session] = {}
        self._by_thread: dict[str, Session] = {}
        self._requests = CodexRequests(task_group)
        self._views = (
            None
            if self._persister is None
            else DiskViews(self._persister, filter_noise=settings.filter_noise)
        )
        self._worktrees = SessionWorktrees(settings.state_dir / "worktrees", task_group)
        # One adoption at a time: two calls for the same orphan must not load it twice.
        self._disk_lock = anyio.Lock()
        self._settled: Backend | None = None

    # --- lifetime ----------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        codex: CodexExecutable,
        settings: Settings,
        mode: BackendMode | ModeResolver = "app-server",
        store: StateStore | None = None,
        backend: Backend | None = None,
    ) -> AsyncGenerator[SessionManager]:
        """A manager whose children and tasks all end when the context exits.

        With `store`, every change is written to it, every child is recorded in it, and the
        sessions it holds come back when a call needs them (`lookup`). With `backend`, sessions
        run on it alone (tests run the manager on a fake).
        """
        manager: SessionManager | None = None
        try:
            async with anyio.create_task_group() as task_group:
                manager = cls(task_group, codex, settings, mode, store, backend=backend)
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
                    manager._backends.close()
        finally:
            if manager is not None and manager._persister is not None:
                for session in manager.sessions():
                    manager._persister.write(session)

    def stop_now(self, why: str) -> None:
        """Stop at once, as a client stopping us needs (its SIGKILL follows within ~100-400 ms): end
        every running turn as cut short by the client, write every session, kill every child.
        Turns on a shared service or a remote host go on: they are written as running, for the
        next server."""
        self._fail_running_turns(
            None, "client_stopped", f"{why} while this turn ran; codex_reply continues it", dying=True
        )
        if self._persister is not None:
            for session in self.sessions():
                self._persister.write(session)
        self._backends.kill_now()

    # --- backend -----------------------------------------------------------------

    @property
    def backend(self) -> ModeResolver:
        """The backend mode of this manager's sessions (settled on first need)."""
        return self._backends.mode

    def _run_on(self, backend: Backend) -> Backend:
        """`backend` runs sessions now: the sessions that knew another (adopted before the backend
        was settled, or on an app-server that turned out to be missing) move to it."""
        if backend is not self._settled:
            self._settled = backend
            for session in self._sessions.values():
                if session.backend != backend.name:
                    session.backend, session.connection_key = backend.name, backend.key
        return backend

    async def _on_backend(self, op: Callable[[Backend], Awaitable[_T]]) -> tuple[Backend, _T]:
        """`op` on the backend sessions run on (settled now if need be), and that backend; on exec
        when the app-server turned out to be missing."""
        backend = self._run_on(await self._backends.current())
        try:
            return backend, await op(backend)
        except NoAppServerError:
            backend = self._run_on(self._backends.fall_back())
            return backend, await op(backend)

    async def warm_up(self) -> None:
        """Start the Codex process the next session needs, ahead of it (benchmarks time turns
        without the spawn)."""
        await self._on_backend(lambda backend: backend.warm_up())

    def _guarded(self, cwd: str, config: dict[str, Any] | None) -> dict[str, Any] | None:
        """`config` plus the recursion guard for a Codex child working in `cwd`."""
        return guard_config(codex_home(), cwd, config, self._settings.nesting)

    def _end_running_turns(self) -> None:
        """Close the turns the drain left running: their children are about to stop (turns on a
        shared service or a remote host go on: the next server picks them up)."""
        self._fail_running_turns(
            None,
            "server_shutdown",
            "codex-mcp shut down before this turn finished; codex_reply continues it",
            dying=True,
        )

    def _dies_with_us(self, session: Session) -> bool:
        """Whether `session`'s running turn ends when this server does (its Codex is our child)."""
        return not self._backends.assumed.outlives_us(session.connection_key)

    def _fail_running_turns(self, key: str | None, reason: str, message: str, *, dying: bool = False) -> int:
        """End every running turn (of the child `key`, or of all; with `dying`, only those that die
        with this server) as an error; cancel what it waits on. How many it ended."""
        ended = [
            session
            for session in self._sessions.values()
            if session.status in ("running", "waiting_approval")
            and key in (None, session.connection_key)
            and (not dying or self._dies_with_us(session))
        ]
        for session in ended:
            self._fail_turn(session, reason, message)
        return len(ended)

    def _cancel_pending(self, session: Session) -> None:
        """Take every request `session` waits on out of its actions, as cancelled."""
        for request in list(session.pending.values()):
            self._requests.resolve(session, request, decision="cancel")

    def _fail_turn(self, session: Session, reason: str, message: str) -> None:
        """End `session`'s running turn as an error; cancel what it waits on."""
        self._cancel_pending(session)
        finish_turn(
            session, status="error", turn_id=session.active_turn_id, reason=reason, error_message=message
        )

    async def _drain(self, timeout_s: float) -> None:
        """Give running turns up to `timeout_s` to finish before their children are stopped."""
        with anyio.move_on_after(timeout_s):
            while True:
                running = [
                    s
                    for s in self._sessions.values()
                    if s.status in ("running", "waiting_approval") and self._dies_with_us(s)
                ]
                if not running:
                    return
                logger.info("waiting for %d running turn(s) before shutdown", len(running))
                await running[0].turn_finished.wait()
        logger.warning("shutting down with turns still running after %.1fs", timeout_s)

    # --- inbound from Codex ------------------------------------------------------

    def on_closed(self, key: str, reason: str, stderr_tail: str) -> None:
        """Fail the running turns of a child that exited (or a host that went away); the next call
        starts a new child (or connects again)."""
        host = host_named(key)
        message = (
            f"codex app-server exited ({reason})" if host is None else f"host {host} went away ({reason})"
        )
        if stderr_tail.strip():
            message += f"; stderr: {stderr_tail.strip()[-800:]}"
        failed = self._fail_running_turns(key, "app_server_exited", redact(message))
        if failed:
            logger.warning("%s: %d running turn(s) ended as error", redact(message), failed)

    def _session_for(self, thread_id: str | None) -> Session | None:
        return self._by_thread.get(thread_id) if thread_id is not None else None

    def on_notification(self, message: Notification) -> None:
        """Record a notification in the session whose thread it names."""
        session = self._session_for(message.thread_id)
        if session is None:
            logger.debug("notification %s for no session", message.method)
            return
        self.on_event(session, message.method, message.raw_params)

    def on_event(self, session: Session, method: str, params: dict[str, Any]) -> None:
        """Record an event of `session`'s turn."""
        if session.status == "cancelled" and method in (TURN_STARTED, TURN_COMPLETED, ERROR):
            return
        # Codex re-streams the partial item on every retry, so only a finished item shows recovery.
        if method == ITEM_COMPLETED:
            session.reconnecting_since = None
        ingest_notification(session, method, params)
        session.buffer.notify()

    async def on_server_request(self, responder: Responder, message: ServerRequest) -> None:
        """Answer a request from Codex now, or show it as an action of its session."""
        session = self._session_for(message.thread_id)
        await self._requests.receive(responder, session, message)

    def _responder(self, session: Session) -> Responder | None:
        return self._backends.assumed.responder(session)

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
            busy = {
                s.connection_key
                for s in self._sessions.values()
                if s.status in ("running", "waiting_approval")
            }
            self._backends.assumed.maintain(busy)

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
        self._worktrees.watch(session)
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
        self._tg.start_soon(self._backends.assumed.forget, session)

    async def _give_up_reconnecting(self, session: Session) -> None:
        turn_id = session.active_turn_id
        await self._backends.assumed.stop_quietly(session, turn_id, "stuck reconnecting")
        limit = self._settings.reconnect_timeout_s
        finish_turn(
            session,
            status="failed",
            turn_id=turn_id,
            reason="reconnect_timeout",
            error_message=f"Codex could not reach the model provider for {limit:.0f}s; the turn was stopped",
        )
        session.buffer.notify()

    async def _reattach(self, backend: Backend, session: Session) -> None:
        """Pick up a turn an earlier server left running on the shared service."""
        try:
            found = await backend.reattach(session)
        except CodexMcpError as exc:
            message = f"could not pick up this turn on the shared Codex service: {exc.message}"
            self._fail_turn(session, "reattach_failed", message)
        else:
            if found.turn is not None and session.status in ("running", "waiting_approval"):
                if not found.running:
                    logger.info("session %s: its turn ended while no server was attached", session.session_id)
                    self._cancel_pending(session)
                recover_turn(session, found.turn, running=found.running)
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
            backend = self._backends.assumed
            session = self._persister.load(
                session_id,
                connection_key=backend.key,
                filter_noise=self._settings.filter_noise,
                view=False,
                outlives=backend.outlives_us,
            )
            if session is None:
                raise _not_found(session_id)
            if before.kind == "none":
                logger.info("adopted session %s (its server has exited)", session_id)
            session.backend = self._backends.assumed.name
            if self._views is not None:
                self._views.drop(session_id)
            self._register(session, new=False)
            if session.status in ("running", "waiting_approval"):
                self._tg.start_soon(self._reattach, backend, session)
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

    def save_now(self, session: Session) -> None:
        """Write `session` to the state directory now, not at the next flush (an id handed out
        that another server must find, such as a task's)."""
        if self._persister is not None and not session.read_only:
            self._persister.write(session)

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

    def name_thread(self, session: Session, thread_id: str) -> None:
        """`session`'s thread has its real id now."""
        self._by_thread.pop(session.thread_id, None)
        session.thread_id = thread_id
        self._by_thread[thread_id] = session

    async def start(
        self,
        settings: ThreadSettings,
        turn: TurnRequest,
        warnings: list[str],
        begun: Callable[[Session], None] | None = None,
        *,
        worktree: bool | str = False,
    ) -> Session:
        """Start a thread and its first turn; returns once Codex accepted the turn.

        `begun` is called with the session as soon as its turn has begun, before Codex accepted it:
        a caller cancelled after that point still has a session to account for. With `worktree`
        (true, or a branch name), the session runs in a new git worktree of `settings.cwd`'s
        repository (`worktrees.py`).
        """
        hosts = [host.name for host in self._settings.hosts]
        if settings.host is not None and settings.host not in hosts:
            known = f"the hosts are {', '.join(hosts)}" if hosts else "no CODEX_MCP_HOSTS file is set"
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"advanced.host: no host {settings.host!r}; {known}",
                field="advanced.host",
            )
        settings.approval_policy = _map_policy(settings.approval_policy, warnings)
        session_id = _new_session_id()
        if worktree is not False:
            settings.worktree, settings.cwd = await self._worktrees.create(settings.cwd, session_id, worktree)
        backend, started = await self._started_or_discarded(
            settings.worktree, lambda backend: backend.start_thread(settings)
        )
        if settings.model is None:
            settings.model = started.model
        session = Session(
            session_id=session_id,
            thread_id=started.thread_id,
            settings=settings,
            connection_key=started.key or backend.key,
            backend=backend.name,
            filter_noise=self._settings.filter_noise,
        )
        self._register(session)
        await self._start_turn(backend, session, turn, warnings, begun)
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
        self._worktrees.check_reply(session, turn.cwd)
        if turn.approval_policy is not None:
            turn.approval_policy = _map_policy(turn.approval_policy, warnings)
        backend, _ = await self._on_backend(lambda backend: backend.prepare(session, warnings))
        self._apply_sticky_overrides(session, turn)
        await self._start_turn(backend, session, turn, warnings, begun)
        return session

    async def steer(
        self, session_id: str, prompt: str, images: list[str], client_message_id: str | None
    ) -> tuple[Session, Steered]:
        """Add `prompt` (and `images`) to the session's running turn, which goes on; never starts
        a turn. A retry of a steer the same turn took (same prompt, images and `client_message_id`)
        sends nothing and says so, even once that turn has ended."""
        session = await self.get(session_id)
        if session.status == "cancelled":
            raise CodexMcpError("CANCELLED", f"session {session_id} was cancelled; start a new one")
        if session.backend == "exec":
            raise exec_not_supported("steer")
        key = steer_key(prompt, images, client_message_id)
        turn_id = session.steer_target()
        sent = None if turn_id is None else session.steer_sent(turn_id, key)
        if turn_id is not None and sent is not None:
            return session, Steered(turn_id, sent.client_message_id, duplicate=True)
        if session.status not in ("running", "waiting_approval"):
            raise CodexMcpError(
                "SESSION_NOT_RUNNING",
                f"session {session_id} is {session.status}: no turn runs to steer (a steer never "
                "starts one); codex_reply without steer starts the next turn",
            )
        if turn_id is None:
            raise CodexMcpError("SESSION_NOT_RUNNING", "the turn has not started yet; poll and retry")
        codex_id = client_message_id or f"codex-mcp-steer-{uuid.uuid4().hex[:12]}"
        # Recorded before it is sent: a retry arriving meanwhile is a duplicate, not a second steer.
        record = SteerRecord(turn_id, key, codex_id)
        session.steers.append(record)
        try:
            await self._backends.assumed.steer(session, turn_id, SteerRequest(prompt, images, codex_id))
        except BaseException:
            if record in session.steers:
                session.steers.remove(record)
            raise
        session.touch()
        event: dict[str, Any] = {
            "method": STEERED_EVENT,
            "turnId": turn_id,
            "clientMessageId": codex_id,
            "prompt": prompt,
        }
        if images:
            event["images"] = images
        session.buffer.append("progress", event)
        session.buffer.notify()
        return session, Steered(turn_id, codex_id, duplicate=False)

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

    @staticmethod
    async def _start_turn(
        backend: Backend,
        session: Session,
        turn: TurnRequest,
        warnings: list[str],
        begun: Callable[[Session], None] | None,
    ) -> None:
        session.begin_turn(has_output_schema=turn.output_schema is not None)
        if begun is not None:
            begun(session)
        await backend.start_turn(session, turn, warnings)

    async def cancel(self, session_id: str, reason: str = "cancelled by the caller") -> Session:
        """End a session for good: interrupt its turn, decline what it waits on."""
        session = await self.get(session_id)
        if session.status == "cancelled":
            return session
        await self._requests.decline_all(self._responder(session), session)
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
        await self._backends.assumed.stop_quietly(session, turn_id, "cancel")
        session.buffer.notify()
        return session

    async def interrupt(self, session_id: str) -> Session:
        """Interrupt the running turn; the session goes idle when Codex confirms."""
        session = await self.get(session_id)
        if session.status not in ("running", "waiting_approval"):
            raise CodexMcpError(
                "SESSION_NOT_RUNNING", f"session {session_id} is {session.status}, not running"
            )
        await self._backends.assumed.interrupt(session)
        return session

    async def fork(self, session_id: str) -> Session:
        """A new idle session on a fork of this session's thread, in the same Codex process."""
        source = await self.get(session_id)
        if source.status == "cancelled":
            raise CodexMcpError("CANCELLED", f"session {session_id} was cancelled")
        session_id = _new_session_id()
        settings = ThreadSettings(**vars(source.settings))
        forked = await self._worktrees.fork(source, session_id)
        if forked is not None:
            settings.worktree, settings.cwd = forked
        _, thread_id = await self._started_or_discarded(
            settings.worktree, lambda backend: backend.fork(source)
        )
        fork = Session(
            session_id=session_id,
            thread_id=thread_id,
            settings=settings,
            connection_key=source.connection_key,
            status="idle",
            filter_noise=self._settings.filter_noise,
        )
        fork.phase = "finished"
        self._register(fork)
        fork.buffer.append("progress", {"method": "codex-mcp/forked", "sourceSessionId": session_id})
        return fork

    async def clean_background_terminals(self, session_id: str) -> Session:
        """Stop the background terminals of the session's thread."""
        session = await self.get(session_id)
        if session.status == "cancelled":
            raise CodexMcpError("CANCELLED", f"session {session_id} was cancelled")
        await self._on_backend(lambda backend: backend.clean_background_terminals(session))
        session.buffer.append(
            "progress",
            {"method": "codex-mcp/background_terminals_cleaned", "message": "Background terminals cleaned"},
            pinned=True,
        )
        return session

    async def clean(
        self, statuses: list[str], older_than_ms: int | None, *, dry_run: bool, include_disk: bool
    ) -> tuple[list[str], int, list[CleanEntry]]:
        """Ids of the finished sessions matching, how many had their files deleted, and what was
        done (or, `dry_run`, would be) to their worktrees.

        Matches are removed unless `dry_run`; with `include_disk` their files go too, and so do the
        files of matching sessions no longer in memory. The worktrees of removed sessions are
        removed (what they had uncommitted committed to their branches, which stay when they hold
        commits merged nowhere).
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
        cleaned = await self._worktrees.clean(self._worktrees_of(matched), dry_run=dry_run)
        disk_removed = 0
        if not dry_run:
            for session_id in matched:
                session = self._sessions.get(session_id)
                if session is not None:
                    self._forget(session)
                if persister is not None and persister.remove(session_id):
                    disk_removed += 1
        return matched, disk_removed, cleaned

    def _worktrees_of(self, session_ids: list[str]) -> list[tuple[str, Worktree]]:
        """The worktrees of these sessions (in memory, or as the state directory has them)."""
        found: list[tuple[str, Worktree]] = []
        for session_id in session_ids:
            session = self._sessions.get(session_id)
            if session is not None:
                worktree = session.settings.worktree
            elif self._persister is not None:
                worktree = stored_worktree(self._persister.store, session_id)
            else:
                worktree = None
            if worktree is not None:
                found.append((session_id, worktree))
        return found

    async def _started_or_discarded(
        self, worktree: Worktree | None, op: Callable[[Backend], Awaitable[_T]]
    ) -> tuple[Backend, _T]:
        """`op` on the backend; when it fails, the new `worktree` it was for is removed."""
        try:
            return await self._on_backend(op)
        except BaseException:
            if worktree is not None:
                await self._worktrees.discard(worktree)
            raise

    async def worktree_patch(self, session_id: str) -> Patch:
        """The session's worktree as a patch against its base commit, with its summary."""
        return await self._worktrees.patch(await self.lookup(session_id))

    async def session_events(self, session_id: str) -> EventLog:
        """Every retained event of the session (the events resource)."""
        return event_log(await self.lookup(session_id))

    async def session_turns(self, session_id: str) -> dict[str, Any]:
        """Each turn's result (the turns resource)."""
        return await turn_records(await self.lookup(session_id))

    async def session_patch(self, session_id: str) -> str:
        """The session's worktree patch (the patch resource)."""
        return (await self.worktree_patch(session_id)).text

    async def worktree_keep(self, session_id: str) -> Finished:
        """Remove the session's worktree, keeping its work on its branch."""
        return await self._worktrees.keep(await self.get(session_id))

    async def worktree_remove(self, session_id: str, *, force: bool) -> Finished:
        """Remove the session's worktree and branch (refused when that loses work, unless `force`)."""
        return await self._worktrees.remove(await self.get(session_id), force=force)

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
            self._responder(session),
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
        await self._requests.respond_user_input(self._responder(session), session, request_id, answers)
        return session


def _new_session_id() -> str:
    return f"sess_{uuid.uuid4().hex[:12]}"


def _not_found(session_id: str) -> CodexMcpError:
    return CodexMcpError("SESSION_NOT_FOUND", f"no session {session_id!r}", field="sessionId")


def _shared_service(
    codex: CodexExecutable, settings: Settings, store: StateStore | None
) -> SharedService | None:
    """The shared service sessions run on, when the settings ask for one (it lives in the state
    directory: without one, sessions run on a child of this server)."""
    if settings.app_server != "shared":
        return None
    if store is None:
        logger.warning("CODEX_MCP_APP_SERVER=shared needs a state directory; using a child app-server")
        return None
    key = service_key(codex.path, str(codex_home()), ())
    env = {k: v for k, v in store.child_environment().items() if k != RUN_VARIABLE} | {SERVICE_VARIABLE: key}
    return SharedService(
        ServiceLayout.under(store.root, key),
        [str(codex.path)],
        env,
        idle_s=settings.service_idle_s,
        max_rss_mb=settings.recycle_rss_mb,
    )
