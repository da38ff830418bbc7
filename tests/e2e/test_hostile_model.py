"""A model provider that misbehaves, through the real Codex: a clear error result within a bound, then the
next call works.

MCP client -> codex-mcp -> real Codex -> the mock model answering 500, dropping the stream, or going
silent in the middle of it. The provider is configured the way these tests need it: no retries, and
for the silent stream an idle timeout of IDLE_TIMEOUT_MS (Codex's default is five minutes, which the
running-session TTL bounds on our side).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from typing import Final

import anyio
import pytest

from tests.e2e.client import McpServerUnderTest, codex_args, running_server
from tests.e2e.processes import live_processes_with_env
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

IDLE_TIMEOUT_MS: Final = 2000
REQUEST_RETRIES: Final = 3
RUNNING_TTL_MS: Final = 3000
# The watchdog looks once a second; Codex's own wind-down and a poll add a little more.
SLACK_S: Final = 5.0
TEST_BOUND_S: Final = 90.0


@pytest.fixture
def impatient_env(codex_env: CodexEnv) -> CodexEnv:
    """`codex_env` whose provider gives up on a silent stream after IDLE_TIMEOUT_MS."""
    path = codex_env.codex_home / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert "stream_max_retries = 0\n" in text
    idle = f"stream_max_retries = 0\nstream_idle_timeout_ms = {IDLE_TIMEOUT_MS}\n"
    path.write_text(text.replace("stream_max_retries = 0\n", idle), encoding="utf-8")
    return codex_env


@asynccontextmanager
async def _server(
    codex_env: CodexEnv, extra_env: Mapping[str, str] | None = None
) -> AsyncGenerator[McpServerUnderTest]:
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, extra_env) as mcp:
            yield mcp
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []


async def _reply_works(mcp: McpServerUnderTest, session_id: str) -> None:
    reply = await mcp.call(
        "codex_reply", {"sessionId": session_id, "prompt": "scenario:plain again", "waitForResult": 30_000}
    )
    assert reply["status"] == "idle", reply
    assert reply["result"]["text"] == PLAIN_TEXT


async def test_http_500s_fail_the_turn_with_the_providers_error_and_the_session_takes_a_reply(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with _server(codex_env) as mcp:
        out = await mcp.call(
            "codex", codex_args("scenario:http500 fail please", sandbox="read-only", wait_ms=30_000)
        )
        await _reply_works(mcp, out["sessionId"])
    assert out["status"] == "error"
    assert out["execution"]["reason"] == "completed"
    assert out["result"]["status"] == "failed"
    # Codex words a 500 its own way ("...experiencing high demand..."); the point is that it says.
    assert out["result"]["error"]["message"]
    assert [r.status for r in mock_model.responses_requests()][:1] == [500]


async def test_a_dropped_stream_fails_the_turn_and_the_session_takes_a_reply(codex_env: CodexEnv) -> None:
    async with _server(codex_env) as mcp:
        out = await mcp.call(
            "codex", codex_args("scenario:drop the stream breaks", sandbox="read-only", wait_ms=30_000)
        )
        await _reply_works(mcp, out["sessionId"])
    assert out["status"] == "error"
    assert out["result"]["status"] == "failed"
    assert out["result"]["error"]["message"]


async def test_a_stream_gone_silent_fails_the_turn_once_codex_gives_up_on_it(impatient_env: CodexEnv) -> None:
    async with _server(impatient_env) as mcp:
        began = time.monotonic()
        out = await mcp.call(
            "codex", codex_args("scenario:hang then nothing", sandbox="read-only", wait_ms=30_000)
        )
        waited = time.monotonic() - began
        await _reply_works(mcp, out["sessionId"])
    assert out["status"] == "error"
    assert out["result"]["status"] == "failed"
    assert out["result"]["error"]["message"]
    assert IDLE_TIMEOUT_MS / 1000 <= waited <= IDLE_TIMEOUT_MS / 1000 + SLACK_S


async def test_a_stream_gone_silent_is_cancelled_by_the_running_ttl_when_codex_would_wait_longer(
    codex_env: CodexEnv,
) -> None:
    ttl = {"CODEX_MCP_RUNNING_TTL_MS": str(RUNNING_TTL_MS), "CODEX_MCP_TTL_WARNING_MS": "1000"}
    async with _server(codex_env, ttl) as mcp:
        began = time.monotonic()
        started = await mcp.call(
            "codex", codex_args("scenario:hang then nothing", sandbox="read-only", wait_ms=0)
        )
        final, events = await mcp.run_to_end(started["sessionId"])
        waited = time.monotonic() - began
        fresh = await mcp.call(
            "codex", codex_args("scenario:plain hello", sandbox="read-only", wait_ms=30_000)
        )
    assert final["status"] == "cancelled"
    assert final["result"]["status"] == "cancelled"
    assert final["result"]["reason"] == "running_timeout"
    assert any(e["data"].get("method") == "codex-mcp/ttl_warning" for e in events)
    assert RUNNING_TTL_MS / 1000 <= waited <= RUNNING_TTL_MS / 1000 + SLACK_S
    assert fresh["status"] == "idle"
    assert fresh["result"]["text"] == PLAIN_TEXT


@pytest.fixture
def retrying_env(codex_env: CodexEnv) -> CodexEnv:
    """`codex_env` whose provider retries a failed request REQUEST_RETRIES times."""
    path = codex_env.codex_home / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert "request_max_retries = 0\n" in text
    retries = f"request_max_retries = {REQUEST_RETRIES}\n"
    path.write_text(text.replace("request_max_retries = 0\n", retries), encoding="utf-8")
    return codex_env


async def test_500s_on_every_retry_fail_the_turn_once_codex_stops_retrying(
    retrying_env: CodexEnv, mock_model: MockModelServer
) -> None:
    async with _server(retrying_env) as mcp:
        out = await mcp.call(
            "codex", codex_args("scenario:http500 fail every time", sandbox="read-only", wait_ms=30_000)
        )
        final, events = await mcp.run_to_end(out["sessionId"])
        fresh = await mcp.call(
            "codex", codex_args("scenario:plain hello", sandbox="read-only", wait_ms=30_000)
        )
    assert final["status"] == "error"
    assert final["result"]["status"] == "failed"
    assert final["result"]["error"]["message"]
    statuses = [r.status for r in mock_model.responses_requests() if r.scenario == "http500"]
    assert statuses == [500] * (REQUEST_RETRIES + 1)
    assert [e["type"] for e in events if e["data"].get("method") == "error"] == ["error"]
    assert fresh["status"] == "idle"
