"""AppServerConnection against the real pinned Codex (mock model) and a few scripted children."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import textwrap
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import pytest

from codex_mcp.backends.app_server import AppServerConnection, open_app_server
from codex_mcp.errors import AppServerClosedError, AppServerRequestError, CodexMcpError
from codex_mcp.proc import proc_tree
from codex_mcp.wire.app_server import Notification, ServerRequest, UnknownMessage
from tests.harness.codex_env import CodexEnv
from tests.harness.mock_model import MockModelServer
from tests.harness.procs import descendants
from tests.harness.scenarios import (
    FINAL_AFTER_TOOL,
    PLAIN_TEXT,
    Reply,
    ScenarioOptions,
    StreamReply,
    analyse,
    completed,
    created,
    decide,
    function_call_events,
)

# Every wait in a test; a mock-model turn takes about a second.
WAIT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
CLIENT_VERSION = "0.0.1-test"

pytestmark = pytest.mark.timeout(180)

T = TypeVar("T")


class Recorder:
    """An AppServerHandler that keeps everything and wakes waiters on each message."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.server_requests: list[ServerRequest] = []
        self.unknown: list[UnknownMessage] = []
        self.closed: list[tuple[str, str]] = []
        self.fail_on: set[str] = set()
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
        self.unknown.append(message)
        self._record()
        if message.method in self.fail_on:
            raise RuntimeError(f"handler fails on {message.method}")

    async def on_closed(self, reason: str, stderr_tail: str) -> None:
        self.closed.append((reason, stderr_tail))
        self._record()

    async def wait_for(self, find: Callable[[], T | None]) -> T:
        """Wait until `find` returns something (bounded by the caller's timeout)."""
        while (found := find()) is None:
            await self._changed.wait()
        return found

    def turn_completed(self, turn_id: str) -> Notification | None:
        """The `turn/completed` notification of `turn_id`, once it arrived."""
        for note in self.notifications:
            if note.method == "turn/completed" and note.raw["params"]["turn"]["id"] == turn_id:
                return note
        return None

    def methods(self, thread_id: str) -> list[str]:
        """The methods of the notifications about `thread_id`, in order."""
        return [n.method for n in self.notifications if n.raw.get("params", {}).get("threadId") == thread_id]


@asynccontextmanager
async def _connect(codex_env: CodexEnv, recorder: Recorder) -> AsyncGenerator[AppServerConnection]:
    async with open_app_server(
        codex_env.app_server_argv(),
        env=codex_env.env(),
        cwd=codex_env.workspace,
        handler=recorder,
        client_version=CLIENT_VERSION,
    ) as connection:
        yield connection


async def _start_thread(connection: AppServerConnection, codex_env: CodexEnv, **params: Any) -> str:
    defaults = {"cwd": str(codex_env.workspace), "approvalPolicy": "never", "sandbox": "read-only"}
    result = await connection.request("thread/start", defaults | params, timeout_s=REQUEST_TIMEOUT_S)
    return result.thread.id


async def _start_turn(connection: AppServerConnection, thread_id: str, text: str) -> str:
    params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
    result = await connection.request("turn/start", params, timeout_s=REQUEST_TIMEOUT_S)
    return result.turn.id


async def _run_turn(
    connection: AppServerConnection, recorder: Recorder, thread_id: str, text: str
) -> Notification:
    turn_id = await _start_turn(connection, thread_id, text)
    return await recorder.wait_for(lambda: recorder.turn_completed(turn_id))


def _status(completed: Notification) -> str:
    return completed.raw["params"]["turn"]["status"]


# --- the real Codex -------------------------------------------------------------------------------


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_the_handshake_returns_the_codex_user_agent_naming_us(codex_env: CodexEnv) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            user_agent = connection.initialize_result.user_agent
            assert not connection.closed

    assert f"codex-mcp; {CLIENT_VERSION}" in user_agent
    assert connection.closed
    assert connection.exit_reason == "closed by codex-mcp"
    assert recorder.closed == []


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_plain_turn_streams_notifications_that_end_with_turn_completed(codex_env: CodexEnv) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            thread_id = await _start_thread(connection, codex_env)
            completed = await _run_turn(connection, recorder, thread_id, "scenario:plain hi")

    methods = recorder.methods(thread_id)
    assert _status(completed) == "completed"
    assert (
        methods.index("turn/started")
        < methods.index("item/agentMessage/delta")
        < methods.index("turn/completed")
    )
    agent_texts = [
        n.raw["params"]["item"]["text"]
        for n in recorder.notifications
        if n.method == "item/completed" and n.raw["params"]["item"]["type"] == "agentMessage"
    ]
    assert agent_texts == [PLAIN_TEXT]


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_an_approval_request_reaches_the_handler_and_accepting_it_completes_the_turn(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            thread_id = await _start_thread(
                connection, codex_env, approvalPolicy="untrusted", sandbox="workspace-write"
            )
            turn_id = await _start_turn(connection, thread_id, "scenario:shell run it")
            request = await recorder.wait_for(
                lambda: recorder.server_requests[0] if recorder.server_requests else None
            )
            await connection.respond(request.id, {"decision": "accept"})
            completed = await recorder.wait_for(lambda: recorder.turn_completed(turn_id))

    assert request.method == "item/commandExecution/requestApproval"
    assert request.raw["params"]["threadId"] == thread_id
    assert _status(completed) == "completed"
    assert (codex_env.workspace / "made.txt").read_text() == "hi\n"
    assert any(
        n.method == "item/completed" and n.raw["params"]["item"].get("text") == FINAL_AFTER_TOOL
        for n in recorder.notifications
    )


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_turn_on_a_fork_in_the_same_connection_sends_the_parent_conversation(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            parent = await _start_thread(connection, codex_env)
            await _run_turn(connection, recorder, parent, "scenario:plain The parent question.")
            fork = await connection.request("thread/fork", {"threadId": parent}, timeout_s=REQUEST_TIMEOUT_S)
            completed = await _run_turn(
                connection, recorder, fork.thread.id, "scenario:plain The fork question."
            )

    assert fork.thread.id != parent
    assert _status(completed) == "completed"
    last = json.dumps(mock_model.responses_requests()[-1].input_items)
    assert "The parent question." in last
    assert "The fork question." in last


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_request_for_an_unknown_method_fails_with_app_server_request_error(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            with pytest.raises(AppServerRequestError) as caught:
                await connection.request("bogus/method", {}, timeout_s=REQUEST_TIMEOUT_S)
            # The connection stays usable.
            thread_id = await _start_thread(connection, codex_env)

    # Codex 0.163 answers "Invalid request" (-32600), not "method not found".
    assert caught.value.code == -32600
    assert "bogus/method" in caught.value.message
    assert thread_id


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_background_terminals_clean_is_accepted_because_the_experimental_api_is_declared(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            thread_id = await _start_thread(connection, codex_env, sandbox="workspace-write")
            completed = await _run_turn(connection, recorder, thread_id, "scenario:background start it")
            result = await connection.request(
                "thread/backgroundTerminals/clean", {"threadId": thread_id}, timeout_s=REQUEST_TIMEOUT_S
            )

    assert _status(completed) == "completed"
    assert result.model_dump(exclude_none=True) == {}


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_killing_the_app_server_fails_a_pending_request_at_once_and_reports_the_close(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()
    outcome: list[BaseException] = []

    async def pending_request(connection: AppServerConnection) -> None:
        try:
            await connection.request("thread/list", {}, timeout_s=REQUEST_TIMEOUT_S)
        except AppServerClosedError as exc:
            outcome.append(exc)

    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            # Stopped, Codex cannot answer: the request stays pending until the kill.
            os.kill(_pid(connection), signal.SIGSTOP)
            async with anyio.create_task_group() as tg:
                tg.start_soon(pending_request, connection)
                await anyio.wait_all_tasks_blocked()
                assert outcome == []
                os.kill(_pid(connection), signal.SIGKILL)
                with anyio.fail_after(5):
                    await connection.wait_closed()
            with pytest.raises(AppServerClosedError, match="killed by SIGKILL"):
                await connection.request("thread/list", {}, timeout_s=REQUEST_TIMEOUT_S)

    assert len(outcome) == 1
    assert "killed by SIGKILL" in str(outcome[0])
    assert connection.exit_reason == "killed by SIGKILL"
    assert [reason for reason, _tail in recorder.closed] == ["killed by SIGKILL"]


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_after_the_connection_closes_no_process_of_the_app_server_tree_is_alive(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            thread_id = await _start_thread(connection, codex_env, sandbox="workspace-write")
            await _run_turn(connection, recorder, thread_id, "scenario:background start it")
            tree = descendants(_pid(connection)) | {_pid(connection): _start_time(_pid(connection))}

    # The background `sleep 30` runs in a session of its own, out of the process group's reach.
    assert len(tree) > 2
    assert proc_tree.alive(tree) == {}


def _daemonize(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    """A scenario whose command starts a daemon that leaves Codex's tree at once, then says done."""
    if analyse(body).step > 0:
        return decide(body, options)
    command = {"cmd": "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo daemon=$!"}
    return StreamReply(
        (
            created("resp_daemon"),
            *function_call_events("call_daemon", "exec_command", command),
            completed("resp_daemon"),
        )
    )


def _daemon_pid(recorder: Recorder) -> int:
    for note in recorder.notifications:
        item: dict[str, Any] = note.raw["params"]["item"] if note.method == "item/completed" else {}
        found = re.search(r"daemon=(\d+)", str(item.get("aggregatedOutput") or ""))
        if found:
            return int(found.group(1))
    raise AssertionError("the command did not report its daemon")


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_daemon_a_command_started_is_killed_even_after_the_app_server_died(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    mock_model.custom_scenarios["daemonize"] = _daemonize
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect(codex_env, recorder) as connection:
            # Without Codex's Linux sandbox (bwrap --die-with-parent) nothing reaps the daemon.
            thread_id = await _start_thread(connection, codex_env, sandbox="danger-full-access")
            await _run_turn(connection, recorder, thread_id, "scenario:daemonize start it")
            daemon_pid = _daemon_pid(recorder)
            daemon = {daemon_pid: _start_time(daemon_pid)}
            assert daemon_pid not in descendants(_pid(connection))
            os.kill(_pid(connection), signal.SIGKILL)
            await connection.wait_closed()
            assert proc_tree.alive(daemon) == daemon

    assert proc_tree.alive(daemon) == {}


def _pid(connection: AppServerConnection) -> int:
    # A child's pid is always known (only a ws:// connection has none).
    assert connection.pid is not None
    return connection.pid


def _start_time(pid: int) -> int:
    started = proc_tree.start_time(pid)
    assert started is not None
    return started


# --- scripted children: what the real Codex does not do on demand ------------------------------

_FAKE_PRELUDE = """
    import json, sys
    def send(message):
        sys.stdout.write(json.dumps(message) + "\\n")
        sys.stdout.flush()
    def receive():
        line = sys.stdin.readline()
        return json.loads(line) if line else None
    init = receive()
    send({"id": init["id"], "result": {"userAgent": "fake/1", "codexHome": "/h", "platformFamily": "unix",
                                      "platformOs": "linux"}})
    assert receive()["method"] == "initialized"
"""


def _fake(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(_FAKE_PRELUDE) + textwrap.dedent(body)]


@asynccontextmanager
async def _connect_fake(body: str, recorder: Recorder) -> AsyncGenerator[AppServerConnection]:
    async with open_app_server(
        _fake(body), env=None, cwd=None, handler=recorder, client_version=CLIENT_VERSION
    ) as connection:
        yield connection


@pytest.mark.anyio
async def test_an_unknown_server_request_is_refused_with_method_not_found_so_codex_never_waits() -> None:
    body = """
        send({"id": "s1", "method": "bogus/ask", "params": {}})
        send({"method": "fake/echo", "params": receive()})
        sys.stdin.read()
    """
    recorder = Recorder()
    with anyio.fail_after(WAIT_S):
        async with _connect_fake(body, recorder):
            echo = await recorder.wait_for(
                lambda: next((u for u in recorder.unknown if u.method == "fake/echo"), None)
            )

    assert [u.method for u in recorder.unknown] == ["bogus/ask", "fake/echo"]
    assert echo.raw["params"] == {
        "id": "s1",
        "error": {"code": -32601, "message": "method not supported by codex-mcp"},
    }


@pytest.mark.anyio
async def test_a_failing_handler_is_logged_and_the_reader_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = """
        send({"method": "fake/one"})
        print("not json at all", flush=True)
        send({"method": "fake/two"})
        sys.stdin.read()
    """
    recorder = Recorder()
    recorder.fail_on.add("fake/one")
    with anyio.fail_after(WAIT_S):
        async with _connect_fake(body, recorder):
            await recorder.wait_for(
                lambda: next((u for u in recorder.unknown if u.method == "fake/two"), None)
            )

    assert [u.method for u in recorder.unknown] == ["fake/one", None, "fake/two"]
    assert any("handler failed on fake/one" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_a_child_that_exits_during_the_handshake_fails_start_with_its_redacted_stderr() -> None:
    script = (
        "import sys; sys.stderr.write('fatal: bad config in /home/me/.codex/config.toml\\n'); sys.exit(2)"
    )
    recorder = Recorder()
    with anyio.fail_after(WAIT_S), pytest.raises(CodexMcpError) as caught:
        async with open_app_server(
            [sys.executable, "-c", script],
            env=None,
            cwd=None,
            handler=recorder,
            client_version=CLIENT_VERSION,
        ):
            pytest.fail("the connection must not open")

    assert caught.value.code == "APP_SERVER_START_FAILED"
    assert "exited with code 2" in caught.value.message
    assert "fatal: bad config in <path>" in caught.value.message
    assert recorder.closed == []


@pytest.mark.anyio
async def test_a_child_that_never_answers_initialize_fails_start_after_the_startup_timeout() -> None:
    recorder = Recorder()
    with anyio.fail_after(WAIT_S), pytest.raises(CodexMcpError) as caught:
        async with open_app_server(
            [sys.executable, "-c", "import sys; sys.stdin.read()"],
            env=None,
            cwd=None,
            handler=recorder,
            client_version=CLIENT_VERSION,
            startup_timeout_s=0.5,
        ):
            pytest.fail("the connection must not open")

    assert caught.value.code == "APP_SERVER_START_FAILED"
    assert "timed out after 0.5s" in caught.value.message


@pytest.mark.anyio
async def test_a_missing_executable_fails_start() -> None:
    with anyio.fail_after(WAIT_S), pytest.raises(CodexMcpError) as caught:
        async with open_app_server(
            ["/nonexistent/codex"], env=None, cwd=None, handler=Recorder(), client_version=CLIENT_VERSION
        ):
            pytest.fail("the connection must not open")

    assert caught.value.code == "APP_SERVER_START_FAILED"


@pytest.mark.anyio
async def test_a_request_past_its_timeout_fails_with_timeout_and_its_late_answer_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = """
        slow = receive()
        fast = receive()
        send({"id": slow["id"], "result": {"late": True}})
        send({"id": fast["id"], "result": {"answer": fast["params"]["n"]}})
        sys.stdin.read()
    """
    with anyio.fail_after(WAIT_S):
        async with _connect_fake(body, Recorder()) as connection:
            with pytest.raises(CodexMcpError) as caught:
                await connection.request("fake/slow", {}, timeout_s=0.2)
            answer = await connection.request("fake/fast", {"n": 7}, timeout_s=REQUEST_TIMEOUT_S)

    assert caught.value.code == "TIMEOUT"
    assert caught.value.message == "fake/slow timed out after 0.2s"
    assert answer == {"answer": 7}
    assert any("abandoned request id 2" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_an_error_response_that_breaks_the_schema_still_fails_its_request() -> None:
    body = """
        request = receive()
        send({"id": request["id"], "error": {"message": "no code here"}})
        sys.stdin.read()
    """
    with anyio.fail_after(WAIT_S):
        async with _connect_fake(body, Recorder()) as connection:
            with pytest.raises(AppServerRequestError) as caught:
                await connection.request("fake/broken", {}, timeout_s=REQUEST_TIMEOUT_S)

    assert caught.value.code == -32603
    assert "pinned schema" in caught.value.message
