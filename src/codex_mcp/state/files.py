"""File primitives of the state directory: private modes, atomic replace, safe names."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Final

from codex_mcp.errors import CodexMcpError

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
# Session ids become directory names: nothing that could climb out of, or hide in, the state dir.
_SESSION_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_session_id(session_id: str) -> str:
    """`session_id` if it is safe as a path component.

    Raises:
        CodexMcpError: INVALID_ARGUMENT naming `sessionId` otherwise.
    """
    if not _SESSION_ID.fullmatch(session_id):
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            "sessionId may hold only letters, digits, '_' and '-' (at most 64)",
            field="sessionId",
        )
    return session_id


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700 if missing; returns it."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once: a reader sees the old file or the new, never a mix.

    No fsync: what we guard against is the server being killed, not the machine losing power, and
    the page cache outlives a killed process.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temp, path)


def write_json_atomic(path: Path, value: Any) -> None:
    """`write_atomic` of `value` as compact JSON."""
    write_atomic(path, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None if the file is missing.

    Raises:
        ValueError: the file is not a JSON object (corrupt or half-written).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value  # pyright: ignore[reportUnknownVariableType]


def open_append(path: Path) -> int:
    """A write-only, append-mode descriptor on `path` (created 0600)."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
