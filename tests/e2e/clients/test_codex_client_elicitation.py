"""`codex exec` (legacy `initialize`, answers every elicitation decline) with `advanced.approvals: "elicit"`.

Our `elicitation/create` goes out from inside the waiting `codex` call; Codex answers decline at
once, so the approval is declined (as a polled decline is), the command does not run and the call
goes on waiting until the turn ends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.client import server_env
from tests.harness.codex_client import create_client_env, plan_requests, tool_outputs
from tests.harness.codex_env import CodexEnv, run_exec
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients
from tests.harness.plans import call, plan_prompt

pytestmark = [pytest.mark.real_codex, pytest.mark.real_clients]

PLAN: Final = (
    call(
        "codex",
        prompt="scenario:shell make the file",
        approvalPolicy="untrusted",
        sandbox="workspace-write",
        advanced={"approvals": "elicit", "waitForResult": 30000},
    ),
    call("codex_check", action="poll", sessionId="$SESSION", cursor=0, maxEvents=50),
)


def _json(seen: str) -> dict[str, Any]:
    return json.loads(seen.split("\nOutput:\n", 1)[1])


def test_codex_exec_declines_our_elicitation_and_the_command_does_not_run(
    npm_clients: NpmClients, mock_model: MockModelServer, codex_env: CodexEnv, tmp_path: Path
) -> None:
    outer = create_client_env(
        tmp_path / "outer", mock_model, npm_clients.codex, server_env(codex_env), required=True
    )
    done = run_exec(outer, plan_prompt(PLAN, "scenario:plan Call the tools of this plan in order."))
    assert done.returncode == 0, done.stderr[-3000:]
    started, polled = (_json(s) for s in tool_outputs(plan_requests(mock_model)[-1]))
    assert started["status"] == "idle", started  # answered inside the call, which then waited on
    assert "actions" not in started
    events: list[dict[str, Any]] = polled["events"]
    results = [e["data"] for e in events if e["type"] == "approval_result"]
    assert [(r["decision"], r.get("timeout")) for r in results] == [("decline", None)]
    assert not (codex_env.workspace / "made.txt").exists()
