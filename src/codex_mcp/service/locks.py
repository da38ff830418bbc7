"""The advisory file locks a service is found and shared by (`flock`: the kernel drops a dead
holder's lock, so a killed keeper or server never leaves a lock behind)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from codex_mcp.state.files import FILE_MODE


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)


def _try(path: Path, operation: int) -> int | None:
    fd = _open(path)
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def try_exclusive(path: Path) -> int | None:
    """The lock of `path` held exclusively (its fd: close it to release), or None when it is held."""
    return _try(path, fcntl.LOCK_EX)


def try_shared(path: Path) -> int | None:
    """The lock of `path` held shared (its fd), or None while someone holds it exclusively."""
    return _try(path, fcntl.LOCK_SH)


def hold_shared(path: Path) -> int:
    """The lock of `path` held shared (its fd); waits only while an exclusive holder tests it."""
    fd = _open(path)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def hold_exclusive(path: Path) -> int:
    """The lock of `path` held exclusively (its fd), waiting for it (run off the event loop)."""
    fd = _open(path)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def is_held(path: Path) -> bool:
    """Whether anyone holds the lock of `path` (shared or exclusive)."""
    fd = try_exclusive(path)
    if fd is None:
        return True
    os.close(fd)
    return False
