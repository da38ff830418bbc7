"""Shutting down on stdin EOF: running turns get a bounded drain, then no child is left.

(Signals, the clients' way of stopping us, are tested with their real sequences in
tests/e2e/clients/test_client_stops.py.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import anyio
import pytest

from tests.e2e.client import server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import RawClient
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

DRAIN_MS = 1500
# Drain plus the bounded child shutdown (stdin close grace, SIGTERM, SIGKILL), with room for a busy machine.
EXIT_BOUND_S = DRAIN_MS / 1000 + 8


async def _server_with_a_running_turn(codex_env: CodexEnv, stderr: BinaryIO) -> RawClient:
    env = server_env(codex_env, {"CODEX_MCP_DRAIN_TIMEOUT_MS": str(DRAIN_MS)})
    process = await anyio.open_process(
        [sys.executable, "-m", "codex_mcp"], env=env, cwd=codex_env.workspace, stderr=stderr
    )
    client = RawClient(process)
    await client.initialize()
    started = await client.request(
        "tools/call",
        {
            "name": "codex",
            "arguments": {
                "prompt": "scenario:slow take long",
                "approvalPolicy": "never",
                "sandbox": "read-only",
            },
        },
    )
    assert started["result"]["structuredContent"]["status"] == "running"
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}", argv_contains=b"app-server")
    return client


async def test_stdin_eof_with_a_running_turn_exits_within_the_drain_bound_leaving_no_child(
    codex_env: CodexEnv, tmp_path: Path
) -> None:
    with (tmp_path / "stderr.log").open("wb") as stderr, anyio.fail_after(60):
        client = await _server_with_a_running_turn(codex_env, stderr)
        assert client.process.stdin is not None
        closed_at = anyio.current_time()
        await client.process.stdin.aclose()
        assert await client.process.wait() == 0
        took = anyio.current_time() - closed_at
    assert DRAIN_MS / 1000 <= took <= EXIT_BOUND_S
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []
    assert "waiting for 1 running turn" in (tmp_path / "stderr.log").read_text()
