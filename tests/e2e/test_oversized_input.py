"""Oversized input over stdio against the real server and the real Codex.

Each free-text field over its limit, and a 1 GiB file with a PNG header as an image, is refused
as INVALID_ARGUMENT naming the field and the limit, in the answer carrying the request's id;
nothing of it reaches Codex or the model, and a `ping` afterwards answers. A prompt of exactly the
limit goes through to Codex and the model, and the turn ends with its real answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_mcp.server.images import MAX_IMAGE_BYTES
from tests.e2e.client import server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import LineWire, raw_server
from tests.harness.codex_env import CodexEnv
from tests.harness.images import tiny_png
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

_TURN_TIMEOUT_S = 90
PROMPT_LIMIT = 1_048_576
NOTE_LIMIT = 65_536
_START = {"approvalPolicy": "never", "sandbox": "read-only"}


def _sparse_png(path: Path, size: int) -> Path:
    """A file of `size` bytes that starts as a 1x1 PNG and is a hole after that (no disk used)."""
    with path.open("wb") as file:
        file.write(tiny_png())
        file.truncate(size)
    return path


async def _call(wire: LineWire, request_id: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tools/call's result, from the answer that carries `request_id`."""
    line = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
    )
    await wire.send_line(line.encode())
    with anyio.fail_after(_TURN_TIMEOUT_S):
        while True:
            answer = await wire.next_message()
            if "id" in answer:
                break  # progress and log notifications come in between
    assert answer["id"] == request_id, answer
    result: dict[str, Any] = answer["result"]
    return result


async def test_fields_over_their_limits_are_refused_naming_field_and_limit(
    codex_env: CodexEnv, mock_model: MockModelServer, tmp_path: Path
) -> None:
    huge_image = _sparse_png(codex_env.workspace / "huge.png", 1 << 30)
    over = "a" * (PROMPT_LIMIT + 1)
    note_over = "n" * (NOTE_LIMIT + 1)
    stderr_path = tmp_path / "stderr.log"
    with anyio.fail_after(4 * _TURN_TIMEOUT_S):
        async with raw_server(server_env(codex_env), codex_env.workspace, stderr_path) as wire:
            process = wire.client.process
            started = await _call(
                wire,
                "start",
                "codex",
                {"prompt": "scenario:plain hi", **_START, "advanced": {"waitForResult": 60_000}},
            )
            session_id = started["structuredContent"]["sessionId"]
            assert started["structuredContent"]["status"] == "idle", started
            requests_before = len(mock_model.responses_requests())

            # (request id, tool, arguments, the field named, the size and limit the message says)
            cases: list[tuple[str, str, dict[str, Any], str, str]] = [
                ("prompt", "codex", {"prompt": over, **_START}, "prompt", "1,048,577 characters"),
                (
                    "reply-prompt",
                    "codex_reply",
                    {"sessionId": session_id, "prompt": over},
                    "prompt",
                    "1,048,577 characters",
                ),
                (
                    "instructions",
                    "codex",
                    {"prompt": "hi", **_START, "advanced": {"developerInstructions": over}},
                    "advanced.developerInstructions",
                    "1,048,577 characters",
                ),
                (
                    "config-value",
                    "codex",
                    {"prompt": "hi", **_START, "advanced": {"config": {"notify": note_over}}},
                    "advanced.config.notify",
                    "65,537 characters",
                ),
                (
                    "config-keys",
                    "codex",
                    {"prompt": "hi", **_START, "advanced": {"config": {f"k{i}": i for i in range(257)}}},
                    "advanced.config",
                    "257 keys",
                ),
                (
                    "deny-message",
                    "codex_check",
                    {
                        "action": "respond_permission",
                        "sessionId": session_id,
                        "requestId": "req_1",
                        "decision": "decline",
                        "denyMessage": note_over,
                    },
                    "denyMessage",
                    "65,537 characters",
                ),
                (
                    "image",
                    "codex",
                    {"prompt": "hi", **_START, "advanced": {"images": [str(huge_image)]}},
                    "advanced.images[0]",
                    f"at most {MAX_IMAGE_BYTES} bytes",
                ),
                (
                    "reply-image",
                    "codex_reply",
                    {"sessionId": session_id, "prompt": "look", "images": [str(huge_image)]},
                    "images[0]",
                    f"at most {MAX_IMAGE_BYTES} bytes",
                ),
            ]
            for request_id, tool, arguments, field, says in cases:
                result = await _call(wire, request_id, tool, arguments)
                assert result["isError"] is True, (request_id, result)
                error = result["structuredContent"]["error"]
                assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", field), (request_id, error)
                assert says in error["message"], (request_id, error["message"])
                assert len(error["message"]) < 1000, request_id  # the value itself is never quoted
                await wire.ping(f"ping-after-{request_id}")
            assert len(mock_model.responses_requests()) == requests_before  # nothing reached the model

            # At the limit itself: accepted, and Codex runs the turn to its real answer.
            at_limit = await _call(
                wire,
                "at-limit",
                "codex_reply",
                {
                    "sessionId": session_id,
                    "prompt": "scenario:plain " + "a" * (PROMPT_LIMIT - len("scenario:plain ")),
                    "waitForResult": 60_000,
                },
            )
            assert at_limit.get("isError") is not True, at_limit
            assert at_limit["structuredContent"]["status"] == "idle", at_limit["structuredContent"]
            assert at_limit["structuredContent"]["result"]["text"] == PLAIN_TEXT
            await wire.ping("ping-at-the-end")

            assert process.stdin is not None
            await process.stdin.aclose()
            assert await process.wait() == 0
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []
