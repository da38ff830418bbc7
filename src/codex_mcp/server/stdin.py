"""Stdin lines for the MCP transport, read by a daemon thread from the moment the process starts.

The thread starts before the MCP SDK is even imported, so the handshake can be answered early
(`early.py`, through the `early` filter, which runs in the thread); the lines it does not answer wait
in a bounded queue until the event loop takes them (a client that floods us is slowed by the pipe,
not buffered without end).

The SDK's default reader blocks a worker thread in `readline()`, and a cancel waits for it: a server
told to stop would hang until the client wrote or closed stdin. Here the blocking read lives in a
daemon thread and `end()` makes the transport see EOF at once. The thread reads a private duplicate
of the descriptor with `os.read`: a daemon thread holding `sys.stdin`'s buffer lock makes the
interpreter abort at exit. Lines are split in time linear in their length, and a line longer than
the cap is dropped (and logged) without being kept in memory.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Self

import anyio
import anyio.from_thread
import anyio.lowlevel

from codex_mcp.proc.linesplit import LineSplitter

logger = logging.getLogger(__name__)

_CHUNK_BYTES: Final = 1 << 16
# Longest request accepted (far above any real call: prompts are capped at 1 MiB); a longer one is
# answered with an error (`OversizedLine`) without being kept in memory.
MAX_LINE_BYTES: Final = 16 * 1024 * 1024
# Of an oversized line, this much is kept to find its id in.
_OVERSIZED_HEAD_BYTES: Final = 64 * 1024
# Lines read but not yet taken by the transport; the reader waits when this many are queued.
_QUEUE_LINES: Final = 16

EarlyFilter = Callable[[str], Sequence[str]]
"""Sees each line in the reader thread; returns what goes on to the transport in its place
(nothing: it was answered; the line itself: not for it; or other lines)."""

_EOF: Final = object()


@dataclass(frozen=True)
class OversizedLine:
    """A line over the cap, dropped: its size and first bytes (where a request's id usually is)."""

    size: int
    limit: int
    head: str


class ThreadedStdin:
    """An async iterator of the non-empty text lines of file descriptor `fd`, which a daemon thread
    reads; a line longer than `max_line_bytes` is dropped, logged and yielded as an `OversizedLine`."""

    def __init__(
        self, fd: int, *, max_line_bytes: int = MAX_LINE_BYTES, early: EarlyFilter | None = None
    ) -> None:
        self._fd = os.dup(fd)
        self._max_line_bytes = max_line_bytes
        self._early = early
        self._queue: queue.Queue[object] = queue.Queue(_QUEUE_LINES)
        self._lock = threading.Lock()
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._ready: anyio.Event | None = None
        self._ended = False
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Start the reader thread (no event loop needed)."""
        self._thread = threading.Thread(target=self._pump, name="codex-mcp stdin", daemon=True)
        self._thread.start()
        return self

    def _pump(self) -> None:
        splitter = LineSplitter(
            self._max_line_bytes,
            truncate=False,
            on_overflow=self._dropped_line,
            head_bytes=_OVERSIZED_HEAD_BYTES,
        )
        try:
            while chunk := os.read(self._fd, _CHUNK_BYTES):
                for line in splitter.feed(chunk):
                    self._pass_on(line.decode("utf-8", errors="replace"))
            last = splitter.flush()
            if last is not None:
                self._pass_on(last.decode("utf-8", errors="replace"))
        except OSError:
            logger.warning("stopped reading stdin", exc_info=True)
        finally:
            os.close(self._fd)  # only this thread uses the duplicate
            self._put(_EOF)

    def _pass_on(self, line: str) -> None:
        for item in self._early(line) if self._early is not None else (line,):
            self._put(item)

    def _put(self, item: object) -> None:
        self._queue.put(item)
        with self._lock:
            token = self._token
        if token is None:
            return  # nobody waits yet: the consumer looks at the queue before it waits
        try:
            anyio.from_thread.run_sync(self._wake, token=token)
        except RuntimeError:
            return  # the event loop is gone

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready.set()

    def _dropped_line(self, size: int, head: bytes) -> None:
        logger.warning("dropped a stdin line of %d bytes (limit %d)", size, self._max_line_bytes)
        self._put(OversizedLine(size, self._max_line_bytes, head.decode("utf-8", errors="replace")))

    def end(self) -> None:
        """Make the transport see EOF now, whatever the thread is blocked on."""
        self._ended = True
        self._wake()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str | OversizedLine:
        while True:
            if self._ended:
                raise StopAsyncIteration
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                self._ready = anyio.Event()
                with self._lock:
                    self._token = anyio.lowlevel.current_token()
                if self._queue.empty() and not self._ended:
                    await self._ready.wait()
                continue
            if item is _EOF:
                self._ended = True
                raise StopAsyncIteration
            assert isinstance(item, str | OversizedLine)
            return item
