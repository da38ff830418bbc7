"""Sessions on remote app-servers (CODEX_MCP_HOSTS) on the real pinned Codex: two `codex app-server
--listen ws://127.0.0.1:0 --ws-auth capability-token` listeners with token files stand in for two
machines. New sessions spread over them, a session can name its host, a host that goes away fails
only its own running turn (naming it), and no token shows anywhere."""

from __future__ import annotations

import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from codex_mcp.errors import CodexMcpError
from codex_mcp.sessions.backend import TurnRequest
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.settings import CodexExecutable, Settings
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import PLAIN_TEXT
from tests.integration.test_app_server_socket import TOKEN, app_server_listening

pytestmark = [pytest.mark.real_codex, pytest.mark.timeout(180), pytest.mark.anyio]

WAIT_S = 90.0


def _thread(codex_env: CodexEnv, host: str | None = None) -> ThreadSettings:
    return ThreadSettings(
        approval_policy="never", sandbox="read-only", cwd=str(codex_env.workspace), host=host
    )


async def test_sessions_spread_over_the_hosts_and_a_host_that_goes_away_fails_only_its_turn(
    codex_env: CodexEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    auth = ("--ws-auth", "capability-token", "--ws-token-file", str(token_file))
    with anyio.fail_after(WAIT_S):
        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(
                app_server_listening(codex_env, "ws://127.0.0.1:0", *auth)
            )
            second = await stack.enter_async_context(
                app_server_listening(codex_env, "ws://127.0.0.1:0", *auth)
            )
            hosts = tmp_path / "hosts.toml"
            hosts.write_text(
                f'[[hosts]]\nname = "one"\nurl = "{first.url}"\ntoken_file = "token"\n'
                f'[[hosts]]\nname = "two"\nurl = "{second.url}"\ntoken_file = "token"\n'
            )
            settings = Settings.from_env({"CODEX_MCP_HOSTS": str(hosts), "CODEX_MCP_DRAIN_TIMEOUT_MS": "1"})
            codex = CodexExecutable(codex_env.binary, "test")
            async with SessionManager.open(codex, settings) as manager:
                done: list[Session] = []
                for _ in range(4):
                    session = await manager.start(
                        _thread(codex_env), TurnRequest(prompt="scenario:plain hi"), []
                    )
                    await session.turn_finished.wait()
                    done.append(session)
                placed = sorted(session.settings.host or "" for session in done)
                assert placed == ["one", "one", "two", "two"]  # the least busy host each time
                assert {s.result["text"] for s in done if s.result} == {PLAIN_TEXT}

                with pytest.raises(CodexMcpError) as unknown:
                    await manager.start(_thread(codex_env, "three"), TurnRequest(prompt="hi"), [])
                assert (unknown.value.code, unknown.value.field) == ("INVALID_ARGUMENT", "advanced.host")
                assert "the hosts are one, two" in unknown.value.message

                doomed = await manager.start(
                    _thread(codex_env, "one"), TurnRequest(prompt="scenario:slow a"), []
                )
                spared = await manager.start(
                    _thread(codex_env, "two"), TurnRequest(prompt="scenario:slow b"), []
                )
                os.kill(first.child.pid, signal.SIGKILL)
                with anyio.fail_after(10):  # the host's connection drops at once
                    await doomed.turn_finished.wait()
                assert doomed.status == "error"
                assert doomed.result is not None
                assert doomed.result["error"]["message"].startswith("host one went away")
                await spared.turn_finished.wait()
                assert spared.status == "idle"
                with pytest.raises(CodexMcpError) as gone:
                    await manager.reply(doomed.session_id, TurnRequest(prompt="scenario:plain again"), [])
                assert gone.value.message.startswith("host one: ")
    assert TOKEN not in caplog.text
