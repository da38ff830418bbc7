"""Process hygiene for Codex children (started with ``start_new_session=True``).

Codex starts tool commands in sessions of their own, so killing the child's
process group is not enough if Codex dies without cleaning up: descendants are
snapshotted from ``/proc`` first and any survivor is killed afterwards (matched
by start time, so a reused pid is never hit).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

ProcessSnapshot = dict[int, int]
"""pid -> start time (clock ticks since boot) of a descendant process."""


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) from ``/proc/<pid>/stat``, or None if gone/unavailable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields resume after the last ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def descendants(pid: int) -> ProcessSnapshot:
    """All live descendants of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        info = _stat(int(entry))
        if info is not None:
            children.setdefault(info[0], []).append(int(entry))
            starts[int(entry)] = info[1]
    found: ProcessSnapshot = {}
    stack = list(children.get(pid, []))
    while stack:
        current = stack.pop()
        if current in found or current not in starts:
            continue
        found[current] = starts[current]
        stack.extend(children.get(current, []))
    return found


def kill_survivors(snapshot: ProcessSnapshot) -> None:
    """SIGKILL every process of ``snapshot`` that is still the same process."""
    for pid, started in snapshot.items():
        info = _stat(pid)
        if info is not None and info[1] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def kill_process_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate the child's whole process group, escalating to SIGKILL; bounded."""
    pgid = proc.pid
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    # Grandchildren in the same group may outlive the leader.
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
