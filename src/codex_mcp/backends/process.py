"""One child process with line-framed stdout, a bounded stderr tail and a shutdown that leaves nothing.

`open_child` starts the child in a session of its own and runs, in one task group: a stdout reader
that splits lines (an over-long line is dropped and logged, never fatal), a stderr drainer that
keeps a bounded tail and logs each line at DEBUG, an exit watcher, and a tracker that records the
child's descendants from ``/proc``. On exit, shielded and bounded at every step: close stdin, wait,
SIGTERM the process group, wait, SIGKILL the group, then SIGKILL every recorded descendant still
alive (Codex starts tool commands in sessions of their own, out of the group's reach).
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from subprocess import PIPE
from typing import Final, Protocol

import anyio
import anyio.to_thread
from anyio.abc import ByteReceiveStream, Process
from anyio.streams.memory import MemoryObjectReceiveStream

from codex_mcp.errors import ChildClosedError
from codex_mcp.proc import proc_tree, sweep
from codex_mcp.proc.linesplit import LineSplitter

logger = logging.getLogger(__name__)

# Longest stdout line delivered; a Codex message carrying a huge command output can be megabytes.
MAX_LINE_BYTES: Final = 64 * 1024 * 1024
_READ_CHUNK_BYTES: Final = 64 * 1024
# Lines read but not yet consumed.
_LINE_QUEUE: Final = 16
# stderr tail kept for error messages: this many lines, each cut to this many bytes.
_STDERR_TAIL_LINES: Final = 200
_STDERR_LINE_MAX_BYTES: Final = 4096

# Shutdown bounds: the child may finish cleanly after stdin closes, then after SIGTERM.
_STDIN_CLOSE_GRACE_S: Final = 2.0
_SIGTERM_GRACE_S: Final = 2.0
# After SIGKILL the kernel needs only moments; anything slower is stuck in the kernel.
_SIGKILL_WAIT_S: Final = 2.0
# Descendants killed one by one: rounds (a survivor may fork while we look) and the wait per round.
_SURVIVOR_KILL_ROUNDS: Final = 3
_SURVIVOR_KILL_WAIT_S: Final = 2.0
_SURVIVOR_POLL_S: Final = 0.02
# Closing our pipe ends once the child is dead.
_CLOSE_PIPES_S: Final = 2.0
# After the child exits, a descendant may still hold stdout or stderr open: stop reading a pipe that
# has been idle this long.
_PIPE_IDLE_AFTER_EXIT_S: Final = 1.0
# How often the child's descendants are recorded (a process that daemonizes in between is still
# found at shutdown by the environment tag below, unless it clears its environment).
_TREE_SNAPSHOT_INTERVAL_S: Final = 1.0
# Set to a fresh random value in each child's environment; everything that inherits it is ours.
TAG_VARIABLE: Final = "CODEX_MCP_PROCESS_TAG"


class SpawnLedger(Protocol):
    """Where spawned children are recorded, so a later server can stop what a killed one left."""

    def started(self, pid: int, start_time: int | None) -> None:
        """A child started."""
        ...

    def ended(self, pid: int) -> None:
        """A child has exited (and everything it started was stopped)."""
        ...


# Set by the owner of the children (the session manager) in each task that spawns; a context
# variable so that backends need not thread it through every call that may spawn.
SPAWN_LEDGER: ContextVar[SpawnLedger | None] = ContextVar("codex_mcp_spawn_ledger", default=None)


# Every child of this process that has not been stopped yet, for `kill_all_now`.
_LIVE: set[ChildProcess] = set()


def kill_all_now() -> None:
    """SIGKILL every child we started, now, for a server that must be gone within the ~100 ms its
    client allows; a detached sweeper then stops whatever those children had started (see
    `proc.sweep`), after we have exited."""
    ChildProcess.kill_all_now()


class ChildProcess:
    """A running child: stdout lines, serialized stdin writes, a stderr tail; see `open_child`."""

    def __init__(self, process: Process, *, max_line_bytes: int, tag: str) -> None:
        self._process = process
        self._tag_entry = f"{TAG_VARIABLE}={tag}".encode()
        self._max_line_bytes = max_line_bytes
        # A few lines of slack let the reader hand over a whole read's worth without a task switch
        # per line (1.5x the ingest rate of a streaming turn); it still waits when the consumer lags.
        self._lines_send, self._lines_receive = anyio.create_memory_object_stream[bytes](_LINE_QUEUE)
        self._stderr: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._write_lock = anyio.Lock()
        self._stdin_closed = False
        self._stdout_reads = 0
        self._stdout_delivering = False
        self._stdout_scope = anyio.CancelScope()
        self._stderr_scope = anyio.CancelScope()
        self._tracker_scope = anyio.CancelScope()
        self._stdout_done = anyio.Event()
        self._stderr_done = anyio.Event()
        self._exited = anyio.Event()
        start = proc_tree.start_time(process.pid)
        self._tree: proc_tree.ProcessSnapshot = {} if start is None else {process.pid: start}

    @classmethod
    @asynccontextmanager
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> AsyncGenerator[ChildProcess]:
        """Start `argv` in a new session; on exit stop it and everything it started (see module doc)."""
        tag = uuid.uuid4().hex
        child_env = {**(os.environ if env is None else env), TAG_VARIABLE: tag}
        process = await anyio.open_process(
            list(argv), stdin=PIPE, stdout=PIPE, stderr=PIPE, env=child_env, cwd=cwd, start_new_session=True
        )
        child = cls(process, max_line_bytes=max_line_bytes, tag=tag)
        _LIVE.add(child)
        logger.debug("started %s as pid %d", Path(argv[0]).name, process.pid)
        ledger = SPAWN_LEDGER.get()
        if ledger is not None:
            ledger.started(process.pid, child._tree.get(process.pid))
        with unwrap_single_error():
            async with anyio.create_task_group() as tg:
                tg.start_soon(child._read_stdout)
                tg.start_soon(child._drain_stderr)
                tg.start_soon(child._watch_exit)
                tg.start_soon(child._track_tree)
                try:
                    yield child
                finally:
                    try:
                        with anyio.CancelScope(shield=True):
                            await child._shutdown()
                        if ledger is not None and child.returncode is not None:
                            ledger.ended(child.pid)
                    finally:
                        _LIVE.discard(child)
                        tg.cancel_scope.cancel()

    @staticmethod
    def kill_all_now() -> None:
        """See the module function `kill_all_now`."""
        tree: proc_tree.ProcessSnapshot = {}
        tags: list[str] = []
        for child in list(_LIVE):
            child._signal_group(signal.SIGKILL)
            tree |= child._tree
            tags.append(child._tag_entry.decode())
        proc_tree.signal_all(tree, signal.SIGKILL)
        if tree or tags:
            sweep.start_detached(tree, tags)

    # --- public surface -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The child's process id (also its process group and session id)."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has exited (negative: killed by that signal)."""
        return self._process.returncode

    @property
    def lines(self) -> MemoryObjectReceiveStream[bytes]:
        """Stdout lines without their b"\\n", in order; ends when stdout does. Empty lines are skipped."""
        return self._lines_receive

    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr (bounded)."""
        return "\n".join(self._stderr)

    async def write(self, data: bytes) -> None:
        """Write `data` to the child's stdin; writes never interleave.

        Raises:
            ChildClosedError: stdin is closed or the child has exited.
        """
        async with self._write_lock:
            stdin = self._process.stdin
            if self._stdin_closed or stdin is None or self.returncode is not None:
                raise ChildClosedError(self._gone())
            try:
                await stdin.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise ChildClosedError(self._gone()) from exc

    async def wait_exit(self) -> int:
        """Wait until the child has exited and its output is read; returns the exit status.

        Stdout lines must be consumed (or the context left) for this to return.
        """
        await self._exited.wait()
        returncode = self.returncode
        assert returncode is not None
        return returncode

    async def snapshot_tree(self) -> None:
        """Record the child's descendants now (it also happens every second)."""
        known = dict(self._tree)
        self._tree = await anyio.to_thread.run_sync(proc_tree.expand, known, abandon_on_cancel=True)

    # --- tasks ----------------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        splitter = LineSplitter(self._max_line_bytes, truncate=False, on_overflow=self._dropped_line)
        delivering = True
        try:
            with self._stdout_scope:
                while (chunk := await _receive(stream)) is not None:
                    self._stdout_reads += 1
                    for line in splitter.feed(chunk):
                        delivering = delivering and await self._deliver(line)
                last = splitter.flush()
                if last is not None and delivering:
                    await self._deliver(last)
        finally:
            self._lines_send.close()
            self._stdout_done.set()

    async def _deliver(self, line: bytes) -> bool:
        self._stdout_delivering = True
        try:
            await self._lines_send.send(line)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # Nobody reads any more (shutting down): keep draining so the child never blocks on a
            # full pipe.
            return False
        finally:
            self._stdout_delivering = False
        return True

    def _dropped_line(self, size: int, head: bytes) -> None:
        logger.warning(
            "pid %d: dropped a stdout line of %d bytes (limit %d)", self.pid, size, self._max_line_bytes
        )

    async def _drain_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        splitter = LineSplitter(_STDERR_LINE_MAX_BYTES, truncate=True, on_overflow=lambda _size, _head: None)
        try:
            with self._stderr_scope:
                while (chunk := await _receive(stream)) is not None:
                    for line in splitter.feed(chunk):
                        self._keep_stderr(line)
                last = splitter.flush()
                if last is not None:
                    self._keep_stderr(last)
        finally:
            self._stderr_done.set()

    def _keep_stderr(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        self._stderr.append(text)
        logger.debug("pid %d stderr: %s", self.pid, text)

    async def _watch_exit(self) -> None:
        await self._process.wait()
        logger.debug("pid %d exited with %s", self.pid, self.returncode)
        with anyio.move_on_after(_PIPE_IDLE_AFTER_EXIT_S):
            await self._stderr_done.wait()
        self._stderr_scope.cancel()
        while not self._stdout_done.is_set():
            reads = self._stdout_reads
            with anyio.move_on_after(_PIPE_IDLE_AFTER_EXIT_S):
                await self._stdout_done.wait()
            if self._stdout_reads == reads and not self._stdout_delivering:
                # A descendant holds stdout open but writes nothing: the child's output is complete.
                self._stdout_scope.cancel()
                await self._stdout_done.wait()
        self._exited.set()

    async def _track_tree(self) -> None:
        with self._tracker_scope:
            while True:
                await self.snapshot_tree()
                await anyio.sleep(_TREE_SNAPSHOT_INTERVAL_S)

    # --- shutdown -------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self._tracker_scope.cancel()
        self._lines_receive.close()
        self._tree = proc_tree.expand(self._tree)
        await self._close_stdin()
        if not await self._exit_within(_STDIN_CLOSE_GRACE_S):
            logger.info(
                "pid %d still running %ss after stdin closed: SIGTERM", self.pid, _STDIN_CLOSE_GRACE_S
            )
            self._tree = proc_tree.expand(self._tree)
            self._signal_group(signal.SIGTERM)
            if not await self._exit_within(_SIGTERM_GRACE_S):
                logger.warning("pid %d ignored SIGTERM for %ss: SIGKILL", self.pid, _SIGTERM_GRACE_S)
                self._tree = proc_tree.expand(self._tree)
                self._signal_group(signal.SIGKILL)
                await self._exit_within(_SIGKILL_WAIT_S)
        await self._kill_survivors()
        if self.returncode is None:
            logger.error("pid %d survived SIGKILL; leaving its pipes open", self.pid)
            return
        with anyio.move_on_after(_CLOSE_PIPES_S):
            await self._process.aclose()
        self._exited.set()

    async def _close_stdin(self) -> None:
        self._stdin_closed = True
        if self._process.stdin is not None:
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await self._process.stdin.aclose()

    async def _exit_within(self, seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            await self._process.wait()
        return self.returncode is not None

    def _signal_group(self, sig: signal.Signals) -> None:
        # Only while the leader is unreaped: then the group id cannot belong to anyone else.
        if self.returncode is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    async def _kill_survivors(self) -> None:
        for _ in range(_SURVIVOR_KILL_ROUNDS):
            # Expanding again catches what a survivor started since the last look.
            self._tree = proc_tree.expand(self._tree | proc_tree.tagged(self._tag_entry))
            if not self._tree:
                return
            logger.warning("killing %d leftover process(es) of pid %d", len(self._tree), self.pid)
            proc_tree.signal_all(self._tree, signal.SIGKILL)
            for _ in range(round(_SURVIVOR_KILL_WAIT_S / _SURVIVOR_POLL_S)):
                # They are not our children: no exit notification to wait on, only /proc to look at.
                if not proc_tree.alive(self._tree):
                    break
                await anyio.sleep(_SURVIVOR_POLL_S)
        if proc_tree.alive(self._tree):
            logger.error("pid %d: processes %s survived SIGKILL", self.pid, sorted(self._tree))

    def _gone(self) -> str:
        state = "stdin is closed" if self.returncode is None else f"it exited ({self.returncode})"
        tail = self.stderr_tail()
        return f"child pid {self.pid}: {state}" + (f"; stderr: {tail[-1000:]}" if tail else "")


def open_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> AbstractAsyncContextManager[ChildProcess]:
    """Run `argv` as a `ChildProcess` for the duration of an ``async with``; None env/cwd inherit ours."""
    return ChildProcess.spawn(argv, env=env, cwd=cwd, max_line_bytes=max_line_bytes)


@contextmanager
def unwrap_single_error() -> Generator[None]:
    """Re-raise a task group's only exception unwrapped.

    Our tasks never raise, so a group holds only what the ``async with`` body raised: callers
    see their own exception, not an ExceptionGroup.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        error = group.exceptions[0]
        raise error from error.__cause__


async def _receive(stream: ByteReceiveStream) -> bytes | None:
    """The next chunk, or None at end of stream (or once we closed our end)."""
    try:
        return await stream.receive(_READ_CHUNK_BYTES)
    except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
        return None
