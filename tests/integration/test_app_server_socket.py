"""`connect_app_server` against a real pinned `codex app-server --listen` (mock model) that the test
runs as its own child: over the unix socket, turns outlive our connection and a pending approval is
replayed to the next one; over ws:// with a capability token, the right token works, a wrong one is a
clear error that never quotes it, and /readyz answers."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from codex_mcp.backends.app_server import AppServerConnection, connect_app_server
from codex_mcp.backends.process import ChildProcess, open_child
from codex_mcp.backends.readyz import probe_ready
from codex_mcp.errors import CodexMcpError
from codex_mcp.wire.app_server import Notification, ServerRequest, UnknownMessage
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.scenarios import PLAIN_TEXT, ScenarioOptions

WAIT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
CLIENT_VERSION = "0.0.1-test"
TOKEN = "cap-7c1d9e2b4f6a8e0d"
_LISTENING = re.compile(r"listening on: ws://127\.0\.0\.1:(\d+)")

pytestmark = [pytest.mark.real_codex, pytest.mark.timeout(180)]

T = TypeVar("T")


class Recorder:
    """An AppServerHandler that keeps everything and wakes waiters on each message."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.server_requests: list[ServerRequest] = []
        self.closed: list[str] = []
        self._changed = anyio.Event()

    def _record(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def on_notification(self, message: Notification) -> None:
        self.notifications.append(message)
        self._record()

    async def on_server_request(self, message: ServerRequest) -> None:
        self.server_requests.append(message)
        self._record()

    async def on_unknown(self, message: UnknownMessage) -> None:
        self._record()

    async def on_closed(self, reason: str, stderr_tail: str) -> None:
        self.closed.append(reason)
        self._record()

    async def wait_for(self, find: Callable[[], T | None]) -> T:
        while (found := find()) is None:
            await self._changed.wait()
        return found

    def notification(self, method: str, turn_id: str) -> Notification | None:
        for note in self.notifications:
            params = note.raw.get("params", {})
            if (
                note.method == method
                and (params.get("turn", {}).get("id") or params.get("turnId")) == turn_id
            ):
                return note
        return None

    def first_request(self) -> ServerRequest | None:
        return self.server_requests[0] if self.server_requests else None


@dataclass
class Service:
    """A `codex app-server --listen` child of the test, and the address to reach it."""

    child: ChildProcess
    url: str


@asynccontextmanager
async def app_server_listening(codex_env: CodexEnv, listen: str, *options: str) -> AsyncGenerator[Service]:
    """Start the listener; yield once it answers; on exit stop it and all it started."""
    argv = codex_env.app_server_argv("--listen", listen, *options)
    async with open_child(argv, env=codex_env.env(), cwd=codex_env.workspace) as child:
        with anyio.fail_after(WAIT_S):
            url = await _wait_listening(child, listen)
        yield Service(child, url)


async def _wait_listening(child: ChildProcess, listen: str) -> str:
    while True:
        assert child.returncode is None, f"the service exited: {child.stderr_tail()}"
        if listen.startswith("unix://"):
            url = listen
        else:
            found = _LISTENING.search(child.stderr_tail())
            url = f"ws://127.0.0.1:{found.group(1)}" if found else ""
        if url and (await probe_ready(url, token=TOKEN, timeout_s=2)).ready:
            return url
        await anyio.sleep(0.05)


def _connect(url: str, recorder: Recorder, token: str | None = None) -> Any:
    return connect_app_server(url, token=token, handler=recorder, client_version=CLIENT_VERSION)


async def start_thread(connection: AppServerConnection, codex_env: CodexEnv, **params: Any) -> str:
    defaults = {"cwd": str(codex_env.workspace), "approvalPolicy": "never", "sandbox": "read-only"}
    result = await connection.request("thread/start", defaults | params, timeout_s=REQUEST_TIMEOUT_S)
    return result.thread.id


async def start_turn(connection: AppServerConnection, thread_id: str, text: str) -> str:
    params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
    result = await connection.request("turn/start", params, timeout_s=REQUEST_TIMEOUT_S)
    return result.turn.id


async def _resume(connection: AppServerConnection, thread_id: str) -> Any:
    return await connection.request("thread/resume", {"threadId": thread_id}, timeout_s=REQUEST_TIMEOUT_S)


def _status(completed: Notification) -> str:
    return completed.raw["params"]["turn"]["status"]


def _agent_texts(recorder: Recorder) -> list[str]:
    return [
        n.raw["params"]["item"]["text"]
        for n in recorder.notifications
        if n.method == "item/completed" and n.raw["params"]["item"]["type"] == "agentMessage"
    ]


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    """Where the service listens; Codex makes it a symlink to its own socket."""
    return tmp_path / "svc.sock"


# --- unix socket ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_over_the_unix_socket_a_turn_runs_and_the_peer_is_the_service_we_started(
    codex_env: CodexEnv, socket_path: Path
) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with app_server_listening(codex_env, f"unix://{socket_path}") as service:
            async with _connect(service.url, recorder) as connection:
                thread_id = await start_thread(connection, codex_env)
                turn_id = await start_turn(connection, thread_id, "scenario:plain hi")
                completed = await recorder.wait_for(lambda: recorder.notification("turn/completed", turn_id))
                user_agent = connection.initialize_result.user_agent
                pid = connection.pid
            target = Path(os.readlink(socket_path))

    assert _status(completed) == "completed"
    assert _agent_texts(recorder) == [PLAIN_TEXT]
    assert f"codex-mcp; {CLIENT_VERSION}" in user_agent
    assert pid == service.child.pid
    # Our close is ours, not the service going away.
    assert recorder.closed == []
    assert connection.exit_reason == "closed by codex-mcp"
    assert target.parent.name == f"codex-daemon-{os.getuid()}"
    assert target.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.anyio
async def test_a_turn_goes_on_after_our_connection_closes_and_a_resume_on_a_new_one_sees_it_complete(
    codex_env: CodexEnv, mock_model: MockModelServer, socket_path: Path
) -> None:
    mock_model.options = ScenarioOptions(slow_total_seconds=3.0, slow_chunks=6)
    first, second = Recorder(), Recorder()
    with anyio.fail_after(WAIT_S):
        async with app_server_listening(codex_env, f"unix://{socket_path}") as service:
            async with _connect(service.url, first) as connection:
                thread_id = await start_thread(connection, codex_env)
                turn_id = await start_turn(connection, thread_id, "scenario:slow take your time")
                await first.wait_for(lambda: first.notification("item/agentMessage/delta", turn_id))
            closed_at = anyio.current_time()
            async with _connect(service.url, second) as connection:
                resumed = await _resume(connection, thread_id)
                completed = await second.wait_for(lambda: second.notification("turn/completed", turn_id))
            completed_after_s = anyio.current_time() - closed_at

    assert first.notification("turn/completed", turn_id) is None
    assert resumed.thread.id == thread_id
    assert _status(completed) == "completed"
    # The turn was still running when we left: it finished on its own, seconds later.
    assert completed_after_s > 0.5
    assert mock_model.responses_requests()[-1].scenario == "slow"


@pytest.mark.anyio
async def test_a_pending_approval_is_replayed_with_its_id_to_the_next_connection_and_answering_ends_the_turn(
    codex_env: CodexEnv, socket_path: Path
) -> None:
    first, second = Recorder(), Recorder()
    with anyio.fail_after(WAIT_S):
        async with app_server_listening(codex_env, f"unix://{socket_path}") as service:
            async with _connect(service.url, first) as connection:
                thread_id = await start_thread(
                    connection, codex_env, approvalPolicy="untrusted", sandbox="workspace-write"
                )
                turn_id = await start_turn(connection, thread_id, "scenario:shell run it")
                asked = await first.wait_for(first.first_request)
            async with _connect(service.url, second) as connection:
                await _resume(connection, thread_id)
                replayed = await second.wait_for(second.first_request)
                await connection.respond(replayed.id, {"decision": "accept"})
                completed = await second.wait_for(lambda: second.notification("turn/completed", turn_id))
                resolved = [n for n in second.notifications if n.method == "serverRequest/resolved"]

    assert asked.method == "item/commandExecution/requestApproval"
    assert (replayed.method, replayed.id) == (asked.method, asked.id)
    assert replayed.raw["params"]["threadId"] == thread_id
    assert _status(completed) == "completed"
    assert (codex_env.workspace / "made.txt").read_text() == "hi\n"
    assert [n.raw["params"]["requestId"] for n in resolved] == [asked.id]


@pytest.mark.anyio
async def test_a_killed_service_closes_the_connection_and_leaves_a_stale_socket_the_probe_calls_refused(
    codex_env: CodexEnv, socket_path: Path
) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with app_server_listening(codex_env, f"unix://{socket_path}") as service:
            target = Path(os.readlink(socket_path))
            try:
                async with _connect(service.url, recorder) as connection:
                    os.kill(service.child.pid, signal.SIGKILL)
                    with anyio.fail_after(5):
                        await connection.wait_closed()
                await service.child.wait_exit()
                after = await probe_ready(service.url, timeout_s=2)
                left_behind = _is_socket(target)
            finally:
                _remove_socket(target)

    assert recorder.closed == ["dropped the connection"]
    assert left_behind
    assert not after.ready
    assert after.detail.endswith("connection refused (is the app-server running?)")


def _is_socket(path: Path) -> bool:
    return path.is_socket()


def _remove_socket(target: Path) -> None:
    # Codex removes its socket on a clean exit only; a killed one's is the test's to remove.
    target.unlink(missing_ok=True)
    target.with_name(target.name + ".lock").unlink(missing_ok=True)


# --- ws:// with a capability token ---------------------------------------------------------------


@pytest.fixture
def token_file(codex_env: CodexEnv) -> Path:
    """The capability token, private as Codex's README asks."""
    path = codex_env.root / "ws-token"
    path.write_text(TOKEN, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.anyio
async def test_over_ws_the_right_token_runs_a_turn_a_wrong_one_is_a_401_that_never_quotes_it(
    codex_env: CodexEnv, token_file: Path
) -> None:
    wrong = "not-the-token-31415926"
    recorder = Recorder()
    auth = ("--ws-auth", "capability-token", "--ws-token-file", str(token_file))
    with anyio.fail_after(WAIT_S):
        async with app_server_listening(codex_env, "ws://127.0.0.1:0", *auth) as service:
            ready = await probe_ready(service.url)
            async with _connect(service.url, recorder, token=TOKEN) as connection:
                thread_id = await start_thread(connection, codex_env)
                turn_id = await start_turn(connection, thread_id, "scenario:plain hi")
                completed = await recorder.wait_for(lambda: recorder.notification("turn/completed", turn_id))
                pid = connection.pid
            refusals: list[CodexMcpError] = []
            for token in (wrong, None):
                with pytest.raises(CodexMcpError) as caught:
                    async with _connect(service.url, Recorder(), token=token):
                        pass
                refusals.append(caught.value)
            stderr = service.child.stderr_tail()

    assert ready.ready, ready.detail
    assert _status(completed) == "completed"
    assert pid is None
    assert [error.code for error in refusals] == ["APP_SERVER_START_FAILED"] * 2
    assert "HTTP 401: invalid websocket bearer token; check the token" in refusals[0].message
    assert "HTTP 401: missing websocket bearer token" in refusals[1].message
    for error in refusals:
        assert service.url in error.message
        assert TOKEN not in str(error) + error.message
        assert wrong not in str(error) + error.message
    assert TOKEN not in stderr
