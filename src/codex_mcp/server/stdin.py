"""Stdin lines for the MCP transport, read by a daemon thread.

The SDK's default reader blocks a worker thread in `readline()`, and a cancel waits for it: a server
told to stop (SIGTERM) would hang until the client wrote or closed stdin. Here the blocking read
lives in a daemon thread, the transport awaits a memory stream, and `end()` makes the transport see
EOF at once, so a signal can shut down the same way a closing client does. The thread reads a private
duplicate of the descriptor with `os.read`: a daemon thread holding `sys.stdin`'s buffer lock makes
the interpreter abort at exit.
"""

from __future__ import annotations

import os
import threading
from typing import Final, Self

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

_CHUNK_BYTES: Final = 1 << 16


class ThreadedStdin:
    """An async iterator of text lines from file descriptor `fd`, which a daemon thread reads."""

    def __init__(self, fd: int) -> None:
        self._fd = os.dup(fd)
        send, receive = anyio.create_memory_object_stream[str](0)
        self._send: MemoryObjectSendStream[str] = send
        self._receive: MemoryObjectReceiveStream[str] = receive
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Start the reader thread; call from the event loop."""
        token = anyio.lowlevel.current_token()
        self._thread = threading.Thread(target=self._pump, args=(token,), name="codex-mcp stdin", daemon=True)
        self._thread.start()
        return self

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        pending = b""
        try:
            while chunk := os.read(self._fd, _CHUNK_BYTES):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    anyio.from_thread.run(
                        self._send.send, line.decode("utf-8", errors="replace"), token=token
                    )
            if pending:
                anyio.from_thread.run(self._send.send, pending.decode("utf-8", errors="replace"), token=token)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, RuntimeError, OSError):
            return  # the transport ended (or the loop is gone): nobody wants more lines
        try:
            anyio.from_thread.run_sync(self._send.close, token=token)
        except RuntimeError:
            return

    def end(self) -> None:
        """Make the transport see EOF now, whatever the thread is blocked on."""
        self._send.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
