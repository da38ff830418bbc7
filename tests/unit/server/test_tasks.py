"""MCP Tasks (server/tasks.py) on a manager running on a fake backend: tools/call as a task only for
requests that declare the extension, tasks/get through a turn's life, approvals and questions as
input requests answered by tasks/update, tasks/cancel as an interrupt, bad params as INVALID_PARAMS
naming the field."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import mcp_types as types
import pytest
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from codex_mcp.errors import CodexMcpError
from codex_mcp.server import handlers, results, tasks
from codex_mcp.server.startup import Startup
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.settings import Settings
from codex_mcp.wire.tools import output_json, output_problems, parse_input
from tests.harness.fake_backend import STEP_BOUND_S, FakeBackend, open_on_fake

pytestmark = pytest.mark.anyio

Json = dict[str, Any]
MODERN = "2026-07-28"
DECLARES: Json = {types.CLIENT_CAPABILITIES_META_KEY: {"extensions": {tasks.EXTENSION: {}}}}


@dataclass
class _State:
    manager_or_error: SessionManager | CodexMcpError
    startup: Startup


@pytest.fixture
async def on_fake() -> AsyncGenerator[tuple[SessionManager, FakeBackend]]:
    async with open_on_fake() as opened:
        yield opened


def _ctx(
    manager: SessionManager, method: str, params: Json | None, meta: Json | None, version: str = MODERN
) -> ServerRequestContext[Any]:
    settings = Settings.from_env({"CODEX_MCP_VALIDATE_OUTPUT": "1"})
    startup = Startup(settings=settings, codex=CodexMcpError("INTERNAL", "unused"), mode=None)
    return ServerRequestContext(
        session=cast(Any, None),
        lifespan_context=_State(manager, startup),
        protocol_version=version,
        method=method,
        params=params,
        meta=cast(Any, meta),
    )


async def _no_progress(elapsed_s: float, message: str) -> None:
    return None


def _server(manager: SessionManager) -> Server[Any]:
    """A Server whose tools/call runs our handlers, with Tasks installed as build_server does."""

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        name = params.name
        handler = {"codex": handlers.codex, "codex_reply": handlers.codex_reply}[name]
        call = handlers.Call(manager_or_error=manager, report_progress=_no_progress)
        output = await handler(parse_input(name, dict(params.arguments or {})), call)
        return results.success(output_json(output))

    server: Server[Any] = Server("t", on_call_tool=call_tool)
    tasks.install(server)
    return server


async def _request(server: Server[Any], manager: SessionManager, method: str, params: Json, meta: Any) -> Any:
    entry = server.get_request_handler(method)
    assert entry is not None
    typed = entry.params_type.model_validate(params, by_name=False)
    with anyio.fail_after(STEP_BOUND_S):
        return await entry.handler(_ctx(manager, method, params, meta), typed)


def _start_args(cwd: Path, policy: str = "on-request") -> Json:
    arguments = {"prompt": "do it", "cwd": str(cwd), "approvalPolicy": policy, "sandbox": "workspace-write"}
    return {"name": "codex", "arguments": arguments}


async def _task(server: Server[Any], manager: SessionManager, cwd: Path) -> Json:
    handle = await _request(server, manager, "tools/call", _start_args(cwd), DECLARES)
    assert isinstance(handle, dict), handle
    return cast(Json, handle)


async def _get(server: Server[Any], manager: SessionManager, task_id: str) -> Json:
    return cast(Json, await _request(server, manager, "tasks/get", {"taskId": task_id}, DECLARES))


async def test_the_server_advertises_the_extension(on_fake: tuple[SessionManager, FakeBackend]) -> None:
    manager, _ = on_fake
    server = _server(manager)
    options = server.create_initialization_options()
    assert options.capabilities.extensions == {tasks.EXTENSION: {}}


async def test_a_call_without_the_extension_gets_the_plain_result(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, _ = on_fake
    server = _server(manager)
    metas: list[Json | None] = [None, {types.CLIENT_CAPABILITIES_META_KEY: {"extensions": {}}}]
    for meta in metas:
        result = await _request(server, manager, "tools/call", _start_args(tmp_path), meta)
        assert isinstance(result, types.CallToolResult)
        assert result.structured_content is not None
        assert result.structured_content["status"] == "running"
    # A legacy connection never gets one, whatever its _meta says.
    entry = server.get_request_handler("tools/call")
    assert entry is not None
    params = _start_args(tmp_path)
    legacy = _ctx(manager, "tools/call", params, DECLARES, version="2025-11-25")
    result = await entry.handler(legacy, entry.params_type.model_validate(params))
    assert isinstance(result, types.CallToolResult)


async def test_a_declared_call_is_a_task_that_ends_with_the_codex_check_result(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    server = _server(manager)
    handle = await _task(server, manager, tmp_path)
    assert handle["resultType"] == "task"
    assert handle["status"] == "working"
    assert handle["pollIntervalMs"] == tasks.POLL_INTERVAL_MS
    assert isinstance(handle["ttlMs"], int)
    assert handle["ttlMs"] > 0
    session_id, turn_id, _, _ = tasks.parse_task_id(handle["taskId"])
    session = await manager.get(session_id)
    assert session.active_turn_id == turn_id
    got = await _get(server, manager, handle["taskId"])
    assert got["resultType"] == "complete"
    assert got["status"] == "working"
    assert got["createdAt"] == handle["createdAt"]
    fake.complete_turn(session, "all done")
    got = await _get(server, manager, handle["taskId"])
    assert got["status"] == "completed"
    assert "pollIntervalMs" not in got
    result = got["result"]
    assert result["isError"] is False
    content = result["structuredContent"]
    # The task's result is the tool's own output (what `codex` with waitForResult gives).
    assert output_problems("codex", content) == []
    assert content["threadId"] == session.thread_id
    assert content["sessionId"] == session_id
    assert content["status"] == "idle"
    assert content["result"]["text"] == "all done"
    assert content["result"]["turnId"] == turn_id


async def test_codex_reply_is_a_task_too_and_the_earlier_turns_task_fails_as_superseded(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    server = _server(manager)
    first = await _task(server, manager, tmp_path)
    session_id, _, _, _ = tasks.parse_task_id(first["taskId"])
    session = await manager.get(session_id)
    fake.complete_turn(session, "one")
    reply = {"name": "codex_reply", "arguments": {"sessionId": session_id, "prompt": "again"}}
    second = cast(Json, await _request(server, manager, "tools/call", reply, DECLARES))
    assert second["resultType"] == "task"
    assert second["taskId"] != first["taskId"]
    fake.complete_turn(session, "two")
    replied = (await _get(server, manager, second["taskId"]))["result"]["structuredContent"]
    assert output_problems("codex_reply", replied) == []
    assert replied["result"]["text"] == "two"
    old = await _get(server, manager, first["taskId"])
    assert old["status"] == "failed"
    assert old["error"]["code"] == tasks.INTERNAL_ERROR


async def test_a_steer_joins_the_running_task_and_answers_plainly(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, _ = on_fake
    server = _server(manager)
    handle = await _task(server, manager, tmp_path)
    session_id, _, _, _ = tasks.parse_task_id(handle["taskId"])
    steer = {"name": "codex_reply", "arguments": {"sessionId": session_id, "prompt": "also", "steer": True}}
    result = await _request(server, manager, "tools/call", steer, DECLARES)
    assert isinstance(result, types.CallToolResult)
    assert result.structured_content is not None
    assert "steered" in result.structured_content


async def test_an_approval_is_an_input_request_answered_by_tasks_update(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    server = _server(manager)
    handle = await _task(server, manager, tmp_path)
    session_id, turn_id, _, _ = tasks.parse_task_id(handle["taskId"])
    session = await manager.get(session_id)
    params = {
        "threadId": session.thread_id,
        "turnId": turn_id,
        "itemId": "call_1",
        "startedAtMs": 0,
        "command": "touch made.txt",
        "cwd": str(tmp_path),
        "availableDecisions": ["accept", "acceptForSession", "decline"],
    }
    codex_id = await fake.request("item/commandExecution/requestApproval", params)
    got = await _get(server, manager, handle["taskId"])
    assert got["status"] == "input_required"
    ((key, request),) = got["inputRequests"].items()
    assert key == next(iter(session.pending))
    assert request["method"] == "elicitation/create"
    form = request["params"]
    assert form["mode"] == "form"
    assert "touch made.txt" in form["message"]
    assert form["requestedSchema"]["properties"]["decision"]["enum"] == [
        "accept",
        "acceptForSession",
        "decline",
    ]
    # cancel leaves it pending; unknown keys are ignored.
    update: Json = {
        "taskId": handle["taskId"],
        "inputResponses": {key: {"action": "cancel"}, "req_nope": {"action": "accept"}},
    }
    assert await _request(server, manager, "tasks/update", update, DECLARES) == {}
    assert key in session.pending
    # An accept without a decision is refused, naming the field.
    update = {"taskId": handle["taskId"], "inputResponses": {key: {"action": "accept", "content": {}}}}
    with pytest.raises(MCPError) as refused:
        await _request(server, manager, "tasks/update", update, DECLARES)
    assert refused.value.code == tasks.INVALID_PARAMS
    assert refused.value.error.data == {
        "code": "INVALID_ARGUMENT",
        "field": f"inputResponses.{key}.content.decision",
    }
    update = {
        "taskId": handle["taskId"],
        "inputResponses": {key: {"action": "accept", "content": {"decision": "accept"}}},
    }
    assert await _request(server, manager, "tasks/update", update, DECLARES) == {}
    assert await fake.answer() == (codex_id, {"id": codex_id, "result": {"decision": "accept"}})
    assert (await _get(server, manager, handle["taskId"]))["status"] == "working"
    # Answering again is ignored (already answered).
    assert await _request(server, manager, "tasks/update", update, DECLARES) == {}


async def test_a_declined_approval_and_a_question(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    server = _server(manager)
    handle = await _task(server, manager, tmp_path)
    session_id, turn_id, _, _ = tasks.parse_task_id(handle["taskId"])
    session = await manager.get(session_id)
    approval = {
        "threadId": session.thread_id,
        "turnId": turn_id,
        "itemId": "call_2",
        "reason": "write",
        "startedAtMs": 0,
    }
    codex_id = await fake.request("item/fileChange/requestApproval", approval)
    (key,) = session.pending
    update = {"taskId": handle["taskId"], "inputResponses": {key: {"action": "decline"}}}
    assert await _request(server, manager, "tasks/update", update, DECLARES) == {}
    assert await fake.answer() == (codex_id, {"id": codex_id, "result": {"decision": "decline"}})
    question = {
        "threadId": session.thread_id,
        "turnId": turn_id,
        "itemId": "ask_1",
        "isBlocking": True,
        "questions": [
            {
                "id": "color",
                "header": "Color",
                "question": "Which?",
                "options": [{"label": "red", "description": ""}],
            }
        ],
    }
    codex_id = await fake.request("item/tool/requestUserInput", question)
    got = await _get(server, manager, handle["taskId"])
    ((key, request),) = got["inputRequests"].items()
    schema = request["params"]["requestedSchema"]
    assert schema["properties"]["color"]["enum"] == ["red"]
    assert schema["required"] == ["color"]
    update = {
        "taskId": handle["taskId"],
        "inputResponses": {key: {"action": "accept", "content": {"color": "red"}}},
    }
    assert await _request(server, manager, "tasks/update", update, DECLARES) == {}
    answered_id, answer = await fake.answer()
    assert answered_id == codex_id
    assert answer["result"] == {"answers": {"color": {"answers": ["red"]}}}


async def test_tasks_cancel_interrupts_the_turn_and_the_task_ends_cancelled(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, fake = on_fake
    server = _server(manager)
    handle = await _task(server, manager, tmp_path)
    session_id, turn_id, _, _ = tasks.parse_task_id(handle["taskId"])
    assert await _request(server, manager, "tasks/cancel", {"taskId": handle["taskId"]}, DECLARES) == {}
    assert fake.interrupted == [turn_id]
    session = await manager.get(session_id)
    fake.complete_turn(session, "partial", status="interrupted")
    assert (await _get(server, manager, handle["taskId"]))["status"] == "cancelled"
    # Cancelling a finished task is a no-op ack.
    assert await _request(server, manager, "tasks/cancel", {"taskId": handle["taskId"]}, DECLARES) == {}
    assert fake.interrupted == [turn_id]


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("tasks/get", {}, "taskId"),
        ("tasks/get", {"taskId": 5}, "taskId"),
        ("tasks/get", {"taskId": ""}, "taskId"),
        ("tasks/get", {"taskId": "nocolons"}, "taskId"),
        ("tasks/get", {"taskId": "sess_000000000000:turn:1"}, "taskId"),
        ("tasks/get", {"taskId": "sess_000000000000:turn:1:codex"}, "taskId"),
        ("tasks/get", {"taskId": "sess_000000000000:turn:1:codex_check"}, "taskId"),
        ("tasks/cancel", {"taskId": "x" * 600}, "taskId"),
        ("tasks/update", {"taskId": "a:b:1:codex"}, "inputResponses"),
        ("tasks/update", {"taskId": "a:b:1:codex", "inputResponses": []}, "inputResponses"),
        (
            "tasks/update",
            {"taskId": "a:b:1:codex", "inputResponses": {"k": {"action": "maybe"}}},
            "inputResponses.k.action",
        ),
        (
            "tasks/update",
            {"taskId": "a:b:1:codex", "inputResponses": {"k": {"action": "accept", "content": 3}}},
            "inputResponses.k.content",
        ),
    ],
)
async def test_bad_params_are_invalid_params_naming_the_field(
    on_fake: tuple[SessionManager, FakeBackend], method: str, params: Json, field: str
) -> None:
    manager, _ = on_fake
    server = _server(manager)
    with pytest.raises(MCPError) as refused:
        await _request(server, manager, method, params, DECLARES)
    assert refused.value.code == tasks.INVALID_PARAMS
    assert refused.value.error.data == {"field": field}
    assert field in refused.value.error.message


async def test_a_known_session_with_an_unknown_turn_is_no_task(
    on_fake: tuple[SessionManager, FakeBackend], tmp_path: Path
) -> None:
    manager, _ = on_fake
    server = _server(manager)
    handle = await _task(server, manager, tmp_path)
    session_id, _, created, tool = tasks.parse_task_id(handle["taskId"])
    with pytest.raises(MCPError) as refused:
        await _get(server, manager, tasks.task_id_for(session_id, "turn_other", created, tool))
    assert refused.value.code == tasks.INVALID_PARAMS
