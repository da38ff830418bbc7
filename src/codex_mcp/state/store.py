"""A state directory as one of its servers sees it: session files, ownership, the servers' registry.

Any number of servers may use one directory at once. Layout (directory 0700, files 0600)::

    servers/<runId>.lock              held by that server while it lives (see servers.py)
    servers/<runId>.json              who it is, and the children it spawned
    claims.lock                       held while a server adopts a session (see ownership.py)
    sessions/<sessionId>/owner        the run id of the server that owns it
    sessions/<sessionId>/meta.json    the session (replaced atomically)
    sessions/<sessionId>/result.json  its last turn's result (replaced atomically)
    sessions/<sessionId>/events.jsonl its event log (appended, see journal.py)

Only a session's owner writes its files; every server may read them.
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

from codex_mcp.errors import CodexMcpError
from codex_mcp.state import reaper
from codex_mcp.state.files import (
    check_session_id,
    open_append,
    private_dir,
    read_json_object,
    write_json_atomic,
)
from codex_mcp.state.journal import EventJournal, read_events
from codex_mcp.state.ownership import Owner, Ownership
from codex_mcp.state.records import Event
from codex_mcp.state.servers import ServerRegistry

logger = logging.getLogger(__name__)

_META: Final = "meta.json"
_RESULT: Final = "result.json"
_EVENTS: Final = "events.jsonl"
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
    """Owns this server's place in one state directory for the life of a server."""

    def __init__(self, root: Path, registry: ServerRegistry) -> None:
        self.root = root
        self._registry = registry
        self._sessions = private_dir(root / "sessions")
        self._ownership = Ownership(root, self._sessions, registry)
        self._open_logs: OrderedDict[str, int] = OrderedDict()

    @classmethod
    def open(cls, root: Path) -> StateStore:
        """Create `root` if needed and register this server in it (others may be there too).

        Raises:
            CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_STATE_DIR when the directory cannot
                be created, or a server of an older codex-mcp (one per directory) holds it.
        """
        try:
            private_dir(root)
            registry = ServerRegistry.register(root)
        except OSError as exc:
            raise CodexMcpError(
                "INVALID_ARGUMENT", f"CODEX_MCP_STATE_DIR={root}: cannot use it ({exc.strerror})"
            ) from None
        return cls(root, registry)

    @property
    def run_id(self) -> str:
        """This server run's id (children carry it in their environment)."""
        return self._registry.run_id

    @property
    def registry(self) -> ServerRegistry:
        """The servers of the directory."""
        return self._registry

    def child_environment(self) -> dict[str, str]:
        """Our environment plus the run tag: what children are started with."""
        return {**os.environ, reaper.RUN_VARIABLE: self.run_id}

    def close(self) -> None:
        """Close every log and deregister (idempotent): our sessions become orphans to adopt."""
        for fd in self._open_logs.values():
            os.close(fd)
        self._open_logs.clear()
        self._registry.close()

    # --- children (a `SpawnLedger`) -------------------------------------------------------------

    def started(self, pid: int, start_time: int | None) -> None:
        """Record a child we spawned."""
        self._registry.started(pid, start_time)

    def ended(self, pid: int) -> None:
        """Forget a child that has exited."""
        self._registry.ended(pid)

    def reap_dead_servers(self) -> list[int]:
        """Stop what dead servers of the directory left running; the pids signalled."""
        return self._registry.reap_dead()

    # --- ownership ------------------------------------------------------------------------------

    def owner(self, session_id: str) -> Owner:
        """Who owns the session now."""
        return self._ownership.owner(check_session_id(session_id))

    def claim_new(self, session_id: str) -> None:
        """Own a session this server has just created."""
        private_dir(self._dir(session_id))
        self._ownership.claim_new(session_id)

    def adopt(self, session_id: str) -> Owner:
        """Own the session unless another live server does; its owner before the call. The
        processes a dead previous owner left are stopped first."""
        before = self._ownership.adopt(check_session_id(session_id))
        if before.kind == "none" and before.run_id is not None:
            self._registry.reap_dead()
        return before

    # --- sessions -------------------------------------------------------------------------------

    def _dir(self, session_id: str) -> Path:
        return self._sessions / check_session_id(session_id)

    def session_dir(self, session_id: str) -> Path:
        """Where the session's files are (it may not exist)."""
        return self._dir(session_id)

    def has_session(self, session_id: str) -> bool:
        """Whether the directory holds the session."""
        return self._dir(session_id).is_dir()

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

    def load(self, session_id: str, *, events: bool = True) -> StoredSession | None:
        """Everything on disk for the session (its events only if `events`); None (with a
        warning) if its metadata is unusable.

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
        if not events:
            return StoredSession(session_id, meta, result, [])
        try:
            stored_events, bad_lines = read_events(directory / _EVENTS)
        except OSError as exc:
            logger.warning("session %s: unreadable %s (%s)", session_id, _EVENTS, exc)
            stored_events, bad_lines = [], 0
        if bad_lines:
            logger.warning("session %s: skipped %d unreadable line(s) of %s", session_id, bad_lines, _EVENTS)
        return StoredSession(session_id, meta, result, stored_events)

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
