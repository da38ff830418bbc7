"""Unattended sessions end: idle ones are cancelled after a warning, finished ones are forgotten."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests.e2e.client import running_server
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

SHORT_LIFETIMES = {
    "CODEX_MCP_IDLE_TTL_MS": "2500",
    "CODEX_MCP_TTL_WARNING_MS": "1500",
    "CODEX_MCP_TERMINAL_TTL_MS": "2500",
}


async def test_an_idle_session_is_warned_then_cancelled_then_forgotten(codex_env: CodexEnv) -> None:
    async with running_server(codex_env, SHORT_LIFETIMES) as mcp:
        out = await mcp.call(
            "codex",
            {
                "prompt": "scenario:plain hi",
                "approvalPolicy": "never",
                "sandbox": "read-only",
                "advanced": {"waitForResult": 30000},
            },
        )
        session_id = out["sessionId"]
        final, events = await mcp.poll_until(session_id, lambda p: p["status"] == "cancelled", timeout_s=20)
        info = await mcp.call("codex_session", {"action": "get", "sessionId": session_id})
        with anyio.fail_after(20):
            while True:  # forgotten once the terminal lifetime passes; nothing to wait on but time
                gone: Any = await mcp.raw_call("codex_session", {"action": "get", "sessionId": session_id})
                if gone.is_error:
                    break
                await anyio.sleep(0.5)
    warnings = [e for e in events if e["data"].get("method") == "codex-mcp/ttl_warning"]
    assert len(warnings) == 1
    assert warnings[0]["data"]["reason"] == "idle_timeout"
    assert final["status"] == "cancelled"
    assert info["cancelledReason"] == "idle_timeout"
    assert gone.structured_content["error"]["code"] == "SESSION_NOT_FOUND"
