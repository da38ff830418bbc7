"""run_exec_turn against the real pinned Codex (mock model) and a few stand-in `codex` scripts."""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import stat
import tempfile
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from codex_mcp.backends.exec import ExecTurnOutcome, run_exec_turn
from codex_mcp.backends.exec_argv import ExecTurnSpec
from codex_mcp.backends.exec_mapping import Notification
from codex_mcp.proc import proc_tree
from tests.harness.codex_env import CodexEnv
from tests.harness.images import tiny_png
from tests.harness.mock_model import MockModelServer, RecordedRequest, json_object
from tests.harness.procs import descendants
from tests.harness.scenarios import (
    PLAIN_TEXT,
    SLOW_TEXT_PREFIX,
    Reply,
    ScenarioOptions,
    StreamReply,
    analyse,
    completed,
    created,
    decide,
    function_call_events,
    message_text,
)
from tests.harness.waiting import wait_until

# Every wait in a test; a mock-model turn takes about a second.
WAIT_S = 60.0
# From `stop` to run_exec_turn returning: SIGINT grace (0.5 s) plus the shutdown's bookkeeping.
PROMPT_STOP_S = 3.0

pytestmark = pytest.mark.timeout(180)


class Recorder:
    """The notification callback: keeps everything, in order, and can act on a method's arrival."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.hooks: dict[str, Callable[[dict[str, Any]], None]] = {}

    async def __call__(self, method: str, params: dict[str, Any]) -> None:
        self.notes.append((method, params))
        hook = self.hooks.get(method)
        if hook is not None:
            hook(params)
        await anyio.lowlevel.checkpoint()

    @property
    def methods(self) -> list[str]:
        return [method for method, _ in self.notes]

    def turn_started(self) -> bool:
        """Codex's turn.started has reached us: the turn is Codex's to abort from here on."""
        return "turn/started" in self.methods

    def item_started(self, item_type: str) -> bool:
        return any(m == "item/started" and p["item"].get("type") == item_type for m, p in self.notes)

    def last_turn(self) -> dict[str, Any]:
        method, params = self.notes[-1]
        assert method == "turn/completed", self.methods
        assert self.methods.count("turn/completed") == 1, self.methods
        return params["turn"]

    def agent_texts(self) -> list[str]:
        return [
            p["item"]["text"]
            for m, p in self.notes
            if m == "item/completed" and p["item"]["type"] == "agentMessage"
        ]

    def errors(self) -> list[dict[str, Any]]:
        return [p for m, p in self.notes if m == "error"]


async def _turn(
    codex_env: CodexEnv,
    prompt: str,
    recorder: Recorder,
    *,
    stop: anyio.Event | None = None,
    **settings: Any,
) -> ExecTurnOutcome:
    spec = ExecTurnSpec(prompt=prompt, cwd=settings.pop("cwd", str(codex_env.workspace)), **settings)
    with anyio.fail_after(WAIT_S):
        return await run_exec_turn(
            str(codex_env.binary),
            spec,
            env=codex_env.env(),
            turn_id=f"turn-{uuid.uuid4().hex[:8]}",
            on_notification=recorder,
            stop=stop or anyio.Event(),
        )


def _user_texts(request: RecordedRequest) -> list[str]:
    return [message_text(item) for item in request.input_items if item.get("role") == "user"]


async def _alongside(
    background: Callable[[], Coroutine[Any, Any, None]], turn: Awaitable[ExecTurnOutcome]
) -> ExecTurnOutcome:
    """Await `turn` while `background` runs next to it."""
    outcomes: list[ExecTurnOutcome] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(background)
        outcomes.append(await turn)
    return outcomes[0]


# --- the real Codex -------------------------------------------------------------------------------


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_plain_turn_completes_with_the_mock_models_text(codex_env: CodexEnv) -> None:
    recorder = Recorder()

    outcome = await _turn(codex_env, "scenario:plain Say hello.", recorder, sandbox="read-only")

    assert recorder.last_turn()["status"] == "completed"
    assert recorder.agent_texts() == [PLAIN_TEXT]
    assert recorder.methods[0] == "thread/started"
    assert "turn/started" in recorder.methods
    [usage] = [p for m, p in recorder.notes if m == "thread/tokenUsage/updated"]
    assert usage["tokenUsage"]["total"]["totalTokens"] == 120
    assert outcome.status == "completed"
    assert outcome.returncode == 0
    assert outcome.thread_id == recorder.notes[0][1]["threadId"]
    assert outcome.last_agent_message == PLAIN_TEXT
    assert outcome.warnings == []


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_resumed_turn_sends_the_earlier_conversation_and_its_own_settings_to_the_model(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    first = await _turn(codex_env, "scenario:plain First prompt.", Recorder(), sandbox="read-only")
    elsewhere = codex_env.workspace / "sub"
    elsewhere.mkdir()
    recorder = Recorder()

    outcome = await _turn(
        codex_env,
        "scenario:plain Second prompt.",
        recorder,
        thread_id=first.thread_id,
        cwd=str(elsewhere),
        sandbox="workspace-write",
        model="mock-model",
        effort="low",
        config={"model_verbosity": "low"},
    )

    assert recorder.last_turn()["status"] == "completed"
    assert outcome.thread_id == first.thread_id
    assert outcome.warnings == []
    request = mock_model.responses_requests()[-1]
    assert "scenario:plain First prompt." in _user_texts(request)
    assert _user_texts(request)[-1] == "scenario:plain Second prompt."
    assert PLAIN_TEXT in [message_text(i) for i in request.input_items if i.get("role") == "assistant"]
    # exec resume has no -s or -C: the sandbox went as -c sandbox_mode, the cwd as the child's own.
    everything = json.dumps(request.json)
    assert "`sandbox_mode` is `workspace-write`" in everything
    assert f"<cwd>{elsewhere}</cwd>" in everything
    assert json_object(request.json.get("reasoning")).get("effort") == "low"


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_structured_output_follows_the_schema_and_the_private_schema_file_is_gone_afterwards(
    codex_env: CodexEnv, mock_model: MockModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_root = tmp_path / "tmp"
    private_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_root))
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["answer", "count"],
        "additionalProperties": False,
    }
    seen: list[tuple[int, int, list[str]]] = []

    def look(_params: dict[str, Any]) -> None:
        [folder] = private_root.iterdir()
        files = sorted(folder.iterdir())
        seen.append(
            (
                stat.S_IMODE(folder.stat().st_mode),
                stat.S_IMODE(files[0].stat().st_mode),
                [f.name for f in files],
            )
        )

    recorder = Recorder()
    recorder.hooks["turn/started"] = look

    outcome = await _turn(codex_env, "scenario:structured Report as JSON.", recorder, output_schema=schema)

    assert recorder.last_turn()["status"] == "completed"
    assert outcome.last_agent_message is not None
    assert json.loads(outcome.last_agent_message) == {"answer": "mock", "count": 1}
    request = mock_model.responses_requests()[-1]
    assert json_object(json_object(request.json.get("text")).get("format")).get("schema") == schema
    assert seen == [(0o700, 0o600, ["output-schema.json"])]
    assert list(private_root.iterdir()) == []


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_an_image_reaches_the_model(codex_env: CodexEnv, mock_model: MockModelServer) -> None:
    png = tiny_png()
    (codex_env.workspace / "pixel.png").write_bytes(png)
    recorder = Recorder()

    await _turn(codex_env, "scenario:plain Describe the image.", recorder, images=["pixel.png"])

    assert recorder.last_turn()["status"] == "completed"
    user = [i for i in mock_model.responses_requests()[-1].input_items if i.get("role") == "user"][-1]
    content = user.get("content")
    parts = [json_object(part) for part in cast(list[object], content)] if isinstance(content, list) else []
    urls = [part.get("image_url") for part in parts]
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in urls


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_prompt_that_is_a_lone_dash_reaches_the_model_as_is(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    recorder = Recorder()

    await _turn(codex_env, "-", recorder)

    assert recorder.last_turn()["status"] == "completed"
    assert _user_texts(mock_model.responses_requests()[-1])[-1] == "-"


async def _stop_once(
    mock_model: MockModelServer, stop: anyio.Event, ready: Callable[[], bool], what: str
) -> tuple[float, proc_tree.ProcessSnapshot]:
    """Once the model is asked and `ready()` (`what`) holds, record our process tree and set `stop`."""
    await anyio.to_thread.run_sync(mock_model.wait_for_responses_requests, 1, WAIT_S)
    await wait_until(ready, timeout_s=WAIT_S, what=what)
    family = descendants(os.getpid())
    stop.set()
    return time.monotonic(), family


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_setting_stop_during_a_slow_turn_kills_the_child_promptly_and_ends_interrupted(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    stop = anyio.Event()
    recorder = Recorder()
    stopped: list[tuple[float, proc_tree.ProcessSnapshot]] = []

    async def stopper() -> None:
        stopped.append(await _stop_once(mock_model, stop, recorder.turn_started, "turn/started"))

    outcome = await _alongside(
        stopper, _turn(codex_env, "scenario:slow Take your time.", recorder, stop=stop)
    )
    returned = time.monotonic()

    [(stopped_at, family)] = stopped
    assert returned - stopped_at < PROMPT_STOP_S
    assert family, "the child was not running when stop was set"
    assert proc_tree.alive(family) == {}
    turn = recorder.last_turn()
    assert (turn["status"], turn["error"]) == ("interrupted", None)
    assert not any(text.startswith(SLOW_TEXT_PREFIX) for text in recorder.agent_texts())
    assert outcome.status == "interrupted"
    assert outcome.returncode is not None


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_turn_resumed_after_an_interrupt_tells_the_model_the_previous_turn_was_aborted(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    stop = anyio.Event()
    interrupted = Recorder()

    async def stopper() -> None:
        await _stop_once(mock_model, stop, interrupted.turn_started, "turn/started")

    first = await _alongside(
        stopper, _turn(codex_env, "scenario:slow Take your time.", interrupted, stop=stop)
    )
    recorder = Recorder()

    await _turn(codex_env, "scenario:plain And now?", recorder, thread_id=first.thread_id)

    assert recorder.last_turn()["status"] == "completed"
    texts = _user_texts(mock_model.responses_requests()[-1])
    assert "scenario:slow Take your time." in texts
    assert any("<turn_aborted>" in text for text in texts)


def _long_command(body: Mapping[str, object], options: ScenarioOptions) -> Reply:
    if analyse(body).step > 0:
        return decide(body, options)
    arguments = {"cmd": "sleep 60", "yield_time_ms": 60000}
    return StreamReply(
        (
            created("resp_hold"),
            *function_call_events("call_hold", "exec_command", arguments),
            completed("resp_hold"),
        )
    )


def _is_sleep(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"60"]
    except OSError:
        return False


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_stop_kills_a_command_codex_is_running_along_with_codex(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    mock_model.custom_scenarios["hold"] = _long_command
    stop = anyio.Event()
    recorder = Recorder()
    stopped: list[tuple[float, proc_tree.ProcessSnapshot]] = []

    sleepers: list[int] = []

    def command_running() -> bool:
        """The command runs, and the item/started Codex printed for it has reached us."""
        sleepers[:] = [pid for pid in descendants(os.getpid()) if _is_sleep(pid)]
        return bool(sleepers) and recorder.item_started("commandExecution")

    async def stopper() -> None:
        stopped.append(
            await _stop_once(mock_model, stop, command_running, "the command and its item/started")
        )

    # Without Codex's sandbox (bwrap --die-with-parent) nothing but us would end the command.
    turn = _turn(codex_env, "scenario:hold Run it.", recorder, stop=stop, sandbox="danger-full-access")
    await _alongside(stopper, turn)
    returned = time.monotonic()

    [(stopped_at, family)] = stopped
    assert sleepers
    assert set(sleepers) <= set(family)
    assert returned - stopped_at < PROMPT_STOP_S
    assert proc_tree.alive(family) == {}
    assert recorder.last_turn()["status"] == "interrupted"
    assert "item/started" in recorder.methods


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_a_cancelled_caller_still_gets_an_interrupted_turn_and_leaves_no_process(
    codex_env: CodexEnv, mock_model: MockModelServer
) -> None:
    recorder = Recorder()
    families: list[proc_tree.ProcessSnapshot] = []

    async with anyio.create_task_group() as tg:

        async def cancel_soon() -> None:
            await anyio.to_thread.run_sync(mock_model.wait_for_responses_requests, 1, WAIT_S)
            families.append(descendants(os.getpid()))
            tg.cancel_scope.cancel()

        tg.start_soon(cancel_soon)
        await _turn(codex_env, "scenario:slow Take your time.", recorder)
        pytest.fail("the turn must have been cancelled")

    [family] = families
    assert family
    assert proc_tree.alive(family) == {}
    assert recorder.last_turn()["status"] == "interrupted"


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_an_http_500_fails_the_turn_with_one_error(codex_env: CodexEnv) -> None:
    recorder = Recorder()

    outcome = await _turn(codex_env, "scenario:http500 This will fail.", recorder)

    turn = recorder.last_turn()
    assert turn["status"] == "failed"
    [error] = recorder.errors()
    assert error["willRetry"] is False
    assert turn["error"] == error["error"]
    assert recorder.methods[-2:] == ["error", "turn/completed"]
    assert outcome.status == "failed"
    assert outcome.returncode == 1


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_codexs_reconnects_are_errors_that_will_retry_and_the_final_failure_one_that_will_not(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()
    retries = {"model_providers.mock.stream_max_retries": 2}

    await _turn(codex_env, "scenario:drop The stream breaks.", recorder, config=retries)

    assert [(e["willRetry"], e["error"]["message"][:17]) for e in recorder.errors()] == [
        (True, "Reconnecting... 1"),
        (True, "Reconnecting... 2"),
        (False, "stream disconnect"),
    ]
    assert recorder.last_turn()["status"] == "failed"


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_an_approval_policy_exec_refuses_is_held_back_so_the_turn_still_runs(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()

    outcome = await _turn(codex_env, "scenario:plain Hi.", recorder, approval_policy="untrusted")

    assert recorder.last_turn()["status"] == "completed"
    assert [w.split(" ", 1)[0] for w in outcome.warnings] == ["approval_policy='untrusted'"]


@pytest.mark.real_codex
@pytest.mark.anyio
async def test_resuming_a_thread_codex_does_not_know_fails_the_turn_with_codexs_reason(
    codex_env: CodexEnv,
) -> None:
    recorder = Recorder()

    outcome = await _turn(codex_env, "scenario:plain Hi.", recorder, thread_id=str(uuid.uuid4()))

    turn = recorder.last_turn()
    assert turn["status"] == "failed"
    assert "exited with code 1" in turn["error"]["message"]
    assert "no rollout found" in turn["error"]["message"]
    assert outcome.returncode == 1


# --- stand-in `codex` scripts: what the real one does not do on demand ----------------------------


COMMAND_ITEM: dict[str, Any] = {
    "id": "i1",
    "type": "command_execution",
    "command": "x",
    "aggregated_output": "",
    "exit_code": 0,
    "status": "completed",
}
TURN_COMPLETED: dict[str, Any] = {
    "type": "turn.completed",
    "usage": {"input_tokens": 1, "cached_input_tokens": 0, "output_tokens": 2, "reasoning_output_tokens": 0},
}


def _echo(*events: object) -> str:
    """Shell lines printing each event as one JSON line."""
    return "".join(f"printf '%s\\n' {shlex.quote(json.dumps(event))}\n" for event in events)


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "codex"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body), encoding="utf-8")
    path.chmod(0o755)
    return str(path)


async def _run_script(codex: str, cwd: Path, recorder: Recorder, **settings: Any) -> ExecTurnOutcome:
    with anyio.fail_after(WAIT_S):
        return await run_exec_turn(
            codex,
            ExecTurnSpec(prompt="Do it.", cwd=str(cwd), **settings),
            env=None,
            turn_id="turn-1",
            on_notification=recorder,
            stop=anyio.Event(),
        )


@pytest.mark.anyio
async def test_a_codex_that_exits_with_an_error_fails_the_turn_with_its_redacted_stderr_tail(
    tmp_path: Path,
) -> None:
    codex = _script(
        tmp_path,
        """
        echo "starting up" >&2
        echo "fatal: cannot read /etc/codex/managed_config.toml" >&2
        exit 3
        """,
    )
    recorder = Recorder()

    outcome = await _run_script(codex, tmp_path, recorder)

    assert recorder.methods == ["error", "turn/completed"]
    message = recorder.errors()[0]["error"]["message"]
    assert message.startswith("codex exec exited with code 3 before the turn completed; stderr: ")
    assert message.endswith("fatal: cannot read <path>")
    assert recorder.errors()[0]["willRetry"] is False
    assert recorder.last_turn()["status"] == "failed"
    assert recorder.last_turn()["error"] == {"message": message}
    assert outcome.returncode == 3
    assert "/etc/codex/managed_config.toml" in outcome.stderr_tail


@pytest.mark.anyio
async def test_lines_that_are_not_exec_events_are_skipped_with_a_warning_and_stdin_is_at_eof(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    codex = _script(
        tmp_path,
        # Like exec, read stdin to EOF first: the script goes on only if stdin is at EOF.
        "cat >/dev/null\necho 'not json at all'\n"
        + _echo(
            {"type": "thread.started", "thread_id": "th-1"},
            {"type": "turn.started"},
            {"type": "mystery.event", "x": 1},
            [1, 2],
            {"type": "item.completed", "item": {**COMMAND_ITEM, "status": "paused"}},
            {"type": "item.completed", "item": {"id": "i2", "type": "agent_message", "text": "done"}},
            TURN_COMPLETED,
        ),
    )
    recorder = Recorder()

    with caplog.at_level(logging.WARNING, logger="codex_mcp.backends.exec"):
        outcome = await _run_script(codex, tmp_path, recorder)

    assert recorder.methods == [
        "thread/started",
        "turn/started",
        "item/completed",
        "item/completed",
        "thread/tokenUsage/updated",
        "turn/completed",
    ]
    assert recorder.notes[2][1]["item"]["status"] == "paused"  # a status the schema lacks: mapped as is
    assert recorder.last_turn()["status"] == "completed"
    assert outcome.thread_id == "th-1"
    assert outcome.last_agent_message == "done"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("skipped a codex exec stdout line" in w for w in warnings) == 3
    assert any("does not match the pinned schema" in w for w in warnings)


@pytest.mark.anyio
async def test_a_working_directory_that_does_not_exist_fails_the_turn_without_raising(tmp_path: Path) -> None:
    codex = _script(tmp_path, "exit 0\n")
    recorder = Recorder()

    outcome = await _run_script(codex, tmp_path / "missing", recorder)

    assert recorder.methods == ["error", "turn/completed"]
    assert recorder.errors()[0]["error"]["message"].startswith("codex exec did not start; reason: ")
    assert recorder.last_turn()["status"] == "failed"
    assert outcome.returncode is None


@pytest.mark.anyio
async def test_a_stop_set_before_the_turn_starts_nothing_and_ends_interrupted(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    codex = _script(tmp_path, f"touch {marker}\n")
    recorder = Recorder()
    stop = anyio.Event()
    stop.set()

    with anyio.fail_after(WAIT_S):
        outcome = await run_exec_turn(
            codex,
            ExecTurnSpec(prompt="p", cwd=str(tmp_path)),
            env=None,
            turn_id="turn-1",
            on_notification=recorder,
            stop=stop,
        )

    assert recorder.notes == [
        (
            "turn/completed",
            {"threadId": None, "turn": {"id": "turn-1", "items": [], "status": "interrupted", "error": None}},
        )
    ]
    assert not marker.exists()
    assert outcome.returncode is None
    assert outcome.status == "interrupted"


@pytest.mark.anyio
async def test_a_synchronous_callback_that_raises_does_not_stop_the_turn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    codex = _script(
        tmp_path,
        _echo({"type": "thread.started", "thread_id": "th-1"}, {"type": "turn.started"}, TURN_COMPLETED),
    )
    seen: list[str] = []

    def callback(method: str, _params: dict[str, Any]) -> None:
        seen.append(method)
        if method == "turn/started":
            raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="codex_mcp.backends.exec"), anyio.fail_after(WAIT_S):
        outcome = await run_exec_turn(
            codex,
            ExecTurnSpec(prompt="p", cwd=str(tmp_path)),
            env=None,
            turn_id="turn-1",
            on_notification=callback,
            stop=anyio.Event(),
        )

    assert seen == ["thread/started", "turn/started", "thread/tokenUsage/updated", "turn/completed"]
    assert outcome.status == "completed"
    assert any("callback failed on turn/started" in r.getMessage() for r in caplog.records)
