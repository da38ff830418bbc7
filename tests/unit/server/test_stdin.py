"""The server's stdin: lines read by a daemon thread, and lines the SDK cannot parse answered by us."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from codex_mcp.server import stdin as stdin_module
from codex_mcp.server.stdin import OversizedLine, ThreadedStdin
from codex_mcp.server.transport import CheckedLines, encode

pytestmark = pytest.mark.anyio

# Only a guard against a hang (the old reader took ~12 s for 16 MB), not a performance target.
_HANG_GUARD_S = 5.0


def _write_all(fd: int, pieces: Sequence[bytes], pause_s: float) -> None:
    with os.fdopen(fd, "wb", buffering=0) as pipe:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                view = view[pipe.write(view) or 0 :]
            time.sleep(pause_s)


async def _lines(
    pieces: Sequence[bytes], *, pause_s: float = 0.0, **kwargs: Any
) -> list[str | OversizedLine]:
    """Every line a ThreadedStdin on a pipe yields when `pieces` are written to it, then EOF."""
    read_fd, write_fd = os.pipe()
    try:
        stdin = ThreadedStdin(read_fd, **kwargs).start()
    finally:
        os.close(read_fd)
    writer = threading.Thread(target=_write_all, args=(write_fd, pieces, pause_s), daemon=True)
    writer.start()
    try:
        return [line async for line in stdin]
    finally:
        writer.join(_HANG_GUARD_S)


async def test_a_15_mb_line_arrives_whole_without_stalling(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small reads, as from a client writing in pieces: ~3800 of them for this line. Re-scanning
    # everything pending on each read (the old reader) copies ~30 GB here and trips the guard.
    monkeypatch.setattr(stdin_module, "_CHUNK_BYTES", 4096)
    line = b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"p":"' + b"a" * (15 << 20) + b'"}}'
    with anyio.fail_after(_HANG_GUARD_S):
        lines = await _lines([line + b"\n", b"after\n"])
    assert len(lines) == 2
    assert lines[0] == line.decode()
    assert lines[1] == "after"


async def test_a_line_over_the_cap_is_dropped_and_logged_and_the_next_line_arrives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "codex_mcp.server.stdin"), anyio.fail_after(_HANG_GUARD_S):
        lines = await _lines(
            [b"first\n", b"x" * 300_000, b"y" * 300_000 + b"\nnext\n", b"z" * 2000 + b"\n"],
            max_line_bytes=1024,
        )
    # In their place, what they began with, for an answer carrying their ids.
    assert lines == [
        "first",
        OversizedLine(600_000, 1024, "x" * 1024),
        "next",
        OversizedLine(2000, 1024, "z" * 1024),
    ]
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 2
    assert "600000 bytes" in dropped[0]
    assert "2000 bytes" in dropped[1]


async def test_a_line_of_exactly_the_cap_is_kept() -> None:
    with anyio.fail_after(_HANG_GUARD_S):
        assert await _lines([b"a" * 1024 + b"\n"], max_line_bytes=1024) == ["a" * 1024]


async def test_lines_split_across_reads_arrive_intact() -> None:
    long_line = b"L" * 200_000  # longer than one read
    pieces = [
        b'{"a":',
        b"1}\nsec",
        b"ond line\n" + long_line[:70_000],
        long_line[70_000:] + b"\nthird",
        b"\n",
    ]
    with anyio.fail_after(_HANG_GUARD_S):
        lines = await _lines(pieces, pause_s=0.02)
    assert lines == ['{"a":1}', "second line", long_line.decode(), "third"]


async def test_eof_delivers_an_unterminated_last_line() -> None:
    with anyio.fail_after(_HANG_GUARD_S):
        assert await _lines([b"one\ntw", b"o"], pause_s=0.02) == ["one", "two"]


async def test_empty_lines_are_skipped_and_invalid_utf8_is_replaced() -> None:
    with anyio.fail_after(_HANG_GUARD_S):
        assert await _lines([b"\n\none\n\n\xff\n"]) == ["one", "\ufffd"]


async def test_end_makes_the_reader_see_eof_while_the_pipe_stays_open() -> None:
    read_fd, write_fd = os.pipe()
    try:
        stdin = ThreadedStdin(read_fd).start()
        os.write(write_fd, b"one\n")
        with anyio.fail_after(_HANG_GUARD_S):
            assert await stdin.__anext__() == "one"
            stdin.end()
            assert [line async for line in stdin] == []
    finally:
        os.close(read_fd)
        os.close(write_fd)


# --- CheckedLines ---------------------------------------------------------------------------------


class _Lines:
    def __init__(self, lines: Sequence[str]) -> None:
        self._lines = list(lines)

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        if not self._lines:
            raise StopAsyncIteration
        return self._lines.pop(0)


def _parsed(lines: Sequence[str]) -> list[types.JSONRPCMessage]:
    return [types.jsonrpc_message_adapter.validate_json(line, by_name=False) for line in lines]


async def _check(lines: Sequence[str]) -> tuple[list[types.JSONRPCMessage], list[dict[str, Any]]]:
    """The messages CheckedLines passes on, and the answers it writes (as they reach the wire)."""
    answers: list[dict[str, Any]] = []

    async def send(message: SessionMessage) -> None:
        answers.append(json.loads(encode(message.message)))

    checked = CheckedLines(_Lines(lines))
    checked.answer_through(send)
    with anyio.fail_after(_HANG_GUARD_S):
        passed = [message async for message in checked]
    return passed, answers


def _shape(answer: dict[str, Any]) -> tuple[object, object, int]:
    assert answer["jsonrpc"] == "2.0"
    assert set(answer) == {"jsonrpc", "id", "error"}
    assert isinstance(answer["error"]["message"], str)
    return answer["jsonrpc"], answer["id"], answer["error"]["code"]


_PARSE = types.PARSE_ERROR
_DEEP = '{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"x":' + "[" * 300 + "]" * 300 + "}}"


@pytest.mark.parametrize(
    ("line", "id_", "code"),
    [
        ("not json", None, types.PARSE_ERROR),
        (_DEEP, 7, types.PARSE_ERROR),
        ('{"jsonrpc":"2.0","id":8,"method":"tools/list","params":"\\ud800"}', 8, types.PARSE_ERROR),
        (
            '{"jsonrpc":"2.0","id":"s8","method":"tools/list","params":{"a":"\\udc00"}}',
            "s8",
            types.PARSE_ERROR,
        ),
        ('{"jsonrpc":"2.0","id":9}', 9, types.INVALID_REQUEST),
        ("[1, 2]", None, types.INVALID_REQUEST),
        ('[{"jsonrpc":"2.0","id":10,"method":"tools/list"}]', None, types.INVALID_REQUEST),
        ('{"jsonrpc":"1.0","id":11,"method":"tools/list"}', 11, types.INVALID_REQUEST),
        ('{"jsonrpc":"1.0","id":true,"method":"tools/list"}', None, types.INVALID_REQUEST),
        ('{"jsonrpc":"1.0","id":1.5,"method":"tools/list"}', None, types.INVALID_REQUEST),
        ('{"jsonrpc":"1.0","id":null,"method":"tools/list"}', None, types.INVALID_REQUEST),
        # Broken or nested past every parser's limit: the id is still read from the top level.
        ('{"jsonrpc":"2.0","id":12,"method":"tools/list"', 12, types.PARSE_ERROR),
        ("[" * 100_000, None, types.PARSE_ERROR),
        (
            '{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":' + "[" * 100_000,
            "deep",
            types.PARSE_ERROR,
        ),
        (
            '{"jsonrpc":"2.0","method":"ping","params":' + "[" * 5000 + "]" * 5000 + ',"id":13}',
            13,
            types.PARSE_ERROR,
        ),
        # A lone surrogate escape in the id: the answer carries the same id (escaped on the wire).
        ('{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}', "\ud800", types.PARSE_ERROR),
    ],
)
async def test_a_request_the_sdk_cannot_parse_is_answered_and_not_passed_on(
    line: str, id_: int | str | None, code: int
) -> None:
    ok = '{"jsonrpc":"2.0","id":99,"method":"tools/list"}'
    passed, answers = await _check([line, ok])
    assert passed == _parsed([ok])
    assert [_shape(a) for a in answers] == [("2.0", id_, code)]


@pytest.mark.parametrize(
    "line",
    [
        '{"jsonrpc":"2.0","method":"notifications/x","params":"not an object"}',
        '{"jsonrpc":"2.0","method":"notifications/x","params":"\\ud800"}',
        '{"jsonrpc":"2.0","id":3,"result":"not an object"}',
        '{"jsonrpc":"2.0","id":3,"error":"not an object"}',
        "   ",
        "\r",
    ],
)
async def test_bad_notifications_and_responses_and_blank_lines_get_no_answer(
    line: str, caplog: pytest.LogCaptureFixture
) -> None:
    ok = '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    with caplog.at_level(logging.WARNING, "codex_mcp.server.transport"):
        passed, answers = await _check([line, ok])
    assert passed == _parsed([ok])
    assert answers == []
    if line.strip():
        assert any("ignored" in r.getMessage() for r in caplog.records)


async def test_valid_messages_pass_unchanged() -> None:
    lines = [
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}',
        '{"jsonrpc":"2.0","method":"notifications/initialized"}',
        '{"jsonrpc":"2.0","id":"a","result":{}}',
        '{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"no"}}',
        '{"jsonrpc":"2.0","id":3,"method":"tools/list"}\r',
    ]
    assert await _check(lines) == (_parsed(lines), [])


async def test_an_answer_waits_until_there_is_somewhere_to_write_it() -> None:
    answers: list[SessionMessage] = []

    async def send(message: SessionMessage) -> None:
        answers.append(message)

    checked = CheckedLines(_Lines(["not json", '{"jsonrpc":"2.0","id":1,"method":"tools/list"}']))
    first = anyio.Event()
    got: list[types.JSONRPCMessage] = []
    with anyio.fail_after(_HANG_GUARD_S):
        async with anyio.create_task_group() as task_group:

            async def read() -> None:
                got.append(await checked.__anext__())
                first.set()

            task_group.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            assert answers == []
            checked.answer_through(send)
            await first.wait()
    assert got == _parsed(['{"jsonrpc":"2.0","id":1,"method":"tools/list"}'])
    assert len(answers) == 1


async def test_an_answer_the_transport_can_no_longer_take_is_dropped() -> None:
    async def closed(message: SessionMessage) -> None:
        raise anyio.ClosedResourceError

    checked = CheckedLines(_Lines(["not json", '{"jsonrpc":"2.0","id":1,"method":"tools/list"}']))
    checked.answer_through(closed)
    with anyio.fail_after(_HANG_GUARD_S):
        passed = [message async for message in checked]
    assert passed == _parsed(['{"jsonrpc":"2.0","id":1,"method":"tools/list"}'])
