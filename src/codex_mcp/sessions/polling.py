"""The polling rules: cursors, staleness, the long-poll wait, final-only reads, the byte budget, and
the foreground wait of `waitForResult`. The tools' handlers only translate arguments into these."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from codex_mcp.sessions.session import TERMINAL, Session
from codex_mcp.sessions.shaping import ResponseMode, fit_to_max_bytes, shape_event
from codex_mcp.state.records import Event
from codex_mcp.wire.app_server import DELTA_NOTIFICATIONS

WaitReason = Literal["completed", "needs_input", "timeout"]


class NewsWaiter(Protocol):
    """Who can wait for a session's news: the manager (its own sessions, and other servers' on disk)."""

    async def wait_for_news(self, session: Session, timeout_s: float) -> Session:
        """The session once it has news, or `timeout_s` passed."""
        ...


@dataclass(frozen=True)
class PollRequest:
    """One read of a session's events. `answering`: the read that follows an answer to a request
    (it starts at the session's cursor and returns no events unless asked)."""

    cursor: int | None = None
    max_events: int | None = None
    answering: bool = False
    include_events: bool = True
    include_actions: bool = True
    include_result: bool = True
    skip_deltas: bool = False
    final_only: bool = False
    wait_ms: int | None = None
    response_mode: ResponseMode = "minimal"
    max_bytes: int | None = None


def is_delta(event: Event) -> bool:
    """A streaming delta (left out by `skipDeltas`)."""
    return event.data.get("method") in DELTA_NOTIFICATIONS


async def poll(
    waiter: NewsWaiter, session: Session, request: PollRequest, warnings: list[str]
) -> dict[str, Any]:
    """The poll-shaped answer (CodexCheckOutput) for `session`, after the long-poll wait if any."""
    polling = not request.answering
    max_events = request.max_events if request.max_events is not None else (1 if polling else 0)
    cursor = request.cursor
    if polling:
        max_events = max(max_events, 1)
    else:
        cursor = session.last_cursor if cursor is None else max(cursor, session.last_cursor)
        if request.cursor is not None and request.cursor < session.last_cursor:
            warnings.append(
                f"Provided cursor {request.cursor} is stale; used session cursor {session.last_cursor}."
            )
    start = session.last_cursor if cursor is None else cursor
    if (
        polling
        and request.wait_ms
        and session.status not in TERMINAL
        and not session.pending
        and session.buffer.next_id <= start
    ):
        session = await waiter.wait_for_news(session, request.wait_ms / 1000)
    buffer = session.buffer
    output: dict[str, Any] = {"sessionId": session.session_id, **session.hints()}
    if request.final_only or max_events == 0:
        events: list[dict[str, Any]] = []
        if request.final_only:
            next_cursor = buffer.next_id
        else:
            next_cursor = start if cursor is not None else session.last_cursor
        reset_to = None
    else:
        read = buffer.read(
            cursor,
            max_events=max_events,
            last_cursor=session.last_cursor,
            include_deltas=not request.skip_deltas,
            is_delta=is_delta,
        )
        events = [shape_event(event, request.response_mode) for event in read.events]
        next_cursor = read.next_cursor
        reset_to = read.cursor_reset_to
    if request.include_events or request.final_only:
        session.last_cursor = max(session.last_cursor, next_cursor)
    output["events"] = events if request.include_events and not request.final_only else []
    output["nextCursor"] = next_cursor
    if reset_to is not None:
        output["cursorResetTo"] = reset_to
    if request.include_actions and session.pending:
        output["actions"] = session.actions()
    if request.include_result and session.status in TERMINAL and session.result is not None:
        output["result"] = session.result
    if warnings:
        output["compatWarnings"] = warnings
    if request.max_bytes:
        output = fit_to_max_bytes(output, request.max_bytes, cursor_start=start)
    return output


async def wait_for_result(
    session: Session,
    timeout_s: float,
    heartbeat: Callable[[float], Awaitable[None]],
    heartbeat_s: float,
) -> WaitReason:
    """Wait until the turn ends, needs the caller, or time runs out."""
    start = time.monotonic()
    last_beat = start
    while True:
        if session.status in TERMINAL:
            return "completed"
        if session.pending:
            return "needs_input"
        now = time.monotonic()
        remaining = timeout_s - (now - start)
        if remaining <= 0:
            return "timeout"
        if now - last_beat >= heartbeat_s:
            await heartbeat(now - start)
            last_beat = now
        version = session.buffer.version
        await session.buffer.wait_for_change(version, min(remaining, heartbeat_s - (now - last_beat)))


async def turn_output(
    session: Session,
    wait_ms: int | None,
    warnings: list[str],
    heartbeat: Callable[[float], Awaitable[None]],
    heartbeat_s: float,
) -> dict[str, Any]:
    """The answer of `codex`/`codex_reply` (CodexOutput/CodexReplyOutput), after the optional
    foreground wait of `waitForResult` (heartbeats while waiting)."""
    if wait_ms:
        reason = await wait_for_result(session, wait_ms / 1000, heartbeat, heartbeat_s)
        execution: dict[str, Any] = {
            "mode": "foreground",
            "waitRequestedMs": wait_ms,
            "fellBackToPolling": reason != "completed",
            "reason": reason,
        }
    else:
        execution = {"mode": "background", "reason": "not_requested"}
    output: dict[str, Any] = {
        "sessionId": session.session_id,
        "threadId": session.thread_id,
        **session.hints(),
    }
    output["execution"] = execution
    if session.pending:
        output["actions"] = session.actions()
    if session.status in TERMINAL and session.result is not None:
        output["result"] = session.result
        output["completedAt"] = session.result["completedAt"]
    if warnings:
        output["compatWarnings"] = warnings
    return output
