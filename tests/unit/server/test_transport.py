"""The stdio transport's write side: every answer reaches the wire, or an error for its id does."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from codex_mcp.server.early import REPLAY_ID_PREFIX, EarlyAnswers
from codex_mcp.server.stdin import OversizedLine
from codex_mcp.server.stdout import WireOut
from codex_mcp.server.transport import encode, stdio_transport

pytestmark = pytest.mark.anyio

_HANG_GUARD_S = 5.0


def test_a_lone_surrogate_is_written_as_the_escape_it_came_in_as() -> None:
    answer = types.JSONRPCResponse(jsonrpc="2.0", id="\ud800", result={"text": "caf\u00e9 \udc80"})
    line = encode(answer)
    assert json.loads(line) == {"jsonrpc": "2.0", "id": "\ud800", "result": {"text": "caf\u00e9 \udc80"}}
    assert b'"id":"\\ud800"' in line


def test_an_ordinary_answer_is_written_as_the_sdk_writes_it() -> None:
    answer = types.JSONRPCResponse(jsonrpc="2.0", id=3, result={"text": "caf\u00e9"})
    assert encode(answer) == answer.model_dump_json(by_alias=True, exclude_unset=True).encode()


class _Lines:
    def __init__(self, items: list[str | OversizedLine]) -> None:
        self._items = items

    def __aiter__(self) -> AsyncIterator[str | OversizedLine]:
        return self

    async def __anext__(self) -> str | OversizedLine:
        if not self._items:
            await anyio.sleep_forever()
        return self._items.pop(0)


async def _through_transport(
    items: list[str | OversizedLine], answers: list[types.JSONRPCMessage]
) -> tuple[list[dict[str, Any]], list[types.JSONRPCMessage]]:
    """What reaches the wire when `answers` are sent through the transport while `items` are read."""
    read_fd, write_fd = os.pipe()
    wire = WireOut(write_fd)
    early = EarlyAnswers(None, wire)
    received: list[types.JSONRPCMessage] = []
    with anyio.fail_after(_HANG_GUARD_S):
        async with stdio_transport(_Lines(items), wire, early) as (read_stream, write_stream):
            for answer in answers:
                await write_stream.send(SessionMessage(answer))
            for item in items:
                if isinstance(item, str) and item.startswith("{"):
                    message = await read_stream.receive()
                    assert isinstance(message, SessionMessage)
                    received.append(message.message)
            await write_stream.aclose()
    wire.close()
    output = b""
    while chunk := os.read(read_fd, 1 << 16):
        output += chunk
    os.close(read_fd)
    return [json.loads(line) for line in output.splitlines()], received


async def test_answers_to_replayed_requests_are_dropped_and_the_rest_written() -> None:
    replayed = types.JSONRPCResponse(jsonrpc="2.0", id=REPLAY_ID_PREFIX + "initialize", result={})
    mine = types.JSONRPCResponse(jsonrpc="2.0", id=1, result={})
    written, _ = await _through_transport([], [replayed, mine])
    assert written == [{"jsonrpc": "2.0", "id": 1, "result": {}}]


async def test_an_oversized_request_is_answered_with_the_id_its_first_bytes_hold() -> None:
    head = '{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"x":"' + "a" * 100
    ok = '{"jsonrpc":"2.0","id":2,"method":"ping"}'
    written, received = await _through_transport([OversizedLine(20_000_000, 16 << 20, head), ok], [])
    assert received == [types.jsonrpc_message_adapter.validate_json(ok, by_name=False)]
    assert written == [
        {
            "jsonrpc": "2.0",
            "id": "big",
            "error": {
                "code": types.INVALID_REQUEST,
                "message": "Invalid Request: 20000000 bytes is over the limit of "
                f"{16 << 20} bytes on one request",
            },
        }
    ]


async def test_an_answer_that_cannot_be_encoded_becomes_an_error_for_its_id() -> None:
    class Unencodable(types.JSONRPCResponse):
        def model_dump_json(self, **kwargs: Any) -> str:
            raise ValueError("cannot")

        def model_dump(self, **kwargs: Any) -> dict[str, Any]:
            raise ValueError("cannot either")

    broken = Unencodable(jsonrpc="2.0", id=5, result={})
    after = types.JSONRPCResponse(jsonrpc="2.0", id=6, result={})
    written, _ = await _through_transport([], [broken, after])
    assert [(w["id"], "error" in w) for w in written] == [(5, True), (6, False)]
    assert written[0]["error"]["code"] == types.INTERNAL_ERROR
