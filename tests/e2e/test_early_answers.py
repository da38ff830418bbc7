"""The handshake is answered before the SDK has loaded, and the answers are the SDK's, byte for byte."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from codegen.early_probe import legacy_requests, modern_requests, sdk_answers
from tests.e2e.client import server_env
from tests.harness.codex_env import CodexEnv

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]


async def _answers_over_stdio(codex_env: CodexEnv, requests: list[dict[str, Any]], log: Path) -> list[bytes]:
    """The lines a real server process writes for `requests` (sent at once, as clients do)."""
    wanted = sum(1 for request in requests if "id" in request)
    with log.open("wb") as stderr, anyio.fail_after(30):
        async with await anyio.open_process(
            [sys.executable, "-m", "codex_mcp"],
            env=server_env(codex_env, {"CODEX_MCP_LOG_LEVEL": "DEBUG"}),
            cwd=codex_env.workspace,
            stderr=stderr,
        ) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            await process.stdin.send(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
            output = b""
            while output.count(b"\n") < wanted:
                output += await process.stdout.receive()
            # A tools/call is answered by the SDK, so by now the early answers were checked.
            params: dict[str, Any] = {"name": "codex_session", "arguments": {"action": "list"}}
            if "_meta" in requests[-1].get("params", {}):
                params["_meta"] = requests[-1]["params"]["_meta"]
            call = {"jsonrpc": "2.0", "id": "done", "method": "tools/call", "params": params}
            await process.stdin.send(json.dumps(call).encode() + b"\n")
            while output.count(b"\n") < wanted + 1:
                output += await process.stdout.receive()
            await process.stdin.aclose()
            assert await process.wait() == 0
    lines = output.split(b"\n")
    assert json.loads(lines[wanted])["id"] == "done"
    return lines[:wanted]


@pytest.mark.parametrize(
    "requests",
    [legacy_requests("2025-11-25"), legacy_requests("2025-06-18"), modern_requests("2026-07-28")],
    ids=["legacy-2025-11-25", "legacy-2025-06-18-as-codex-sends", "modern-2026-07-28"],
)
async def test_the_early_answers_are_the_sdks_byte_for_byte_and_come_before_it_loads(
    codex_env: CodexEnv, tmp_path: Path, requests: list[dict[str, Any]]
) -> None:
    log = tmp_path / "stderr.log"
    over_stdio = await _answers_over_stdio(codex_env, requests, log)
    assert over_stdio == await sdk_answers(requests)
    text = log.read_text()
    answered_early = [r["method"] for r in requests if "id" in r and f"answered {r['method']} early" in text]
    assert answered_early[:2] == [r["method"] for r in requests if "id" in r][:2]
    assert "matches the SDK's" in text
    assert "differs from the SDK's" not in text
