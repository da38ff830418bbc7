"""`codex-mcp`: serve MCP on stdio. Logs go to stderr; stdout carries only the MCP wire."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import anyio

from codex_mcp import __version__
from codex_mcp.errors import CodexMcpError
from codex_mcp.stdio_guard import check_stdio

_ENV_HELP = """environment:
  CODEX_MCP_PATH / CODEX_MCP_COMMAND   which Codex to run (a path / a name on PATH; not both)
  CODEX_MCP_MODE                       app-server | exec (default: detected)
  CODEX_MCP_STDIO_MODE                 auto | strict | off: the startup check of stdio
  CODEX_MCP_RECONNECT_TIMEOUT_MS       fail a turn stuck reconnecting after this long (120000)
  CODEX_MCP_REQUEST_TIMEOUT_MS         bound on each app-server request (90000)
  CODEX_MCP_HEARTBEAT_MS               progress notifications while waiting (15000)
  CODEX_MCP_DRAIN_TIMEOUT_MS           at shutdown, time running turns get to finish (10000)
  CODEX_MCP_IDLE_TTL_MS / _RUNNING_TTL_MS / _TERMINAL_TTL_MS / _TTL_WARNING_MS
                                       session lifetimes (30 min / 4 h / 5 min / 60 s)
  CODEX_MCP_DISABLE_NOISE_FILTER       1: keep shell-profile noise in command output
  CODEX_MCP_VALIDATE_OUTPUT            1: check results against the output schemas
  CODEX_MCP_LOG_LEVEL                  log level on stderr (WARNING)
"""

logger = logging.getLogger("codex_mcp")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `codex-mcp` console script."""
    parser = argparse.ArgumentParser(
        prog="codex-mcp",
        description=__doc__,
        epilog=_ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"codex-mcp {__version__}")
    parser.parse_args(argv)
    env = dict(os.environ)
    logging.basicConfig(
        stream=sys.stderr,
        level=env.get("CODEX_MCP_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    guard = check_stdio(env, sys.stdin, sys.stdout)
    for warning in guard.warnings:
        logger.warning("[stdio] %s", warning)
    for reason in guard.blocking:
        if guard.mode == "strict":
            print(f"codex-mcp: {reason} (CODEX_MCP_STDIO_MODE=strict)", file=sys.stderr)
            return 1
        logger.warning("[stdio] %s", reason)
    # Imported here so that --help and --version answer without loading the MCP stack.
    from codex_mcp.server.app import prepare_startup, serve  # noqa: PLC0415

    try:
        startup = prepare_startup(env)
    except CodexMcpError as exc:
        print(f"codex-mcp: {exc.message}", file=sys.stderr)
        return 2
    anyio.run(serve, startup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
