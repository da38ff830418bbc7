"""The shared Codex service on the real pinned Codex: started detached by the first server that
needs it, found again by the next, stopped by its keeper once nobody is attached and no turn runs,
and replaced when it was killed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from codex_mcp.backends.app_server import connect_app_server
from codex_mcp.proc import proc_tree
from codex_mcp.service.attach import SharedService
from codex_mcp.service.layout import SERVICE_VARIABLE, ServiceLayout, service_key
from codex_mcp.service.locks import is_held
from codex_mcp.sessions.backend import TurnRequest
from codex_mcp.sessions.manager import SessionManager
from codex_mcp.sessions.session import ThreadSettings
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.state.store import StateStore
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import PLAIN_TEXT
from tests.harness.waiting import wait_until
from tests.integration.test_app_server_socket import Recorder, start_thread, start_turn

pytestmark = [pytest.mark.real_codex, pytest.mark.timeout(180), pytest.mark.anyio]

WAIT_S = 60.0
IDLE_S = 1.0


def _service(codex_env: CodexEnv, state: Path) -> SharedService:
    key = service_key(codex_env.binary, str(codex_env.env()["CODEX_HOME"]), ())
    layout = ServiceLayout.under(state, key)
    env = codex_env.env({SERVICE_VARIABLE: key})
    return SharedService(layout, [str(codex_env.binary)], env, idle_s=IDLE_S)


def _tagged(key: str) -> proc_tree.ProcessSnapshot:
    return proc_tree.tagged(f"{SERVICE_VARIABLE}={key}".encode())


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "state"
    yield root
    # Whatever a test left: nothing of a service may outlive it.
    for layout_dir in (root / "svc").glob("*"):
        left = _tagged(layout_dir.name)
        proc_tree.signal_all(left, signal.SIGKILL)


def _codex_pid(layout: ServiceLayout) -> int:
    pid = layout.read_info().get("codexPid")
    assert isinstance(pid, int), layout.read_info()
    return pid


async def test_two_servers_share_one_service_which_stops_once_both_let_go(
    codex_env: CodexEnv, state: Path
) -> None:
    first, second = _service(codex_env, state), _service(codex_env, state)
    with anyio.fail_after(WAIT_S):
        url = await first.ensure()
        codex_pid = _codex_pid(first.layout)
        assert await second.ensure() == url
        assert _codex_pid(second.layout) == codex_pid  # found again, not started twice
        recorder = Recorder()
        async with connect_app_server(url, handler=recorder, client_version="test") as connection:
            assert connection.pid == codex_pid
        first.detach()
        await anyio.sleep(IDLE_S + 1.5)
        assert is_held(first.layout.keeper_lock), "stopped while a server was still attached"
        second.detach()
        await wait_until(
            lambda: not is_held(first.layout.keeper_lock), timeout_s=IDLE_S + 20, what="the idle stop"
        )
    await wait_until(lambda: not _tagged(first.layout.key), timeout_s=10, what="no service process left")
    assert not first.layout.socket.exists()
    assert "idle" in first.layout.log.read_text()


async def test_a_turn_keeps_the_service_running_with_nobody_attached(
    codex_env: CodexEnv, state: Path
) -> None:
    service = _service(codex_env, state)
    with anyio.fail_after(WAIT_S):
        url = await service.ensure()
        recorder = Recorder()
        async with connect_app_server(url, handler=recorder, client_version="test") as connection:
            thread_id = await start_thread(connection, codex_env)
            await start_turn(connection, thread_id, "scenario:slow stay a while")
        service.detach()
        await anyio.sleep(IDLE_S + 2.5)
        assert is_held(service.layout.keeper_lock), "stopped while a turn ran"
        await wait_until(
            lambda: not is_held(service.layout.keeper_lock), timeout_s=WAIT_S, what="the stop after the turn"
        )


async def test_a_killed_service_is_replaced_by_the_next_server(codex_env: CodexEnv, state: Path) -> None:
    service = _service(codex_env, state)
    with anyio.fail_after(WAIT_S):
        await service.ensure()
        old = _codex_pid(service.layout)
        info = service.layout.read_info()
        for pid in (info["keeperPid"], old):
            os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: not is_held(service.layout.keeper_lock), timeout_s=10, what="the kill")
        assert service.layout.socket.is_symlink()  # the dead one's socket is left behind
        started = time.monotonic()
        await service.ensure()
        assert _codex_pid(service.layout) != old
        assert time.monotonic() - started < 30
        service.detach()
        await wait_until(
            lambda: not is_held(service.layout.keeper_lock), timeout_s=IDLE_S + 20, what="the idle stop"
        )


async def test_a_codex_that_cannot_listen_runs_sessions_on_a_child_and_says_why(
    codex_env: CodexEnv,
    state: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    older = tmp_path / "older-codex"
    older.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = "--listen" ] && '
        "{ echo \"error: unexpected argument '--listen' found\" >&2; exit 2; }; done\n"
        f'exec "{codex_env.binary}" "$@"\n'
    )
    older.chmod(0o755)
    for name, value in codex_env.env().items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({"CODEX_MCP_APP_SERVER": "shared", "CODEX_MCP_STATE_DIR": str(state)})
    store = StateStore.open(state)
    try:
        with anyio.fail_after(WAIT_S):
            async with SessionManager.open(CodexExecutable(older, "test"), settings, store=store) as manager:
                thread = ThreadSettings(
                    approval_policy="never", sandbox="read-only", cwd=str(codex_env.workspace)
                )
                session = await manager.start(thread, TurnRequest(prompt="scenario:plain hi"), [])
                await session.turn_finished.wait()
                assert session.status == "idle"
                assert session.result is not None
                assert session.result["text"] == PLAIN_TEXT
    finally:
        store.close()
    assert "cannot run the shared service" in caplog.text
    assert not list((state / "svc").glob("*/keeper.json"))  # no service left behind
