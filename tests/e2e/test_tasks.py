"""MCP Tasks end to end: a 2026-07-28 client speaking the `io.modelcontextprotocol/tasks`
extension over stdio (raw JSON-RPC, every request with its `_meta` envelope) -> codex-mcp -> real
Codex app-server -> mock model.

It runs a session as a task to its result, answers an approval through `tasks/update`, cancels a
task, and reads a task id again from a second server on the same state directory.
"""

from __future__ import annotations

import pytest

from tests.e2e.client import codex_args
from tests.e2e.modern_client import Json, modern_server
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import FINAL_AFTER_TOOL

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]


def _terminal(task: Json) -> bool:
    return task["status"] in ("completed", "failed", "cancelled")


async def test_a_session_runs_as_a_task_to_its_result_and_the_id_survives_a_restart(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with modern_server(codex_env, "first.log") as mcp:
        # Without the extension: the plain answer, as before.
        plain = await mcp.result(
            "tools/call", {"name": "codex", "arguments": codex_args("plain")}, tasks=False
        )
        assert plain.get("resultType") == "complete"
        assert plain["structuredContent"]["sessionId"].startswith("sess_")

        handle = await mcp.result(
            "tools/call", {"name": "codex", "arguments": codex_args("scenario:slow hi")}
        )
        assert handle["resultType"] == "task", handle
        assert handle["status"] == "working"
        assert handle["pollIntervalMs"] > 0
        assert isinstance(handle["ttlMs"], int)
        task_id = handle["taskId"]
        done = await mcp.get_until(task_id, _terminal)
    assert done["status"] == "completed", done
    result = done["result"]
    assert result["isError"] is False
    content = result["structuredContent"]
    assert content["status"] == "idle"
    assert content["result"]["status"] == "completed"
    assert task_id.startswith(content["sessionId"] + ":")

    # Another server on the same state directory knows the task.
    async with modern_server(codex_env, "second.log") as mcp:
        again = await mcp.result("tasks/get", {"taskId": task_id})
        unknown = await mcp.request("tasks/get", {"taskId": "sess_000000000000:turn:1:codex"})
    assert again["status"] == "completed"
    assert again["createdAt"] == done["createdAt"]
    assert again["result"]["structuredContent"]["result"] == content["result"]
    assert unknown["error"]["code"] == -32602


async def test_an_approval_is_answered_through_tasks_update(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    arguments = codex_args("scenario:shell make the file", approvalPolicy="untrusted")
    async with modern_server(codex_env, "server.log") as mcp:
        handle = await mcp.result("tools/call", {"name": "codex", "arguments": arguments})
        assert handle["resultType"] == "task", handle
        task_id = handle["taskId"]
        waiting = await mcp.get_until(task_id, lambda t: t["status"] == "input_required" or _terminal(t))
        assert waiting["status"] == "input_required", waiting
        ((key, request),) = waiting["inputRequests"].items()
        assert request["method"] == "elicitation/create"
        form = request["params"]
        assert "echo hi > made.txt" in form["message"]
        assert "accept" in form["requestedSchema"]["properties"]["decision"]["enum"]
        bad = await mcp.request(
            "tasks/update", {"taskId": task_id, "inputResponses": {key: {"action": "perhaps"}}}
        )
        assert bad["error"]["code"] == -32602
        assert bad["error"]["data"]["field"] == f"inputResponses.{key}.action"
        answer = {key: {"action": "accept", "content": {"decision": "accept"}}}
        _ack(await mcp.result("tasks/update", {"taskId": task_id, "inputResponses": answer}))
        done = await mcp.get_until(task_id, _terminal)
    assert done["status"] == "completed", done
    assert done["result"]["structuredContent"]["result"]["text"] == FINAL_AFTER_TOOL
    assert (codex_env.workspace / "made.txt").read_text().strip() == "hi"


def _ack(result: Json) -> None:
    """An empty result, as the extension's acks are (the SDK stamps resultType and serverInfo)."""
    assert result["resultType"] == "complete"
    assert set(result) <= {"resultType", "_meta"}, result


async def test_tasks_cancel_interrupts_the_turn(codex_env: CodexEnv, mock_model: MockModelServer) -> None:
    async with modern_server(codex_env, "server.log") as mcp:
        handle = await mcp.result(
            "tools/call", {"name": "codex", "arguments": codex_args("scenario:slow long")}
        )
        assert handle["resultType"] == "task", handle
        task_id = handle["taskId"]
        _ack(await mcp.result("tasks/cancel", {"taskId": task_id}))
        done = await mcp.get_until(task_id, _terminal)
        session_id = task_id.split(":")[0]
        polled = await mcp.result(
            "tools/call", {"name": "codex_check", "arguments": {"action": "poll", "sessionId": session_id}}
        )
    # Cooperative in the spec; a slow turn of seconds is still running, so Codex interrupts it.
    assert done["status"] == "cancelled", done
    assert "result" not in done
    assert polled["structuredContent"]["result"]["status"] == "interrupted"


async def test_a_task_whose_server_stopped_mid_turn_reads_on_the_next_server(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    # A short drain: the stopping server cuts the running turn off and records how it ended.
    env = {"CODEX_MCP_DRAIN_TIMEOUT_MS": "100"}
    async with modern_server(codex_env, "first.log", env) as mcp:
        handle = await mcp.result(
            "tools/call", {"name": "codex", "arguments": codex_args("scenario:slow hi")}
        )
        assert handle["resultType"] == "task", handle
    async with modern_server(codex_env, "second.log") as mcp:
        task = await mcp.get_until(handle["taskId"], _terminal)
    assert task["createdAt"] == handle["createdAt"]
    assert task["status"] in ("completed", "cancelled"), task
    if task["status"] == "completed":
        assert task["result"]["structuredContent"]["result"]["turnId"] == handle["taskId"].split(":")[1]
