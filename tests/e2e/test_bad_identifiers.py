"""Bad identifiers and unknown tool names over stdio: INVALID_ARGUMENT naming the field, never INTERNAL.

Each request is a raw JSON-RPC line to `python -m codex_mcp` (on the pinned Codex), so ids no SDK
client would send (lone surrogate escapes) get through too. Every answer must carry its request's
id, and a `ping` right after must answer.

Issue 16 reported `codex_reply` with `sessionId: "../../etc"` and `tools/call` with `name: ""` as
`Error [INTERNAL]`; neither reproduces against this server in either protocol era (both are
INVALID_ARGUMENT), and these tests keep it so for every tool, action and id field.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
import pytest

from tests.e2e.client import server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import RawClient
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

_ANSWER_TIMEOUT_S: Final = 20
PARSE_ERROR: Final = -32700

_BAD_IDS: Final = (
    "../../etc",
    "/etc/passwd",
    "sess_1/../../x",
    "..",
    "",
    " ",
    "sess_1\n",
    "a" * 65,
    "a" * 200_000,
    "sess_é",
    "🙂",
    "sess\u202e1",
    "sess_1\x00",
)
# (tool, arguments without the bad id, the id field): every tool and action that takes an id.
_ID_CALLS: Final[list[tuple[str, dict[str, Any], str]]] = [
    ("codex_reply", {"prompt": "x"}, "sessionId"),
    *[
        ("codex_session", {"action": action}, "sessionId")
        for action in ("list", "get", "cancel", "interrupt", "fork", "clean", "clean_background_terminals")
    ],
    ("codex_check", {"action": "poll"}, "sessionId"),
    (
        "codex_check",
        {"action": "respond_permission", "requestId": "req_1", "decision": "accept"},
        "sessionId",
    ),
    ("codex_check", {"action": "respond_user_input", "requestId": "req_1", "answers": {}}, "sessionId"),
    (
        "codex_check",
        {"action": "respond_permission", "sessionId": "sess_1", "decision": "accept"},
        "requestId",
    ),
    ("codex_check", {"action": "respond_user_input", "sessionId": "sess_1", "answers": {}}, "requestId"),
    ("codex_check", {"action": "poll", "sessionId": "sess_1"}, "requestId"),
]


class _Wire:
    """Raw request lines to the server, and the answer to each, by id."""

    def __init__(self, raw: RawClient) -> None:
        self.raw = raw

    async def ask(self, request_id: str, method: str, params_text: str) -> dict[str, Any]:
        """Send `{"id": request_id, "method": method, "params": <params_text>}` as one line."""
        process = self.raw.process
        assert process.stdin is not None
        head = f'{{"jsonrpc": "2.0", "id": {json.dumps(request_id)}, "method": "{method}"'
        line = f'{head}, "params": {params_text}}}'
        await process.stdin.send(line.encode() + b"\n")
        with anyio.fail_after(_ANSWER_TIMEOUT_S):
            while True:
                for text in self.raw.stdout.split(b"\n")[:-1]:
                    message: dict[str, Any] = json.loads(text)
                    if message.get("id") == request_id and ("result" in message or "error" in message):
                        return message
                assert process.stdout is not None
                self.raw.stdout += await process.stdout.receive()

    async def call(self, request_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        params = json.dumps({"name": name, "arguments": arguments})
        return await self.ask(request_id, "tools/call", params)

    async def still_serving(self, request_id: str) -> None:
        answer = await self.ask(f"{request_id}-ping", "ping", "{}")
        assert answer.get("result") == {}, answer


def _tool_error(answer: dict[str, Any]) -> dict[str, Any]:
    result = answer["result"]
    assert result["isError"] is True, answer
    error: dict[str, Any] = result["structuredContent"]["error"]
    assert result["content"][0]["text"] == f"Error [{error['code']}]: {error['message']}"
    return error


@asynccontextmanager
async def _server(codex_env: CodexEnv) -> AsyncGenerator[_Wire]:
    async with await anyio.open_process(
        [sys.executable, "-m", "codex_mcp"], env=server_env(codex_env), cwd=codex_env.workspace
    ) as process:
        raw = RawClient(process)
        with anyio.fail_after(_ANSWER_TIMEOUT_S):
            await raw.initialize()
        yield _Wire(raw)
        assert process.stdin is not None
        await process.stdin.aclose()
        with anyio.fail_after(_ANSWER_TIMEOUT_S):
            assert await process.wait() == 0
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


async def test_the_two_reported_cases_are_invalid_argument_naming_the_field(codex_env: CodexEnv) -> None:
    async with _server(codex_env) as wire:
        reply = await wire.call("reported-1", "codex_reply", {"sessionId": "../../etc", "prompt": "x"})
        await wire.still_serving("reported-1")
        unnamed = await wire.ask("reported-2", "tools/call", '{"name": "", "arguments": {}}')
        await wire.still_serving("reported-2")
    error = _tool_error(reply)
    assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", "sessionId")
    error = _tool_error(unnamed)
    assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", "name")
    assert error["message"].startswith("unknown tool ''; tools: codex_setup, codex,")


async def test_a_bad_id_in_every_tool_and_action_is_invalid_argument_naming_it(codex_env: CodexEnv) -> None:
    outcomes: list[tuple[str, str, str, str | None]] = []
    async with _server(codex_env) as wire:
        for number, (tool, arguments, field) in enumerate(_ID_CALLS):
            for index, bad in enumerate(_BAD_IDS):
                request_id = f"id-{number}-{index}"
                answer = await wire.call(request_id, tool, {**arguments, field: bad})
                error = _tool_error(answer)
                outcomes.append((tool, field, error["code"], error.get("field")))
                assert (error["code"], error.get("field")) == ("INVALID_ARGUMENT", field), (
                    tool,
                    bad[:40],
                    error,
                )
            await wire.still_serving(f"id-{number}")
    assert len(outcomes) == len(_ID_CALLS) * len(_BAD_IDS)


async def test_unknown_tool_names_are_invalid_argument_naming_the_name(codex_env: CodexEnv) -> None:
    names = ["", "codex ", "CODEX", "codex_sessions", "../codex", "codex/../codex", "é", "🙂", "x" * 100_000]
    async with _server(codex_env) as wire:
        for index, name in enumerate(names):
            error = _tool_error(await wire.call(f"name-{index}", name, {}))
            assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", "name"), (name[:40], error)
            assert len(error["message"]) < 300
        await wire.still_serving("names")


# A lone surrogate is valid JSON text (an escape) but no string a UTF-8 writer can carry.
_SURROGATE_CALLS: Final = (
    ("codex_reply", '{"sessionId": "sess_\\ud800", "prompt": "x"}', "sessionId"),
    ("codex_check", '{"action": "poll", "sessionId": "\\udfff"}', "sessionId"),
    (
        "codex_check",
        '{"action": "respond_permission", "sessionId": "sess_1", "requestId": "req_\\ud800", '
        '"decision": "accept"}',
        "requestId",
    ),
    ("codex_session", '{"action": "get", "sessionId": "a\\udc00b"}', "sessionId"),
)


async def test_ids_and_names_holding_lone_surrogates_are_answered_with_their_id_never_internal(
    codex_env: CodexEnv,
) -> None:
    answers: list[dict[str, Any]] = []
    async with _server(codex_env) as wire:
        for index, (tool, arguments, _) in enumerate(_SURROGATE_CALLS):
            answers.append(
                await wire.ask(
                    f"sur-{index}", "tools/call", f'{{"name": "{tool}", "arguments": {arguments}}}'
                )
            )
            await wire.still_serving(f"sur-{index}")
        answers.append(await wire.ask("sur-name", "tools/call", '{"name": "codex_\\ud800", "arguments": {}}'))
        await wire.still_serving("sur-name")
    fields = [field for _, _, field in _SURROGATE_CALLS] + ["name"]
    for answer, field in zip(answers, fields, strict=True):
        if "error" in answer:
            # The transport cannot decode the line: JSON-RPC's parse error, with the request's id.
            assert answer["error"]["code"] == PARSE_ERROR, answer
        else:
            error = _tool_error(answer)
            assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", field), answer
