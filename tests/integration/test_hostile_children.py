"""A Codex child that misbehaves: each case ends in a clear result within a bound, and the server stays up.

The server is the real one, in process (the MCP SDK's in-process client), on the fake app-server of
`tests/harness/fake_app_server.py` in one of its hostile modes. The fake does its hostile act once
(a marker file), so the call after it shows the server still serving, on the same child or on a new
one when the child died. Afterwards no process carrying the test's CODEX_HOME is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, cast

import anyio
import mcp_types as types
import pytest
from mcp import Client

from codex_mcp.backend_mode import ModeChoice, ModeResolver
from codex_mcp.server.app import Startup, build_server
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.wire.app_server import Notification, UnknownMessage, parse_line
from tests.e2e.client import running_server
from tests.e2e.processes import live_processes_with_env
from tests.harness.codex_env import CodexEnv
from tests.harness.fake_app_server import (
    FAKE_FAILURE,
    FAKE_TEXT,
    FLOOD_COUNT,
    UNKNOWN_FLOOD_METHOD,
    garbage_lines,
    write_fake_codex,
)

REQUEST_TIMEOUT_MS: Final = 2000
# A request past its timeout, the child's exit noticed, a turn failed: all well within this.
SLACK_S: Final = 5.0
# Every call of a test, whatever the child does.
TEST_BOUND_S: Final = 60.0
FLOOD_BOUND_S: Final = 30
START: Final = {"approvalPolicy": "never", "sandbox": "read-only"}

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


class Server:
    """An in-process server's client, with the helpers these tests share."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await self.client.call_tool(tool, arguments)

    async def ok(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.call(tool, arguments)
        assert not result.is_error, result.content
        return cast(dict[str, Any], result.structured_content)

    async def error(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.call(tool, arguments)
        assert result.is_error, result.structured_content
        return cast(dict[str, Any], result.structured_content)["error"]

    async def start(self, prompt: str = "hello", wait_ms: int = 10_000) -> dict[str, Any]:
        return await self.ok("codex", {"prompt": prompt, **START, "advanced": {"waitForResult": wait_ms}})

    async def events(self, session_id: str) -> list[dict[str, Any]]:
        poll = await self.ok(
            "codex_check",
            {
                "action": "poll",
                "sessionId": session_id,
                "cursor": 0,
                "maxEvents": 1000,
                "responseMode": "full",
            },
        )
        return cast(list[dict[str, Any]], poll["events"])

    async def still_serving(self) -> None:
        """A new session runs a turn to its end: the server, and a Codex child, work."""
        out = await self.start()
        assert out["status"] == "idle", out
        assert out["result"]["text"] == FAKE_TEXT


@asynccontextmanager
async def hostile(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    target: str = "turn/start",
    request_timeout_ms: int = REQUEST_TIMEOUT_MS,
) -> AsyncGenerator[Server]:
    """The server on a fake Codex in `mode` (its hostile act at the first `target` request)."""
    codex = write_fake_codex(tmp_path / "bin", mode=mode, target=target)
    home = tmp_path / "codex-home"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))
    settings = Settings.from_env(
        {
            "CODEX_MCP_REQUEST_TIMEOUT_MS": str(request_timeout_ms),
            "CODEX_MCP_VALIDATE_OUTPUT": "1",
            "CODEX_MCP_STATE_DIR": str(tmp_path / "state"),
            "CODEX_MCP_DRAIN_TIMEOUT_MS": "100",
            "CODEX_MCP_APP_SERVER": "child",  # the fake's hostile acts are a child's
        }
    )
    startup = Startup(
        settings, CodexExecutable(codex, "test"), ModeResolver.fixed(ModeChoice("app-server", "test"))
    )
    with anyio.fail_after(TEST_BOUND_S):
        async with Client(build_server(startup)) as client:
            yield Server(client)
    assert live_processes_with_env(f"CODEX_HOME={home}") == []


# --- the fake itself ---------------------------------------------------------------------------


async def test_the_fake_speaks_the_pinned_protocol_so_the_hostile_cases_differ_only_by_their_act(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with hostile(tmp_path, monkeypatch, "normal") as server:
        out = await server.start()
        events = await server.events(out["sessionId"])
    methods = [event["data"]["method"] for event in events]
    assert methods == [
        "codex-mcp/turn_requested",
        "turn/started",
        "item/started",
        "item/agentMessage/delta",
        "item/completed",
        "thread/tokenUsage/updated",
        "turn/completed",
    ]
    assert out["result"]["usage"]["totalTokens"] == 120
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


# --- a child that writes nonsense --------------------------------------------------------------


async def test_garbage_lines_around_every_message_are_survived_and_the_turn_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with hostile(tmp_path, monkeypatch, "garbage") as server:
        out = await server.start()
        events = await server.events(out["sessionId"])
        await server.still_serving()
    assert out["status"] == "idle"
    assert out["result"]["text"] == FAKE_TEXT
    # The lone surrogate the child sent reaches the caller as U+FFFD, never as a broken string.
    deltas = "".join(e["data"]["delta"] for e in events if e["data"].get("itemId") == "i")
    assert deltas
    assert set(deltas) == {"\ufffd"}
    # Every garbage line was typed as unknown; none reached the reader's last-resort handler.
    assert "failed to dispatch" not in caplog.text
    assert "app-server sent not JSON" in caplog.text


def test_every_garbage_line_parses_as_an_unknown_message_without_raising() -> None:
    parsed = [parse_line(line) for line in garbage_lines("thread-1")]
    surrogate = parsed[-1]
    assert isinstance(surrogate, Notification)
    assert surrogate.raw["params"]["delta"] == "\ufffd"
    assert all(isinstance(message, UnknownMessage) for message in parsed[:8])


@pytest.mark.parametrize("target", ["thread/start", "turn/start"])
@pytest.mark.parametrize("mode", ["truncated", "silent"])
async def test_an_answer_that_never_comes_whole_fails_with_timeout_and_the_next_call_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, target: str
) -> None:
    async with hostile(tmp_path, monkeypatch, mode, target) as server:
        began = time.monotonic()
        error = await server.error("codex", {"prompt": "hello", **START})
        waited = time.monotonic() - began
        listed = await server.ok("codex_session", {"action": "list"})
        await server.still_serving()
    assert error["code"] == "TIMEOUT"
    assert target in error["message"]
    assert REQUEST_TIMEOUT_MS / 1000 <= waited <= REQUEST_TIMEOUT_MS / 1000 + SLACK_S
    if target == "turn/start":
        [session] = listed["sessions"]
        assert session["status"] == "error"


async def test_a_line_longer_than_the_limit_is_dropped_and_the_turn_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with hostile(tmp_path, monkeypatch, "huge_line") as server:
        out = await server.start()
        await server.still_serving()
    assert out["status"] == "idle"
    assert out["result"]["text"] == FAKE_TEXT
    assert "dropped a stdout line" in caplog.text


async def test_a_flood_of_unknown_notifications_is_read_through_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Reading 100 000 lines takes a few seconds: more than this module's short request timeout.
    async with hostile(tmp_path, monkeypatch, "flood", request_timeout_ms=FLOOD_BOUND_S * 1000) as server:
        began = time.monotonic()
        out = await server.start(wait_ms=FLOOD_BOUND_S * 1000)
        took = time.monotonic() - began
        await server.still_serving()
    assert out["status"] == "idle"
    assert out["result"]["text"] == FAKE_TEXT
    assert took < FLOOD_BOUND_S
    # The connection's own log shows the first few and a count, not one line per line.
    connection_logs = [
        r
        for r in caplog.records
        if r.name == "codex_mcp.backends.app_server" and r.levelno >= logging.WARNING
    ]
    assert any(UNKNOWN_FLOOD_METHOD in r.getMessage() for r in connection_logs)
    assert len(connection_logs) <= 20 + FLOOD_COUNT // 10_000 + 1


# --- a child that dies ------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["thread/start", "turn/start"])
async def test_a_child_exiting_mid_answer_fails_the_call_and_the_next_call_starts_a_new_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    async with hostile(tmp_path, monkeypatch, "exit_mid_response", target) as server:
        began = time.monotonic()
        error = await server.error("codex", {"prompt": "hello", **START})
        waited = time.monotonic() - began
        await server.still_serving()
    assert error["code"] == "APP_SERVER_START_FAILED"
    assert f"exited during {target}" in error["message"]
    assert waited <= SLACK_S


async def test_a_child_exiting_mid_turn_fails_that_turn_and_the_session_resumes_on_a_new_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile(tmp_path, monkeypatch, "exit_mid_turn") as server:
        out = await server.start()
        reply = await server.ok(
            "codex_reply", {"sessionId": out["sessionId"], "prompt": "again", "waitForResult": 10_000}
        )
        await server.still_serving()
    assert out["status"] == "error"
    assert out["result"]["reason"] == "app_server_exited"
    assert "exited with code 3" in out["result"]["error"]["message"]
    assert reply["status"] == "idle"
    assert reply["result"]["text"] == FAKE_TEXT


async def test_a_failed_turn_reports_codex_error_and_the_session_takes_a_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile(tmp_path, monkeypatch, "normal") as server:
        out = await server.start("fake:fail")
        reply = await server.ok(
            "codex_reply", {"sessionId": out["sessionId"], "prompt": "again", "waitForResult": 10_000}
        )
    assert out["status"] == "error"
    assert out["result"]["status"] == "failed"
    assert out["result"]["error"]["message"] == FAKE_FAILURE
    assert reply["status"] == "idle"


async def test_over_stdio_garbage_from_the_child_never_breaks_the_connection(codex_env: CodexEnv) -> None:
    """The same child behind `python -m codex_mcp`: what only the stdout writer could trip on (the
    lone surrogate) reaches the client as U+FFFD, and the server keeps serving."""
    fake = write_fake_codex(codex_env.root / "fake-bin", mode="garbage")
    with anyio.fail_after(TEST_BOUND_S):
        async with running_server(codex_env, {"CODEX_MCP_PATH": str(fake)}) as mcp:
            out = await mcp.call("codex", {"prompt": "hello", **START, "advanced": {"waitForResult": 10_000}})
            poll, _ = await mcp.poll_until(out["sessionId"], lambda p: p["status"] == "idle")
            events = await mcp.call(
                "codex_check",
                {
                    "action": "poll",
                    "sessionId": out["sessionId"],
                    "cursor": 0,
                    "maxEvents": 1000,
                    "responseMode": "full",
                },
            )
            again = await mcp.call(
                "codex", {"prompt": "hello", **START, "advanced": {"waitForResult": 10_000}}
            )
    deltas = "".join(e["data"]["delta"] for e in events["events"] if e["data"].get("itemId") == "i")
    assert set(deltas) == {"\ufffd"}
    assert poll["result"]["text"] == FAKE_TEXT
    assert again["status"] == "idle"
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []
