"""The MCP wire's write end: stdout taken over for whole lines, and fd 1 pointed at stderr.

From `claim()` on, only this object writes the wire: it writes through a private duplicate of fd 1,
and fd 1 itself is pointed at stderr, so a stray `print()`, a library's warning or a child that
inherits fd 1 lands in the log instead of corrupting the client's JSON-RPC stream. Writes are whole
lines under a lock, so the early answers (written from the stdin thread before the event loop runs)
and the SDK's answers never interleave. Standard library only: it serves before the MCP SDK is
imported.
"""

from __future__ import annotations

import os
import threading
from typing import Self


class WireClosedError(Exception):
    """The client closed its end of stdout: nothing written reaches it any more."""


class WireOut:
    """Whole-line, thread-safe writes to the MCP client."""

    def __init__(self, fd: int, restore: tuple[int, int] | None = None) -> None:
        self._fd = fd
        self._restore = restore
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def claim(cls, fd: int = 1, divert_to: int = 2) -> Self:
        """Write the wire through a private duplicate of `fd`, and point `fd` at `divert_to`."""
        wire = os.dup(fd)
        os.set_inheritable(wire, False)
        saved = os.dup(fd)
        os.dup2(divert_to, fd)
        return cls(wire, restore=(saved, fd))

    def write_line(self, line: bytes) -> None:
        """Write `line` and a newline, whole, before any other line.

        Raises:
            WireClosedError: the client's end is closed (EPIPE) or `close()` was called.
        """
        data = memoryview(line + b"\n")
        with self._lock:
            if self._closed:
                raise WireClosedError("the wire is closed")
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except (BrokenPipeError, OSError) as exc:
                self._closed = True
                raise WireClosedError(str(exc)) from exc

    def close(self) -> None:
        """Stop writing, close the private descriptor and give `fd` its wire back (idempotent)."""
        with self._lock:
            if self._fd < 0:
                return
            self._closed = True
            os.close(self._fd)
            self._fd = -1
            if self._restore is not None:
                saved, fd = self._restore
                os.dup2(saved, fd)
                os.close(saved)
                self._restore = None
