"""The keeper of one shared service: runs `codex app-server --listen unix://…` and stops it when idle.

A server that needs the service and finds none starts a keeper (`start_detached`) in a session of its
own, so no client's signal to the server's process group reaches it and the server's exit sweep
(which follows the server's run tag) passes it by. The keeper holds `keeper.lock` for its whole life
(a second keeper for the same service exits at once), runs Codex as its child with stderr in
`keeper.log`, and once a second:

- while any server holds `attach.lock` (shared), the service is in use;
- once none has for the idle period, it asks Codex whether a turn still runs on any loaded thread
  (a turn outlives the client that started it: that is the point) and, if none does, stops Codex
  and everything Codex started, removes the socket and exits.

SIGTERM or SIGINT stops the service the same way. If Codex exits by itself, the keeper cleans up
and exits too; the next server that needs the service starts a new one.

    python -m codex_mcp.service.keeper '{"root": "<state>/svc/<key>", "argv": ["codex"], "idleS": 600}'
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc

from codex_mcp import __version__
from codex_mcp.backends.app_server import Bystander, connect_app_server
from codex_mcp.errors import AppServerClosedError, AppServerRequestError, CodexMcpError
from codex_mcp.proc import proc_tree
from codex_mcp.service.layout import ServiceLayout
from codex_mcp.service.locks import is_held, try_exclusive
from codex_mcp.state.files import write_json_atomic
from codex_mcp.wire import calls

logger = logging.getLogger("codex_mcp.service.keeper")

# What `python -m` runs; a test holds it to this module's own name, so a move cannot break the spawn.
MODULE: Final = "codex_mcp.service.keeper"
_CHECK_PERIOD_S: Final = 1.0
# Bound on asking Codex whether a turn runs (connect, list, read each thread).
_ASK_TIMEOUT_S: Final = 15.0
_UNANSWERED_LIMIT: Final = 2
_TERM_GRACE_S: Final = 3.0
_KILL_WAIT_S: Final = 2.0


async def turns_running(layout: ServiceLayout) -> bool | None:
    """Whether a turn runs on any thread the service holds; None when the service did not say."""
    try:
        with anyio.fail_after(_ASK_TIMEOUT_S):
            async with connect_app_server(
                layout.url, handler=Bystander(), client_version=__version__
            ) as connection:
                loaded = await connection.call(calls.thread_loaded_list(), timeout_s=_ASK_TIMEOUT_S)
                for thread_id in loaded.data:
                    read = await connection.call(
                        calls.thread_read(thread_id=thread_id), timeout_s=_ASK_TIMEOUT_S
                    )
                    if calls.is_active(read.thread):
                        return True
                return False
    except (TimeoutError, CodexMcpError, AppServerClosedError, AppServerRequestError) as exc:
        logger.warning("could not ask the service whether a turn runs: %s", exc)
        return None


def _remove_socket(layout: ServiceLayout) -> None:
    """Remove the socket path and the private socket it points to (a dead service leaves both)."""
    with contextlib.suppress(OSError):
        target = os.readlink(layout.socket)
        os.unlink(target)
        with contextlib.suppress(OSError):
            os.unlink(f"{target}.lock")
    with contextlib.suppress(OSError):
        os.unlink(layout.socket)


def _stop_tree(codex: anyio.abc.Process) -> None:
    """SIGTERM Codex and all it started, then SIGKILL what is left."""
    started = proc_tree.start_time(codex.pid)
    tree = proc_tree.expand({codex.pid: started} if started is not None else {})
    proc_tree.terminate(tree, proc_tree.expand, term_grace_s=_TERM_GRACE_S, kill_wait_s=_KILL_WAIT_S)


class _Codex:
    """The service's `codex app-server`: started, stopped, and started again when recycled."""

    def __init__(self, layout: ServiceLayout, argv: list[str]) -> None:
        self._layout = layout
        self._argv = argv
        self.process: anyio.abc.Process | None = None

    async def start(self) -> anyio.abc.Process:
        _remove_socket(self._layout)
        with self._layout.log.open("ab") as log:
            process = await anyio.open_process(
                [*self._argv, "app-server", "--listen", self._layout.url],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self.process = process
        info = {
            "keeperPid": os.getpid(),
            "codexPid": process.pid,
            "argv": self._argv,
            "startedAt": time.time(),
        }
        write_json_atomic(self._layout.info, info)
        logger.info(
            "service %s: codex app-server pid %d on %s", self._layout.key, process.pid, self._layout.url
        )
        return process

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            with anyio.CancelScope(shield=True):
                _stop_tree(process)
                await process.aclose()


async def keep(
    layout: ServiceLayout, argv: list[str], idle_s: float, max_rss_bytes: int | None = None
) -> int:
    """Run the service until it is idle, stopped, or Codex exits; the exit status."""
    lock = try_exclusive(layout.keeper_lock)
    if lock is None:
        logger.info("another keeper runs service %s", layout.key)
        return 0
    codex = _Codex(layout, argv)
    try:
        await codex.start()
        try:
            return await _watch(layout, codex, idle_s, max_rss_bytes)
        finally:
            await codex.stop()
    finally:
        _remove_socket(layout)
        with contextlib.suppress(OSError):
            layout.info.unlink()
        os.close(lock)


async def _recycle_if_grown(layout: ServiceLayout, codex: _Codex, max_rss_bytes: int | None) -> None:
    """Replace a Codex grown past `max_rss_bytes` by a fresh one, once it says no turn runs: the
    servers' connections drop and they resume their threads on the new one as they need them."""
    process = codex.process
    if max_rss_bytes is None or process is None:
        return
    rss = proc_tree.rss_bytes(process.pid)
    if rss is None or rss <= max_rss_bytes:
        return
    # Held exclusively while we ask and recycle: no server starts a turn meanwhile (each holds it
    # shared while it starts or runs one); Codex's answer covers turns whose server has gone.
    gate = try_exclusive(layout.busy_lock)
    if gate is None:
        return
    try:
        if await turns_running(layout) is False:
            await _recycle(layout, codex, rss, max_rss_bytes)
    finally:
        os.close(gate)


async def _recycle(layout: ServiceLayout, codex: _Codex, rss: int, max_rss_bytes: int) -> None:
    process = codex.process
    assert process is not None
    logger.info(
        "service %s: recycling codex pid %d: %d MiB resident, past its recycling mark of %d MiB",
        layout.key,
        process.pid,
        rss // 2**20,
        max_rss_bytes // 2**20,
    )
    await codex.stop()
    await codex.start()


async def _watch(layout: ServiceLayout, codex: _Codex, idle_s: float, max_rss_bytes: int | None) -> int:
    idle_since: float | None = None
    unanswered = 0
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as tg:
            stopped = anyio.Event()

            async def on_signal() -> None:
                async for received in signals:
                    logger.info("service %s: stopping on signal %d", layout.key, received)
                    stopped.set()
                    return

            tg.start_soon(on_signal)
            try:
                while not stopped.is_set():
                    process = codex.process
                    if process is None or process.returncode is not None:
                        returncode = None if process is None else process.returncode
                        logger.warning("service %s: codex exited with %s", layout.key, returncode)
                        return 1
                    if is_held(layout.attach_lock):
                        idle_since = None
                        await _recycle_if_grown(layout, codex, max_rss_bytes)
                    elif idle_since is None:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since >= idle_s:
                        running = await turns_running(layout)
                        unanswered = unanswered + 1 if running is None else 0
                        # A wedged Codex that cannot say twice running is not kept for ever.
                        if running is False or unanswered >= _UNANSWERED_LIMIT:
                            logger.info("service %s: idle for %.0fs, stopping", layout.key, idle_s)
                            return 0
                        idle_since = time.monotonic()  # a turn runs: ask again after another period
                    with anyio.move_on_after(_CHECK_PERIOD_S):
                        await stopped.wait()
            finally:
                tg.cancel_scope.cancel()
    return 0


def start_detached(
    layout: ServiceLayout,
    argv: list[str],
    env: dict[str, str],
    idle_s: float,
    max_rss_mb: float | None = None,
) -> int:
    """Start the keeper of `layout` in a session of its own; its pid. It outlives us."""
    order = json.dumps({"root": str(layout.root), "argv": argv, "idleS": idle_s, "maxRssMb": max_rss_mb})
    log = os.open(layout.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2),
        ]
        # Not subprocess: nobody waits for it (it outlives us), and a Popen dropped while it runs warns.
        return os.posix_spawn(
            sys.executable, [sys.executable, "-m", MODULE, order], env, file_actions=actions, setsid=True
        )
    finally:
        os.close(log)


def main(argv: list[str]) -> int:
    """Entry point: one JSON argument (see the module doc)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s keeper %(message)s")
    order: dict[str, Any] = json.loads(argv[0])
    layout = ServiceLayout(Path(order["root"]))
    max_rss_mb = order.get("maxRssMb")
    max_rss_bytes = int(float(max_rss_mb) * 2**20) if max_rss_mb is not None else None
    return anyio.run(keep, layout, [str(a) for a in order["argv"]], float(order["idleS"]), max_rss_bytes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
