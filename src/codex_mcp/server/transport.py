"""The MCP stdio transport: stdin lines in, whole JSON-RPC lines out, and no line that ends the server.

It replaces the SDK's `stdio_server` for two reasons. A line the SDK's parser rejects (not JSON,
nested past its limit, a lone surrogate escape) becomes an exception the SDK's dispatcher only logs,
so the client waiting for that request would wait forever: `CheckedLines` answers such lines itself,
with the request's id whenever one can be read (`request_id.find_id` reads it without a full parse).
And an answer the SDK cannot serialise (a lone surrogate in an id or text) used to kill the writer
task and the whole server with it: here such an answer is written with the surrogates escaped, and
an answer that still cannot be written is logged and replaced by an error for the same id.

Answers to the requests `early.py` replays into the SDK (under private ids) are dropped here: the
client had them already.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, Self, cast

import anyio
import anyio.to_thread
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from codex_mcp.server.early import EarlyAnswers
from codex_mcp.server.request_id import find_id
from codex_mcp.server.stdin import OversizedLine
from codex_mcp.server.stdout import WireClosedError, WireOut

logger = logging.getLogger(__name__)

# Lines longer than this are examined off the event loop (finding the id of a broken 64 MB line
# takes a while).
_INLINE_EXAMINE_CHARS: Final = 1 << 16

# At the end, how long the last answers may take to reach the client.
_FLUSH_AT_EXIT_S: Final = 2.0


class CheckedLines:
    """The lines of `lines` that the SDK's parser takes; the others are answered here.

    A request the parser rejects gets a JSON-RPC error (-32700 Parse error when it is not JSON the
    parser can read, -32600 Invalid Request when it is JSON but not a JSON-RPC message) with the
    request's id when it can be recovered, else id null. A notification or a response it rejects
    gets no answer (JSON-RPC never answers those), and blank lines are skipped; both are only
    logged. Answers wait for `answer_through`; create this in the event loop.
    """

    def __init__(self, lines: AsyncIterator[str | OversizedLine]) -> None:
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

    async def __anext__(self) -> types.JSONRPCMessage:
        while True:
            line = await anext(self._lines)
            if isinstance(line, OversizedLine):
                await self._write(_too_large(line))
                continue
            try:
                return types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            except ValidationError as exc:
                if len(line) > _INLINE_EXAMINE_CHARS:
                    answer = await anyio.to_thread.run_sync(_answer_to, line, exc)
                else:
                    answer = _answer_to(line, exc)
                if answer is not None:
                    await self._write(answer)

    async def _write(self, answer: types.JSONRPCError) -> None:
        await self._ready.wait()
        assert self._send is not None
        try:
            await self._send(SessionMessage(answer))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.warning("could not answer request %r: the transport is closed", answer.id)


def _answer_to(line: str, error: ValidationError) -> types.JSONRPCError | None:
    """The error answering a line the parser rejects; None when none is due."""
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
        # Not JSON the standard library reads either (broken, or nested past its limit): the id
        # may still be readable at the top level.
        request_id = find_id(line) if parsed is _UNREADABLE else None
    if unparsable:
        code, text = types.PARSE_ERROR, f"Parse error: {unparsable[0]}"
    else:
        code, text = types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request"
    logger.warning(
        "answered a line the server cannot parse (%d chars, id %r): %s", len(line), request_id, text
    )
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=text))


def _too_large(line: OversizedLine) -> types.JSONRPCError:
    """The answer to a request over the size limit (its id, when its first bytes hold it)."""
    text = f"Invalid Request: {line.size} bytes is over the limit of {line.limit} bytes on one request"
    error = types.ErrorData(code=types.INVALID_REQUEST, message=text)
    return types.JSONRPCError(jsonrpc="2.0", id=find_id(line.head), error=error)


_UNREADABLE: Final = object()


def _loads(line: str) -> object:
    """`line` parsed by the standard library, which accepts what the SDK's parser does not (lone
    surrogates, deeper nesting); `_UNREADABLE` when it cannot parse it either."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the interpreter allows
        return _UNREADABLE


def _request_id(value: object) -> str | int | None:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


def encode(message: types.JSONRPCMessage) -> bytes:
    """One wire line for `message` (without the newline), as the SDK's stdio transport writes it.

    A message the fast serialiser refuses (a lone surrogate somewhere: it would write invalid
    UTF-8) is written with every non-ASCII character escaped instead, which is the same JSON.

    Raises:
        ValueError: not even the escaping encoder can write it.
    """
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8")
    except (ValueError, UnicodeError):  # PydanticSerializationError is a ValueError
        plain: Any = message.model_dump(mode="python", by_alias=True, exclude_unset=True)
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _replacement(message: types.JSONRPCMessage) -> bytes | None:
    """An error answer for a response that could not be written, or None (nothing is owed)."""
    request_id = getattr(message, "id", None)
    if not isinstance(message, types.JSONRPCResponse | types.JSONRPCError) or request_id is None:
        return None
    error = {"code": types.INTERNAL_ERROR, "message": "codex-mcp could not encode its answer; see its log"}
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": error}, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


async def _write_all(
    outgoing: MemoryObjectReceiveStream[SessionMessage], wire: WireOut, early: EarlyAnswers
) -> None:
    async with outgoing:
        async for session_message in outgoing:
            message = session_message.message
            request_id = getattr(message, "id", None)
            try:
                line = encode(message)
                if early.is_replay(request_id):
                    early.replay_answered(str(request_id), line)
                    continue
            except ValueError:
                logger.exception("could not encode a %s; answering with an error", type(message).__name__)
                replacement = _replacement(message)
                if replacement is None:
                    continue
                line = replacement
            try:
                await anyio.to_thread.run_sync(wire.write_line, line)
            except WireClosedError:
                logger.info("the client closed stdout; no more answers can reach it")
                return


@asynccontextmanager
async def stdio_transport(
    lines: AsyncIterator[str | OversizedLine], wire: WireOut, early: EarlyAnswers
) -> AsyncGenerator[
    tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]
]:
    """The (read, write) stream pair `Server.run` serves, over `lines` and `wire`."""
    checked = CheckedLines(lines)
    read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
    checked.answer_through(write_send.send)

    async def read_all() -> None:
        async with read_send:
            async for message in checked:
                await read_send.send(SessionMessage(message))
                # The SDK reads: it answers everything from now on.
                early.hand_over()

    written = anyio.Event()

    async def write_all() -> None:
        try:
            await _write_all(write_receive, wire, early)
        finally:
            written.set()

    async with read_receive, write_send, anyio.create_task_group() as task_group:
        task_group.start_soon(read_all)
        task_group.start_soon(write_all)
        try:
            yield read_receive, write_send
            # The server closed its write stream: let the last answers reach the client.
            with anyio.move_on_after(_FLUSH_AT_EXIT_S):
                await written.wait()
        finally:
            task_group.cancel_scope.cancel()
