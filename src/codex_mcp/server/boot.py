"""Serve MCP on this process's stdin and stdout: answer the handshake at once, then load the rest.

The order is the point. A signal handler first (clients stop servers within 100 ms, even during
start-up: with nothing running yet we just exit 0). Then the settings (a wrong one ends us with
exit 2 before anything reaches stdout). Then stdout is taken for the wire, the stdin thread starts
and answers the handshake from the early answers while this thread imports the MCP SDK and the
session machinery (0.6-1 s), and only then does the event loop serve.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from codex_mcp.errors import CodexMcpError
from codex_mcp.server.early import EarlyAnswers
from codex_mcp.server.startup import prepare_startup
from codex_mcp.server.stdin import ThreadedStdin
from codex_mcp.server.stdout import WireOut

logger = logging.getLogger(__name__)


def _exit_at_once(signum: int, frame: FrameType | None) -> None:
    # Before the event loop serves, no session or child exists: there is nothing to stop or save.
    logger.warning("%s during start-up: exiting", signal.Signals(signum).name)
    logging.shutdown()
    os._exit(0)


def serve_stdio(env: dict[str, str]) -> int:
    """Serve until the client closes stdin or stops us; the process exit code."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_at_once)
    try:
        startup = prepare_startup(env)
    except CodexMcpError as exc:
        print(f"codex-mcp: {exc.message}", file=sys.stderr)
        return 2
    wire = WireOut.claim()
    early = EarlyAnswers.load(wire)
    stdin = ThreadedStdin(sys.stdin.fileno(), early=early).start()
    if startup.store is not None:
        # Before any call is served: what dead servers of this directory left running must stop.
        startup.store.reap_dead_servers()
    import anyio  # noqa: PLC0415 - after the stdin thread has started answering

    from codex_mcp.server.app import serve  # noqa: PLC0415 - the MCP SDK: the slow import

    try:
        anyio.run(serve, startup, stdin, wire, early)
    finally:
        wire.close()
    return 0
