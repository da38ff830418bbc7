"""A Codex app-server grown past its memory bound is replaced once no turn runs on it, on the real
pinned Codex: the stdio child by the server, the shared service by its keeper. The threads resume
on the fresh process, so a reply after a recycle continues its conversation."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from codex_mcp.backends.app_server import connect_app_server
from codex_mcp.proc import proc_tree
from codex_mcp.service.attach import SharedService
from codex_mcp.service.layout import SERVICE_VARIABLE, ServiceLayout, service_key
from codex_mcp.sessions.backend import TurnRequest
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.session import ThreadSettings
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.state.store import StateStore
from tests.e2e.processes import live_processes_with_env
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT
from tests.harness.waiting import wait_until
from tests.integration.test_app_server_socket import Recorder, start_thread, start_turn

pytestmark = [pytest.mark.real_codex, pytest.mark.timeout(180), pytest.mark.anyio]

WAIT_S = 60.0
# Any Codex is past this: every check finds it grown.
TINY_MB = "1"


def _app_servers(codex_env: CodexEnv) -> list[int]:
    return live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}", argv_contains=b"app-server")


@pytest.fixture
def state(tmp_path: Path, codex_env: CodexEnv) -> Iterator[Path]:
    root = tmp_path / "state"
    yield root
    key = service_key(codex_env.binary, str(codex_env.codex_home), ())
    proc_tree.signal_all(proc_tree.tagged(f"{SERVICE_VARIABLE}={key}".encode()), signal.SIGKILL)


async def test_a_grown_stdio_child_is_replaced_between_turns_and_the_reply_keeps_its_context(
    codex_env: CodexEnv,
    mock_model: MockModelServer,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="codex_mcp.sessions.children")
    for name, value in codex_env.env().items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(
        {
            "CODEX_MCP_APP_SERVER_MAX_RSS_MB": TINY_MB,
            "CODEX_MCP_STATE_DIR": str(state),
            "CODEX_MCP_APP_SERVER": "child",
        }
    )
    store = StateStore.open(state)
    try:
        with anyio.fail_after(WAIT_S):
            async with SessionManager.open(
                CodexExecutable(codex_env.binary, "test"), settings, store=store
            ) as manager:
                thread = ThreadSettings(
                    approval_policy="never", sandbox="read-only", cwd=str(codex_env.workspace)
                )
                session = await manager.start(
                    thread, TurnRequest(prompt="scenario:plain remember OSPREY"), []
                )
                await session.turn_finished.wait()
                (first,) = _app_servers(codex_env)
                await wait_until(
                    lambda: first not in _app_servers(codex_env), timeout_s=10, what="the recycle"
                )
                assert _app_servers(codex_env) == []  # nothing runs until a call needs Codex
                await manager.reply(session.session_id, TurnRequest(prompt="scenario:plain the word?"), [])
                await session.turn_finished.wait()
                assert session.status == "idle"
                assert session.result is not None
                assert session.result["text"] == PLAIN_TEXT
                assert first not in _app_servers(codex_env)
    finally:
        store.close()
    assert "recycling codex app-server pid" in caplog.text
    assert "OSPREY" in json.dumps(mock_model.responses_requests()[-1].input_items)  # resumed, not new


async def test_the_keeper_replaces_a_grown_service_once_no_turn_runs(
    codex_env: CodexEnv, state: Path
) -> None:
    key = service_key(codex_env.binary, str(codex_env.codex_home), ())
    layout = ServiceLayout.under(state, key)
    service = SharedService(
        layout, [str(codex_env.binary)], codex_env.env({SERVICE_VARIABLE: key}), idle_s=60, max_rss_mb=1
    )
    with anyio.fail_after(WAIT_S):
        url = await service.ensure()
        first = layout.read_info()["codexPid"]
        recorder = Recorder()
        async with connect_app_server(url, handler=recorder, client_version="test") as connection:
            thread_id = await start_thread(connection, codex_env)
            await start_turn(connection, thread_id, "scenario:slow keep it busy")
            await anyio.sleep(3)  # the keeper checks once a second: a running turn holds it off
            assert layout.read_info()["codexPid"] == first
            await connection.wait_closed()  # recycled once the turn ended: our connection drops
        await wait_until(
            lambda: layout.read_info().get("codexPid") not in (None, first),
            timeout_s=20,
            what="the new Codex",
        )
        await wait_until(lambda: bool(layout.socket.exists()), timeout_s=20, what="the new socket")
        await service.ensure()
        again = Recorder()
        async with connect_app_server(url, handler=again, client_version="test") as connection:
            resumed = await connection.request("thread/resume", {"threadId": thread_id}, timeout_s=30)
            assert resumed.thread.id == thread_id
        service.detach()
    assert "recycling codex pid" in layout.log.read_text()
