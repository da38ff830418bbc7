"""Shutting down: on stdin EOF running turns get a bounded drain; on a client's stop signals the
server saves every session, stops every child and exits 0 before the client's SIGKILL."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.abc
import pytest

from tests.e2e.client import running_server, server_env
from tests.e2e.processes import live_processes_with_env
from tests.e2e.raw_client import RawClient
from tests.harness.codex_env import CodexEnv
from tests.harness.scenarios import PLAIN_TEXT

pytestmark = [pytest.mark.anyio, pytest.mark.real_codex]

DRAIN_MS = 1500
# Drain plus the bounded child shutdown (stdin close grace, SIGTERM, SIGKILL), with room for a busy machine.
EXIT_BOUND_S = DRAIN_MS / 1000 + 8


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


# The stop sequences the clients use (CLIENTS.md): (seconds after the first signal, signal, to the
# whole process group?). The server must be gone, with exit code 0, before the sequence reaches
# its SIGKILL. Codex's SIGKILL comes 120-260 ms after its SIGTERM; the latest is used here, so
# that a loaded CI machine measures the server, not its own scheduling.
_CLAUDE_CODE = ((0.0, signal.SIGINT, False), (0.1, signal.SIGTERM, False), (0.5, signal.SIGKILL, False))
_CODEX = ((0.0, signal.SIGTERM, True), (0.26, signal.SIGKILL, False))
StopSequence = tuple[tuple[float, signal.Signals, bool], ...]


async def _stop_like(process: anyio.abc.Process, sequence: StopSequence) -> tuple[int, float]:
    """Play `sequence` on `process` until it exits: (its exit code, seconds from the first signal)."""
    started = anyio.current_time()
    code: int | None = None
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:

            async def play() -> None:
                for at, signum, group in sequence:
                    await anyio.sleep(max(0.0, started + at - anyio.current_time()))
                    if process.returncode is not None:
                        return
                    if group:
                        os.killpg(process.pid, signum)
                    else:
                        process.send_signal(signum)

            task_group.start_soon(play)
            code = await process.wait()
            task_group.cancel_scope.cancel()
    assert code is not None
    return code, anyio.current_time() - started


async def _idle_server(codex_env: CodexEnv, stderr: BinaryIO) -> RawClient:
    process = await anyio.open_process(
        [sys.executable, "-m", "codex_mcp"],
        env=server_env(codex_env),
        cwd=codex_env.workspace,
        stderr=stderr,
        start_new_session=True,
    )
    client = RawClient(process)
    await client.initialize()
    return client


@pytest.mark.parametrize("sequence", [_CLAUDE_CODE, _CODEX], ids=["claude-code", "codex"])
async def test_an_idle_server_exits_0_on_the_first_signal_of_a_client_stop_sequence(
    codex_env: CodexEnv, tmp_path: Path, sequence: StopSequence
) -> None:
    with (tmp_path / "stderr.log").open("wb") as stderr:
        client = await _idle_server(codex_env, stderr)
        # A tools/call makes sure the whole server (not only the early answers) is up.
        listed = await client.request(
            "tools/call", {"name": "codex_session", "arguments": {"action": "list"}}
        )
        assert listed["result"]["structuredContent"]["sessions"] == []
        code, _ = await _stop_like(client.process, sequence)
    assert code == 0
    assert f"{sequence[0][1].name}: stopped in" in (tmp_path / "stderr.log").read_text()


@pytest.mark.parametrize("sequence", [_CLAUDE_CODE, _CODEX], ids=["claude-code", "codex"])
async def test_a_client_stop_sequence_mid_turn_records_the_cut_turn_and_leaves_nothing_running(
    codex_env: CodexEnv, tmp_path: Path, sequence: StopSequence
) -> None:
    with (tmp_path / "stderr.log").open("wb") as stderr, anyio.fail_after(60):
        env = server_env(codex_env)
        process = await anyio.open_process(
            [sys.executable, "-m", "codex_mcp"],
            env=env,
            cwd=codex_env.workspace,
            stderr=stderr,
            start_new_session=True,
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
        session_id = started["result"]["structuredContent"]["sessionId"]
        code, _ = await _stop_like(process, sequence)
    assert code == 0
    assert live_processes_with_env(f"CODEX_HOME={codex_env.codex_home}") == []
    async with running_server(codex_env) as mcp:
        listed = await mcp.call("codex_session", {"action": "list"})
        assert [(s["sessionId"], s["status"]) for s in listed["sessions"]] == [(session_id, "error")]
        poll = await mcp.call(
            "codex_check", {"action": "poll", "sessionId": session_id, "cursor": 0, "maxEvents": 500}
        )
        assert poll["result"]["status"] == "error"
        assert poll["result"]["reason"] == "client_stopped"
        assert f"({sequence[0][1].name})" in poll["result"]["error"]["message"]
        reply = await mcp.call(
            "codex_reply", {"sessionId": session_id, "prompt": "go on", "waitForResult": 30000}
        )
        assert reply["result"]["status"] == "completed"
        assert reply["result"]["text"] == PLAIN_TEXT
