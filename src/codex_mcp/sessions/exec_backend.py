"""Sessions on the `codex exec --json` backend: one child per turn, `exec resume` for later turns.

Turns go back to the manager as the same events app-server notifications become, so polls look the
same in both modes. What exec cannot do (approvals, questions, steering, fork, background terminals) it
refuses with EXEC_NOT_SUPPORTED.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup

from codex_mcp.backend_mode import BackendMode
from codex_mcp.backends.exec import run_exec_turn
from codex_mcp.backends.exec_argv import ExecTurnSpec, build_exec_argv
from codex_mcp.backends.process import SPAWN_LEDGER, SpawnLedger, kill_all_now
from codex_mcp.errors import CodexMcpError, exec_not_supported
from codex_mcp.sessions.app_server_backend import Guard
from codex_mcp.sessions.backend import (
    BackendEvents,
    Reattached,
    Responder,
    StartedThread,
    SteerRequest,
    TurnRequest,
)
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.wire.methods import THREAD_STARTED

logger = logging.getLogger(__name__)

# Until `thread.started` names the real thread, a session carries a placeholder id with this prefix.
PLACEHOLDER_PREFIX: Final = "exec_thread_"
# Every exec session shares one key: a turn's child is its own, but they end together on shutdown.
EXEC_KEY: Final = "exec"


def placeholder_thread_id() -> str:
    """A thread id for a session whose first exec turn has not named its thread yet."""
    return f"{PLACEHOLDER_PREFIX}{uuid.uuid4().hex[:12]}"


class ExecBackend:
    """The `Backend` of `codex exec` turns, each run in `task_group`."""

    def __init__(
        self,
        task_group: TaskGroup,
        codex: str,
        events: BackendEvents,
        *,
        guard: Guard,
        env: dict[str, str] | None = None,
        ledger: SpawnLedger | None = None,
    ) -> None:
        self._tg = task_group
        self._codex = codex
        self._events = events
        self._guard = guard
        self._env = env
        self._ledger = ledger
        self._stops: dict[str, anyio.Event] = {}

    @property
    def name(self) -> BackendMode:
        return "exec"

    @property
    def key(self) -> str:
        return EXEC_KEY

    def outlives_us(self, key: str) -> bool:
        return False  # each turn is our child

    def close(self) -> None:
        return None

    async def reattach(self, session: Session) -> Reattached:
        raise AssertionError("exec turns never outlive their server")

    async def forget(self, session: Session) -> None:
        return None  # no process keeps an exec thread

    def maintain(self, busy_keys: set[str]) -> None:
        return None  # each turn's process ends with it

    async def warm_up(self) -> None:
        return None  # each turn is its own `codex exec`

    async def start_thread(self, settings: ThreadSettings) -> StartedThread:
        # `codex exec` names the thread when its first turn starts.
        return StartedThread(placeholder_thread_id())

    async def prepare(self, session: Session, warnings: list[str]) -> None:
        if session.thread_id.startswith(PLACEHOLDER_PREFIX) and session.result is not None:
            warnings.append(
                "the previous exec turn never named its thread; this turn starts without its context"
            )

    async def start_turn(self, session: Session, turn: TurnRequest, warnings: list[str]) -> None:
        """Start one `codex exec` turn in the background.

        The session's config goes out as `-c` pairs, with the recursion guard.
        """
        if turn.collaboration_mode is not None:
            warnings.append("collaborationMode needs the app-server backend; ignored under codex exec")
        settings = session.settings
        real_thread = None if session.thread_id.startswith(PLACEHOLDER_PREFIX) else session.thread_id
        spec = ExecTurnSpec(
            prompt=turn.prompt,
            cwd=settings.cwd,
            thread_id=real_thread,
            sandbox=settings.sandbox,
            model=settings.model,
            approval_policy=settings.approval_policy,
            effort=turn.effort or settings.effort,
            summary=turn.summary or settings.summary,
            config=self._guard(settings.cwd, settings.config),
            images=turn.images,
            output_schema=turn.output_schema,
            ephemeral=settings.ephemeral,
        )
        _, argv_warnings = build_exec_argv(self._codex, spec, "schema.json" if turn.output_schema else None)
        warnings.extend(argv_warnings)
        turn_id = f"exec_turn_{uuid.uuid4().hex[:12]}"
        session.active_turn_id = turn_id
        stop = anyio.Event()
        self._stops[session.session_id] = stop
        self._tg.start_soon(self._run, session, spec, turn_id, stop)

    async def _run(self, session: Session, spec: ExecTurnSpec, turn_id: str, stop: anyio.Event) -> None:
        def deliver(method: str, params: dict[str, Any]) -> None:
            if method == THREAD_STARTED and session.thread_id.startswith(PLACEHOLDER_PREFIX):
                thread_id = params.get("threadId")
                if isinstance(thread_id, str):
                    self._events.name_thread(session, thread_id)
            self._events.on_event(session, method, params)

        # This task's own context: every `codex exec` it spawns is recorded.
        SPAWN_LEDGER.set(self._ledger)
        try:
            await run_exec_turn(
                self._codex, spec, env=self._env, turn_id=turn_id, on_notification=deliver, stop=stop
            )
        finally:
            if self._stops.get(session.session_id) is stop:
                del self._stops[session.session_id]

    def _stop(self, session: Session) -> bool:
        """Stop the session's running turn (its child's whole process tree); False if none runs."""
        stop = self._stops.get(session.session_id)
        if stop is None:
            return False
        stop.set()
        return True

    async def steer(self, session: Session, turn_id: str, steer: SteerRequest) -> None:
        raise exec_not_supported("steer")  # `codex exec` reads its prompt once, at the start

    async def interrupt(self, session: Session) -> None:
        if not self._stop(session):
            raise CodexMcpError(
                "SESSION_NOT_RUNNING", f"session {session.session_id} has no running codex exec"
            )

    async def stop_quietly(self, session: Session, turn_id: str | None, why: str) -> None:
        self._stop(session)

    async def fork(self, session: Session) -> str:
        raise exec_not_supported("fork")

    async def clean_background_terminals(self, session: Session) -> None:
        raise exec_not_supported("clean_background_terminals")

    def responder(self, session: Session) -> Responder | None:
        # No request ever comes from `codex exec`: nothing to answer.
        return None

    def kill_now(self) -> None:
        kill_all_now()
