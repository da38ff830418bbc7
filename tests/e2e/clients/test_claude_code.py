"""Claude Code (npm, pinned) as the MCP client: `claude -p` with a scripted Messages model calls every tool.

Claude Code -> codex-mcp -> the pinned inner Codex -> the Responses mock, all on 127.0.0.1. The
assertions read what Claude Code sent its model (the tool results in each next request), what it
printed, and the inner Codex's own requests.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Final

import pytest

from tests.e2e.client import server_env
from tests.e2e.clients.plans import ALL_TOOLS, check_all_tools_answers
from tests.e2e.processes import live_processes_with_env
from tests.harness.claude_code import TOOL_PREFIX, run_claude
from tests.harness.codex_env import CodexEnv
from tests.harness.messages_model import TOOL_SEARCH, MessagesModelServer
from tests.harness.mock_model import MockModelServer
from tests.harness.npm_clients import NpmClients
from tests.harness.plans import final_text, plan_prompt

pytestmark = [pytest.mark.real_codex, pytest.mark.real_clients]

README: Final = Path(__file__).resolve().parents[3] / "README.md"


def _readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_claude_code_calls_all_five_tools_and_its_model_sees_each_answer(
    npm_clients: NpmClients,
    messages_model: MessagesModelServer,
    mock_model: MockModelServer,
    codex_env: CodexEnv,
    tmp_path: Path,
) -> None:
    run = run_claude(
        npm_clients.claude,
        messages_model,
        plan_prompt(ALL_TOOLS, "Call the tools of this plan in order."),
        root=tmp_path / "claude",
        server_env=server_env(codex_env),
        cwd=codex_env.workspace,
    )
    assert run.returncode == 0, run.stderr
    assert run.result.get("result") == final_text(["x"] * len(ALL_TOOLS)), run.stdout[-2000:]
    last = messages_model.planned_requests()[-1]
    uses = [u for u in last.tool_uses() if u.name != TOOL_SEARCH]
    assert [u.name for u in uses] == [TOOL_PREFIX + c.tool for c in ALL_TOOLS]
    assert [u.is_error for u in uses] == [False] * (len(ALL_TOOLS) - 1) + [True]
    session_id = check_all_tools_answers([u.result or "" for u in uses])
    # Claude Code shows an isError result as its text.
    assert (uses[-1].result or "").startswith("Error [SESSION_NOT_FOUND]")
    # The inner Codex really ran both turns against its own model.
    assert sorted(r.scenario or "" for r in mock_model.responses_requests()) == ["plain", "reasoning"]
    assert session_id in (uses[4].result or "")
    assert messages_model.connects() == []
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


def test_the_readme_claude_mcp_add_command_registers_our_server(
    npm_clients: NpmClients, tmp_path: Path
) -> None:
    [command] = [c for c in _readme_commands() if c.startswith("claude mcp add")]
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir(parents=True)
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    added = subprocess.run(
        [str(npm_clients.claude), *shlex.split(command)[1:]],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert added.returncode == 0, added.stderr
    state = json.loads((home / ".claude.json").read_text(encoding="utf-8"))
    [entry] = [
        p["mcpServers"]["codex-mcp"]
        for p in state["projects"].values()
        if "codex-mcp" in p.get("mcpServers", {})
    ]
    assert (entry["type"], entry["command"], entry["args"]) == ("stdio", "uvx", ["codex-mcp"])
