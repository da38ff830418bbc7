"""The MCP Inspector 2.12 CLI (npm, pinned by tests/clients) on the 2026-07-28 era against real Codex:
it declares the tasks extension on every modern request (`ADVERTISABLE_EXTENSIONS`, on by default),
so `--method tools/call --tool-name codex` gets our task handle, follows it with tasks/get and
prints the tool's result, checked against the tool's outputSchema (which is why a task's result is
the tool's own output).

Its `--method tasks/*` is not reachable in 2.12.0: the CLI refuses every method outside its
`ONE_SHOT_METHODS`/`CATALOG_METHODS` ("Unsupported method: tasks/get. Supported --cli methods: ...")
before its tasks/* branches run; the last test pins that, so an Inspector that opens them shows up.
The Inspector's Tasks client itself (`@modelcontextprotocol/ext-tasks`, which its UI uses for
tasks/get, tasks/update and tasks/cancel) runs against us in test_inspector_ext_tasks.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.e2e.client import server_env
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients
from tests.harness.scenarios import SLOW_TEXT_PREFIX

Json = dict[str, Any]


def _inspector(npm_clients: NpmClients, codex_env: CodexEnv, *args: str) -> subprocess.CompletedProcess[str]:
    env_args = [part for key, value in server_env(codex_env).items() for part in ("-e", f"{key}={value}")]
    command = [
        str(npm_clients.inspector),
        "--cli",
        "--format",
        "json",
        "--protocol-era",
        "modern",
        *env_args,
        sys.executable,
        "-m",
        "codex_mcp",
        *args,
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(codex_env.root / "inspector-home")}
    return subprocess.run(
        command, env=env, cwd=codex_env.workspace, capture_output=True, text=True, timeout=180, check=False
    )


def test_inspector_tools_call_follows_our_task_to_its_result(
    npm_clients: NpmClients, mock_model: MockModelServer, codex_env: CodexEnv
) -> None:
    run = _inspector(
        npm_clients,
        codex_env,
        "--method",
        "tools/call",
        "--tool-name",
        "codex",
        "--tool-arg",
        "prompt=scenario:slow hi",
        "approvalPolicy=never",
        "sandbox=workspace-write",
    )
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    # Our server answered with a task; the Inspector polled it (tasks/get) to the tool's result.
    assert "tools/call answered with task" in run.stderr
    output: Json = json.loads(run.stdout)["result"]
    assert output["isError"] is False
    content = output["structuredContent"]
    assert content["status"] == "idle"
    assert content["result"]["status"] == "completed"
    assert content["result"]["text"].startswith(SLOW_TEXT_PREFIX)


def test_inspector_cli_2_12_refuses_tasks_methods(npm_clients: NpmClients, codex_env: CodexEnv) -> None:
    run = _inspector(npm_clients, codex_env, "--method", "tasks/get", "--task-id", "sess_000000000000:t:1")
    assert "Unsupported method: tasks/get" in run.stdout + run.stderr
