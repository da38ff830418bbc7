"""Our progress heartbeats do not extend either client's tool timeout (what README and gotchas say).

A `codex` call waits (`advanced.waitForResult`) on a slow turn while the server sends a progress
notification every 250 ms; each client still cancels the call at its own timeout (Claude Code:
`MCP_TOOL_TIMEOUT`; Codex: `tool_timeout_sec`), and its model gets an error instead of the result.
The server runs behind a stdio recorder, so the test sees the heartbeats and the cancel on the wire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from tests.e2e.client import server_env
from tests.harness.claude_code import run_claude
from tests.harness.codex_client import create_client_env, plan_requests, tool_outputs
from tests.harness.codex_env import CODEX_MCP_ARGV, CodexEnv, run_exec
from tests.harness.messages_model import TOOL_SEARCH, MessagesModelServer
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients
from tests.harness.plans import call, plan_prompt
from tests.harness.stdio_recorder import recorded, recorder_argv

pytestmark = [pytest.mark.real_codex, pytest.mark.real_clients]

# Long enough that a loaded machine still starts the session (and the heartbeats) before it.
CLIENT_TIMEOUT_S: Final = 6
HEARTBEAT_MS: Final = 250
# Far beyond the client's timeout: only the client's cancel can end the call in time.
WAIT_MS: Final = 30000
SERVER_EXTRA: Final = {"CODEX_MCP_HEARTBEAT_MS": str(HEARTBEAT_MS), "CODEX_MCP_DRAIN_TIMEOUT_MS": "200"}
SLOW_CALL: Final = (
    call(
        "codex",
        prompt="scenario:slow take long",
        approvalPolicy="never",
        sandbox="read-only",
        advanced={"waitForResult": WAIT_MS},
    ),
)


def _wire(log: Path) -> tuple[float, float, int]:
    """(tools/call arrived, the client gave up, progress notifications sent in between).

    The client gives up with `notifications/cancelled`, or (Claude Code in -p mode, which then ends)
    by stopping the server at once: a server that exits on the signal may be gone before the
    cancel, written just before it, is read. Either is the moment the client's timeout struck.
    """
    entries = recorded(log)
    called = next(float(str(e["t"])) for e in entries if e.get("method") == "tools/call")
    cancelled = next(
        float(str(e["t"]))
        for e in entries
        if (e.get("dir") == "in" and e.get("method") == "notifications/cancelled") or e.get("dir") == "exit"
    )
    beats = [
        e
        for e in entries
        if e.get("dir") == "out"
        and e.get("method") == "notifications/progress"
        and called < float(str(e["t"])) < cancelled
    ]
    return called, cancelled, len(beats)


def test_heartbeats_do_not_extend_claude_codes_mcp_tool_timeout(
    npm_clients: NpmClients,
    messages_model: MessagesModelServer,
    codex_env: CodexEnv,
    tmp_path: Path,
) -> None:
    log = tmp_path / "wire.jsonl"
    run = run_claude(
        npm_clients.claude,
        messages_model,
        plan_prompt(SLOW_CALL, "Call the tools of this plan in order."),
        root=tmp_path / "claude",
        server_env=server_env(codex_env, SERVER_EXTRA),
        cwd=codex_env.workspace,
        extra_env={"MCP_TOOL_TIMEOUT": str(CLIENT_TIMEOUT_S * 1000)},
        server_argv=recorder_argv(log, CODEX_MCP_ARGV),
    )
    assert run.returncode == 0, run.stderr
    [use] = [u for u in messages_model.planned_requests()[-1].tool_uses() if u.name != TOOL_SEARCH]
    called, cancelled, beats = _wire(log)
    assert use.is_error
    assert "timed out" in (use.result or "").lower(), use.result
    assert CLIENT_TIMEOUT_S - 0.5 <= cancelled - called <= CLIENT_TIMEOUT_S + 2
    # Heartbeats flowed (the call also spends part of the timeout loading the server and Codex).
    assert beats >= 2


def test_heartbeats_do_not_extend_codexs_tool_timeout_sec(
    npm_clients: NpmClients, mock_model: MockModelServer, codex_env: CodexEnv, tmp_path: Path
) -> None:
    log = tmp_path / "wire.jsonl"
    outer = create_client_env(
        tmp_path / "outer",
        mock_model,
        npm_clients.codex,
        server_env(codex_env, SERVER_EXTRA),
        required=True,
        tool_timeout_sec=CLIENT_TIMEOUT_S,
        server_argv=recorder_argv(log, CODEX_MCP_ARGV),
    )
    done = run_exec(outer, plan_prompt(SLOW_CALL, "scenario:plan Call the tools of this plan in order."))
    assert done.returncode == 0, done.stderr[-3000:]
    [seen] = tool_outputs(plan_requests(mock_model)[-1])
    called, cancelled, beats = _wire(log)
    assert "timed out" in seen.lower(), seen
    assert '"sessionId"' not in seen
    assert CLIENT_TIMEOUT_S - 0.5 <= cancelled - called <= CLIENT_TIMEOUT_S + 2
    # Heartbeats flowed (the call also spends part of the timeout loading the server and Codex).
    assert beats >= 2
