"""A server's side of a shared service: find it, start it when there is none, stay attached.

Being attached is holding `attach.lock` shared: the kernel lets go of it however the server ends,
so a killed server never keeps a service alive. A server attaches before it looks for the service,
so a keeper it starts never sees a moment with nobody attached.

A service is healthy when its socket accepts a WebSocket upgrade within a bound. One that does not:

- no keeper holds `keeper.lock`: the service is gone (a socket left by a dead one is removed by
  the next keeper) and a keeper is started;
- a keeper holds it but the socket does not answer: it may be starting, so it gets the start bound;
  past that it is wedged, and it is stopped (SIGTERM to the keeper, which stops Codex) and replaced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Final

import anyio

from codex_mcp.backends.readyz import probe_ready
from codex_mcp.errors import CodexMcpError, redact
from codex_mcp.service import keeper
from codex_mcp.service.layout import ServiceLayout
from codex_mcp.service.locks import hold_shared, is_held, try_exclusive, try_shared

logger = logging.getLogger(__name__)

# A cold Codex reads its config and opens its state database: seconds on a busy machine.
START_TIMEOUT_S: Final = 30.0
_PROBE_TIMEOUT_S: Final = 2.0
_POLL_S: Final = 0.05
_STOP_WAIT_S: Final = 10.0
# After the last request, how long `busy.lock` stays held: a turn being set up (its thread resumed,
# its turn/start not yet sent) counts as busy only once it starts, and must not be recycled under.
_BUSY_GRACE_S: Final = 1.0


@dataclass
class SharedService:
    """One service as a server uses it (see the module doc)."""

    layout: ServiceLayout
    codex_argv: list[str]
    env: dict[str, str]
    idle_s: float
    # The keeper replaces a Codex grown past this many MiB once no turn runs on it (None: never).
    max_rss_mb: float | None = None
    start_timeout_s: float = START_TIMEOUT_S
    _attached: int | None = field(default=None, init=False)
    _busy: int | None = field(default=None, init=False)
    _busy_since: float = field(default=0.0, init=False)

    @property
    def url(self) -> str:
        return self.layout.url

    def attach(self) -> None:
        """Hold the service (idempotent): the keeper does not stop it while we are attached."""
        if self._attached is None:
            self._attached = hold_shared(self.layout.attach_lock)

    def detach(self) -> None:
        """Let go of the service; it stops once nobody holds it and no turn runs for the idle period."""
        self._release_busy()
        if self._attached is not None:
            os.close(self._attached)
            self._attached = None

    async def hold_busy(self) -> None:
        """Hold `busy.lock` before using the service for a turn: the keeper does not recycle it
        under us. Waits (bounded) while the keeper recycles it.

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED when a recycle held it past the start bound.
        """
        self._busy_since = time.monotonic()
        deadline = self._busy_since + self.start_timeout_s
        while self._busy is None:
            self._busy = try_shared(self.layout.busy_lock)
            if self._busy is not None:
                return
            if time.monotonic() > deadline:
                raise CodexMcpError(
                    "APP_SERVER_START_FAILED",
                    f"the shared codex service was being recycled for over {self.start_timeout_s:.0f}s",
                )
            await anyio.sleep(_POLL_S)

    def note_use(self) -> None:
        """A request to the service just ended: `busy.lock` stays held for the grace period."""
        self._busy_since = time.monotonic()

    def release_busy_if_idle(self, running: bool) -> None:
        """Let go of `busy.lock` once nothing of ours runs there (`running`: a turn, a request) and
        nothing has for the grace period: the keeper may recycle the service then."""
        if running:
            self._busy_since = time.monotonic()
        elif time.monotonic() - self._busy_since > _BUSY_GRACE_S:
            self._release_busy()

    def _release_busy(self) -> None:
        if self._busy is not None:
            os.close(self._busy)
            self._busy = None

    async def healthy(self) -> bool:
        """Whether the service answers on its socket now."""
        if not self.layout.socket.exists():
            return False
        return (await probe_ready(self.url, timeout_s=_PROBE_TIMEOUT_S)).ready

    async def ensure(self) -> str:
        """The url of a healthy service, started first if need be; we are attached from now on.

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED, saying why, when no healthy service came up
                within the start bound.
        """
        self.attach()
        if await self.healthy():
            return self.url
        async with self._starting():
            if await self.healthy():
                return self.url
            if is_held(self.layout.keeper_lock) and not await self._wait_healthy(None):
                await self._stop_wedged()
            spawned = None
            if not is_held(self.layout.keeper_lock):
                spawned = keeper.start_detached(
                    self.layout, self.codex_argv, self.env, self.idle_s, self.max_rss_mb
                )
                logger.info("started the shared codex service %s (keeper pid %d)", self.layout.key, spawned)
            if not await self._wait_healthy(spawned):
                raise CodexMcpError(
                    "APP_SERVER_START_FAILED",
                    redact(
                        f"the shared codex app-server did not come up within {self.start_timeout_s:.0f}s"
                        + self._log_hint()
                    ),
                )
        return self.url

    @contextlib.asynccontextmanager
    async def _starting(self) -> AsyncGenerator[None]:
        """Hold `start.lock`, so only one server starts the service; bounded."""
        deadline = time.monotonic() + self.start_timeout_s
        while (fd := try_exclusive(self.layout.start_lock)) is None:
            if time.monotonic() > deadline:
                raise CodexMcpError(
                    "APP_SERVER_START_FAILED",
                    "another server held the start of the shared codex service for "
                    f"{self.start_timeout_s:.0f}s",
                )
            await anyio.sleep(_POLL_S)
        try:
            yield
        finally:
            os.close(fd)

    async def _wait_healthy(self, spawned: int | None) -> bool:
        """Wait (bounded) for the service to answer; False early when its keeper has gone (the one
        we `spawned`, or the one holding the lock)."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if await self.healthy():
                return True
            gone = _exited(spawned) if spawned is not None else not is_held(self.layout.keeper_lock)
            if gone:
                return False
            await anyio.sleep(_POLL_S)
        return False

    async def _stop_wedged(self) -> None:
        pid = self.layout.read_info().get("keeperPid")
        logger.warning(
            "the shared codex service %s does not answer; stopping it (keeper pid %s)", self.layout.key, pid
        )
        if isinstance(pid, int):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        with anyio.move_on_after(_STOP_WAIT_S):
            while is_held(self.layout.keeper_lock):  # noqa: ASYNC110 - a lock in another process
                await anyio.sleep(_POLL_S)

    def _log_hint(self) -> str:
        tail = self.layout.log_tail()
        return f"; its log ({self.layout.log}) ends: {tail}" if tail else ""


def _exited(pid: int) -> bool:
    """Whether our child `pid` has exited (reaping it if so)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid
