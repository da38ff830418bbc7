"""The servers of one state directory: any number at once, each with a lock the kernel frees at its death.

Every server registers itself under `servers/`: `<runId>.lock`, which it holds locked (flock) for
its whole life, and `<runId>.json`, which names it (pid, process start time, when it started) and
lists the children it has spawned (pid and start time). A server is alive while its lock is held
and its process (pid and start time) exists; the second test covers the moment another server
holds a dead one's lock to reap it. What a dead server left running (its recorded children, their
descendants, and everything carrying its run tag) is stopped by whichever server finds it first,
and its files go.

Each server writes only its own files, and replaces them whole: two servers never write one file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from codex_mcp.errors import CodexMcpError
from codex_mcp.proc import proc_tree
from codex_mcp.state import reaper
from codex_mcp.state.files import FILE_MODE, private_dir, read_json_object, write_json_atomic

logger = logging.getLogger(__name__)

SERVERS_DIR: Final = "servers"
# The single-server layout of earlier versions: its lock, and its ledger of children.
_LEGACY_LOCK: Final = "lock"
_LEGACY_CHILDREN: Final = "children.json"


@dataclass(frozen=True)
class ServerInfo:
    """Who a registered server is."""

    run_id: str
    pid: int
    start_time: int | None
    started_at: float

    def to_json(self) -> dict[str, Any]:
        """Its entry in `<runId>.json` (without the children)."""
        return {
            "runId": self.run_id,
            "pid": self.pid,
            "startTime": self.start_time,
            "startedAt": self.started_at,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ServerInfo | None:
        """The server an entry names, or None if it names none."""
        run_id, pid, start, started = (value.get(k) for k in ("runId", "pid", "startTime", "startedAt"))
        if not isinstance(run_id, str) or not isinstance(pid, int):
            return None
        return cls(
            run_id=run_id,
            pid=pid,
            start_time=start if isinstance(start, int) else None,
            started_at=float(started) if isinstance(started, int | float) else 0.0,
        )

    def describe(self) -> str:
        """'pid N, running since <local time>'."""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"pid {self.pid}, running since {since}"

    def process_exists(self) -> bool:
        """Whether its process (same pid, same start time) still runs."""
        return proc_tree.start_time(self.pid) == self.start_time


class ServerRegistry:
    """This server's registration in a state directory, and what it knows of the others."""

    def __init__(self, root: Path, me: ServerInfo, lock_fd: int) -> None:
        self._dir = root / SERVERS_DIR
        self.me = me
        self._lock_fd: int | None = lock_fd
        self._children: dict[int, int | None] = {}

    @classmethod
    def register(cls, root: Path) -> ServerRegistry:
        """Register this process as a server of `root` (created if missing).

        Raises:
            CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_STATE_DIR when a server of an older
                codex-mcp (one server per directory) still holds it.
            OSError: the directory cannot be used.
        """
        directory = private_dir(root / SERVERS_DIR)
        _retire_legacy_layout(root)
        pid = os.getpid()
        me = ServerInfo(uuid.uuid4().hex, pid, proc_tree.start_time(pid), time.time())
        # Locked before the entry exists: a server is never seen with an entry and no lock.
        fd = os.open(directory / f"{me.run_id}.lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh name: nobody else can hold it
        registry = cls(root, me, fd)
        registry._write()
        return registry

    @property
    def run_id(self) -> str:
        """This server run's id."""
        return self.me.run_id

    def close(self) -> None:
        """Deregister: remove our files and release our lock (idempotent)."""
        if self._lock_fd is None:
            return
        _remove_registration(self._dir, self.run_id)
        os.close(self._lock_fd)
        self._lock_fd = None

    # --- our children -------------------------------------------------------------------------

    def started(self, pid: int, start_time: int | None) -> None:
        """Record a child we spawned (a `SpawnLedger`)."""
        self._children[pid] = start_time
        self._write()

    def ended(self, pid: int) -> None:
        """Forget a child that has exited."""
        if self._children.pop(pid, None) is not None:
            self._write()

    def _write(self) -> None:
        if self._lock_fd is None:
            return
        entry = {**self.me.to_json(), "children": {str(pid): start for pid, start in self._children.items()}}
        try:
            write_json_atomic(self._dir / f"{self.run_id}.json", entry)
        except OSError:
            logger.exception("could not record this server's children in %s", self._dir)

    # --- the others ---------------------------------------------------------------------------

    def info(self, run_id: str) -> ServerInfo | None:
        """What `run_id`'s entry says of it; None when it has none (gone, or never was)."""
        try:
            entry = read_json_object(self._dir / f"{run_id}.json")
        except (OSError, ValueError):
            return None
        return None if entry is None else ServerInfo.from_json(entry)

    def is_alive(self, run_id: str) -> bool:
        """Whether server `run_id` still runs (we always do).

        Its lock says so; its process (pid and start time, where /proc tells) must exist too, since
        a server reaping a dead one holds the dead one's lock for a moment.
        """
        if run_id == self.run_id:
            return True
        if not _is_locked(self._dir / f"{run_id}.lock"):
            return False
        info = self.info(run_id)
        return info is None or info.start_time is None or info.process_exists()

    def live_servers(self) -> list[ServerInfo]:
        """Every live server of the directory, this one included."""
        found: list[ServerInfo] = []
        for run_id in self._run_ids():
            info = self.me if run_id == self.run_id else self.info(run_id)
            if info is not None and self.is_alive(run_id):
                found.append(info)
        return found

    def reap_dead(self) -> list[int]:
        """Stop what every dead server left running and remove its files; the pids signalled."""
        signalled: list[int] = []
        for run_id in self._run_ids():
            if run_id != self.run_id and not self.is_alive(run_id):
                signalled += self._reap(run_id)
        return signalled

    def _reap(self, run_id: str) -> list[int]:
        lock_path = self._dir / f"{run_id}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            fd = None
        except OSError:
            return []
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return []  # another server is reaping it now
            entry = self._entry(run_id)
            pids = reaper.reap(run_id, _recorded_children(entry))
            _remove_registration(self._dir, run_id)
            logger.info("removed the registration of dead server %s", run_id)
            return pids
        finally:
            if fd is not None:
                os.close(fd)

    def _entry(self, run_id: str) -> dict[str, Any]:
        try:
            return read_json_object(self._dir / f"{run_id}.json") or {}
        except (OSError, ValueError):
            logger.warning("unreadable entry of server %s; looking for its processes by tag only", run_id)
            return {}

    def _run_ids(self) -> list[str]:
        try:
            names = {
                entry.name.rsplit(".", 1)[0]
                for entry in self._dir.iterdir()
                if not entry.name.startswith(".")
            }
        except OSError:
            return []
        return sorted(name for name in names if name.isalnum())


def _remove_registration(directory: Path, run_id: str) -> None:
    for name in (f"{run_id}.json", f"{run_id}.lock"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def _is_locked(path: Path) -> bool:
    """Whether someone holds `path` locked (probing takes and at once drops the lock)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


def _recorded_children(entry: dict[str, Any]) -> proc_tree.ProcessSnapshot:
    recorded: proc_tree.ProcessSnapshot = {}
    children = entry.get("children")
    if isinstance(children, dict):
        for pid, start in children.items():  # pyright: ignore[reportUnknownVariableType]
            if str(pid).isdigit() and isinstance(start, int):  # pyright: ignore[reportUnknownArgumentType]
                recorded[int(str(pid))] = start  # pyright: ignore[reportUnknownArgumentType]
    return recorded


def _retire_legacy_layout(root: Path) -> None:
    """Take over a directory an earlier codex-mcp (one server per directory) used: stop what its
    dead server left, then drop its lock and ledger.

    Raises:
        CodexMcpError: its server is still running.
    """
    lock_path = root / _LEGACY_LOCK
    if not lock_path.exists():
        return
    fd = os.open(lock_path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _legacy_holder(fd)
            raise CodexMcpError(
                "INVALID_ARGUMENT",
                f"CODEX_MCP_STATE_DIR={root} is held by a server of an older codex-mcp ({holder}), "
                "which cannot share it: stop that server (or upgrade it), then start this one",
            ) from None
        run_id = _legacy_json(fd).get("runId")
        if isinstance(run_id, str):
            ledger: dict[str, Any] = {}
            with contextlib.suppress(OSError, ValueError):
                ledger = read_json_object(root / _LEGACY_CHILDREN) or {}
            recorded = _recorded_children(ledger) if ledger.get("runId") == run_id else {}
            reaper.reap(run_id, recorded)
        (root / _LEGACY_CHILDREN).unlink(missing_ok=True)
        lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _legacy_json(fd: int) -> dict[str, Any]:
    try:
        value = json.loads(os.pread(fd, 4096, 0))
    except (OSError, ValueError):
        return {}
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _legacy_holder(fd: int) -> str:
    pid = _legacy_json(fd).get("pid")
    return f"pid {pid}" if isinstance(pid, int) else "another process"
