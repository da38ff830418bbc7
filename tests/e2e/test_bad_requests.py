"""A line the SDK cannot parse gets a JSON-RPC error (with its id when it has one), never a hang.

The SDK's stdio transport hands such a line up as an exception that nobody answers, so the client
waiting for that id would wait forever; the server answers it itself and keeps serving.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.e2e.client import server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import ANSWER_TIMEOUT_S, raw_server
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

_SESSION_TIMEOUT_S = 90

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_DEEP = b"[" * 300 + b"]" * 300
# Past every parser's limit (the SDK's ~255 levels, the standard library's ~1000).
_DEEPER = b"[" * 100_000 + b"]" * 100_000
_CALL = b'{"jsonrpc":"2.0","id":"deep-call","method":"tools/call","params":{"name":"codex","arguments":'
# (what is sent, the id the answer carries, its error code)
_BAD_REQUESTS: list[tuple[bytes, int | str | None, int]] = [
    (b"not json", None, PARSE_ERROR),
    (b'{"jsonrpc":"2.0","id":7,"method":"tools/list","params":' + _DEEP + b"}", 7, PARSE_ERROR),
    (b'{"jsonrpc":"2.0","id":8,"method":"tools/list","params":"\\ud800"}', 8, PARSE_ERROR),
    (b'{"jsonrpc":"2.0","id":9}', 9, INVALID_REQUEST),
    (b'[{"jsonrpc":"2.0","id":10,"method":"tools/list"}]', None, INVALID_REQUEST),
    # A lone surrogate in the id itself: the answer must still carry it (escaped on the wire).
    (b'{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}', "\ud800", PARSE_ERROR),
    (
        b'{"jsonrpc":"2.0","id":"deep-1","method":"ping","params":{"x":' + _DEEPER + b"}}",
        "deep-1",
        PARSE_ERROR,
    ),
    (_CALL + b'{"prompt":' + _DEEPER + b"}}}", "deep-call", PARSE_ERROR),
    (b'{"jsonrpc":"2.0","method":"ping","params":{"x":' + _DEEPER + b'},"id":11}', 11, PARSE_ERROR),
    (b'{"jsonrpc":"2.0","id":12,"method":"ping"', 12, PARSE_ERROR),
]


async def test_bad_requests_get_error_answers_and_the_server_keeps_serving(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    stderr_path = tmp_path / "stderr.log"
    with anyio.fail_after(_SESSION_TIMEOUT_S):
        async with raw_server(server_env(codex_env), codex_env.workspace, stderr_path) as wire:
            client, process = wire.client, wire.client.process
            for number, (line, request_id, code) in enumerate(_BAD_REQUESTS):
                await wire.send_line(line)
                with anyio.fail_after(ANSWER_TIMEOUT_S):
                    answer = await wire.next_message()
                assert answer["jsonrpc"] == "2.0", (line, answer)
                assert answer["id"] == request_id, (line, answer)
                assert answer["error"]["code"] == code, (line, answer)
                assert isinstance(answer["error"]["message"], str), (line, answer)
                await wire.ping(f"ping-after-{number}")
                await wire.tools_list(f"after-{number}")

            # A notification the server cannot parse is only logged: JSON-RPC never answers one.
            await wire.send_line(b'{"jsonrpc":"2.0","method":"notifications/x","params":"\\ud800"}')
            await wire.tools_list("after-notification")

            assert process.stdin is not None
            await process.stdin.aclose()
            assert process.stdout is not None
            async for chunk in process.stdout:
                client.stdout += chunk
            assert await process.wait() == 0
    raw = client.stdout
    assert raw.endswith(b"\n")
    messages = [json.loads(line) for line in raw.split(b"\n")[:-1]]
    assert all(message["jsonrpc"] == "2.0" for message in messages)
    # initialize, then an error, a ping and a tools/list answer per bad request, one more tools/list.
    assert len(messages) == 1 + 3 * len(_BAD_REQUESTS) + 1
    assert b'"id":"\\ud800"' in raw  # the surrogate id went out as the escape it came in as
    log = stderr_path.read_text()
    assert "ignored a notification the server cannot parse" in log
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []
