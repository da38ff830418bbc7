"""Requests the real Codex sends our server, end to end: MCP client -> codex-mcp -> Codex -> mock model.

Covers MCP tool-call approvals (`mcpServer/elicitation/request`, an echo MCP server configured for
the Codex child), permission requests (`item/permissions/requestApproval`, the model's
`request_permissions` tool behind the `request_permissions_tool` feature) and the bound on Codex's
reconnect loop (`error` notifications with `willRetry: true`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import anyio
import pytest

from tests.e2e.client import McpServerUnderTest, codex_args, running_server
from tests.e2e.echo_mcp_server import ECHO_PREFIX
from tests.harness.codex_env import CodexEnv, create_codex_env
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import (
    PLAIN_TEXT,
    Reply,
    ScenarioOptions,
    SseEvent,
    StreamReply,
    analyse,
    completed,
    created,
    function_call_events,
    message_events,
)

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

ECHO_SERVER: Final = Path(__file__).with_name("echo_mcp_server.py")
ECHO_TEXT: Final = "PING-7"
PERMISSIONS_REASON: Final = "The mock model needs the network to fetch a package."
# Codex's answer to the model when an MCP tool-call approval is declined (0.163).
MCP_REJECTED: Final = "user rejected MCP tool call"
MCP_NEEDS_APPROVAL: Final = "MCP tool call requires approval, but approval policy is never"
# Bound on one test's whole conversation with our server (a turn against the mock takes ~1 s).
TEST_BOUND_S: Final = 90.0
RECONNECT_TIMEOUT_MS: Final = 1500
# The watchdog looks once a second; the interrupt and a poll add a little more.
RECONNECT_SLACK_S: Final = 2.0


# --- mock model scripts ---------------------------------------------------------------------


def _namespaced_call(
    call_id: str, namespace: str, name: str, arguments: Mapping[str, object]
) -> list[SseEvent]:
    """A `function_call` output item for a tool Codex offers inside a namespace (MCP tools)."""
    item: dict[str, object] = {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "namespace": namespace,
        "arguments": json.dumps(arguments),
    }
    return [
        SseEvent("response.output_item.added", {"output_index": 0, "item": {**item, "arguments": ""}}),
        SseEvent("response.output_item.done", {"output_index": 0, "item": item}),
    ]


def _reply(rid: str, events: list[SseEvent]) -> StreamReply:
    return StreamReply((created(rid), *events, completed(rid)))


def _final(rid: str, text: str) -> StreamReply:
    return _reply(rid, message_events(f"msg_{rid}", [text]))


def _mcp_echo(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    """Call `mcp__echo.echo` once; then report what the tool returned."""
    conv = analyse(body)
    rid = f"resp_mcp_echo_{conv.user_turn}_{conv.step}"
    if conv.step == 0:
        call_id = f"call_mcp_echo_{conv.user_turn}"
        return _reply(rid, _namespaced_call(call_id, "mcp__echo", "echo", {"text": ECHO_TEXT}))
    return _final(rid, f"The echo tool said: {conv.outputs[-1]}")


def _mcp_echo_twice(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    """Call `mcp__echo.echo` twice in one turn; then report both outputs."""
    conv = analyse(body)
    rid = f"resp_mcp_echo_twice_{conv.user_turn}_{conv.step}"
    if conv.step < 2:
        call_id = f"call_mcp_echo_twice_{conv.user_turn}_{conv.step}"
        return _reply(
            rid, _namespaced_call(call_id, "mcp__echo", "echo", {"text": f"{ECHO_TEXT}-{conv.step}"})
        )
    return _final(rid, " | ".join(conv.outputs))


def _permissions(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    """Ask for network access with `request_permissions`; then report the grant."""
    conv = analyse(body)
    rid = f"resp_permissions_{conv.user_turn}_{conv.step}"
    if conv.step == 0:
        arguments = {"permissions": {"network": {"enabled": True}}, "reason": PERMISSIONS_REASON}
        return _reply(
            rid, function_call_events(f"call_permissions_{conv.user_turn}", "request_permissions", arguments)
        )
    return _final(rid, f"Granted: {conv.outputs[-1]}")


def _drop_before_output(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    """`response.created`, then the socket closes: no item ever starts."""
    rid = f"resp_drop_before_output_{analyse(body).user_turn}"
    return StreamReply((created(rid),), drop=True)


SCRIPTS: Final = {
    "mcp_echo": _mcp_echo,
    "mcp_echo_twice": _mcp_echo_twice,
    "permissions": _permissions,
    "drop_before_output": _drop_before_output,
}


# --- environments ---------------------------------------------------------------------------


@pytest.fixture
def echo_log(tmp_path: Path) -> Path:
    """Where the echo MCP server records each tool call it serves."""
    return tmp_path / "echo-calls.jsonl"


@pytest.fixture
def scripted_model(mock_model: MockModelServer) -> MockModelServer:
    """The mock model, with this module's scenarios added."""
    mock_model.custom_scenarios.update(SCRIPTS)
    return mock_model


def _echo_server_toml(echo_log: Path, *options: str) -> str:
    return "\n".join(
        [
            "[mcp_servers.echo]",
            f"command = {json.dumps(sys.executable)}",
            f"args = [{json.dumps(str(ECHO_SERVER))}]",
            *options,
            f"env = {{ ECHO_MCP_CALL_LOG = {json.dumps(str(echo_log))} }}",
        ]
    )


@pytest.fixture
def echo_env(tmp_path: Path, scripted_model: MockModelServer, echo_log: Path) -> CodexEnv:
    """An isolated Codex whose config.toml adds the `echo` MCP server."""
    return create_codex_env(
        tmp_path / "codex-echo",
        scripted_model.base_url,
        proxy_url=f"http://127.0.0.1:{scripted_model.port}",
        config_extra=_echo_server_toml(echo_log),
    )


@pytest.fixture
def approved_echo_env(tmp_path: Path, scripted_model: MockModelServer, echo_log: Path) -> CodexEnv:
    """Like `echo_env`, with the server's tools pre-approved (`default_tools_approval_mode`)."""
    return create_codex_env(
        tmp_path / "codex-echo-approved",
        scripted_model.base_url,
        proxy_url=f"http://127.0.0.1:{scripted_model.port}",
        config_extra=_echo_server_toml(echo_log, 'default_tools_approval_mode = "approve"'),
    )


@pytest.fixture
def retrying_env(codex_env: CodexEnv, scripted_model: MockModelServer) -> CodexEnv:
    """`codex_env` whose provider retries a dropped stream 50 times (Codex's reconnect loop)."""
    path = codex_env.codex_home / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert "stream_max_retries = 0\n" in text
    path.write_text(text.replace("stream_max_retries = 0\n", "stream_max_retries = 50\n"), encoding="utf-8")
    return codex_env


# --- helpers --------------------------------------------------------------------------------


@asynccontextmanager
async def _server(
    codex_env: CodexEnv, extra_env: Mapping[str, str] | None = None
) -> AsyncGenerator[McpServerUnderTest]:
    """`running_server`, with the whole test inside it bounded by TEST_BOUND_S."""
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, extra_env) as mcp:
            yield mcp


def _has_action(poll: dict[str, Any]) -> bool:
    return bool(poll.get("actions"))


def _finished(poll: dict[str, Any]) -> bool:
    return poll["status"] in ("idle", "error", "cancelled")


async def _respond(
    mcp: McpServerUnderTest, session_id: str, request_id: str, decision: str
) -> dict[str, Any]:
    return await mcp.call(
        "codex_check",
        {
            "action": "respond_permission",
            "sessionId": session_id,
            "requestId": request_id,
            "decision": decision,
        },
    )


def _tool_outputs(mock: MockModelServer, call_id: str) -> list[str]:
    """The text Codex sent the model as the output of `call_id` (any request, any form)."""
    texts: list[str] = []
    for request in mock.responses_requests():
        for item in request.input_items:
            if item.get("type") == "function_call_output" and item.get("call_id") == call_id:
                output = item.get("output")
                texts.append(output if isinstance(output, str) else json.dumps(output))
    return texts


def _echo_calls(echo_log: Path) -> list[dict[str, Any]]:
    if not echo_log.exists():
        return []
    return [json.loads(line) for line in echo_log.read_text(encoding="utf-8").splitlines() if line]


def _events_of(
    events: list[dict[str, Any]], event_type: str, method: str | None = None
) -> list[dict[str, Any]]:
    return [
        e for e in events if e["type"] == event_type and (method is None or e["data"].get("method") == method)
    ]


def _reconnect_timeouts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in _events_of(events, "result") if e["data"].get("reason") == "reconnect_timeout"]


def _seconds_between(first: dict[str, Any], second: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(second["timestamp"]) - datetime.fromisoformat(first["timestamp"])
    ).total_seconds()


# --- 1. MCP tool-call approvals -------------------------------------------------------------


@pytest.mark.parametrize("policy", ["untrusted", "on-request"])
async def test_an_accepted_mcp_tool_call_approval_runs_the_tool_and_the_model_gets_its_output(
    echo_env: CodexEnv, scripted_model: MockModelServer, echo_log: Path, policy: str
) -> None:
    async with _server(echo_env) as mcp:
        started = await mcp.call(
            "codex", codex_args("scenario:mcp_echo echo something", approvalPolicy=policy)
        )
        poll, before = await mcp.poll_until(started["sessionId"], _has_action)
        assert poll["status"] == "waiting_approval"
        assert poll["recommendedNextAction"] == "respond_permission"
        [action] = poll["actions"]
        assert action["type"] == "approval"
        assert action["kind"] == "mcpToolCall"
        params = action["params"]
        assert params["serverName"] == "echo"
        assert params["mode"] == "form"
        assert params["_meta"]["codex_approval_kind"] == "mcp_tool_call"
        assert params["_meta"]["tool_params"] == {"text": ECHO_TEXT}
        assert _echo_calls(echo_log) == []  # nothing runs before the answer
        await _respond(mcp, started["sessionId"], action["requestId"], "accept")
        final, after = await mcp.run_to_end(started["sessionId"])
    events = before + after
    assert final["status"] == "idle"
    assert final["result"]["status"] == "completed"
    assert [call["arguments"] for call in _echo_calls(echo_log)] == [{"text": ECHO_TEXT}]
    [output] = _tool_outputs(scripted_model, "call_mcp_echo_1")
    assert ECHO_PREFIX + ECHO_TEXT in output
    assert ECHO_PREFIX + ECHO_TEXT in final["result"]["text"]
    [request_event] = _events_of(events, "approval_request")
    assert request_event["data"]["kind"] == "mcpToolCall"
    [result_event] = _events_of(events, "approval_result")
    assert result_event["data"]["decision"] == "accept"
    tool_items = [
        e["data"]["item"]
        for e in _events_of(events, "progress", "item/completed")
        if e["data"]["item"].get("type") == "mcpToolCall"
    ]
    assert [(item["server"], item["tool"], item["status"]) for item in tool_items] == [
        ("echo", "echo", "completed")
    ]


async def test_a_declined_mcp_tool_call_does_not_run_and_the_model_is_told(
    echo_env: CodexEnv, scripted_model: MockModelServer, echo_log: Path
) -> None:
    async with _server(echo_env) as mcp:
        started = await mcp.call(
            "codex", codex_args("scenario:mcp_echo echo something", approvalPolicy="untrusted")
        )
        poll, _ = await mcp.poll_until(started["sessionId"], _has_action)
        [action] = poll["actions"]
        assert action["kind"] == "mcpToolCall"
        await _respond(mcp, started["sessionId"], action["requestId"], "decline")
        final, events = await mcp.run_to_end(started["sessionId"])
    assert final["status"] == "idle"
    assert _echo_calls(echo_log) == []
    [output] = _tool_outputs(scripted_model, "call_mcp_echo_1")
    assert MCP_REJECTED in output
    assert ECHO_PREFIX not in output
    [result_event] = _events_of(events, "approval_result")
    assert result_event["data"]["decision"] == "decline"


async def test_under_never_codex_refuses_an_mcp_tool_call_without_an_action(
    echo_env: CodexEnv, scripted_model: MockModelServer, echo_log: Path
) -> None:
    async with _server(echo_env) as mcp:
        out = await mcp.call("codex", codex_args("scenario:mcp_echo echo something", wait_ms=30000))
    assert out["status"] == "idle"
    assert "actions" not in out
    assert _echo_calls(echo_log) == []
    [output] = _tool_outputs(scripted_model, "call_mcp_echo_1")
    assert MCP_NEEDS_APPROVAL in output


async def test_an_mcp_server_whose_tools_are_preapproved_runs_them_without_an_action(
    approved_echo_env: CodexEnv, scripted_model: MockModelServer, echo_log: Path
) -> None:
    async with _server(approved_echo_env) as mcp:
        out = await mcp.call(
            "codex", codex_args("scenario:mcp_echo echo something", approvalPolicy="untrusted", wait_ms=30000)
        )
    assert out["status"] == "idle"
    assert "actions" not in out
    assert len(_echo_calls(echo_log)) == 1
    [output] = _tool_outputs(scripted_model, "call_mcp_echo_1")
    assert ECHO_PREFIX + ECHO_TEXT in output


async def test_accept_for_session_on_an_mcp_tool_call_stops_codex_asking_again_for_that_tool(
    echo_env: CodexEnv, echo_log: Path
) -> None:
    async with _server(echo_env) as mcp:
        started = await mcp.call(
            "codex", codex_args("scenario:mcp_echo_twice echo twice", approvalPolicy="untrusted")
        )
        session_id = started["sessionId"]
        poll, before = await mcp.poll_until(session_id, _has_action)
        [action] = poll["actions"]
        await _respond(mcp, session_id, action["requestId"], "acceptForSession")
        final, after = await mcp.poll_until(session_id, lambda p: _finished(p) or _has_action(p))
        if _has_action(final):  # Codex asked again: answer so the session ends cleanly
            await _respond(mcp, session_id, final["actions"][0]["requestId"], "accept")
            await mcp.run_to_end(session_id)
    assert len(_echo_calls(echo_log)) == 2
    assert len(_events_of(before + after, "approval_request")) == 1
    assert final["status"] == "idle"


# --- 2. Permission requests -----------------------------------------------------------------

_PERMISSIONS_CONFIG: Final = {"features.request_permissions_tool": True}


@pytest.mark.parametrize(("decision", "scope"), [("accept", "turn"), ("acceptForSession", "session")])
async def test_a_permissions_request_is_an_action_and_accepting_grants_what_the_model_asked_for(
    codex_env: CodexEnv, scripted_model: MockModelServer, decision: str, scope: str
) -> None:
    async with _server(codex_env) as mcp:
        started = await mcp.call(
            "codex",
            codex_args(
                "scenario:permissions need network",
                approvalPolicy="on-request",
                advanced={"config": _PERMISSIONS_CONFIG},
            ),
        )
        poll, _ = await mcp.poll_until(started["sessionId"], _has_action)
        [action] = poll["actions"]
        assert action["type"] == "approval"
        assert action["kind"] == "permissions"
        assert action["reason"] == PERMISSIONS_REASON
        assert action["itemId"] == "call_permissions_1"
        assert action["params"]["permissions"]["network"] == {"enabled": True}
        await _respond(mcp, started["sessionId"], action["requestId"], decision)
        final, events = await mcp.run_to_end(started["sessionId"])
    assert final["status"] == "idle"
    [output] = _tool_outputs(scripted_model, "call_permissions_1")
    granted = json.loads(output)
    assert granted["permissions"]["network"] == {"enabled": True}
    assert granted["scope"] == scope
    [result_event] = _events_of(events, "approval_result")
    assert result_event["data"]["kind"] == "permissions"
    assert result_event["data"]["decision"] == decision


async def test_a_declined_permissions_request_grants_nothing(
    codex_env: CodexEnv, scripted_model: MockModelServer
) -> None:
    async with _server(codex_env) as mcp:
        started = await mcp.call(
            "codex",
            codex_args(
                "scenario:permissions need network",
                approvalPolicy="untrusted",
                advanced={"config": _PERMISSIONS_CONFIG},
            ),
        )
        poll, _ = await mcp.poll_until(started["sessionId"], _has_action)
        [action] = poll["actions"]
        assert action["kind"] == "permissions"
        await _respond(mcp, started["sessionId"], action["requestId"], "decline")
        final, _ = await mcp.run_to_end(started["sessionId"])
    assert final["status"] == "idle"
    [output] = _tool_outputs(scripted_model, "call_permissions_1")
    granted = json.loads(output)
    assert not any(granted["permissions"].values()), granted
    assert granted["scope"] == "turn"


# --- 3. The reconnect loop bound ------------------------------------------------------------

_RECONNECT_ENV: Final = {"CODEX_MCP_RECONNECT_TIMEOUT_MS": str(RECONNECT_TIMEOUT_MS)}


async def test_a_turn_stuck_reconnecting_fails_with_reconnect_timeout_and_the_session_takes_a_reply(
    retrying_env: CodexEnv,
) -> None:
    async with _server(retrying_env, _RECONNECT_ENV) as mcp:
        with anyio.fail_after(30):
            started = await mcp.call("codex", codex_args("scenario:drop keep dropping"))
            final, events = await mcp.run_to_end(started["sessionId"])
        assert final["status"] == "error"
        assert final["result"]["status"] == "failed"
        assert final["result"]["reason"] == "reconnect_timeout"
        reconnects = _events_of(events, "progress", "codex-mcp/reconnect")
        assert reconnects, [e["data"].get("method") for e in events]
        assert reconnects[0]["data"]["willRetry"] is True
        assert reconnects[0]["data"]["sourceMethod"] == "error"
        [failed] = _reconnect_timeouts(events)
        assert failed["data"]["status"] == "failed"
        assert failed["data"]["error"]["message"]
        assert reconnects[0]["id"] < failed["id"]
        reply = await mcp.call(
            "codex_reply",
            {"sessionId": started["sessionId"], "prompt": "scenario:plain try again", "waitForResult": 30000},
        )
    assert reply["status"] == "idle"
    assert reply["result"]["status"] == "completed"
    assert reply["result"]["text"] == PLAIN_TEXT


async def test_the_reconnect_timeout_runs_from_the_first_retry_when_no_output_streams(
    retrying_env: CodexEnv,
) -> None:
    async with _server(retrying_env, _RECONNECT_ENV) as mcp:
        started = await mcp.call("codex", codex_args("scenario:drop_before_output go"))
        _, events = await mcp.run_to_end(started["sessionId"])
    first_retry = _events_of(events, "progress", "codex-mcp/reconnect")[0]
    [failed] = _reconnect_timeouts(events)
    waited = _seconds_between(first_retry, failed)
    assert RECONNECT_TIMEOUT_MS / 1000 <= waited <= RECONNECT_TIMEOUT_MS / 1000 + RECONNECT_SLACK_S


async def test_the_reconnect_timeout_runs_from_the_first_retry_even_when_each_retry_streams_partial_output(
    retrying_env: CodexEnv,
) -> None:
    async with _server(retrying_env, _RECONNECT_ENV) as mcp:
        started = await mcp.call("codex", codex_args("scenario:drop keep dropping"))
        _, events = await mcp.run_to_end(started["sessionId"])
    first_retry = _events_of(events, "progress", "codex-mcp/reconnect")[0]
    [failed] = _reconnect_timeouts(events)
    assert _seconds_between(first_retry, failed) <= RECONNECT_TIMEOUT_MS / 1000 + RECONNECT_SLACK_S


async def test_a_reconnect_timeout_stays_the_turns_only_result_after_codex_confirms_the_interrupt(
    retrying_env: CodexEnv,
) -> None:
    async with _server(retrying_env, _RECONNECT_ENV) as mcp:
        started = await mcp.call("codex", codex_args("scenario:drop_before_output go"))
        _, events = await mcp.run_to_end(started["sessionId"])
        # Codex answers our turn/interrupt with a turn/completed of its own: wait until it is in.
        seen = list(events)

        def codex_confirmed(poll: dict[str, Any]) -> bool:
            seen.extend(poll["events"])
            return bool(_events_of(seen, "progress", "turn/completed"))

        later, _ = await mcp.poll_until(started["sessionId"], codex_confirmed)
    [confirmation] = _events_of(seen, "progress", "turn/completed")
    assert confirmation["data"]["turn"]["status"] == "interrupted"
    results = [(e["data"]["status"], e["data"].get("reason")) for e in _events_of(seen, "result")]
    assert results == [("failed", "reconnect_timeout")]
    assert later["status"] == "error"
    assert later["result"]["reason"] == "reconnect_timeout"
