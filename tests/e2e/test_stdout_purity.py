"""Nothing but JSON-RPC ever reaches the server's stdout, even with debug logs and noisy commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

from tests.e2e.client import server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import RawClient
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

_SESSION_TIMEOUT_S = 90


async def test_stdout_carries_only_json_rpc_over_a_whole_session(codex_env: CodexEnv, tmp_path: Path) -> None:
    env = server_env(codex_env, {"CODEX_MCP_LOG_LEVEL": "DEBUG"})
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr, anyio.fail_after(_SESSION_TIMEOUT_S):
        async with await anyio.open_process(
            [sys.executable, "-m", "codex_mcp"], env=env, cwd=codex_env.workspace, stderr=stderr
        ) as process:
            client = RawClient(process)
            init = await client.request(
                "initialize",
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            )
            assert "result" in init
            await client.send({"method": "notifications/initialized"})
            started = await client.request(
                "tools/call",
                {
                    "name": "codex",
                    "arguments": {
                        "prompt": "scenario:noisy print a lot",
                        "approvalPolicy": "never",
                        "sandbox": "danger-full-access",
                        "advanced": {"waitForResult": 60000},
                    },
                },
            )
            session_id = started["result"]["structuredContent"]["sessionId"]
            assert started["result"]["structuredContent"]["status"] == "idle"
            poll = await client.request(
                "tools/call",
                {
                    "name": "codex_check",
                    "arguments": {
                        "action": "poll",
                        "sessionId": session_id,
                        "cursor": 0,
                        "maxEvents": 1000,
                        "responseMode": "full",
                    },
                },
            )
            events = poll["result"]["structuredContent"]["events"]
            assert any(e["data"].get("method") == "item/commandExecution/outputDelta" for e in events)
            bad = await client.request("tools/call", {"name": "codex", "arguments": {"prompt": 42}})
            assert bad["result"]["isError"] is True
            assert process.stdin is not None
            await process.stdin.aclose()
            assert process.stdout is not None
            async for chunk in process.stdout:
                client.stdout += chunk
            assert await process.wait() == 0
    raw = client.stdout
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) >= 4
    for line in lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
    assert b"DEBUG" in stderr_path.read_bytes()
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []
