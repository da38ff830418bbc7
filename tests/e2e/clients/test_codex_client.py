"""Codex (npm, pinned) as the MCP client: `codex exec --json` whose scripted model calls every tool of ours.

outer Codex -> codex-mcp -> the pinned inner Codex, both Codex talking to one Responses mock: the outer
one's prompt carries `scenario:plan`, the inner ones carry the plan's own prompts. The entry is
`required = true`: without it Codex gives the server ~1 s to start and runs the turn without our
tools when it is late (see bench/clients.py for how often).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest

from tests.e2e.client import server_env
from tests.e2e.clients.plans import ALL_TOOLS, check_all_tools_answers
from tests.e2e.processes import live_processes_with_env
from tests.harness.claude_code import run_claude
from tests.harness.codex_client import (
    create_client_env,
    exec_events,
    offered_tools,
    plan_requests,
    tool_outputs,
)
from tests.harness.codex_env import CodexEnv, run_exec
from tests.harness.messages_model import TOOL_SEARCH, MessagesModelServer
from tests.harness.mock_model import MockModelServer, json_object
from tests.harness.npm_clients import NpmClients
from tests.harness.plans import call, final_text, plan_prompt
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.real_codex, pytest.mark.real_clients]

OUR_TOOLS: Final = ["codex", "codex_check", "codex_reply", "codex_session", "codex_setup"]
WALL_TIME_PREFIX: Final = "Wall time: "


def _output_json_text(seen: str) -> str:
    """What Codex shows the model of a tool result, less its `Wall time: … Output:` header."""
    assert seen.startswith(WALL_TIME_PREFIX), seen
    return seen.split("\nOutput:\n", 1)[1]


def test_codex_as_a_client_calls_all_five_tools_and_its_model_sees_each_answer(
    npm_clients: NpmClients, mock_model: MockModelServer, codex_env: CodexEnv, tmp_path: Path
) -> None:
    outer = create_client_env(
        tmp_path / "outer", mock_model, npm_clients.codex, server_env(codex_env), required=True
    )
    done = run_exec(outer, plan_prompt(ALL_TOOLS, "scenario:plan Call the tools of this plan in order."))
    assert done.returncode == 0, done.stderr[-3000:]
    messages = [
        json_object(e.get("item")) for e in exec_events(done.stdout) if e.get("type") == "item.completed"
    ]
    assert messages[-1].get("type") == "agent_message"
    assert messages[-1].get("text") == final_text(["x"] * len(ALL_TOOLS))
    requests = plan_requests(mock_model)
    assert sorted(offered_tools(requests[0])) == OUR_TOOLS  # our tools were there from the first turn
    seen = tool_outputs(requests[-1])
    check_all_tools_answers([_output_json_text(s) for s in seen])
    # Codex shows an isError result as its structured error object.
    assert json.loads(_output_json_text(seen[-1]))["error"]["code"] == "SESSION_NOT_FOUND"
    calls = [m for m in messages if m.get("type") == "mcp_tool_call"]
    assert [(c.get("server"), c.get("tool")) for c in calls] == [("codex-mcp", c.tool) for c in ALL_TOOLS]
    # The inner Codex really ran both turns against the same mock.
    inner = [r.scenario for r in mock_model.responses_requests() if r.scenario != "plan"]
    assert sorted(s or "" for s in inner) == ["plain", "reasoning"]
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


NEEDS_APPROVAL: Final = "MCP tool call requires approval, but approval policy is never"


def test_without_default_tools_approval_mode_codex_exec_refuses_every_tool_but_the_read_only_one(
    npm_clients: NpmClients, mock_model: MockModelServer, codex_env: CodexEnv, tmp_path: Path
) -> None:
    outer = create_client_env(
        tmp_path / "outer", mock_model, npm_clients.codex, server_env(codex_env), required=True, approve=False
    )
    plan = (call("codex_setup"), call("codex_session", action="list"))
    done = run_exec(outer, plan_prompt(plan, "scenario:plan Call the tools of this plan in order."))
    assert done.returncode == 0, done.stderr[-3000:]
    setup, listed = tool_outputs(plan_requests(mock_model)[-1])
    assert json.loads(_output_json_text(setup))["codex"]["found"] is True  # readOnlyHint: true
    assert NEEDS_APPROVAL in listed


def test_one_global_codex_config_with_our_entry_required_serves_codex_and_our_own_children(
    npm_clients: NpmClients, mock_model: MockModelServer, codex_env: CodexEnv, tmp_path: Path
) -> None:
    """A user's ~/.codex/config.toml holds our entry with `required = true`; the Codex children we
    start read that same file. The recursion guard keeps them from starting another codex-mcp, so
    their threads start, and Codex's default start-up grace is not even needed."""
    outer_root = tmp_path / "outer"
    shared_home = outer_root / "codex-home"
    env = server_env(codex_env)
    env["CODEX_HOME"] = str(shared_home)
    outer = create_client_env(outer_root, mock_model, npm_clients.codex, env, required=True)
    plan = (
        call(
            "codex",
            prompt="scenario:plain through the global config",
            approvalPolicy="never",
            sandbox="read-only",
            advanced={"waitForResult": 30000},
        ),
    )
    done = run_exec(outer, plan_prompt(plan, "scenario:plan Call the tools of this plan in order."))
    assert done.returncode == 0, done.stderr[-3000:]
    [seen] = tool_outputs(plan_requests(mock_model)[-1])
    answer = json.loads(_output_json_text(seen))
    assert answer["status"] == "idle", answer
    assert answer["result"]["text"] == PLAIN_TEXT
    # Only the outer Codex started a codex-mcp: none ran with the inner children's environment.
    assert live_processes_with_env(f"CODEX_HOME={shared_home}") == []


def test_two_real_clients_share_one_state_directory_and_the_second_continues_the_first_ones_session(
    npm_clients: NpmClients,
    messages_model: MessagesModelServer,
    mock_model: MockModelServer,
    codex_env: CodexEnv,
    tmp_path: Path,
) -> None:
    """Claude Code starts a session; once it has stopped its server, Codex (another client on the same
    machine and state directory) lists that session, adopts it and continues its thread."""
    env = server_env(codex_env)
    first = (
        call(
            "codex",
            prompt="scenario:plain remember HARRIER",
            approvalPolicy="never",
            sandbox="read-only",
            advanced={"waitForResult": 30000},
        ),
    )
    run = run_claude(
        npm_clients.claude,
        messages_model,
        plan_prompt(first, "Call the tools of this plan in order."),
        root=tmp_path / "claude",
        server_env=env,
        cwd=codex_env.workspace,
    )
    assert run.returncode == 0, run.stderr
    [use] = [u for u in messages_model.planned_requests()[-1].tool_uses() if u.name != TOOL_SEARCH]
    session_id = json.loads(use.result or "{}")["sessionId"]

    second = (
        call("codex_session", action="list"),
        call("codex_reply", sessionId="$SESSION", prompt="scenario:plain what was it?", waitForResult=30000),
    )
    outer = create_client_env(tmp_path / "outer", mock_model, npm_clients.codex, env, required=True)
    done = run_exec(outer, plan_prompt(second, "scenario:plan Call the tools of this plan in order."))
    assert done.returncode == 0, done.stderr[-3000:]
    listed, replied = (json.loads(_output_json_text(s)) for s in tool_outputs(plan_requests(mock_model)[-1]))
    [entry] = listed["sessions"]
    assert (entry["sessionId"], entry["ownership"]) == (session_id, "none")
    assert replied["status"] == "idle", replied
    inner = [r for r in mock_model.responses_requests() if r.scenario == "plain"]
    assert "HARRIER" in json.dumps(inner[-1].input_items)  # the reply continued the first thread
