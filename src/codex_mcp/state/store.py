"""The state directory of one server: session files, the lock, and the ledger of children.

Layout (directory 0700, files 0600)::

    lock                          who holds the directory (see lock.py)
    children.json                 {"runId", "children": {pid: start time}} of the holder
    sessions/<sessionId>/meta.json    the session (replaced atomically)
    sessions/<sessionId>/result.json  its last turn's result (replaced atomically)
    sessions/<sessionId>/events.jsonl its event log (appended, see journal.py)
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from codex_mcp.backends import proc_tree
from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.events import Event
from codex_mcp.state import reaper
from codex_mcp.state.files import (
    check_session_id,
    open_append,
    private_dir,
    read_json_object,
    write_json_atomic,
)
from codex_mcp.state.journal import EventJournal, read_events
from codex_mcp.state.lock import StateLock

logger = logging.getLogger(__name__)

_META: Final = "meta.json"
_RESULT: Final = "result.json"
_EVENTS: Final = "events.jsonl"
_CHILDREN: Final = "children.json"
# Event logs kept open at once; the least recently written is closed beyond this.
_OPEN_LOGS: Final = 64


@dataclass
class StoredSession:
    """What the disk holds for one session."""

    session_id: str
    meta: dict[str, Any]
    result: dict[str, Any] | None
    events: list[Event]


class StateStore:
    """Owns one locked state directory for the life of a server."""

    def __init__(self, root: Path, lock: StateLock) -> None:
        self.root = root
        self._lock = lock
        self._sessions = private_dir(root / "sessions")
        self._open_logs: OrderedDict[str, int] = OrderedDict()
        self._children: dict[int, int | None] = {}

    @classmethod
    def open(cls, root: Path) -> StateStore:
        """Create and lock `root`, then stop what a dead previous server left running.

        Raises:
            CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_STATE_DIR when the directory cannot
                be created or another live server holds it.
        """
        try:
            private_dir(root)
            lock = StateLock.acquire(root)
        except OSError as exc:
            raise CodexMcpError(
                "INVALID_ARGUMENT", f"CODEX_MCP_STATE_DIR={root}: cannot use it ({exc.strerror})"
            ) from None
        store = cls(root, lock)
        store._reap_previous()
        store._write_children()
        return store

    @property
    def run_id(self) -> str:
        """This server run's id (children carry it in their environment)."""
        return self._lock.holder.run_id

    def child_environment(self) -> dict[str, str]:
        """Our environment plus the run tag: what children are started with."""
        return {**os.environ, reaper.RUN_VARIABLE: self.run_id}

    def close(self) -> None:
        """Close every log and release the lock (idempotent)."""
        for fd in self._open_logs.values():
            os.close(fd)
        self._open_logs.clear()
        self._lock.release()

    # --- children -------------------------------------------------------------------------------

    def started(self, pid: int, start_time: int | None) -> None:
        """Record a child we spawned (a `SpawnLedger`)."""
        self._children[pid] = start_time
        self._write_children()

    def ended(self, pid: int) -> None:
        """Forget a child that has exited."""
        if self._children.pop(pid, None) is not None:
            self._write_children()

    def _write_children(self) -> None:
        children = {str(pid): start for pid, start in self._children.items()}
        try:
            write_json_atomic(self.root / _CHILDREN, {"runId": self.run_id, "children": children})
        except OSError:
            logger.exception("could not record children in %s", self.root)

    def _reap_previous(self) -> None:
        previous = self._lock.previous
        if previous is None:
            return
        recorded: proc_tree.ProcessSnapshot = {}
        try:
            ledger = read_json_object(self.root / _CHILDREN) or {}
        except (OSError, ValueError):
            logger.warning("unreadable %s; looking for the previous run's processes by tag only", _CHILDREN)
            ledger = {}
        children = ledger.get("children")
        if ledger.get("runId") == previous.run_id and isinstance(children, dict):
            for pid, start in children.items():  # pyright: ignore[reportUnknownVariableType]
                if str(pid).isdigit() and isinstance(start, int):  # pyright: ignore[reportUnknownArgumentType]
                    recorded[int(str(pid))] = start  # pyright: ignore[reportUnknownArgumentType]
        reaper.reap(previous.run_id, recorded)

    # --- sessions -------------------------------------------------------------------------------

    def _dir(self, session_id: str) -> Path:
        return self._sessions / check_session_id(session_id)

    def write_meta(self, session_id: str, meta: dict[str, Any]) -> None:
        """Replace the session's metadata."""
        write_json_atomic(private_dir(self._dir(session_id)) / _META, meta)

    def write_result(self, session_id: str, result: dict[str, Any]) -> None:
        """Replace the session's last result."""
        write_json_atomic(private_dir(self._dir(session_id)) / _RESULT, result)

    def journal(self, session_id: str, retained: Callable[[], list[Event]]) -> EventJournal:
        """The writer of the session's event log; `retained` gives the events to compact down to."""
        directory = private_dir(self._dir(session_id))

        def write(line: bytes) -> None:
            os.write(self._log_fd(session_id, directory), line)

        def reopen() -> None:
            fd = self._open_logs.pop(session_id, None)
            if fd is not None:
                os.close(fd)

        return EventJournal(directory / _EVENTS, write, retained, reopen)

    def _log_fd(self, session_id: str, directory: Path) -> int:
        fd = self._open_logs.get(session_id)
        if fd is not None:
            self._open_logs.move_to_end(session_id)
            return fd
        fd = open_append(directory / _EVENTS)
        self._open_logs[session_id] = fd
        if len(self._open_logs) > _OPEN_LOGS:
            _, oldest = self._open_logs.popitem(last=False)
            os.close(oldest)
        return fd

    def session_ids(self) -> list[str]:
        """The ids of every session directory (unsafe names are ignored)."""
        try:
            names = sorted(entry.name for entry in self._sessions.iterdir() if entry.is_dir())
        except OSError:
            return []
        safe: list[str] = []
        for name in names:
            try:
                safe.append(check_session_id(name))
            except CodexMcpError:
                logger.warning("ignoring %s in the state directory: not a session id", name)
        return safe

    def read_meta(self, session_id: str) -> dict[str, Any] | None:
        """The session's metadata; None if missing or unreadable."""
        try:
            return read_json_object(self._dir(session_id) / _META)
        except (OSError, ValueError):
            return None

    def load(self, session_id: str) -> StoredSession | None:
        """Everything on disk for the session; None (with a warning) if its metadata is unusable.

        An unreadable result is dropped and unreadable event-log lines are skipped, each with a
        warning: the rest of the session still loads.
        """
        directory = self._dir(session_id)
        try:
            meta = read_json_object(directory / _META)
        except (OSError, ValueError) as exc:
            logger.warning("skipping session %s: unreadable %s (%s)", session_id, _META, exc)
            return None
        if meta is None:
            logger.warning("skipping session %s: no %s", session_id, _META)
            return None
        try:
            result = read_json_object(directory / _RESULT)
        except (OSError, ValueError) as exc:
            logger.warning("session %s: dropping unreadable %s (%s)", session_id, _RESULT, exc)
            result = None
        try:
            events, bad_lines = read_events(directory / _EVENTS)
        except OSError as exc:
            logger.warning("session %s: unreadable %s (%s)", session_id, _EVENTS, exc)
            events, bad_lines = [], 0
        if bad_lines:
            logger.warning("session %s: skipped %d unreadable line(s) of %s", session_id, bad_lines, _EVENTS)
        return StoredSession(session_id, meta, result, events)

    def remove(self, session_id: str) -> bool:
        """Delete the session's files; True if there were any."""
        fd = self._open_logs.pop(session_id, None)
        if fd is not None:
            os.close(fd)
        directory = self._dir(session_id)
        if not directory.exists():
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True
