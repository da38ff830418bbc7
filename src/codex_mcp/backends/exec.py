"""The fallback backend: one `codex exec --json` child per turn, mapped onto app-server notifications.

A first turn runs ``codex exec``; later turns run ``codex exec resume <threadId>``. Each child gets
stdin at EOF (exec reads stdin to EOF before it starts when stdin is not a TTY), prints JSONL
events on stdout and exits when the turn ends. `ExecTurnMapper` turns those events into the
``(method, params)`` notifications the session already consumes from the app-server, so the rest
of codex-mcp does not know which backend ran the turn.

What codex-cli 0.163 does, measured against the real binary:

- ``exec`` has no approvals: it forces the approval policy to ``never``. ``-c approval_policy=
  "on-request"`` (or ``"on-failure"``) is accepted and ignored; a command asking for escalation is
  rejected without being run (the model is told "approval policy is Never; reject command").
  ``-c approval_policy="untrusted"`` makes exec refuse to start ("approval_policy = "untrusted" is
  no longer supported", exit 1). So the policy is never passed; asking for one exec cannot honour
  gives a warning.
- ``exec resume`` takes ``-m``, ``-c``, ``-i``, ``--json``, ``--skip-git-repo-check``,
  ``--output-schema`` and ``--ephemeral``, but not ``-s``, ``-C`` or ``-p``. The sandbox is passed
  as ``-c sandbox_mode=...`` instead, and the working directory is the child's own: a resumed
  thread runs in the directory exec starts in.
- ``exec resume <id>`` with an unknown UUID fails ("no rollout found"); with an id that is not a
  UUID, it is taken as a thread name and, when none matches, a new thread starts silently. The
  mapper warns when the thread that started is not the one asked for.
- SIGINT ends exec within milliseconds and records the turn as aborted in the thread (a resumed
  turn shows the model a ``<turn_aborted>`` note); SIGKILL loses that note. Interrupting sends
  SIGINT, then kills the whole tree after a short grace.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import anyio

from codex_mcp.backends.process import ChildProcess, open_child
from codex_mcp.errors import redact
from codex_mcp.wire.exec_events import ExecEvent, parse_event

logger = logging.getLogger(__name__)

__all__ = [
    "SANDBOX_MODES",
    "ExecTurnMapper",
    "ExecTurnOutcome",
    "ExecTurnSpec",
    "Notification",
    "build_exec_argv",
    "convert_item",
    "run_exec_turn",
    "toml_value",
]

Notification = tuple[str, dict[str, Any]]
"""``(method, params)`` in app-server vocabulary."""

NotificationCallback = (
    Callable[[str, dict[str, Any]], Awaitable[None]] | Callable[[str, dict[str, Any]], None]
)

SANDBOX_MODES: Final = ("read-only", "workspace-write", "danger-full-access")
# The only policy exec runs with; anything else cannot be honoured.
_EXEC_APPROVAL_POLICY: Final = "never"
# After SIGINT, exec records the abort and exits within milliseconds; then the tree is killed.
_INTERRUPT_GRACE_S: Final = 0.5
# Bound on delivering the last turn/completed when the caller is being cancelled.
_FINAL_DELIVERY_S: Final = 5.0
# How much of the stderr tail goes into an error message.
_TAIL_IN_ERROR_CHARS: Final = 1000
# `error` events Codex sends while it retries: "Reconnecting... 2/5", "retrying sampling request (1/5 ...)".
_RETRY_MESSAGE: Final = re.compile(r"reconnect|\b\d+/\d+\b", re.IGNORECASE)
# A `-c` key: a dotted path of bare TOML keys; nothing that could read as a flag or hold an `=`.
_CONFIG_KEY: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")
_BARE_TOML_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
# The same exec item under its app-server name.
_ITEM_TYPES: Final = {
    "agent_message": "agentMessage",
    "reasoning": "reasoning",
    "command_execution": "commandExecution",
    "file_change": "fileChange",
    "mcp_tool_call": "mcpToolCall",
    "collab_tool_call": "collabAgentToolCall",
    "web_search": "webSearch",
    "todo_list": "todoList",
    "error": "error",
}
_ITEM_METHODS: Final = {
    "item.started": "item/started",
    "item.updated": "item/updated",
    "item.completed": "item/completed",
}
_KNOWN_EVENT_TYPES: Final = frozenset(
    {"thread.started", "turn.started", "turn.completed", "turn.failed", "error", *_ITEM_METHODS}
)
# stdin for the child: exec reads it to EOF first, so it must end at once.
_DEV_NULL: Final = "/dev/null"
# Runs argv with stdin from a file (the first argument) in place of the shell: same pid, same tree.
_STDIN_SHIM: Final = ("/bin/sh", "-c", 'stdin_file=$1; shift; exec "$@" <"$stdin_file"', "codex-exec")

_T = TypeVar("_T")


@dataclass
class ExecTurnSpec:
    """One turn for `codex exec`: what to send and how to run it."""

    prompt: str
    cwd: str
    thread_id: str | None = None
    """None: a first turn (``codex exec``); else ``codex exec resume <thread_id>``."""
    sandbox: str | None = None
    """read-only | workspace-write | danger-full-access."""
    model: str | None = None
    approval_policy: str | None = None
    """exec always runs with ``never``; any other policy is not passed and gives a warning."""
    effort: str | None = None
    summary: str | None = None
    config: dict[str, Any] | None = None
    """``-c key=<TOML value>`` each."""
    images: list[str] = field(default_factory=list[str])
    output_schema: dict[str, Any] | None = None
    ephemeral: bool = False


@dataclass
class ExecTurnOutcome:
    """How a turn ended; the notifications themselves went to the callback."""

    thread_id: str | None
    returncode: int | None
    """The child's exit status (negative: killed by that signal); None when it never started."""
    warnings: list[str]
    stderr_tail: str
    """The last lines the child wrote to stderr, unredacted."""
    status: str = "failed"
    """The status of the turn/completed delivered: completed | failed | interrupted."""
    last_agent_message: str | None = None


# --- argv -----------------------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """`value` as a TOML value (strings quoted, bools, numbers, arrays, inline tables).

    Raises:
        TypeError: for a value TOML cannot hold (None, or a non-JSON type).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        items = cast(list[object] | tuple[object, ...], value)
        return "[" + ", ".join(toml_value(item) for item in items) + "]"
    if isinstance(value, Mapping):
        table = cast(Mapping[object, object], value)
        pairs = [f"{_toml_key(str(key))} = {toml_value(item)}" for key, item in table.items()]
        return "{" + ", ".join(pairs) + "}"
    kind = "null" if value is None else type(value).__name__
    raise TypeError(f"{kind} has no TOML form")


def _toml_string(text: str) -> str:
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_TOML_KEY.fullmatch(key) else _toml_string(key)


def build_exec_argv(codex: str, spec: ExecTurnSpec, schema_path: str | None) -> tuple[list[str], list[str]]:
    """(argv, warnings) for one turn; the child must be spawned in ``spec.cwd``.

    Always ``--json --skip-git-repo-check``; the prompt goes last after ``--`` (so ``-i`` cannot
    swallow it and a prompt starting with ``-`` is not a flag). Each ``-c`` pair is one argv
    element with a TOML-encoded value. ``exec resume`` takes no ``-s`` or ``-C``: the sandbox goes
    as ``-c sandbox_mode=...`` and the working directory is the child's. A setting exec cannot
    honour is left out and named in a warning, never dropped silently.

    Raises:
        ValueError: ``spec.sandbox`` is not one of `SANDBOX_MODES`.
    """
    if spec.sandbox is not None and spec.sandbox not in SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {', '.join(SANDBOX_MODES)}, not {spec.sandbox!r}")
    warnings: list[str] = []
    resume = spec.thread_id is not None
    argv = [codex, "exec", *(["resume"] if resume else []), "--json", "--skip-git-repo-check"]
    if not resume:
        argv += ["-C", os.path.abspath(spec.cwd)]
        if spec.sandbox is not None:
            argv += ["-s", spec.sandbox]
    if spec.model is not None:
        argv += ["-m", spec.model]
    argv += _config_args(spec, warnings)
    if resume and spec.sandbox is not None:
        # After the caller's config, so the sandbox parameter wins over a config entry.
        argv += ["-c", f"sandbox_mode={toml_value(spec.sandbox)}"]
    for image in spec.images:
        # Absolute, so no image path can read as a flag, whatever the child's directory.
        argv += ["-i", os.path.join(os.path.abspath(spec.cwd), image)]
    if schema_path is not None:
        argv += ["--output-schema", schema_path]
    if spec.ephemeral:
        argv.append("--ephemeral")
    _approval_warning(spec.approval_policy, "approval_policy", warnings)
    argv.append("--")
    if spec.thread_id is not None:
        argv.append(spec.thread_id)
    argv.append(spec.prompt)
    return argv, warnings


def _config_args(spec: ExecTurnSpec, warnings: list[str]) -> list[str]:
    pairs: list[tuple[str, object]] = list((spec.config or {}).items())
    # The dedicated parameters after the free-form config: a later -c wins.
    if spec.effort is not None:
        pairs.append(("model_reasoning_effort", spec.effort))
    if spec.summary is not None:
        pairs.append(("model_reasoning_summary", spec.summary))
    args: list[str] = []
    for key, value in pairs:
        if not _CONFIG_KEY.fullmatch(key):
            warnings.append(f"config key {key!r} is not a dotted TOML key path; not passed to codex exec")
            continue
        if key == "approval_policy":
            _approval_warning(value, "config.approval_policy", warnings)
            continue
        try:
            encoded = toml_value(value)
        except TypeError as exc:
            warnings.append(f"config {key}: {exc}; not passed to codex exec")
            continue
        args += ["-c", f"{key}={encoded}"]
    return args


def _approval_warning(policy: object, name: str, warnings: list[str]) -> None:
    if policy is None or policy == _EXEC_APPROVAL_POLICY:
        return
    if policy == "untrusted":
        why = 'codex exec refuses to start with it ("no longer supported")'
    else:
        why = "codex exec cannot ask for approval"
    warnings.append(
        f"{name}={policy!r} not passed: {why}; the turn runs with approval policy never, so a "
        "command that needs approval is rejected without running"
    )


# --- mapping --------------------------------------------------------------------------------------


def _obj(value: object) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def convert_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An exec item in app-server form: camelCase type and status, camelCase copies of snake_case keys.

    Every original key is kept (``aggregated_output`` next to ``aggregatedOutput``).
    """
    out = dict(item)
    item_type = item.get("type")
    if isinstance(item_type, str):
        out["type"] = _ITEM_TYPES.get(item_type, _camel(item_type))
    for key, value in item.items():
        if "_" in key.strip("_") and not key.startswith("_"):
            out.setdefault(_camel(key), value)
    status = item.get("status")
    if isinstance(status, str):
        out["status"] = _camel(status)
    if item_type == "reasoning" and isinstance(item.get("text"), str) and "summary" not in out:
        out["summary"] = [item["text"]]
    result = item.get("result")
    if isinstance(result, dict):
        converted = dict(cast(dict[str, Any], result))
        for key, value in cast(dict[str, Any], result).items():
            if "_" in key.strip("_") and not key.startswith("_"):
                converted.setdefault(_camel(key), value)
        out["result"] = converted
    return out


def _token_breakdown(usage: Mapping[str, Any]) -> dict[str, Any]:
    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    breakdown: dict[str, Any] = {_camel(key): value for key, value in usage.items()}
    breakdown.update(
        {
            "inputTokens": count("input_tokens"),
            "cachedInputTokens": count("cached_input_tokens"),
            "outputTokens": count("output_tokens"),
            "reasoningOutputTokens": count("reasoning_output_tokens"),
            "totalTokens": count("input_tokens") + count("output_tokens"),
        }
    )
    return breakdown


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ExecTurnMapper:
    """Turns exec events into app-server-style notifications for one turn.

    Stateful: it remembers the thread id, the turn id, the last agent message and whether the
    turn completed; it delivers at most one turn/completed. Each notification keeps the exec
    event's own fields next to the app-server ones.
    """

    def __init__(self, thread_id: str | None, turn_id: str) -> None:
        self.thread_id = thread_id
        self.turn_id = turn_id
        self.completed = False
        self.status: str | None = None
        self.last_agent_message: str | None = None
        self.warnings: list[str] = []
        self._requested_thread_id = thread_id
        self._last_error: str | None = None

    def map(self, event: ExecEvent) -> list[Notification]:
        """The notifications for one typed exec event (possibly none)."""
        return self.map_raw(event.raw)

    def map_raw(self, raw: Mapping[str, Any]) -> list[Notification]:
        """The notifications for one exec event as a JSON object (also one the schema rejected)."""
        event_type = raw.get("type")
        original = {key: value for key, value in raw.items() if key != "type"}
        match event_type:
            case "thread.started":
                return self._thread_started(original)
            case "turn.started":
                turn: dict[str, Any] = {
                    "id": self.turn_id,
                    "items": [],
                    "status": "inProgress",
                    "error": None,
                }
                return [("turn/started", {**original, "threadId": self.thread_id, "turn": turn})]
            case "item.started" | "item.updated" | "item.completed":
                return self._item(_ITEM_METHODS[event_type], original)
            case "turn.completed":
                return self._turn_completed(original)
            case "turn.failed":
                return self._turn_failed(original)
            case "error":
                return [self._error_event(original)]
            case _:
                logger.warning("exec event of unknown type %r skipped", event_type)
                return []

    def finish_without_completion(self, returncode: int | None, stderr_tail: str) -> list[Notification]:
        """error (willRetry false, with the redacted stderr tail) and a failed turn/completed.

        None once the turn has completed.
        """
        if self.completed:
            return []
        if returncode is None:
            message = "codex exec did not start"
        else:
            message = f"codex exec {_describe_exit(returncode)} before the turn completed"
        tail = redact(stderr_tail.strip()[-_TAIL_IN_ERROR_CHARS:])
        if tail:
            message += f"; {'stderr' if returncode is not None else 'reason'}: {tail}"
        error = {"message": message}
        return [
            (
                "error",
                {"threadId": self.thread_id, "turnId": self.turn_id, "willRetry": False, "error": error},
            ),
            self._complete("failed", error, {"exitCode": returncode}),
        ]

    def interrupted(self) -> list[Notification]:
        """A turn/completed with status interrupted; none once the turn has completed."""
        if self.completed:
            return []
        return [self._complete("interrupted", None, {})]

    # --- one per event type -----------------------------------------------------------------------

    def _thread_started(self, original: dict[str, Any]) -> list[Notification]:
        thread_id = original.get("thread_id")
        if isinstance(thread_id, str):
            requested = self._requested_thread_id
            if requested is not None and thread_id != requested:
                warning = (
                    f"codex exec resume started thread {thread_id} instead of resuming {requested}: "
                    "the earlier context is not in this turn"
                )
                logger.warning("%s", warning)
                self.warnings.append(warning)
            self.thread_id = thread_id
        return [
            ("thread/started", {**original, "threadId": self.thread_id, "thread": {"id": self.thread_id}})
        ]

    def _item(self, method: str, original: dict[str, Any]) -> list[Notification]:
        raw_item = _obj(original.get("item"))
        item = convert_item(raw_item)
        if method == "item/completed" and raw_item.get("type") == "agent_message":
            text = raw_item.get("text")
            if isinstance(text, str):
                self.last_agent_message = text
        return [(method, {**original, "threadId": self.thread_id, "turnId": self.turn_id, "item": item})]

    def _turn_completed(self, original: dict[str, Any]) -> list[Notification]:
        if self.completed:
            logger.warning("exec turn.completed after the turn had ended: ignored")
            return []
        usage = _obj(original.get("usage"))
        notes: list[Notification] = []
        if usage:
            # exec reports the thread's cumulative usage and nothing per turn: `last` is the same.
            total = _token_breakdown(usage)
            token_usage = {"total": total, "last": dict(total)}
            params = {"usage": usage, "threadId": self.thread_id, "turnId": self.turn_id}
            notes.append(("thread/tokenUsage/updated", {**params, "tokenUsage": token_usage}))
        notes.append(self._complete("completed", None, original))
        return notes

    def _turn_failed(self, original: dict[str, Any]) -> list[Notification]:
        if self.completed:
            logger.warning("exec turn.failed after the turn had ended: ignored")
            return []
        raw_error = _obj(original.get("error"))
        message = raw_error.get("message")
        error = {**raw_error, "message": message if isinstance(message, str) else "the turn failed"}
        notes: list[Notification] = []
        if error["message"] != self._last_error:
            # exec usually sends the same message as an `error` event just before: say it once.
            params = {"threadId": self.thread_id, "turnId": self.turn_id, "willRetry": False}
            notes.append(("error", {**params, "error": error}))
        notes.append(self._complete("failed", error, original))
        return notes

    def _error_event(self, original: dict[str, Any]) -> Notification:
        message = original.get("message")
        text = message if isinstance(message, str) else "codex exec reported an error"
        will_retry = bool(_RETRY_MESSAGE.search(text))
        if not will_retry:
            self._last_error = text
        params = {"threadId": self.thread_id, "turnId": self.turn_id, "willRetry": will_retry}
        return ("error", {**original, **params, "error": {"message": text}})

    def _complete(self, status: str, error: dict[str, Any] | None, original: dict[str, Any]) -> Notification:
        self.completed = True
        self.status = status
        turn: dict[str, Any] = {"id": self.turn_id, "items": [], "status": status, "error": error}
        return ("turn/completed", {**original, "threadId": self.thread_id, "turn": turn})


# --- running a turn -------------------------------------------------------------------------------


class _StopGate:
    """Waits that end early when `stop` is set; what runs between waits is never cancelled."""

    def __init__(self, stop: anyio.Event) -> None:
        self._stop = stop
        self._scope: anyio.CancelScope | None = None

    async def watch(self) -> None:
        await self._stop.wait()
        if self._scope is not None:
            self._scope.cancel()

    async def wait(self, waiter: Callable[[], Awaitable[_T]]) -> tuple[bool, _T | None]:
        """(stopped, result): ``(True, None)`` when `stop` was set first."""
        if self._stop.is_set():
            return True, None
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                return False, await waiter()
            finally:
                self._scope = None
        return True, None


class _Delivery:
    """Hands notifications to the callback in order; a failing callback is logged, not fatal."""

    def __init__(self, callback: NotificationCallback) -> None:
        self._callback = callback
        self.turn_completed = False

    async def __call__(self, notes: list[Notification]) -> None:
        for method, params in notes:
            if method == "turn/completed":
                if self.turn_completed:
                    continue
                self.turn_completed = True
            try:
                result = self._callback(method, params)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("exec notification callback failed on %s", method)


@contextmanager
def _private_dir() -> Generator[Path]:
    """A temporary directory only we can read (0700), removed afterwards with what it holds."""
    path = Path(tempfile.mkdtemp(prefix="codex-mcp-exec-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)


async def _kill_tree(child: ChildProcess) -> None:
    """SIGINT (exec records the abort), a short grace, then SIGKILL the group; the rest on exit.

    Leaving `open_child`'s context kills every recorded or tagged descendant still alive.
    """
    # We read no more: the child's stdout is drained and dropped, so `wait_exit` can return.
    child.lines.close()
    await child.snapshot_tree()
    for sig, grace in ((signal.SIGINT, _INTERRUPT_GRACE_S), (signal.SIGKILL, 0.0)):
        # Only while the leader is unreaped: then the group id cannot belong to anyone else.
        if child.returncode is not None:
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)
        if grace:
            with anyio.move_on_after(grace):
                await child.wait_exit()


async def run_exec_turn(
    codex: str,
    spec: ExecTurnSpec,
    *,
    env: Mapping[str, str] | None,
    turn_id: str,
    on_notification: NotificationCallback,
    stop: anyio.Event,
) -> ExecTurnOutcome:
    """Run one turn as a `codex exec --json` child and deliver its notifications in order.

    Stdout lines go through `parse_event`; a line that is not an exec event is logged at WARNING
    and skipped (one of a known type that the schema rejects is still mapped from its JSON). When
    `stop` is set the child's whole process tree is killed at once and the turn ends interrupted.
    Exactly one turn/completed is delivered, last, once the child and everything it started are
    gone (so a next turn never resumes a thread whose child is still writing it), whatever
    happens: a child that cannot start, exits early, or a caller that cancels. None `env`
    inherits ours.

    Raises:
        ValueError: ``spec.sandbox`` is not one of `SANDBOX_MODES` (nothing is delivered).
    """
    turn = _ExecTurn(ExecTurnMapper(spec.thread_id, turn_id), _Delivery(on_notification), stop)
    with _private_dir() as private:
        schema_path: str | None = None
        if spec.output_schema is not None:
            schema_file = private / "output-schema.json"
            _write_private(schema_file, json.dumps(spec.output_schema))
            schema_path = str(schema_file)
        argv, warnings = build_exec_argv(codex, spec, schema_path)
        for warning in warnings:
            logger.warning("exec turn %s: %s", turn_id, warning)
        stdin_file = _DEV_NULL
        if spec.prompt == "-":
            # exec reads a prompt of "-" from stdin: give it the prompt there.
            stdin_file = str(private / "prompt.txt")
            _write_private(Path(stdin_file), spec.prompt)
        try:
            if not stop.is_set():
                await turn.run_child([*_STDIN_SHIM, stdin_file, *argv], env=env, cwd=spec.cwd)
        except OSError as exc:
            logger.warning("exec turn %s: could not start codex exec: %s", turn_id, exc)
            turn.held += turn.mapper.finish_without_completion(None, str(exc))
        finally:
            # Also when cancelled from outside: the turn still ends, briefly and shielded.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_FINAL_DELIVERY_S) as bound:
                await turn.deliver(turn.held or turn.mapper.interrupted())
            if bound.cancelled_caught:
                logger.warning(
                    "exec turn %s: the callback took over %ss on turn/completed", turn_id, _FINAL_DELIVERY_S
                )
    mapper = turn.mapper
    return ExecTurnOutcome(
        thread_id=mapper.thread_id,
        returncode=turn.returncode,
        warnings=warnings + mapper.warnings,
        stderr_tail=turn.stderr_tail,
        status=mapper.status or "interrupted",
        last_agent_message=mapper.last_agent_message,
    )


class _ExecTurn:
    """One child's run: mapping, delivery, and the closing notifications held until it is gone."""

    def __init__(self, mapper: ExecTurnMapper, deliver: _Delivery, stop: anyio.Event) -> None:
        self.mapper = mapper
        self.deliver = deliver
        self.stop = stop
        self.held: list[Notification] = []
        self.returncode: int | None = None
        self.stderr_tail = ""

    async def run_child(self, argv: list[str], *, env: Mapping[str, str] | None, cwd: str) -> None:
        """Run the child to its end (or `stop`); the closing notifications go to `held`."""
        async with open_child(argv, env=env, cwd=cwd) as child:
            try:
                stopped = await self._pump(child)
            finally:
                if child.returncode is None:
                    # Asked to stop, or cancelled: nothing of the tree may outlive the turn.
                    with anyio.CancelScope(shield=True):
                        await _kill_tree(child)
        # Leaving open_child killed whatever was left of the tree.
        self.returncode = child.returncode
        self.stderr_tail = child.stderr_tail()
        if not self.held:
            if stopped:
                self.held += self.mapper.interrupted()
            else:
                self.held += self.mapper.finish_without_completion(child.returncode, self.stderr_tail)

    async def _pump(self, child: ChildProcess) -> bool:
        """Deliver the child's events until it exits; True when `stop` came first."""
        gate = _StopGate(self.stop)
        stopped = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(gate.watch)
            try:
                while not stopped:
                    stopped, line = await gate.wait(lambda: _next_line(child))
                    if line is None:
                        break
                    notes = _map_line(self.mapper, line)
                    self.held += [note for note in notes if note[0] == "turn/completed"]
                    await self.deliver([note for note in notes if note[0] != "turn/completed"])
                if not stopped:
                    stopped, _ = await gate.wait(child.wait_exit)
            finally:
                tg.cancel_scope.cancel()
        return stopped


async def _next_line(child: ChildProcess) -> bytes | None:
    try:
        return await child.lines.receive()
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return None


def _map_line(mapper: ExecTurnMapper, line: bytes) -> list[Notification]:
    event = parse_event(line)
    if isinstance(event, ExecEvent):
        return mapper.map(event)
    raw = _obj(event.raw)
    if raw.get("type") in _KNOWN_EVENT_TYPES:
        logger.warning("exec event does not match the pinned schema (%s); mapped as is", event.reason)
        return mapper.map_raw(raw)
    logger.warning("skipped a codex exec stdout line (%s): %.200s", event.reason, event.line)
    return []
