"""`codex-mcp`: serve MCP on stdio. Logs go to stderr; stdout carries only the MCP wire."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import anyio

from codex_mcp import __version__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `codex-mcp` console script."""
    parser = argparse.ArgumentParser(prog="codex-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"codex-mcp {__version__}")
    parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("CODEX_MCP_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Imported here so that --help and --version answer without loading the MCP stack.
    from codex_mcp.server.app import serve  # noqa: PLC0415

    anyio.run(serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
