"""Splitting a byte stream into lines, with a cap on line length, in time linear in the input.

Shared by the child-process reader (`backends.process`) and the server's stdin reader
(`server.stdin`); it lives in the OS layer (`proc/`), which depends on nothing else in the package.
"""

from __future__ import annotations

from collections.abc import Callable


class LineSplitter:
    """Splits a byte stream on b"\\n" with a cap on line length; memory stays within the cap.

    Each `feed` searches only the chunk it is given, so a long line costs time linear in its length.
    A line over the cap is either truncated to it (`truncate=True`: its first `max_bytes` bytes and a
    b" [...]" marker) or dropped whole (`truncate=False`); either way `on_overflow` gets its full
    length, and the bytes past the cap are counted, never kept. Empty lines are skipped. A dropped
    line's first `head_bytes` bytes (at most `max_bytes`) go to `on_overflow` too (a request's id is there).
    """

    def __init__(
        self,
        max_bytes: int,
        *,
        truncate: bool,
        on_overflow: Callable[[int, bytes], None],
        head_bytes: int = 0,
    ) -> None:
        self._max = max_bytes
        self._truncate = truncate
        self._on_overflow = on_overflow
        self._head_bytes = min(head_bytes, max_bytes)
        self._head = b""
        self._buf = bytearray()
        self._overflow = 0  # bytes of the current line beyond what is kept; 0: within the cap

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines that `chunk` completes (without their b"\\n")."""
        lines: list[bytes] = []
        view = memoryview(chunk)
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            self._take(view[start : len(chunk) if newline < 0 else newline])
            if newline < 0:
                return lines
            line = self._finish()
            if line is not None:
                lines.append(line)
            start = newline + 1

    def flush(self) -> bytes | None:
        """The unterminated last line at end of stream, if any."""
        return self._finish()

    def _take(self, piece: memoryview) -> None:
        if self._overflow:
            self._overflow += len(piece)
            return
        self._buf += piece
        if len(self._buf) > self._max:
            if self._truncate:
                self._overflow = len(self._buf) - self._max
                del self._buf[self._max :]
            else:
                self._overflow = len(self._buf)
                self._head = bytes(self._buf[: self._head_bytes])
                self._buf.clear()

    def _finish(self) -> bytes | None:
        overflow, self._overflow = self._overflow, 0
        if overflow:
            head, self._head = self._head, b""
            self._on_overflow(overflow + len(self._buf), head)
            if not self._truncate:
                return None
            self._buf += b" [...]"
        line = bytes(self._buf)
        self._buf.clear()
        return line or None
