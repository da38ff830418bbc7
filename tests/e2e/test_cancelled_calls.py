"""A `codex`/`codex_reply` call the client cancels leaves its session findable.

Claude Code's MCP_TOOL_TIMEOUT and Codex's tool_timeout_sec end a waiting call with
`notifications/cancelled`; the model then never sees the result, nor the `sessionId` of the
session the call started. The session goes on running; `codex_session list` marks it
(`startedByCancelledCall: true`) until its next turn starts. Here the client is the MCP SDK's,
over stdio, cancelling a call with a long `waitForResult` once the server reports it is waiting;
the server drives the real Codex against the mock model's slow turn.
"""

from __future__ import annotations

from typing import Any, Final

import anyio
import pytest

from tests.e2e.client import McpServerUnderTest, codex_args, running_server
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import PLAIN_TEXT, SLOW_TEXT_PREFIX

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

# Heartbeats every 200 ms: the first one says the call is waiting on a started turn.
_ENV: Final = {"CODEX_MCP_HEARTBEAT_MS": "200"}
_CALL_BOUND_S: Final = 60
_LONG_WAIT_MS: Final = 120_000


async def _cancel_once_waiting(mcp: McpServerUnderTest, tool: str, arguments: dict[str, Any]) -> None:
    """Call `tool`, and cancel the call (the SDK sends notifications/cancelled) at its first heartbeat."""
    waiting = anyio.Event()
    returned: list[object] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        waiting.set()

    async def call() -> None:
        returned.append(await mcp.raw_call(tool, arguments, progress_callback=on_progress))

    with anyio.fail_after(_CALL_BOUND_S):
        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await waiting.wait()
            group.cancel_scope.cancel()
    assert returned == [], "the call returned before it was cancelled"


async def _marked_sessions(mcp: McpServerUnderTest) -> list[dict[str, Any]]:
    """The sessions `list` marks, once the server has applied the cancel (bounded poll)."""
    with anyio.fail_after(_CALL_BOUND_S):
        while True:
            listed = await mcp.call("codex_session", {"action": "list"})
            marked = [info for info in listed["sessions"] if info.get("startedByCancelledCall")]
            if marked:
                return marked
            await anyio.sleep(0.05)


async def test_a_cancelled_codex_call_leaves_its_session_running_and_marked_in_list(
    codex_env: CodexEnv,
) -> None:
    async with running_server(codex_env, _ENV) as mcp:
        other = await mcp.call(
            "codex", codex_args("scenario:plain other", sandbox="read-only", wait_ms=30000)
        )
        await _cancel_once_waiting(
            mcp, "codex", codex_args("scenario:slow take long", sandbox="read-only", wait_ms=_LONG_WAIT_MS)
        )
        [found] = await _marked_sessions(mcp)
        got = await mcp.call("codex_session", {"action": "get", "sessionId": found["sessionId"]})
        poll, _ = await mcp.run_to_end(found["sessionId"])
        listed = await mcp.call("codex_session", {"action": "list"})
    assert found["sessionId"] != other["sessionId"]
    assert found["status"] == "running"
    assert got["startedByCancelledCall"] is True
    assert poll["status"] == "idle"
    assert poll["result"]["text"].startswith(SLOW_TEXT_PREFIX)
    # The mark stays while the turn it speaks of is the session's latest.
    assert {info["sessionId"] for info in listed["sessions"] if info.get("startedByCancelledCall")} == {
        found["sessionId"]
    }


async def test_a_cancelled_codex_reply_marks_its_session_until_the_next_turn_starts(
    codex_env: CodexEnv,
) -> None:
    async with running_server(codex_env, _ENV) as mcp:
        started = await mcp.call(
            "codex", codex_args("scenario:plain first", sandbox="read-only", wait_ms=30000)
        )
        session_id = started["sessionId"]
        await _cancel_once_waiting(
            mcp,
            "codex_reply",
            {"sessionId": session_id, "prompt": "scenario:slow again", "waitForResult": _LONG_WAIT_MS},
        )
        [found] = await _marked_sessions(mcp)
        await mcp.run_to_end(session_id)
        third = await mcp.call(
            "codex_reply", {"sessionId": session_id, "prompt": "scenario:plain third", "waitForResult": 30000}
        )
        got = await mcp.call("codex_session", {"action": "get", "sessionId": session_id})
    assert found["sessionId"] == session_id
    assert third["result"]["text"] == PLAIN_TEXT
    assert "startedByCancelledCall" not in got
