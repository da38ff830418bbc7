"""Stdin lines for the MCP transport, read by a daemon thread, and answers to lines it cannot parse.

The SDK's default reader blocks a worker thread in `readline()`, and a cancel waits for it: a server
told to stop (SIGTERM) would hang until the client wrote or closed stdin. Here the blocking read
lives in a daemon thread, the transport awaits a memory stream, and `end()` makes the transport see
EOF at once, so a signal can shut down the same way a closing client does. The thread reads a private
duplicate of the descriptor with `os.read`: a daemon thread holding `sys.stdin`'s buffer lock makes
the interpreter abort at exit. Lines are split in time linear in their length, and a line longer
than the cap is dropped (and logged) without being kept in memory.

The SDK's transport turns a line it cannot parse into an exception that its dispatcher only logs, so
a client waiting for that request's answer would wait forever. `CheckedLines` parses each line the
way the transport will, passes on only those that parse, and answers the others with a JSON-RPC
error written through the transport's own write stream, so that our answers are serialized with
the SDK's writes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Self, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from codex_mcp.linesplit import LineSplitter

logger = logging.getLogger(__name__)

_CHUNK_BYTES: Final = 1 << 16
# Longest request line accepted; a longer one is dropped unanswered (its id is lost with it).
MAX_LINE_BYTES: Final = 64 * 1024 * 1024


class ThreadedStdin:
    """An async iterator of the non-empty text lines of file descriptor `fd`, which a daemon thread
    reads; a line longer than `max_line_bytes` is dropped and logged."""

    def __init__(self, fd: int, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._fd = os.dup(fd)
        self._max_line_bytes = max_line_bytes
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
        splitter = LineSplitter(self._max_line_bytes, truncate=False, on_overflow=self._dropped_line)
        try:
            while chunk := os.read(self._fd, _CHUNK_BYTES):
                for line in splitter.feed(chunk):
                    anyio.from_thread.run(
                        self._send.send, line.decode("utf-8", errors="replace"), token=token
                    )
            last = splitter.flush()
            if last is not None:
                anyio.from_thread.run(self._send.send, last.decode("utf-8", errors="replace"), token=token)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, RuntimeError, OSError):
            return  # the transport ended (or the loop is gone): nobody wants more lines
        finally:
            os.close(self._fd)  # only this thread uses the duplicate
        try:
            anyio.from_thread.run_sync(self._send.close, token=token)
        except RuntimeError:
            return

    def _dropped_line(self, size: int) -> None:
        logger.warning(
            "dropped a stdin line of %d bytes (limit %d): it is not read, and gets no answer",
            size,
            self._max_line_bytes,
        )

    def end(self) -> None:
        """Make the transport see EOF now, whatever the thread is blocked on."""
        self._send.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._receive.close()
            raise StopAsyncIteration from None


class CheckedLines:
    """The lines of `lines` that the SDK's stdio transport can parse; the others are answered here.

    A request the transport would reject gets a JSON-RPC error (-32700 Parse error when it is not
    JSON the transport can read, -32600 Invalid Request when it is JSON but not a JSON-RPC message)
    with the request's id when it can be recovered, else id null. A notification or a response the
    transport would reject gets no answer (JSON-RPC never answers those), and blank lines are
    skipped; both are only logged. Answers wait for `answer_through`; create this in the event loop.
    """

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines
        self._send: Callable[[SessionMessage], Awaitable[None]] | None = None
        self._ready = anyio.Event()

    def answer_through(self, send: Callable[[SessionMessage], Awaitable[None]]) -> None:
        """Write answers with `send`: the transport's write stream, so they never interleave with
        the SDK's own messages."""
        self._send = send
        self._ready.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await anext(self._lines)
            try:
                types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            except ValidationError as exc:
                answer = _answer_to(line, exc)
                if answer is not None:
                    await self._write(answer)
                continue
            return line

    async def _write(self, answer: types.JSONRPCError) -> None:
        await self._ready.wait()
        assert self._send is not None
        try:
            await self._send(SessionMessage(answer))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.warning("could not answer request %r: the transport is closed", answer.id)


def _answer_to(line: str, error: ValidationError) -> types.JSONRPCError | None:
    """The error answering a line the transport rejects; None when none is due."""
    if not line.strip():
        logger.debug("skipped a blank stdin line")
        return None
    problems = error.errors(include_url=False, include_context=False, include_input=False)
    unparsable = [p["msg"] for p in problems if p["type"] == "json_invalid"]
    parsed = _loads(line)
    if isinstance(parsed, dict):
        message = cast(dict[str, object], parsed)
        if "id" not in message and "method" in message:
            logger.warning("ignored a notification the server cannot parse (%d chars)", len(line))
            return None
        if "method" not in message and ("result" in message or "error" in message):
            logger.warning("ignored a response the server cannot parse (%d chars)", len(line))
            return None
        request_id = _request_id(message.get("id"))
    else:
        request_id = None
    if unparsable:
        code, text = types.PARSE_ERROR, f"Parse error: {unparsable[0]}"
    else:
        code, text = types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request"
    logger.warning(
        "answered a line the server cannot parse (%d chars, id %r): %s", len(line), request_id, text
    )
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=text))


def _loads(line: str) -> object:
    """`line` parsed by the standard library, which may accept what the transport does not (lone
    surrogates, deeper nesting); None when it cannot parse it either."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the interpreter allows
        return None


def _request_id(value: object) -> str | int | None:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None
