"""The polling rules: cursors, staleness, the long-poll wait, final-only reads, the byte budget, and
the foreground wait of `waitForResult`. The tools' handlers only translate arguments into these."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, cast

import anyio

from codex_mcp.sessions.digest import DEFAULT_DIGEST_BYTES, session_digest
from codex_mcp.sessions.session import TERMINAL, Session, worktree_info
from codex_mcp.sessions.shaping import ResponseMode, fit_to_max_bytes, json_size, shape_event
from codex_mcp.state.records import Event
from codex_mcp.wire.app_server import DELTA_NOTIFICATIONS
from codex_mcp.wire.tools import (
    Action,
    CodexCheckOutput,
    CodexOutput,
    CodexReplyOutput,
    Execution,
    TokenUsage,
    TurnError,
    TurnResult,
    WaitEntry,
    WorktreeChanges,
    WorktreeFile,
    output_json,
)
from codex_mcp.worktrees import CHANGES_TIMEOUT_S

WaitReason = Literal["completed", "needs_input", "timeout"]
# How long a read of a finished turn waits for its worktree's change summary (bounded itself).
SETTLE_WAIT_S = CHANGES_TIMEOUT_S + 5.0
# `codex` and `codex_reply` answer alike, each with its own output model.
TurnOutput = TypeVar("TurnOutput", CodexOutput, CodexReplyOutput)


class NewsWaiter(Protocol):
    """Who can wait for a session's news: the manager (its own sessions, and other servers' on disk)."""

    async def wait_for_news(self, session: Session, timeout_s: float) -> Session:
        """The session once it has news, or `timeout_s` passed."""
        ...


class Elicitor(Protocol):
    """Who asks the client about a session's pending requests (approvals "elicit", a client that
    declared form elicitation): answers what the client answered, or (2026-07-28) raises to hand
    the questions back as an input-required result."""

    async def offer(self, session: Session) -> None:
        """Ask about the pending requests of `session` not asked yet."""
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
    # `responseMode: "digest"`: no events (the cursor moves to the end), `digest` instead of the
    # actions and the result, the whole answer within `max_bytes` (default DEFAULT_DIGEST_BYTES).
    digest: bool = False


def is_delta(event: Event) -> bool:
    """A streaming delta (left out by `skipDeltas`)."""
    return event.data.get("method") in DELTA_NOTIFICATIONS


def turn_result(record: dict[str, Any]) -> TurnResult:
    """A turn's result as the session recorded it (and the state directory keeps it), shown as
    recorded: built unchecked (`model_construct`), so a record cannot fail the call that shows it."""
    values = dict(record)
    error, usage = values.get("error"), values.get("usage")
    if isinstance(error, dict):
        values["error"] = TurnError.model_construct(**cast(dict[str, Any], error))
    if isinstance(usage, dict):
        values["usage"] = TokenUsage.model_construct(**cast(dict[str, Any], usage))
    changes = values.get("changes")
    if isinstance(changes, dict):
        values["changes"] = worktree_changes(cast(dict[str, Any], changes))
    return TurnResult.model_construct(**values)


def worktree_changes(record: dict[str, Any]) -> WorktreeChanges:
    """A worktree's change summary as recorded, built unchecked like the result that holds it."""
    values = dict(record)
    files = values.get("files")
    if isinstance(files, list):
        values["files"] = [
            WorktreeFile.model_construct(**cast(dict[str, Any], entry))
            for entry in cast(list[object], files)
            if isinstance(entry, dict)
        ]
    return WorktreeChanges.model_construct(**values)


def _hint(output: CodexCheckOutput | CodexOutput | CodexReplyOutput, session: Session) -> None:
    """Set the hints every answer about a session carries: progress, interactionState,
    recommendedNextAction, and pollInterval unless nothing more will happen."""
    output.progress = session.progress()
    output.interaction_state = session.interaction_state()
    output.recommended_next_action = session.recommended_next_action()
    interval = session.poll_interval_ms()
    if interval is not None:
        output.poll_interval = interval


async def poll(
    waiter: NewsWaiter,
    session: Session,
    request: PollRequest,
    warnings: list[str],
    elicitor: Elicitor | None = None,
) -> CodexCheckOutput:
    """The poll-shaped answer (CodexCheckOutput) for `session`, after the long-poll wait if any; a
    long-poll first asks `elicitor` about pending requests, and about those that came meanwhile."""
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
    long_poll = polling and bool(request.wait_ms)
    if long_poll and elicitor is not None and session.pending:
        await elicitor.offer(session)
    if (
        long_poll
        and request.wait_ms
        and session.status not in TERMINAL
        and not session.pending
        and session.buffer.next_id <= start
    ):
        session = await waiter.wait_for_news(session, request.wait_ms / 1000)
        if elicitor is not None and session.pending:
            await elicitor.offer(session)
    if (request.include_result or request.digest) and session.status in TERMINAL:
        await session.settled(SETTLE_WAIT_S)
    buffer = session.buffer
    final_only = request.final_only or request.digest
    if final_only or max_events == 0:
        events: list[Event] = []
        if final_only:
            next_cursor = buffer.next_id
        elif cursor is not None:
            next_cursor = start
        else:
            next_cursor = session.last_cursor
        reset_to = None
    else:
        read = buffer.read(
            cursor,
            max_events=max_events,
            last_cursor=session.last_cursor,
            include_deltas=not request.skip_deltas,
            is_delta=is_delta,
        )
        events = read.events
        next_cursor = read.next_cursor
        reset_to = read.cursor_reset_to
    if request.include_events or final_only:
        session.last_cursor = max(session.last_cursor, next_cursor)
    shown = events if request.include_events and not final_only else []
    output = CodexCheckOutput(
        session_id=session.session_id,
        status=session.status,
        events=[shape_event(event, request.response_mode) for event in shown],
        next_cursor=next_cursor,
    )
    _hint(output, session)
    if reset_to is not None:
        output.cursor_reset_to = reset_to
    if request.digest:
        if warnings:
            output.compat_warnings = warnings
        return with_digest(output, session, request.max_bytes)
    if request.include_actions and session.pending:
        output.actions = session.actions()
    if request.include_result and session.status in TERMINAL and session.result is not None:
        output.result = turn_result(session.result)
    if warnings:
        output.compat_warnings = warnings
    if request.max_bytes:
        output = _fit(output, request.max_bytes, start)
    return output


def _fit(output: CodexCheckOutput, max_bytes: int, cursor_start: int) -> CodexCheckOutput:
    """`output` cut to `max_bytes` by `fit_to_max_bytes`, which measures and cuts it as the client
    gets it; what it kept of the records (actions, the result) is rebuilt unchecked, as they were."""
    full = output_json(output)
    fitted = fit_to_max_bytes(full, max_bytes, cursor_start=cursor_start)
    if fitted is full:
        return output
    values = dict(fitted)
    if "actions" in values:
        values["actions"] = [Action.model_construct(**action) for action in fitted["actions"]]
    if "result" in values:
        values["result"] = turn_result(fitted["result"])
    return CodexCheckOutput.model_validate(values)


DigestTarget = TypeVar("DigestTarget", CodexCheckOutput, CodexOutput, CodexReplyOutput)


def with_digest(output: DigestTarget, session: Session, max_bytes: int | None) -> DigestTarget:
    """`output` with the session's digest, cut so that the whole answer takes at most `max_bytes`
    (default DEFAULT_DIGEST_BYTES) of compact JSON."""
    budget = max_bytes or DEFAULT_DIGEST_BYTES
    overhead = json_size(output_json(output)) + json_size("digest") + 2
    output.digest = session_digest(session, budget - overhead)
    return output


async def wait_for_result(
    session: Session,
    timeout_s: float,
    heartbeat: Callable[[float], Awaitable[None]],
    heartbeat_s: float,
    elicitor: Elicitor | None = None,
) -> WaitReason:
    """Wait until the turn ends, needs the caller, or time runs out; pending requests are first
    offered to `elicitor`, and the wait goes on once it answered them all."""
    start = time.monotonic()
    last_beat = start
    while True:
        if session.status in TERMINAL:
            return "completed"
        if session.pending and elicitor is not None:
            await elicitor.offer(session)
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
    *,
    model: type[TurnOutput],
    elicitor: Elicitor | None = None,
    digest_bytes: int | None = None,
    digest: bool = False,
) -> TurnOutput:
    """The answer of `codex`/`codex_reply` (`model`: CodexOutput/CodexReplyOutput), after the
    optional foreground wait of `waitForResult` (heartbeats while waiting)."""
    if wait_ms:
        reason = await wait_for_result(session, wait_ms / 1000, heartbeat, heartbeat_s, elicitor)
        execution = Execution(
            mode="foreground",
            wait_requested_ms=wait_ms,
            fell_back_to_polling=reason != "completed",
            reason=reason,
        )
    else:
        execution = Execution(mode="background", reason="not_requested")
    if session.status in TERMINAL:
        await session.settled(SETTLE_WAIT_S)
    output = model(
        session_id=session.session_id,
        thread_id=session.thread_id,
        status=session.status,
        execution=execution,
    )
    _hint(output, session)
    if session.settings.worktree is not None:
        output.worktree = worktree_info(session.settings.worktree)
    if digest:
        if session.status in TERMINAL and session.result is not None:
            output.completed_at = session.result["completedAt"]
        if warnings:
            output.compat_warnings = warnings
        return with_digest(output, session, digest_bytes)
    if session.pending:
        output.actions = session.actions()
    if session.status in TERMINAL and session.result is not None:
        output.result = turn_result(session.result)
        output.completed_at = session.result["completedAt"]
    if warnings:
        output.compat_warnings = warnings
    return output


WaitUntil = Literal["any", "all"]
FanInReason = Literal["condition_met", "needs_input", "timeout"]


class SessionFinder(NewsWaiter, Protocol):
    """Who finds sessions by id and waits for their news: the manager."""

    async def lookup(self, session_id: str) -> Session:
        """The session (SESSION_NOT_FOUND when there is none)."""
        ...


def _needs_answer(session: Session) -> bool:
    return bool(session.pending) and session.status not in TERMINAL


def _holds(sessions: Sequence[Session], until: WaitUntil) -> bool:
    done = [session.status in TERMINAL for session in sessions]
    return all(done) if until == "all" else any(done)


async def _any_news(finder: SessionFinder, sessions: Sequence[Session], timeout_s: float) -> None:
    """Return when any of `sessions` has news, or after `timeout_s`."""
    async with anyio.create_task_group() as group:

        async def watch(session: Session) -> None:
            await finder.wait_for_news(session, timeout_s)
            group.cancel_scope.cancel()

        for session in sessions:
            group.start_soon(watch, session)


async def wait_for_sessions(
    finder: SessionFinder,
    session_ids: Sequence[str],
    until: WaitUntil,
    timeout_s: float,
    *,
    heartbeat: Callable[[float, str], Awaitable[None]],
    heartbeat_s: float,
) -> tuple[list[Session], FanInReason, int]:
    """Wait until `until` (any | all) of the sessions finished their turn, one needs an answer, or
    `timeout_s` passed: (the sessions then, why it returned, ms waited). Heartbeats while waiting.
    Only this call waits: each session is watched through its own news, nothing is locked."""
    start = time.monotonic()
    last_beat = start
    while True:
        sessions = [await finder.lookup(session_id) for session_id in session_ids]
        now = time.monotonic()
        waited_ms = int((now - start) * 1000)
        reason: FanInReason | None = None
        if any(_needs_answer(session) for session in sessions):
            reason = "needs_input"
        elif _holds(sessions, until):
            reason = "condition_met"
        elif now - start >= timeout_s:
            reason = "timeout"
        if reason is not None:
            for session in sessions:
                if session.status in TERMINAL:
                    await session.settled(SETTLE_WAIT_S)
            return sessions, reason, waited_ms
        if now - last_beat >= heartbeat_s:
            done = sum(session.status in TERMINAL for session in sessions)
            await heartbeat(now - start, f"waiting for {until} of {len(sessions)} sessions ({done} done)")
            last_beat = now
        remaining = timeout_s - (now - start)
        await _any_news(finder, sessions, max(0.0, min(remaining, heartbeat_s - (now - last_beat))))


def wait_entries(
    sessions: Sequence[Session], *, digest: bool, max_bytes: int | None, overhead: int
) -> list[WaitEntry]:
    """Each session as `wait` returns it: digests share the budget left after `overhead` (the
    answer's other fields)."""
    entries: list[WaitEntry] = []
    for session in sessions:
        entry = WaitEntry(
            session_id=session.session_id,
            status=session.status,
            interaction_state=session.interaction_state(),
            done=session.status in TERMINAL,
        )
        if not digest:
            if session.pending:
                entry.actions = session.actions()
            if session.status in TERMINAL and session.result is not None:
                entry.result = turn_result(session.result)
        entries.append(entry)
    if digest:
        budget = max_bytes or DEFAULT_DIGEST_BYTES
        fixed = overhead + sum(json_size(output_json(entry)) + 1 for entry in entries)
        key = json_size("digest") + 2
        share = (budget - fixed) // max(1, len(entries)) - key
        for entry, session in zip(entries, sessions, strict=True):
            entry.digest = session_digest(session, share)
    return entries
