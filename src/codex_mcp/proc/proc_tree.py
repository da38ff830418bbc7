"""Find and kill the process tree of a child through Linux ``/proc``.

Codex runs tool commands in sessions of their own, and a process whose parent died is re-parented
away from the tree, so neither the child's process group nor a late look at its children finds
everything. The owner therefore keeps a snapshot of every descendant it has seen, refreshed while
the child runs, looks for processes carrying the child's environment tag, and kills whatever of
that survives. Each entry is matched by pid *and* start time, so a pid the kernel has since reused
is never hit. Where ``/proc`` does not exist every function sees no processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ProcessSnapshot = dict[int, int]
"""pid -> start time (clock ticks since boot) of one process."""

_PROC = Path("/proc")
# States of a process that has exited but is not reaped yet (zombie, dead).
_DEAD_STATES = frozenset("ZX")


@dataclass(frozen=True, slots=True)
class _Stat:
    ppid: int
    start: int
    state: str


def _stat(pid: int) -> _Stat | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields resume after the last ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return _Stat(ppid=int(fields[1]), start=int(fields[19]), state=fields[0])
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """The start time of ``pid``, or None if it is gone or ``/proc`` is unavailable."""
    info = _stat(pid)
    return None if info is None else info.start


def _live_table() -> dict[int, _Stat]:
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return {}
    table: dict[int, _Stat] = {}
    for entry in entries:
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None and info.state not in _DEAD_STATES:
                table[int(entry)] = info
    return table


def expand(known: ProcessSnapshot) -> ProcessSnapshot:
    """The members of ``known`` still alive, plus all their live descendants (one ``/proc`` scan)."""
    table = _live_table()
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    found: ProcessSnapshot = {}
    stack = [pid for pid, started in known.items() if pid in table and table[pid].start == started]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found[pid] = table[pid].start
        stack.extend(children.get(pid, []))
    return found


def alive(snapshot: ProcessSnapshot) -> ProcessSnapshot:
    """The members of ``snapshot`` that are still the same, unreaped-but-running process."""
    result: ProcessSnapshot = {}
    for pid, started in snapshot.items():
        info = _stat(pid)
        if info is not None and info.start == started and info.state not in _DEAD_STATES:
            result[pid] = started
    return result


def signal_all(snapshot: ProcessSnapshot, sig: signal.Signals) -> list[int]:
    """Send ``sig`` to every live member of ``snapshot``; returns the pids signalled."""
    sent: list[int] = []
    for pid in alive(snapshot):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            sent.append(pid)
    return sent


def tagged(entry: bytes) -> ProcessSnapshot:
    """Live processes whose environment holds ``entry`` (``b"NAME=value"``), wherever they were re-parented.

    Catches descendants that daemonized (double fork, setsid) before any snapshot saw them; only
    processes of our own user are readable.
    """
    return tagged_any({entry})


def tagged_any(entries: set[bytes]) -> ProcessSnapshot:
    """Live processes whose environment holds any of ``entries`` (one ``/proc`` scan)."""
    if not entries:
        return {}
    found: ProcessSnapshot = {}
    own = os.getpid()
    for pid, info in _live_table().items():
        if pid == own:
            continue
        try:
            environ = (_PROC / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        if not entries.isdisjoint(environ.split(b"\0")):
            found[pid] = info.start
    return found


def rss_bytes(pid: int) -> int | None:
    """The resident memory of ``pid`` in bytes, or None if it is gone or ``/proc`` is unavailable."""
    try:
        resident_pages = int((_PROC / str(pid) / "statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def wait_gone(snapshot: ProcessSnapshot, seconds: float, poll_s: float = 0.02) -> bool:
    """Wait up to `seconds` for every member of `snapshot` to be gone; whether they all are."""
    deadline = time.monotonic() + seconds
    while alive(snapshot):
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def terminate(
    victims: ProcessSnapshot,
    grow: Callable[[ProcessSnapshot], ProcessSnapshot],
    *,
    term_grace_s: float,
    kill_wait_s: float,
) -> ProcessSnapshot:
    """SIGTERM `victims` (a command may clean up); after `term_grace_s`, SIGKILL whatever of
    `grow(victims)` (their descendants, say) is left, waiting up to `kill_wait_s`. Returns every
    process signalled; `alive()` of it is what survived SIGKILL."""
    signal_all(victims, signal.SIGTERM)
    if wait_gone(victims, term_grace_s):
        return victims
    victims = victims | grow(victims)
    signal_all(victims, signal.SIGKILL)
    wait_gone(victims, kill_wait_s)
    return victims
