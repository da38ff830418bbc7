"""Record real Codex traffic against the mock model, in both modes.

Run on demand from the repository root::

    .venv/bin/python -m tests.contract.record_transcripts [--only NAME ...] [--mode app_server|exec]

Writes ``tests/contract/transcripts/{app_server,exec}/<name>.jsonl``. App-server
lines are ``{"dir": "out"|"in"|"stderr", "msg": ...}`` (out = we sent to Codex);
exec lines are one ``{"dir": "header", "msg": {argv, exit_code}}`` per
invocation, then ``{"dir": "in", "msg": <event>}`` per stdout line and
``{"dir": "stderr", "msg": <text>}`` per stderr line. Machine paths, UUIDs and
the host name are scrubbed (see :mod:`tests.harness.scrub`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

from tests.harness.app_server_client import (
    AppServerClient,
    Json,
    JsonRpcError,
    ServerRequestHandler,
    WireLine,
)
from tests.harness.codex_env import MOCK_MODEL, CodexEnv, codex_version, create_codex_env, run_exec
from tests.harness.images import tiny_png
from tests.harness.mock_model import MockModelServer, json_object
from tests.harness.scenarios import (
    BACKGROUND_COMMAND,
    PATCH_FILE,
    USER_INPUT_QUESTION_ID,
    ScenarioOptions,
    message_text,
)
from tests.harness.scrub import Scrubber

log = logging.getLogger("record_transcripts")

TRANSCRIPTS: Final = Path(__file__).resolve().parent / "transcripts"
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
TURN_TIMEOUT: Final = 60.0
MAX_FILE_BYTES: Final = 200_000
RECORDING_OPTIONS: Final = ScenarioOptions(slow_total_seconds=6.0, slow_chunks=12, noisy_lines=150)
OUTPUT_SCHEMA: Final[Json] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["answer", "count"],
    "additionalProperties": False,
}


class RecordingError(RuntimeError):
    """Codex did not behave as the scenario expects."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RecordingError(message)


def _as_json(value: object) -> Json:
    return json_object(value)


# --- shared ----------------------------------------------------------------


@dataclass
class Bench:
    """Everything one recording needs: a mock model and an isolated Codex."""

    mock: MockModelServer
    env: CodexEnv

    def scrubber(self) -> Scrubber:
        binary_dir = self.env.binary.parent
        pairs = [
            *self.env.placeholders(),
            (str(binary_dir.parent), "/codex-bin"),
            (str(REPO_ROOT), "/repo"),
            (str(Path.home()), "/real-home"),
            (tempfile.gettempdir().rstrip("/") + "/", "/tmp/"),
        ]
        return Scrubber(pairs)


def _open_bench(root: Path, mock: MockModelServer) -> Bench:
    env = create_codex_env(root, mock.base_url, proxy_url=f"http://127.0.0.1:{mock.port}")
    return Bench(mock, env)


def _write_jsonl(path: Path, records: Sequence[Json]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")
    size = len(text.encode())
    if size > MAX_FILE_BYTES:
        raise RecordingError(f"{path.name} is {size} bytes (limit {MAX_FILE_BYTES})")
    return len(records)


def _no_network(bench: Bench) -> None:
    stray = [f"{r.method} {r.path}" for r in bench.mock.requests if r.method == "CONNECT"]
    _check(not stray, f"Codex tried to reach the network: {stray}")


def _last_prompt_texts(bench: Bench) -> list[str]:
    last = bench.mock.responses_requests()[-1]
    return [message_text(item) for item in last.input_items if item.get("role") == "user"]


# --- app-server --------------------------------------------------------------


@dataclass
class AppRun:
    """One app-server session under recording."""

    bench: Bench
    client: AppServerClient

    def thread(self, approval: object = "never", sandbox: str = "workspace-write") -> str:
        return self.client.start_thread(
            {"cwd": str(self.bench.env.workspace), "approvalPolicy": approval, "sandbox": sandbox}
        )

    def turn(self, thread_id: str, text: str, extra: Mapping[str, object] | None = None) -> Json:
        turn_id = self.client.start_turn(thread_id, text, extra)
        return self.client.wait_turn_completed(turn_id, TURN_TIMEOUT)


AppRecipe = Callable[[AppRun], None]


def _decide(decision: str) -> ServerRequestHandler:
    """An approval handler that always answers ``decision``."""

    def handler(method: str, params: Json) -> object:
        return {"decision": decision}

    return handler


def _status(turn: Json) -> str:
    return str(turn.get("status"))


def app_plain(run: AppRun) -> None:
    turn = run.turn(run.thread(), "scenario:plain Say hello.")
    _check(_status(turn) == "completed", f"plain turn ended {_status(turn)}")
    _check("Hello from the mock" in run.client.agent_text(str(turn["id"])), "plain: no agent text")


def app_shell_approval(run: AppRun) -> None:
    run.client.request_handler = _decide("accept")
    turn = run.turn(run.thread(approval="untrusted"), "scenario:shell Create made.txt.")
    _check(_status(turn) == "completed", f"shell turn ended {_status(turn)}")
    _check(bool(run.client.notifications("serverRequest/resolved")), "shell: no approval was requested")
    _check((run.bench.env.workspace / "made.txt").exists(), "shell: made.txt was not created")


def app_escalate_declined(run: AppRun) -> None:
    run.client.request_handler = _decide("decline")
    turn = run.turn(
        run.thread(approval="on-request"), "scenario:escalate Create made.txt outside the sandbox."
    )
    _check(_status(turn) == "completed", f"escalate turn ended {_status(turn)}")
    _check(bool(run.client.notifications("serverRequest/resolved")), "escalate: no approval was requested")
    _check(not (run.bench.env.workspace / "made.txt").exists(), "escalate: declined command still ran")


def app_patch_approval(run: AppRun) -> None:
    methods: list[str] = []

    def handler(method: str, params: Json) -> object:
        methods.append(method)
        return {"decision": "accept"}

    run.client.request_handler = handler
    turn = run.turn(run.thread(approval="untrusted"), "scenario:patch Add a file.")
    _check(_status(turn) == "completed", f"patch turn ended {_status(turn)}")
    _check("item/fileChange/requestApproval" in methods, f"patch: approvals were {methods}")
    _check((run.bench.env.workspace / PATCH_FILE).exists(), "patch: file was not created")


def app_user_input(run: AppRun) -> None:
    def handler(method: str, params: Json) -> object:
        _check(method == "item/tool/requestUserInput", f"user_input: unexpected {method}")
        return {"answers": {USER_INPUT_QUESTION_ID: {"answers": ["Red"]}}}

    run.client.request_handler = handler
    mode = {"mode": "plan", "settings": {"model": MOCK_MODEL}}
    turn = run.turn(run.thread(), "scenario:user_input Ask me a question.", {"collaborationMode": mode})
    _check(_status(turn) == "completed", f"user_input turn ended {_status(turn)}")
    _check("Red" in run.client.agent_text(str(turn["id"])), "user_input: answer did not reach the model")


def app_structured(run: AppRun) -> None:
    turn = run.turn(run.thread(), "scenario:structured Report as JSON.", {"outputSchema": OUTPUT_SCHEMA})
    _check(_status(turn) == "completed", f"structured turn ended {_status(turn)}")
    value = _as_json(json.loads(run.client.agent_text(str(turn["id"]))))
    _check(set(value) == {"answer", "count"}, f"structured: got {value}")


def app_reasoning(run: AppRun) -> None:
    turn = run.turn(run.thread(), "scenario:reasoning Think first.")
    _check(_status(turn) == "completed", f"reasoning turn ended {_status(turn)}")
    kinds = {
        _as_json(_as_json(n.get("params")).get("item")).get("type")
        for n in run.client.notifications("item/completed")
    }
    _check("reasoning" in kinds, f"reasoning: items were {kinds}")


def app_interrupt(run: AppRun) -> None:
    thread_id = run.thread()
    turn_id = run.client.start_turn(thread_id, "scenario:slow Take your time.")
    run.client.wait_notification(
        "item/agentMessage/delta", lambda p: p.get("turnId") == turn_id, TURN_TIMEOUT
    )
    run.client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
    turn = run.client.wait_turn_completed(turn_id, TURN_TIMEOUT)
    _check(_status(turn) == "interrupted", f"interrupt: turn ended {_status(turn)}")


def app_fork(run: AppRun) -> None:
    parent = run.thread()
    first = run.turn(parent, "scenario:plain First message on the parent.")
    _check(_status(first) == "completed", "fork: parent turn failed")
    forked = run.client.request("thread/fork", {"threadId": parent})
    child = str(_as_json(forked.get("thread")).get("id"))
    _check(child not in ("", parent), f"fork: got thread {child}")
    second = run.turn(child, "scenario:plain Second message on the fork.")
    _check(_status(second) == "completed", "fork: child turn failed")
    texts = _last_prompt_texts(run.bench)
    _check(any("First message on the parent" in t for t in texts), "fork: parent context missing")


def app_http500(run: AppRun) -> None:
    turn = run.turn(run.thread(), "scenario:http500 This will fail.")
    _check(_status(turn) == "failed", f"http500: turn ended {_status(turn)}")


def app_drop(run: AppRun) -> None:
    turn = run.turn(run.thread(), "scenario:drop The stream breaks.")
    _check(_status(turn) == "failed", f"drop: turn ended {_status(turn)}")


def app_noisy(run: AppRun) -> None:
    turn = run.turn(run.thread(), "scenario:noisy Print a lot.")
    _check(_status(turn) == "completed", f"noisy turn ended {_status(turn)}")


def app_background_terminals(run: AppRun) -> None:
    thread_id = run.thread()
    turn = run.turn(thread_id, "scenario:background Start a long command.")
    _check(_status(turn) == "completed", f"background turn ended {_status(turn)}")
    listed = run.client.request("thread/backgroundTerminals/list", {"threadId": thread_id})
    _check(listed.get("data") not in (None, []), f"background: list was {listed}")
    cleaned = run.client.request("thread/backgroundTerminals/clean", {"threadId": thread_id})
    _check(cleaned == {}, f"background: clean returned {cleaned}")
    after = run.client.request("thread/backgroundTerminals/list", {"threadId": thread_id})
    _check(after.get("data") == [], f"background: still listed after clean: {after}")
    _check(BACKGROUND_COMMAND in json.dumps(listed), "background: command not listed")


APP_SERVER_RECIPES: Final[dict[str, AppRecipe]] = {
    "plain": app_plain,
    "shell_approval": app_shell_approval,
    "escalate_declined": app_escalate_declined,
    "patch_approval": app_patch_approval,
    "user_input": app_user_input,
    "structured": app_structured,
    "reasoning": app_reasoning,
    "interrupt": app_interrupt,
    "fork": app_fork,
    "http500": app_http500,
    "drop": app_drop,
    "noisy": app_noisy,
    "background_terminals": app_background_terminals,
}


def _wire_record(line: WireLine, scrubber: Scrubber) -> Json:
    return {"dir": line.direction, "msg": scrubber.value(line.msg)}


def record_app_server(name: str, recipe: AppRecipe) -> list[Json]:
    """Run one app-server recipe and return its scrubbed transcript."""
    with (
        tempfile.TemporaryDirectory(prefix="codex-record-") as tmp,
        MockModelServer(RECORDING_OPTIONS) as mock,
    ):
        bench = _open_bench(Path(tmp), mock)
        client = AppServerClient(bench.env.app_server_argv(), env=bench.env.env(), cwd=bench.env.workspace)
        with client:
            client.initialize()
            recipe(AppRun(bench, client))
        _no_network(bench)
        scrubber = bench.scrubber()
        return [_wire_record(line, scrubber) for line in client.lines]


# --- exec --------------------------------------------------------------------


@dataclass
class ExecRun:
    """One ``codex exec`` recording: invocations append to ``records``."""

    bench: Bench
    records: list[Json]

    def invoke(self, prompt: str, *options: str, argv: Sequence[str] | None = None) -> tuple[int, list[Json]]:
        command = list(argv) if argv is not None else self.bench.env.exec_argv(prompt, *options)
        done = run_exec(self.bench.env, prompt, argv=command, timeout=TURN_TIMEOUT)
        scrubber = self.bench.scrubber()
        header_argv = ["codex", *command[1:]]
        self.records.append(
            {"dir": "header", "msg": scrubber.value({"argv": header_argv, "exit_code": done.returncode})}
        )
        events: list[Json] = []
        for line in done.stdout.splitlines():
            if not line.strip():
                continue
            try:
                event: object = json.loads(line)
            except ValueError:
                event = line
            events.append(_as_json(event))
            self.records.append({"dir": "in", "msg": scrubber.value(event)})
        for line in done.stderr.splitlines():
            if line.strip():
                self.records.append({"dir": "stderr", "msg": scrubber.text(line)})
        return done.returncode, events


ExecRecipe = Callable[[ExecRun], None]


def _types(events: Sequence[Json]) -> list[str]:
    return [str(e.get("type")) for e in events]


def _items(events: Sequence[Json], kind: str) -> list[Json]:
    return [
        _as_json(e.get("item"))
        for e in events
        if e.get("type") == "item.completed" and _as_json(e.get("item")).get("type") == kind
    ]


def exec_plain(run: ExecRun) -> None:
    code, events = run.invoke("scenario:plain Say hello.")
    _check(code == 0 and "turn.completed" in _types(events), f"exec plain: {code} {_types(events)}")


def exec_shell(run: ExecRun) -> None:
    code, events = run.invoke("scenario:shell Create made.txt.", "-s", "workspace-write")
    _check(code == 0 and bool(_items(events, "command_execution")), f"exec shell: {code} {_types(events)}")
    _check((run.bench.env.workspace / "made.txt").exists(), "exec shell: made.txt missing")


def exec_patch(run: ExecRun) -> None:
    code, events = run.invoke("scenario:patch Add a file.", "-s", "workspace-write")
    _check(code == 0 and bool(_items(events, "file_change")), f"exec patch: {code} {_types(events)}")


def exec_structured(run: ExecRun) -> None:
    schema = run.bench.env.root / "schema.json"
    schema.write_text(json.dumps(OUTPUT_SCHEMA), encoding="utf-8")
    code, events = run.invoke("scenario:structured Report as JSON.", "--output-schema", str(schema))
    messages = _items(events, "agent_message")
    _check(code == 0 and bool(messages), f"exec structured: {code} {_types(events)}")
    value = _as_json(json.loads(str(messages[-1].get("text"))))
    _check(set(value) == {"answer", "count"}, f"exec structured: {value}")


def exec_reasoning(run: ExecRun) -> None:
    code, events = run.invoke("scenario:reasoning Think first.")
    _check(code == 0 and bool(_items(events, "reasoning")), f"exec reasoning: {code} {_types(events)}")


def exec_resume(run: ExecRun) -> None:
    code, events = run.invoke("scenario:plain First message.")
    _check(code == 0, "exec resume: first run failed")
    thread_id = str(events[0].get("thread_id"))
    env = run.bench.env
    argv = [
        str(env.binary),
        "exec",
        "resume",
        "--json",
        "--skip-git-repo-check",
        thread_id,
        "scenario:plain Second message.",
    ]
    code, events = run.invoke("", argv=argv)
    _check(code == 0 and "turn.completed" in _types(events), f"exec resume: {code} {_types(events)}")
    _check(str(events[0].get("thread_id")) == thread_id, "exec resume: different thread id")
    _check(any("First message" in t for t in _last_prompt_texts(run.bench)), "exec resume: context lost")


def exec_image(run: ExecRun) -> None:
    image = run.bench.env.workspace / "pixel.png"
    image.write_bytes(tiny_png())
    code, events = run.invoke("scenario:plain Describe the image.", "-i", str(image))
    _check(code == 0, f"exec image: {code} {_types(events)}")
    last = run.bench.mock.responses_requests()[-1]
    _check("input_image" in json.dumps(last.input_items), "exec image: no input_image sent to the model")


def exec_http500(run: ExecRun) -> None:
    code, events = run.invoke("scenario:http500 This will fail.")
    _check(code == 1 and "turn.failed" in _types(events), f"exec http500: {code} {_types(events)}")


def exec_drop(run: ExecRun) -> None:
    code, events = run.invoke("scenario:drop The stream breaks.")
    _check(code == 1 and "turn.failed" in _types(events), f"exec drop: {code} {_types(events)}")


def exec_noisy(run: ExecRun) -> None:
    code, events = run.invoke("scenario:noisy Print a lot.", "-s", "workspace-write")
    _check(code == 0 and bool(_items(events, "command_execution")), f"exec noisy: {code} {_types(events)}")


EXEC_RECIPES: Final[dict[str, ExecRecipe]] = {
    "plain": exec_plain,
    "shell": exec_shell,
    "patch": exec_patch,
    "structured": exec_structured,
    "reasoning": exec_reasoning,
    "resume": exec_resume,
    "image": exec_image,
    "http500": exec_http500,
    "drop": exec_drop,
    "noisy": exec_noisy,
}


def record_exec(name: str, recipe: ExecRecipe) -> list[Json]:
    """Run one exec recipe and return its scrubbed transcript."""
    with (
        tempfile.TemporaryDirectory(prefix="codex-record-") as tmp,
        MockModelServer(RECORDING_OPTIONS) as mock,
    ):
        bench = _open_bench(Path(tmp), mock)
        run = ExecRun(bench, [])
        recipe(run)
        _no_network(bench)
        return run.records


# --- main --------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Record the selected transcripts; returns a process exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="record only these scenarios"
    )
    parser.add_argument("--mode", choices=("app_server", "exec"), help="record only one mode")
    parser.add_argument("--out", type=Path, default=TRANSCRIPTS, help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    only: set[str] = {n for arg in args.only for n in str(arg).split(",") if n}
    out: Path = args.out
    log.info("recording with codex %s", codex_version())

    jobs: list[tuple[str, str, Callable[[], list[Json]]]] = []
    if args.mode in (None, "app_server"):
        jobs += [
            ("app_server", n, partial(record_app_server, n, r))
            for n, r in APP_SERVER_RECIPES.items()
            if not only or n in only
        ]
    if args.mode in (None, "exec"):
        jobs += [
            ("exec", n, partial(record_exec, n, r)) for n, r in EXEC_RECIPES.items() if not only or n in only
        ]
    if not jobs:
        log.error("nothing matches --only %s", sorted(only))
        return 2
    failures = 0
    for mode, name, job in jobs:
        started = time.monotonic()
        try:
            records = job()
        except (RecordingError, JsonRpcError, TimeoutError, OSError) as exc:
            failures += 1
            log.error("FAILED %s/%s: %s", mode, name, exc)
            continue
        count = _write_jsonl(out / mode / f"{name}.jsonl", records)
        log.info("%-10s %-22s %4d lines  %.1fs", mode, name, count, time.monotonic() - started)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
