"""The fallback backend: one `codex exec --json` child per turn, mapped onto app-server notifications.

A first turn runs ``codex exec``; later turns run ``codex exec resume <threadId>``. Each child gets
stdin at EOF (exec reads stdin to EOF before it starts when stdin is not a TTY), prints JSONL
events on stdout and exits when the turn ends. This module runs a turn: it spawns the child with
the argv from `exec_argv`, delivers the notifications `exec_mapping` makes of its events, and
stops it. The rest of codex-mcp does not know which backend ran the turn.

What codex-cli 0.163 does, measured against the real binary:

- SIGINT ends exec within milliseconds and records the turn as aborted in the thread (a resumed
  turn shows the model a ``<turn_aborted>`` note); SIGKILL loses that note. Interrupting sends
  SIGINT, then kills the whole tree after a short grace.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio

from codex_mcp.backends.exec_argv import ExecTurnSpec, build_exec_argv
from codex_mcp.backends.exec_mapping import ExecTurnMapper, Notification, map_line
from codex_mcp.backends.process import ChildProcess, open_child
from codex_mcp.wire.methods import TURN_COMPLETED

logger = logging.getLogger(__name__)

__all__ = [
    "ExecTurnOutcome",
    "run_exec_turn",
]

NotificationCallback = (
    Callable[[str, dict[str, Any]], Awaitable[None]] | Callable[[str, dict[str, Any]], None]
)

# After SIGINT, exec records the abort and exits within milliseconds; then the tree is killed.
_INTERRUPT_GRACE_S: Final = 0.5
# Bound on delivering the last turn/completed when the caller is being cancelled.
_FINAL_DELIVERY_S: Final = 5.0
# stdin for the child: exec reads it to EOF first, so it must end at once.
_DEV_NULL: Final = "/dev/null"
# Runs argv with stdin from a file (the first argument) in place of the shell: same pid, same tree.
_STDIN_SHIM: Final = ("/bin/sh", "-c", 'stdin_file=$1; shift; exec "$@" <"$stdin_file"', "codex-exec")

_T = TypeVar("_T")


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
            if method == TURN_COMPLETED:
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
                    notes = map_line(self.mapper, line)
                    self.held += [note for note in notes if note[0] == TURN_COMPLETED]
                    await self.deliver([note for note in notes if note[0] != TURN_COMPLETED])
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
