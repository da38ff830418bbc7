"""Sessions on the `codex exec --json` backend: one child per turn, `exec resume` for later turns.

Turns are fed through the same ingest as app-server notifications, so polls look the same in both
modes. What exec cannot do (approvals, questions, fork, background terminals) is refused by the
manager with EXEC_NOT_SUPPORTED.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup

from codex_mcp.backends.exec import run_exec_turn
from codex_mcp.backends.exec_argv import ExecTurnSpec, build_exec_argv
from codex_mcp.backends.process import SPAWN_LEDGER, SpawnLedger
from codex_mcp.sessions.ingest import ingest_notification
from codex_mcp.sessions.session import Session
from codex_mcp.wire.methods import ERROR, THREAD_STARTED, TURN_COMPLETED, TURN_STARTED

logger = logging.getLogger(__name__)

# Until `thread.started` names the real thread, a session carries a placeholder id with this prefix.
PLACEHOLDER_PREFIX: Final = "exec_thread_"


def placeholder_thread_id() -> str:
    """A thread id for a session whose first exec turn has not named its thread yet."""
    return f"{PLACEHOLDER_PREFIX}{uuid.uuid4().hex[:12]}"


class ExecDriver:
    """Runs exec turns for the manager, inside the manager's task group."""

    def __init__(
        self,
        task_group: TaskGroup,
        codex: str,
        on_thread_named: Any,
        env: dict[str, str] | None = None,
        ledger: SpawnLedger | None = None,
    ) -> None:
        self._tg = task_group
        self._codex = codex
        self._env = env
        self._ledger = ledger
        self._on_thread_named = on_thread_named
        self._stops: dict[str, anyio.Event] = {}

    def start_turn(
        self,
        session: Session,
        *,
        prompt: str,
        images: list[str],
        output_schema: dict[str, Any] | None,
        effort: str | None,
        summary: str | None,
        warnings: list[str],
        config: dict[str, Any] | None,
    ) -> None:
        """Start one `codex exec` turn in the background; `warnings` gets what exec cannot apply.

        `config` is what goes out as `-c` pairs: the session's config with the recursion guard.
        """
        settings = session.settings
        real_thread = None if session.thread_id.startswith(PLACEHOLDER_PREFIX) else session.thread_id
        if real_thread is None and session.result is not None:
            warnings.append(
                "the previous exec turn never named its thread; this turn starts without its context"
            )
        spec = ExecTurnSpec(
            prompt=prompt,
            cwd=settings.cwd,
            thread_id=real_thread,
            sandbox=settings.sandbox,
            model=settings.model,
            approval_policy=settings.approval_policy,
            effort=effort or settings.effort,
            summary=summary or settings.summary,
            config=config,
            images=images,
            output_schema=output_schema,
            ephemeral=settings.ephemeral,
        )
        _, argv_warnings = build_exec_argv(self._codex, spec, "schema.json" if output_schema else None)
        warnings.extend(argv_warnings)
        session.begin_turn(has_output_schema=output_schema is not None)
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
                    self._on_thread_named(session, thread_id)
            if session.status == "cancelled" and method in (TURN_STARTED, TURN_COMPLETED, ERROR):
                return
            ingest_notification(session, method, params)
            session.buffer.notify()

        # This task's own context: every `codex exec` it spawns is recorded.
        SPAWN_LEDGER.set(self._ledger)
        try:
            await run_exec_turn(
                self._codex, spec, env=self._env, turn_id=turn_id, on_notification=deliver, stop=stop
            )
        finally:
            if self._stops.get(session.session_id) is stop:
                del self._stops[session.session_id]

    def stop(self, session: Session) -> bool:
        """Stop the session's running turn (its child's whole process tree); False if none runs."""
        stop = self._stops.get(session.session_id)
        if stop is None:
            return False
        stop.set()
        return True
