"""A scripted `codex app-server` for tests that need no real Codex, and can misbehave on purpose.

Run as a script (stdlib only, so it starts in a few tens of ms) it speaks the app-server JSON-RPC
on stdin/stdout in the shapes of the recorded transcripts (`tests/contract/transcripts/app_server`):
`initialize`, `thread/start`, `thread/resume`, `thread/fork`, `turn/start` (answered, then
`turn/started`, an agent message delta, `item/completed`, token usage and `turn/completed`),
`turn/steer` (of a hanging turn: answered, then its userMessage item; any other turn refused as
Codex does), `turn/interrupt` and `thread/backgroundTerminals/clean`. A prompt holding `fake:hang`
starts a turn that runs until interrupted; `fake:fail` ends the turn `failed`; `fake:approve` asks
for a command approval and `fake:ask` asks a question (plan mode's `requestUserInput`) before the
turn completes.

`FAKE_CODEX_MODE` picks a hostile behaviour, done at the first request of `FAKE_CODEX_TARGET`
(default `turn/start`) and then, when `FAKE_CODEX_STATE` names a directory, never again by this
child nor any later one (a marker file records it), so a following call can show the server is fine:

    garbage            junk lines (not JSON, binary, wrong shapes, unknown ids) before every line
                       it writes, from the start and for good
    truncated          the answer is cut in half and never completed
    huge_line          a line longer than the reader's 64 MiB limit, then the answer
    flood              100 000 notifications of an unknown method, then the answer
    exit_mid_response  half the answer, then exit 3
    exit_mid_turn      the answer and `turn/started`, then exit 3 (on `turn/start` only)
    silent             no answer at all; later requests are answered

`write_fake_codex` writes an executable `codex` that runs this file, for `CODEX_MCP_PATH`.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, cast

MODES: Final = (
    "normal",
    "garbage",
    "truncated",
    "huge_line",
    "flood",
    "exit_mid_response",
    "exit_mid_turn",
    "silent",
)
FAKE_VERSION: Final = "0.163.0"
FAKE_MODEL: Final = "fake-model"
FAKE_TEXT: Final = "Hello from the fake app-server."
FAKE_FAILURE: Final = "fake model failure"
HANG_MARKER: Final = "fake:hang"
FAIL_MARKER: Final = "fake:fail"
APPROVE_MARKER: Final = "fake:approve"
ASK_MARKER: Final = "fake:ask"
FAKE_COMMAND: Final = "echo fake"
FAKE_QUESTION_ID: Final = "color"
UNKNOWN_FLOOD_METHOD: Final = "fake/unknownFlood"
FLOOD_COUNT: Final = 100_000
# Past backends/process.py's MAX_LINE_BYTES (64 MiB), so the reader must drop it.
HUGE_LINE_BYTES: Final = 70 * 1024 * 1024
EXIT_CODE: Final = 3
_METHOD_NOT_FOUND: Final = -32601
_INVALID_REQUEST: Final = -32600

Message = dict[str, Any]


# --- the child --------------------------------------------------------------------------------


def _thread(thread_id: str, cwd: str, *, forked_from: str | None = None) -> Message:
    return {
        "id": thread_id,
        "environments": [{"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": [cwd]}],
        "extra": None,
        "sessionId": thread_id,
        "forkedFromId": forked_from,
        "parentThreadId": None,
        "preview": "",
        "ephemeral": False,
        "section": None,
        "sectionEnteredAt": None,
        "projectId": None,
        "historyMode": "paginated",
        "modelProvider": "fake",
        "model": FAKE_MODEL,
        "reasoningEffort": None,
        "createdAt": 1795487575,
        "updatedAt": 1795487575,
        "recencyAt": 1795487575,
        "status": {"type": "idle"},
        "path": None,
        "cwd": cwd,
        "cliVersion": FAKE_VERSION,
        "originator": "codex-mcp",
        "source": "vscode",
        "canAcceptDirectInput": True,
        "threadSource": None,
        "agentNickname": None,
        "agentRole": None,
        "gitInfo": None,
        "name": None,
        "daybreakEnabled": None,
        "turns": [],
    }


_SANDBOX: Final[dict[str, Message]] = {
    "read-only": {"type": "readOnly", "networkAccess": False},
    "workspace-write": {
        "type": "workspaceWrite",
        "writableRoots": list[str](),
        "networkAccess": False,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    },
    "danger-full-access": {"type": "dangerFullAccess"},
}


def _thread_result(thread: Message, params: Message) -> Message:
    cwd = str(params.get("cwd") or thread["cwd"])
    model = params.get("model")
    return {
        "thread": thread,
        "model": model if isinstance(model, str) else FAKE_MODEL,
        "modelProvider": "fake",
        "serviceTier": None,
        "disabledPluginIds": [],
        "cwd": cwd,
        "runtimeWorkspaceRoots": [cwd],
        "instructionSources": [],
        "approvalPolicy": params.get("approvalPolicy") or "never",
        "approvalsReviewer": "user",
        "sandbox": _SANDBOX.get(str(params.get("sandbox")), _SANDBOX["read-only"]),
        "activePermissionProfile": None,
        "reasoningEffort": None,
        "multiAgentMode": "explicitRequestOnly",
    }


def _turn(turn_id: str, status: str, items: list[Message], error: Message | None = None) -> Message:
    return {
        "id": turn_id,
        "rootTurnId": turn_id,
        "items": items,
        "itemsView": "summary" if items else "notLoaded",
        "status": status,
        "error": error,
        "startedAt": 1795487575,
        "completedAt": None if status == "inProgress" else 1795487575,
        "durationMs": None if status == "inProgress" else 1,
    }


def _agent_message(item_id: str, text: str) -> Message:
    return {
        "type": "agentMessage",
        "id": item_id,
        "text": text,
        "phase": None,
        "memoryCitation": None,
        "delivery": None,
        "questions": None,
    }


_USAGE: Final = {
    "totalTokens": 120,
    "inputTokens": 100,
    "cachedInputTokens": 0,
    "cacheWriteInputTokens": 0,
    "outputTokens": 20,
    "reasoningOutputTokens": 0,
}


def _prompt(params: Message) -> str:
    parts: object = params.get("input")
    items = cast(list[object], parts) if isinstance(parts, list) else []
    return " ".join(str(cast(Message, p).get("text", "")) for p in items if isinstance(p, dict))


def garbage_lines(thread_id: str) -> Iterator[bytes]:
    """Lines a broken child could write: each must be survived, none may be mistaken for an answer."""
    yield b"this is not json"
    yield b"\xff\xfe\x00\x01 binary \x80\x81"
    yield b"[1, 2, 3]"
    yield b"42"
    yield b"null"
    yield b'"a string"'
    yield b"{"
    yield b'{"method": 5, "params": []}'
    yield b'{"id": 987654321, "result": {"turn": {"id": "nobody asked"}}}'
    yield b'{"id": null, "result": 1}'
    yield b'{"id": {"nested": true}, "error": {"code": 1, "message": "odd id"}}'
    yield b'{"method": "turn/completed", "params": {"threadId": "' + thread_id.encode() + b'", "turn": "x"}}'
    yield b'{"method": "item/agentMessage/delta", "params": {"threadId": 7}}'
    yield b'{"method": "fake/unknown", "id": "srv-1", "params": {}}'
    yield b"[" * 5000 + b"]" * 5000
    # A lone surrogate: valid JSON text, yet no UTF-8 encoder can write it back out.
    yield (
        b'{"method": "item/agentMessage/delta", "params": {"threadId": "'
        + thread_id.encode()
        + b'", "turnId": "t", "itemId": "i", "delta": "\\ud800"}}'
    )


class FakeAppServer:
    """The state of one fake child: its threads, hanging turns and the hostile act still to do."""

    def __init__(self, mode: str, target: str, state_dir: str | None) -> None:
        self.mode = mode
        self.target = target
        self.state_dir = state_dir
        self.out = sys.stdout.buffer
        self.threads: dict[str, Message] = {}
        self.hanging: dict[str, tuple[str, str]] = {}  # thread id -> (turn id, item id)
        self.asking: dict[str, tuple[str, str, str]] = {}  # our request id -> (thread, turn, item)
        self.next_request = 0
        self.last_thread = "none"

    # --- writing ------------------------------------------------------------------------------

    def write_raw(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def send(self, message: Message) -> None:
        line = json.dumps(message, separators=(",", ":")).encode()
        if self.mode == "garbage":
            self.write_raw(b"".join(junk + b"\n" for junk in garbage_lines(self.last_thread)))
        self.write_raw(line + b"\n")

    def notify(self, method: str, params: Message) -> None:
        self.send({"method": method, "params": params})

    # --- hostility ----------------------------------------------------------------------------

    def _claim_hostile_act(self) -> bool:
        if self.mode in ("normal", "garbage"):
            return False
        if self.state_dir is None:
            return True
        try:
            os.close(os.open(Path(self.state_dir, "hostile-act-done"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def answer(self, request_id: object, result: Message, method: str) -> bool:
        """Send our answer to `method`, or do the hostile act instead; False: stop serving."""
        line = json.dumps({"id": request_id, "result": result}, separators=(",", ":")).encode()
        if method != self.target or self.mode == "exit_mid_turn" or not self._claim_hostile_act():
            self.send({"id": request_id, "result": result})
            return True
        match self.mode:
            case "truncated":
                self.write_raw(line[: len(line) // 2] + b"\n")
            case "huge_line":
                chunk = b"x" * (1024 * 1024)
                for _ in range(HUGE_LINE_BYTES // len(chunk) + 1):
                    self.out.write(chunk)
                self.write_raw(b"\n" + line + b"\n")
            case "flood":
                note = json.dumps({"method": UNKNOWN_FLOOD_METHOD, "params": {"n": 0}}).encode() + b"\n"
                self.write_raw(note * FLOOD_COUNT + line + b"\n")
            case "exit_mid_response":
                self.write_raw(line[: len(line) // 2])
                return False
            case _:  # silent
                pass
        return True

    # --- methods ------------------------------------------------------------------------------

    def handle(self, message: Message) -> bool:
        """Serve one message; False when the child must exit."""
        method = message.get("method")
        request_id = message.get("id")
        raw_params: object = message.get("params")
        params = cast(Message, raw_params) if isinstance(raw_params, dict) else {}
        if not isinstance(method, str):
            self._answered(request_id, message)
            return True
        if request_id is None:
            return True  # `initialized`
        match method:
            case "initialize":
                info = {
                    "userAgent": f"codex-mcp/{FAKE_VERSION} (fake)",
                    "codexHome": os.environ.get("CODEX_HOME", "/codex-home"),
                    "platformFamily": "unix",
                    "platformOs": "linux",
                }
                return self.answer(request_id, info, method)
            case "thread/start" | "thread/fork" | "thread/resume":
                return self._thread_call(method, request_id, params)
            case "turn/start":
                return self._turn_start(request_id, params)
            case "turn/steer":
                return self._turn_steer(request_id, params)
            case "turn/interrupt":
                keep = self.answer(request_id, {}, method)
                self._end_hanging(str(params.get("threadId")), "interrupted")
                return keep
            case "thread/backgroundTerminals/clean":
                return self.answer(request_id, {}, method)
            case _:
                error = {"code": _METHOD_NOT_FOUND, "message": f"fake app-server: no method {method}"}
                self.send({"id": request_id, "error": error})
                return True

    def _thread_call(self, method: str, request_id: object, params: Message) -> bool:
        cwd = str(params.get("cwd") or os.getcwd())
        source = str(params.get("threadId", ""))
        thread_id = source if method == "thread/resume" else str(uuid.uuid4())
        forked_from = source if method == "thread/fork" else None
        thread = self.threads.get(thread_id) or _thread(thread_id, cwd, forked_from=forked_from)
        self.threads[thread_id] = thread
        self.last_thread = thread_id
        keep = self.answer(request_id, _thread_result(thread, params), method)
        if keep and method != "thread/resume":
            self.notify("thread/started", {"thread": thread})
        return keep

    def _turn_start(self, request_id: object, params: Message) -> bool:
        thread_id = str(params.get("threadId"))
        self.last_thread = thread_id
        turn_id = str(uuid.uuid4())
        item_id = f"msg_{turn_id}"
        if not self.answer(request_id, {"turn": _turn(turn_id, "inProgress", [])}, "turn/start"):
            return False
        self.notify("turn/started", {"threadId": thread_id, "turn": _turn(turn_id, "inProgress", [])})
        if self.mode == "exit_mid_turn" and self._claim_hostile_act():
            return False
        prompt = _prompt(params)
        if HANG_MARKER in prompt:
            self.hanging[thread_id] = (turn_id, item_id)
            return True
        if APPROVE_MARKER in prompt or ASK_MARKER in prompt:
            self._ask(thread_id, turn_id, item_id, approval=APPROVE_MARKER in prompt)
            return True
        self._complete(thread_id, turn_id, item_id, FAKE_TEXT, failed=FAIL_MARKER in prompt)
        return True

    def _turn_steer(self, request_id: object, params: Message) -> bool:
        thread_id, expected = str(params.get("threadId")), str(params.get("expectedTurnId"))
        hanging = self.hanging.get(thread_id)
        if hanging is None or hanging[0] != expected:
            # Codex's refusals, word for word.
            message = (
                "no active turn to steer"
                if hanging is None
                else f"expected active turn id `{expected}` but found `{hanging[0]}`"
            )
            self.send({"id": request_id, "error": {"code": _INVALID_REQUEST, "message": message}})
            return True
        if not self.answer(request_id, {"turnId": expected}, "turn/steer"):
            return False
        item: Message = {
            "type": "userMessage",
            "id": str(uuid.uuid4()),
            "clientId": params.get("clientUserMessageId"),
            "content": [{"type": "text", "text": _prompt(params), "text_elements": list[Message]()}],
        }
        ids = {"threadId": thread_id, "turnId": expected}
        self.notify("item/started", {"item": item, **ids, "startedAtMs": 1795487575000})
        self.notify("item/completed", {"item": item, **ids, "completedAtMs": 1795487575000})
        return True

    def _ask(self, thread_id: str, turn_id: str, item_id: str, *, approval: bool) -> None:
        self.next_request += 1
        request_id = f"fake-request-{self.next_request}"
        self.asking[request_id] = (thread_id, turn_id, item_id)
        self.hanging[thread_id] = (turn_id, item_id)
        ids = {"threadId": thread_id, "turnId": turn_id, "itemId": f"call_{turn_id}"}
        if approval:
            params: Message = {
                "kind": "command",
                **ids,
                "startedAtMs": 1795487575000,
                "environmentId": "local",
                "command": FAKE_COMMAND,
                "cwd": os.getcwd(),
                "commandActions": [{"type": "unknown", "command": FAKE_COMMAND}],
                "proposedExecpolicyAmendment": FAKE_COMMAND.split(),
                "availableDecisions": [
                    "accept",
                    {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": FAKE_COMMAND.split()}},
                    "cancel",
                ],
            }
            self.send({"method": "item/commandExecution/requestApproval", "id": request_id, "params": params})
            return
        question = {
            "id": FAKE_QUESTION_ID,
            "header": "Color",
            "question": "Which color?",
            "isOther": True,
            "isSecret": False,
            "options": [{"label": "Blue", "description": "Calm."}, {"label": "Red", "description": "Loud."}],
        }
        params = {**ids, "questions": [question], "isBlocking": True, "autoResolutionMs": None}
        self.send({"method": "item/tool/requestUserInput", "id": request_id, "params": params})

    def _answered(self, request_id: object, message: Message) -> None:
        asked = self.asking.pop(str(request_id), None)
        if asked is None or self.hanging.get(asked[0]) != asked[1:]:
            return  # an answer for a turn already interrupted
        del self.hanging[asked[0]]
        text = f"answered: {json.dumps(message.get('result', message.get('error')), sort_keys=True)}"
        self._complete(*asked, text, failed=False)

    def _complete(self, thread_id: str, turn_id: str, item_id: str, text: str, *, failed: bool) -> None:
        ids = {"threadId": thread_id, "turnId": turn_id}
        started = _agent_message(item_id, "")
        self.notify("item/started", {"item": started, **ids, "startedAtMs": 1795487575000})
        self.notify("item/agentMessage/delta", {**ids, "itemId": item_id, "delta": text})
        done = _agent_message(item_id, text)
        self.notify("item/completed", {"item": done, **ids, "completedAtMs": 1795487575001})
        usage = {"total": _USAGE, "last": _USAGE, "modelContextWindow": 258400}
        self.notify("thread/tokenUsage/updated", {**ids, "tokenUsage": usage})
        if failed:
            error = {"message": FAKE_FAILURE, "codexErrorInfo": None, "additionalDetails": None}
            self.notify("error", {**ids, "error": error, "willRetry": False})
            turn = _turn(turn_id, "failed", [done], error)
        else:
            turn = _turn(turn_id, "completed", [done])
        self.notify("turn/completed", {"threadId": thread_id, "turn": turn})

    def _end_hanging(self, thread_id: str, status: str) -> None:
        hanging = self.hanging.pop(thread_id, None)
        if hanging is not None:
            self.notify("turn/completed", {"threadId": thread_id, "turn": _turn(hanging[0], status, [])})

    def serve(self) -> int:
        """Answer stdin until EOF (0) or the hostile act ends the process (EXIT_CODE)."""
        for raw in sys.stdin.buffer:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, dict) and not self.handle(cast(Message, message)):
                self.out.flush()
                return EXIT_CODE
        return 0


def main(argv: list[str]) -> int:
    """`codex app-server` (any other command is refused)."""
    if argv[:1] != ["app-server"]:
        print(f"fake codex: unsupported command {argv!r}", file=sys.stderr)
        return 2
    if "--help" in argv:
        print("Usage: codex app-server [OPTIONS]")
        return 0
    mode = os.environ.get("FAKE_CODEX_MODE", "normal")
    if mode not in MODES:
        print(f"fake codex: unknown FAKE_CODEX_MODE {mode!r}", file=sys.stderr)
        return 2
    print(f"fake codex app-server starting in mode {mode}", file=sys.stderr)
    state_dir = os.environ.get("FAKE_CODEX_STATE") or None
    server = FakeAppServer(mode, os.environ.get("FAKE_CODEX_TARGET", "turn/start"), state_dir)
    return server.serve()


# --- test side --------------------------------------------------------------------------------


def write_fake_codex(
    directory: Path,
    *,
    mode: str = "normal",
    target: str = "turn/start",
    once: bool = True,
) -> Path:
    """An executable `directory/codex` that runs this fake in `mode`.

    `--version` and `login status` are answered by the shell wrapper itself, so `codex_setup`
    costs two tiny forks; `app-server` runs this file under the current interpreter. With `once`,
    the hostile act happens a single time across every child the wrapper starts.
    """
    if mode not in MODES:
        raise ValueError(f"unknown fake mode {mode!r}; modes: {', '.join(MODES)}")
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "fake-state"
    state.mkdir(exist_ok=True)
    settings = {
        "FAKE_CODEX_MODE": mode,
        "FAKE_CODEX_TARGET": target,
        "FAKE_CODEX_STATE": str(state) if once else "",
    }
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in settings.items())
    script = (
        "#!/bin/sh\n"
        f"{exports}"
        'case "$1" in\n'
        f'  --version) echo "codex-cli {FAKE_VERSION}"; exit 0 ;;\n'
        '  login) echo "Logged in using an API key"; exit 0 ;;\n'
        "esac\n"
        f'exec {shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} "$@"\n'
    )
    path = directory / "codex"
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
