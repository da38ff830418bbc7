"""Sessions in git worktrees (`advanced.worktree`): what the manager does with `worktrees.py`.

A session's worktree is made before its thread starts (the thread's cwd is inside it), kept in its
settings (so in the state directory: it survives restarts), and summarised when each turn ends:
the summary is added to the turn's result, and readers of the result wait for it
(`Session.changes_pending`). Forks get their own worktree; replies stay in theirs. Finishing
(`keep`, `remove`) and `clean` never lose unmerged work unless forced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup

from codex_mcp import worktrees
from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.session import Session
from codex_mcp.worktrees import Finished, Worktree, WorktreeError

logger = logging.getLogger(__name__)

# What `patch` returns at most (a caller reads the branch with git for the rest).
MAX_PATCH_CHARS: Final = 8 * 1024 * 1024
# Bound on removing a worktree that a failed start or fork leaves behind.
_DISCARD_TIMEOUT_S: Final = 60.0
WORKTREE_CHANGES_METHOD: Final = "codex-mcp/worktree_changes"


def _refused(exc: WorktreeError, field: str) -> CodexMcpError:
    if exc.timed_out:
        return CodexMcpError("TIMEOUT", f"{field}: {exc}", field=field)
    return CodexMcpError("INVALID_ARGUMENT", f"{field}: {exc}", field=field)


def _commit_message(session_id: str) -> str:
    return f"codex-mcp: what session {session_id} left uncommitted"


@dataclass(frozen=True)
class Patch:
    """A worktree's patch against its base commit, and its change summary."""

    changes: dict[str, Any]
    text: str
    truncated: bool


@dataclass(frozen=True)
class CleanEntry:
    """A worktree `clean` removes (or would) with its session: the `WorktreeCleanup` it shows."""

    session_id: str
    worktree: Worktree
    commits_changes: bool
    keeps_branch: bool


class SessionWorktrees:
    """The worktrees of one manager's sessions, all under `root` (`<state dir>/worktrees`)."""

    def __init__(self, root: Path, task_group: TaskGroup) -> None:
        self._root = root
        self._tg = task_group

    @property
    def root(self) -> Path:
        """Where every worktree lives: `<root>/<session id>`."""
        return self._root

    async def create(self, cwd: str, session_id: str, request: bool | str) -> tuple[Worktree, str]:
        """A new worktree for `session_id` of `cwd`'s repository (on the branch `request` names, when
        it is a name); and the session's cwd in it. INVALID_ARGUMENT naming advanced.worktree when
        there can be none."""
        branch = request if isinstance(request, str) else None
        try:
            return await worktrees.create(cwd, self._root, session_id, branch)
        except WorktreeError as exc:
            raise _refused(exc, "advanced.worktree") from None

    async def fork(self, source: Session, session_id: str) -> tuple[Worktree, str] | None:
        """A worktree for the fork `session_id` of `source` from its files as they are now; None
        when `source` has no worktree."""
        parent = source.settings.worktree
        if parent is None:
            return None
        try:
            return await worktrees.fork(parent, source.settings.cwd, self._root, session_id)
        except WorktreeError as exc:
            raise _refused(exc, "sessionId") from None

    async def discard(self, worktree: Worktree) -> None:
        """Remove the worktree and branch of a session that never started (nothing is on them)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_DISCARD_TIMEOUT_S):
            try:
                await worktrees.remove(worktree)
            except WorktreeError as exc:
                logger.warning("could not remove the unused worktree %s: %s", worktree.path, exc)

    # --- turn summaries ----------------------------------------------------------

    def watch(self, session: Session) -> None:
        """Summarise `session`'s worktree at the end of each of its turns (and now, when its last
        result has no summary yet: a turn cut by a restart)."""
        if session.settings.worktree is None:
            return
        session.on_turn_end = self.after_turn
        if session.result is not None and "changes" not in session.result and session.turn_finished.is_set():
            self.after_turn(session)

    def after_turn(self, session: Session) -> None:
        """Start adding the worktree's change summary to the result of the turn that just ended."""
        worktree, result = session.settings.worktree, session.result
        if worktree is None or result is None:
            return
        done = anyio.Event()
        session.changes_pending = done
        self._tg.start_soon(self._summarize, session, worktree, result, done)

    @staticmethod
    async def _summarize(
        session: Session, worktree: Worktree, result: dict[str, Any], done: anyio.Event
    ) -> None:
        try:
            summary = await worktrees.changes(worktree)
            if session.result is result:
                result["changes"] = summary
                session.buffer.append("progress", {"method": WORKTREE_CHANGES_METHOD, **summary})
                session.buffer.notify()
        finally:
            done.set()
            if session.changes_pending is done:
                session.changes_pending = None

    # --- checks ------------------------------------------------------------------

    @staticmethod
    def check_reply(session: Session, cwd: str | None) -> None:
        """Refuse a reply a worktree session cannot take: its worktree is gone, or `cwd` leaves it."""
        worktree = session.settings.worktree
        if worktree is None:
            return
        if worktree.removed:
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"session {session.session_id}: its worktree was removed; the work is on branch "
                f"{worktree.branch}: start a new session there",
                field="sessionId",
            )
        if cwd is not None and not Path(cwd).is_relative_to(worktree.path):
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"cwd: session {session.session_id} runs in its worktree; cwd must be inside it",
                field="cwd",
            )

    # --- finishing ---------------------------------------------------------------

    @staticmethod
    def _worktree_of(session: Session) -> Worktree:
        worktree = session.settings.worktree
        if worktree is None:
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"session {session.session_id} has no worktree (start it with advanced.worktree)",
                field="sessionId",
            )
        return worktree

    @staticmethod
    def _idle(session: Session) -> None:
        if session.status in ("running", "waiting_approval"):
            raise CodexMcpError(
                "SESSION_BUSY", f"session {session.session_id} is {session.status}; wait or interrupt it"
            )

    async def patch(self, session: Session) -> Patch:
        """The session's patch against its base commit, and its summary."""
        worktree = self._worktree_of(session)
        try:
            text = await worktrees.patch(worktree)
        except WorktreeError as exc:
            raise _refused(exc, "sessionId") from None
        changes = await worktrees.changes(worktree)
        return Patch(changes, text[:MAX_PATCH_CHARS], len(text) > MAX_PATCH_CHARS)

    async def keep(self, session: Session) -> Finished:
        """Commit what is uncommitted onto the branch, remove the worktree, keep the branch."""
        worktree = self._worktree_of(session)
        self._idle(session)
        try:
            finished = await worktrees.keep(worktree, _commit_message(session.session_id))
        except WorktreeError as exc:
            raise _refused(exc, "sessionId") from None
        session.settings.worktree = finished.worktree
        return finished

    async def remove(self, session: Session, *, force: bool) -> Finished:
        """Remove the worktree and delete its branch; refused, naming `force`, when that loses
        uncommitted changes or commits merged nowhere, unless `force`."""
        worktree = self._worktree_of(session)
        self._idle(session)
        try:
            lost = await worktrees.losses(worktree)
            if lost and not force:
                raise CodexMcpError(
                    "INVALID_ARGUMENT",
                    f"force: {lost.describe(worktree)}; removing them loses that work. Pass force: true "
                    "to remove anyway, or use worktree_keep to keep the branch",
                    field="force",
                )
            finished = await worktrees.remove(worktree)
        except WorktreeError as exc:
            raise _refused(exc, "sessionId") from None
        session.settings.worktree = finished.worktree
        return finished

    async def clean(self, entries: list[tuple[str, Worktree]], *, dry_run: bool) -> list[CleanEntry]:
        """What `clean` does (or, `dry_run`, would do) to the worktrees of the sessions it removes: each
        directory goes, what is uncommitted is committed first, a branch merged nowhere stays. A
        worktree git fails on is left as it is (and said in the log)."""
        done: list[CleanEntry] = []
        for session_id, worktree in entries:
            if worktree.removed:  # kept or removed already: its branch is the caller's choice
                continue
            try:
                if dry_run:
                    plan = await worktrees.plan_clean(worktree)
                else:
                    plan = await worktrees.clean_up(worktree, _commit_message(session_id))
            except WorktreeError as exc:
                logger.warning("clean: left the worktree of session %s as it is: %s", session_id, exc)
                continue
            done.append(CleanEntry(session_id, worktree, plan.commits_changes, plan.keeps_branch))
        return done
