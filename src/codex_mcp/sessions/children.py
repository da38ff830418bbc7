"""The `codex app-server` children sessions run on: one per spawn key, started when first needed.

A child that exits is dropped from the pool (its owner hears of it through `on_closed`); the next
`connection()` for its key starts a new one. Each child remembers the threads it has loaded, since
a thread started in a process that has since died must be resumed in its successor.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Generator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Final

import anyio
from anyio.abc import TaskGroup, TaskStatus

from codex_mcp import __version__
from codex_mcp.backends.app_server import AppServerConnection, connect_app_server, open_app_server
from codex_mcp.backends.process import SPAWN_LEDGER, SpawnLedger
from codex_mcp.errors import CodexMcpError
from codex_mcp.hosts import Host
from codex_mcp.proc import proc_tree
from codex_mcp.service.attach import SharedService
from codex_mcp.sessions.backend import BackendEvents
from codex_mcp.wire.app_server import Notification, ServerRequest, UnknownMessage

logger = logging.getLogger(__name__)

# Codex app-servers starting at the same moment on one CODEX_HOME (two client windows) can fail to
# open its state database; the same start a moment later works.
_BUSY_STATE_DB: Final = "failed to initialize sqlite state runtime"
_BUSY_START_ATTEMPTS: Final = 4
# A host that could not be reached is tried after the others for this long.
_HOST_RETRY_S: Final = 30.0
# A Codex whose app-server has no `--listen` says so when the keeper starts it (and exits).
_LISTEN_OPTION: Final = "--listen"


@dataclass
class _Child:
    connection: AppServerConnection
    # Threads this process has loaded (started, forked or resumed); others need `thread/resume`.
    threads: set[str] = field(default_factory=set[str])
    # Cancelled to retire the child (it is then stopped as at shutdown).
    lifetime: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class ChildPool:
    """Starts, hands out and forgets app-server children; every child runs in `task_group`."""

    def __init__(
        self,
        task_group: TaskGroup,
        codex: str,
        events: BackendEvents,
        *,
        env: dict[str, str] | None,
        ledger: SpawnLedger | None,
        service: SharedService | None = None,
        hosts: tuple[Host, ...] = (),
    ) -> None:
        self._hosts = {host.key: host for host in hosts}
        self._tg = task_group
        self._codex = codex
        self._events = events
        self._env = env
        self._ledger = ledger
        self._service = service
        self._children: dict[str, _Child] = {}
        self._spawn_locks: dict[str, anyio.Lock] = {}
        # Threads being started on each host, not yet loaded: a burst of new sessions spreads.
        self._placing: Counter[str] = Counter()
        # When each host that could not be reached may be tried first again.
        self._down_until: dict[str, float] = {}
        # Requests not yet answered (the shared service is not recycled under them).
        self._requests = 0

    async def connection(self, key: str) -> AppServerConnection:
        """The live child of `key`, started now if there is none.

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED, once a start Codex itself calls busy has been
                retried.
        """
        if self._service is not None and key not in self._hosts:
            await self._service.hold_busy()  # before connecting: a recycle under way ends first
        async with self._spawn_locks.setdefault(key, anyio.Lock()):
            child = self._children.get(key)
            if child is not None and not child.connection.closed:
                return child.connection
            for attempt in range(1, _BUSY_START_ATTEMPTS + 1):
                try:
                    connection: AppServerConnection = await self._tg.start(self._run, key)
                except CodexMcpError as exc:
                    host = self._hosts.get(key)
                    if host is not None:
                        self._down_until[key] = anyio.current_time() + _HOST_RETRY_S
                        if not exc.message.startswith(f"host {host.name}:"):
                            raise CodexMcpError(exc.code, f"host {host.name}: {exc.message}") from exc
                    if _BUSY_STATE_DB not in exc.message or attempt == _BUSY_START_ATTEMPTS:
                        raise
                    # Another Codex (another window's server) is initialising the same CODEX_HOME.
                    logger.info("codex app-server found its state database busy; starting it again")
                    await anyio.sleep(random.uniform(0.2, 0.6) * attempt)
                    continue
                return connection
            raise AssertionError("unreachable")

    def live(self, key: str) -> AppServerConnection | None:
        """The child of `key` if one runs; never starts one."""
        child = self._children.get(key)
        return None if child is None else child.connection

    def has_loaded(self, key: str, thread_id: str) -> bool:
        """Whether the live child of `key` has `thread_id` loaded."""
        child = self._children.get(key)
        return child is not None and thread_id in child.threads

    def unloaded(self, key: str, thread_id: str) -> None:
        """Note that the live child of `key` no longer holds `thread_id` for us."""
        child = self._children.get(key)
        if child is not None:
            child.threads.discard(thread_id)

    def recycle_grown(self, max_rss_bytes: int | None, busy_keys: set[str]) -> None:
        """Retire the children grown past `max_rss_bytes` that run no turn and wait on no request;
        the next call for their key starts a fresh child, which resumes threads as they are needed.
        (The shared service is its keeper's to recycle: other servers' turns run there; we only let
        it know when we run none there.)"""
        if self._service is not None:
            running = self._requests > 0 or any(key not in self._hosts for key in busy_keys)
            self._service.release_busy_if_idle(running)
            return
        if max_rss_bytes is None:
            return
        for key, child in list(self._children.items()):
            pid = child.connection.pid
            rss = None if pid is None else proc_tree.rss_bytes(pid)
            if rss is None or rss <= max_rss_bytes or key in busy_keys or child.connection.busy:
                continue
            logger.info(
                "recycling codex app-server pid %s: %d MiB resident, past its recycling mark of %d MiB",
                pid,
                rss // 2**20,
                max_rss_bytes // 2**20,
            )
            del self._children[key]
            child.lifetime.cancel()

    def host_keys(self) -> list[str]:
        """The connection keys of the remote hosts, best first for a new thread: those not found
        down lately before those that were, then the fewest threads held or being started."""
        now = anyio.current_time()

        def load(key: str) -> tuple[bool, int]:
            child = self._children.get(key)
            held = len(child.threads) if child is not None else 0
            return self._down_until.get(key, 0.0) > now, held + self._placing[key]

        return sorted(self._hosts, key=load)

    @contextmanager
    def requesting(self) -> Generator[None]:
        """Count a request while it waits for its answer (one to a host counts too: it only keeps
        the shared service from a recycle for that long)."""
        self._requests += 1
        try:
            yield
        finally:
            self._requests -= 1
            if self._service is not None:
                self._service.note_use()

    @contextmanager
    def placing(self, key: str) -> Generator[None]:
        """Count a thread being started on `key` as held while it starts."""
        self._placing[key] += 1
        try:
            yield
        finally:
            self._placing[key] -= 1

    def loaded(self, key: str, thread_id: str) -> None:
        """Note that the live child of `key` has loaded `thread_id`."""
        child = self._children.get(key)
        if child is not None:
            child.threads.add(thread_id)

    @property
    def shared(self) -> bool:
        """Whether the children are connections to the shared service (turns outlive us)."""
        return self._service is not None

    async def _open(self, key: str) -> AbstractAsyncContextManager[AppServerConnection]:
        handler = _Router(key, self._events, self._request, self._closed)
        host = self._hosts.get(key)
        if host is not None:
            return connect_app_server(
                host.url,
                token=host.token(),
                handler=handler,
                client_version=__version__,
                liveness_s=host.timeout_s,
            )
        if self._service is not None:
            try:
                url = await self._service.ensure()
            except CodexMcpError as exc:
                if _LISTEN_OPTION not in exc.message:
                    raise
                logger.warning(
                    "this Codex cannot listen on a socket, so it cannot run the shared service; "
                    "sessions run on a child of this server instead (%s)",
                    exc.message,
                )
                self._service.detach()
                self._service = None
            else:
                return connect_app_server(url, handler=handler, client_version=__version__)
        argv = [self._codex, "app-server"]
        return open_app_server(argv, env=self._env, cwd=None, handler=handler, client_version=__version__)

    async def _run(self, key: str, *, task_status: TaskStatus[AppServerConnection]) -> None:
        # This task's own context: the child it spawns is recorded.
        SPAWN_LEDGER.set(self._ledger)
        async with await self._open(key) as connection:
            child = self._children[key] = _Child(connection)
            task_status.started(connection)
            try:
                with child.lifetime:
                    await connection.wait_closed()
            finally:
                if self._children.get(key) is child:
                    del self._children[key]

    def _closed(self, key: str, reason: str, stderr_tail: str) -> None:
        self._children.pop(key, None)
        self._events.on_closed(key, reason, stderr_tail)

    async def _request(self, key: str, message: ServerRequest) -> None:
        connection = self.live(key)
        if connection is not None:
            await self._events.on_server_request(connection, message)


class _Router:
    """The handler of one child: hands its messages on, naming the child where it matters."""

    def __init__(
        self,
        key: str,
        events: BackendEvents,
        request: Callable[[str, ServerRequest], Awaitable[None]],
        closed: Callable[[str, str, str], None],
    ) -> None:
        self._key = key
        self._events = events
        self._request = request
        self._closed = closed

    async def on_notification(self, message: Notification) -> None:
        self._events.on_notification(message)

    async def on_server_request(self, message: ServerRequest) -> None:
        await self._request(self._key, message)

    async def on_unknown(self, message: UnknownMessage) -> None:
        # The connection has logged it already.
        logger.debug("ignored message from codex app-server (%s)", message.reason)

    async def on_closed(self, reason: str, stderr_tail: str) -> None:
        self._closed(self._key, reason, stderr_tail)
