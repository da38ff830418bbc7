"""Starting the server: wrong settings stop it with a message naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.client import server_env
from tests.harness.codex_env import CodexEnv

pytestmark = pytest.mark.real_codex

# Starting and refusing takes well under a second; this only bounds a hang.
_START_TIMEOUT_S = 30


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codex_mcp"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=_START_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"CODEX_MCP_COMMAND": "codex"}, "CODEX_MCP_PATH and CODEX_MCP_COMMAND are mutually exclusive"),
        ({"CODEX_MCP_PATH": "/nonexistent/codex"}, "CODEX_MCP_PATH=/nonexistent/codex: no such file"),
        ({"CODEX_MCP_MODE": "turbo"}, "CODEX_MCP_MODE=turbo"),
        ({"CODEX_MCP_HEARTBEAT_MS": "soon"}, "CODEX_MCP_HEARTBEAT_MS=soon"),
    ],
)
def test_a_wrong_setting_stops_the_server_naming_the_variable(
    codex_env: CodexEnv, extra: dict[str, str], message: str
) -> None:
    completed = _start(server_env(codex_env, extra))
    assert completed.returncode == 2
    assert message in completed.stderr
    assert completed.stdout == ""


def test_a_terminal_on_stdio_stops_a_strict_server(codex_env: CodexEnv) -> None:
    env = server_env(codex_env, {"CODEX_MCP_STDIO_MODE": "strict"})
    completed = subprocess.run(
        ["script", "-qec", f"{sys.executable} -m codex_mcp", "/dev/null"],
        capture_output=True,
        text=True,
        env=env,
        timeout=_START_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 1
    assert "is a terminal" in completed.stdout + completed.stderr
