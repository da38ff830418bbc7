"""One server per state directory: an advisory lock that the kernel releases when its holder dies.

The lock file also names its holder (pid, process start time, run id), so a second server can say
who holds the directory, and the next server can find what a dead one left running.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp.backends import proc_tree
from codex_mcp.errors import CodexMcpError
from codex_mcp.state.files import FILE_MODE

LOCK_NAME = "lock"


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a state directory."""

    pid: int
    start_time: int | None
    run_id: str
    started_at: float

    def to_json(self) -> dict[str, Any]:
        """The lock file's content."""
        return {
            "pid": self.pid,
            "startTime": self.start_time,
            "runId": self.run_id,
            "startedAt": self.started_at,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Holder | None:
        """The holder a lock file names, or None if it names none."""
        pid, start, run_id, started = (value.get(k) for k in ("pid", "startTime", "runId", "startedAt"))
        if not isinstance(pid, int) or not isinstance(run_id, str):
            return None
        return cls(
            pid=pid,
            start_time=start if isinstance(start, int) else None,
            run_id=run_id,
            started_at=float(started) if isinstance(started, int | float) else 0.0,
        )

    def describe(self) -> str:
        """'pid N, running since <local time>'."""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"pid {self.pid}, running since {since}"


class StateLock:
    """The held lock of one state directory; `release` (or process exit) frees it."""

    def __init__(self, fd: int, holder: Holder, previous: Holder | None) -> None:
        self._fd: int | None = fd
        self.holder = holder
        # The server that held the directory before us (dead: we got its lock), if it said who it was.
        self.previous = previous

    @classmethod
    def acquire(cls, directory: Path) -> StateLock:
        """Lock `directory` for this process.

        Raises:
            CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_STATE_DIR when another live server
                holds it.
        """
        path = directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = holder.describe() if holder is not None else "another process"
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"CODEX_MCP_STATE_DIR={directory} is in use by another codex-mcp server ({who}); "
                "two servers on one state directory would corrupt it: give this one its own "
                "CODEX_MCP_STATE_DIR, or stop the other",
            ) from None
        previous = _read_holder(fd)
        pid = os.getpid()
        holder = Holder(pid, proc_tree.start_time(pid), uuid.uuid4().hex, time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder.to_json()).encode(), 0)
        return cls(fd, holder, previous)

    def release(self) -> None:
        """Unlock (idempotent); the file stays, naming its last holder."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0)
        value = json.loads(raw) if raw else None
    except (OSError, ValueError):
        return None
    return Holder.from_json(value) if isinstance(value, dict) else None  # pyright: ignore[reportUnknownArgumentType]
