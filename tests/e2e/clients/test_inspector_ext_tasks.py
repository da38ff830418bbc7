"""The MCP Inspector 2.12's own Tasks client against real Codex: `@modelcontextprotocol/ext-tasks`
0.2.2 (what the Inspector 2.12.0 pins, installed with it by tests/clients) on the
`@modelcontextprotocol/client` 2.3.1 SDK Client, driven by tests/harness/ext_tasks_client.mjs with the
Node that runs the Inspector. The Inspector's CLI cannot send `tasks/*` itself (see
test_inspector_tasks.py), so this drives the code its UI and TUI use for tasks.

What ext-tasks offers: `createTaskSessionFromClient(client, {rawDispatch, v2RequestFraming, ...})`
(for a 2026-07-28 server it requires a host `rawDispatch` below the SDK, whose codecs reject task
traffic; the Inspector's is its RawWireChannel, not exported, so the script carries frames the
same way) gives a session whose `callTool` answers an execution: `kind: "task"` with a handle when
the server answered with a task, then `settle()` polls `tasks/get` at the server's
`pollIntervalMs`, hands each `input_required` input request to the `onInputRequest` handler
(`createApplicationInputHandler({elicitation, sampling, roots})`, as the Inspector does) and sends the
answers with `tasks/update`, until a terminal status; `session.task(id)` is a controller with
`snapshot()` (tasks/get), `update(inputResponses)` (tasks/update), `cancel()` (tasks/cancel), and
`session.cancelTask(id)` cancels a live execution. The script uses those: every request on the
wire is built by ext-tasks or the SDK.

Over stdio (the script starts our server with `server_env`), on 2026-07-28 with the extension
declared: a `scenario:shell` turn under `approvalPolicy: untrusted` runs as a task, its approval
reaches the handler as an elicitation form and is accepted through tasks/update (made.txt exists),
and it completes with the codex tool's own output; a `scenario:slow` task is cancelled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_mcp.wire.tools import output_problems
from tests.e2e.client import codex_args, server_env
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients
from tests.harness.scenarios import FINAL_AFTER_TOOL, SHELL_COMMAND

Json = dict[str, Any]

SCRIPT = Path(__file__).resolve().parents[2] / "harness" / "ext_tasks_client.mjs"
EXTENSION = "io.modelcontextprotocol/tasks"


def _run_script(npm_clients: NpmClients, codex_env: CodexEnv) -> Json:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the Inspector and its Tasks client need Node.js 20+")
    stderr_path = codex_env.root / "ext-tasks-server.log"
    config = {
        "command": sys.executable,
        "args": ["-m", "codex_mcp"],
        "env": server_env(codex_env),
        "cwd": str(codex_env.workspace),
        "stderrPath": str(stderr_path),
        "approveArguments": codex_args("scenario:shell make the file", approvalPolicy="untrusted"),
        "cancelArguments": codex_args("scenario:slow long"),
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(codex_env.root / "node-home")}
    run = subprocess.run(
        [node, str(SCRIPT), str(npm_clients.root / "node_modules"), json.dumps(config)],
        env=env,
        cwd=codex_env.workspace,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    log = stderr_path.read_text(errors="replace")[-3000:] if stderr_path.exists() else ""
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:], log)
    out: Json = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in out, (out, log)
    # ext-tasks reports every response it rejects (a schema, a task identity) here.
    assert out["backgroundErrors"] == [], out["backgroundErrors"]
    return out


def test_the_inspectors_tasks_client_runs_approves_and_cancels_tasks(
    npm_clients: NpmClients, mock_model: MockModelServer, codex_env: CodexEnv
) -> None:
    out = _run_script(npm_clients, codex_env)
    assert out["protocolVersion"] == "2026-07-28"
    assert out["protocolEra"] == "modern"
    assert out["serverTasksExtension"] == {}
    assert out["capabilities"]["execution"] is True
    assert out["capabilities"]["cancellation"] is True
    assert out["capabilities"]["inputResponses"] is True

    approve = out["approve"]
    assert approve["kind"] == "task", approve
    task_id = approve["taskId"]
    assert "input_required" in approve["events"], approve["events"]
    ((elicitation,),) = [approve["elicitations"]]
    assert elicitation["delivery"] == "task-update"
    assert elicitation["taskId"] == task_id
    form = elicitation["params"]
    assert SHELL_COMMAND in form["message"]
    assert "accept" in form["requestedSchema"]["properties"]["decision"]["enum"]
    # ext-tasks itself sent the answer: one tasks/update carrying the accept for that request.
    updates = [w for w in out["wire"] if w["method"] == "tasks/update"]
    assert len(updates) == 1, out["wire"]
    assert updates[0]["params"]["taskId"] == task_id
    answers = updates[0]["params"]["inputResponses"]
    assert answers == {elicitation["inputId"]: {"action": "accept", "content": {"decision": "accept"}}}
    assert (codex_env.workspace / "made.txt").read_text().strip() == "hi"

    outcome = approve["outcome"]
    assert outcome["status"] == "completed", outcome
    result = outcome["result"]
    assert result["isError"] is False
    content = result["structuredContent"]
    assert output_problems("codex", content) == []
    assert content["result"]["status"] == "completed"
    assert content["result"]["text"] == FINAL_AFTER_TOOL
    assert task_id.startswith(content["sessionId"] + ":")

    cancel = out["cancel"]
    assert cancel["kind"] == "task", cancel
    assert cancel["before"]["status"] == "working"
    assert cancel["outcome"]["status"] == "cancelled", cancel
    assert cancel["after"]["status"] == "cancelled"
    methods = [w["method"] for w in out["wire"] if w.get("taskId") == cancel["taskId"]]
    assert "tasks/cancel" in methods, out["wire"]
    assert [w["method"] for w in out["wire"]].count("tools/call") == 2
