"""`codex-mcp`: serve MCP on stdio; `codex-mcp doctor`; `codex-mcp schemas export DIR`.

Logs go to stderr; when serving, stdout carries only the MCP wire.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from codex_mcp import __version__
from codex_mcp.stdio_guard import check_stdio

_DESCRIPTION = """Without a command: serve MCP on stdin/stdout (started by an MCP client).

commands:
  doctor              can Codex run here? prints what is missing and how to fix it; exit 1 if not ready
  schemas export DIR  write our published tool input/output schemas and the error shape to DIR
"""

_ENV_HELP = """environment:
  CODEX_MCP_PATH / CODEX_MCP_COMMAND   which Codex to run (a path / a name on PATH; not both)
  CODEX_MCP_MODE                       app-server | exec (default: detected)
  CODEX_MCP_STATE_DIR                  where sessions persist across restarts (~/.codex-mcp/state)
  CODEX_MCP_STDIO_MODE                 auto | strict | off: the startup check of stdio
  CODEX_MCP_RECONNECT_TIMEOUT_MS       fail a turn stuck reconnecting after this long (120000)
  CODEX_MCP_REQUEST_TIMEOUT_MS         bound on each app-server request (90000)
  CODEX_MCP_HEARTBEAT_MS               progress notifications while waiting (15000)
  CODEX_MCP_DRAIN_TIMEOUT_MS           on stdin EOF, time running turns get to finish (10000)
  CODEX_MCP_APP_SERVER                 shared | child: turns on a Codex service that outlives us (shared)
  CODEX_MCP_SERVICE_IDLE_MS            a shared service nobody uses stops after this long (600000)
  CODEX_MCP_APP_SERVER_MAX_RSS_MB      a Codex app-server stays under this: replaced past 80% (2048)
  CODEX_MCP_APPROVALS                  poll | elicit: default of advanced.approvals (poll)
  CODEX_MCP_HOSTS                      a TOML file of remote app-servers new sessions run on
  CODEX_MCP_IDLE_TTL_MS                cancel an idle session untouched this long (1800000: 30 min)
  CODEX_MCP_RUNNING_TTL_MS             cancel a running session with no activity this long (14400000: 4 h)
  CODEX_MCP_TERMINAL_TTL_MS            forget a cancelled or errored session after this long (300000: 5 min)
  CODEX_MCP_TTL_WARNING_MS             warn this long before a TTL cancel (60000)
  CODEX_MCP_DISABLE_NOISE_FILTER       1: keep shell-profile noise in command output
  CODEX_MCP_VALIDATE_OUTPUT            1: check results against the output schemas
  CODEX_MCP_LOG_LEVEL                  DEBUG | INFO | WARNING | ERROR | CRITICAL, on stderr (WARNING)
  CODEX_MCP_MAX_NESTING                levels of codex-mcp our Codex children may start from the
                                       user's config (0: such entries are disabled for them)
"""

logger = logging.getLogger("codex_mcp")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-mcp",
        description=_DESCRIPTION,
        epilog=_ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"codex-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    doctor = commands.add_parser("doctor", help="check that Codex can run here; exit 1 if not ready")
    doctor.add_argument("--cwd", help="directory whose project config.toml files to check (default: .)")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    schemas = commands.add_parser("schemas", help="our published schemas")
    schema_commands = schemas.add_subparsers(dest="schemas_command", metavar="command", required=True)
    export = schema_commands.add_parser("export", help="write the schemas to DIR")
    export.add_argument("dir", type=Path, metavar="DIR", help="created if missing; files are overwritten")
    return parser


def _setup_logging(env: dict[str, str]) -> str | None:
    """Logging to stderr at CODEX_MCP_LOG_LEVEL; the error message when the level is not one."""
    raw = env.get("CODEX_MCP_LOG_LEVEL", "").strip().upper() or "WARNING"
    levels = logging.getLevelNamesMapping()
    if raw not in levels or raw == "NOTSET":
        return f"CODEX_MCP_LOG_LEVEL={raw}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL"
    logging.basicConfig(
        stream=sys.stderr, level=levels[raw], format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return None


def _export_schemas(directory: Path) -> int:
    from codex_mcp.resources.published import published_schemas  # noqa: PLC0415 - not needed to serve

    written: list[Path] = []
    for relative, schema in published_schemas().items():
        path = directory / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"codex-mcp: schemas export: cannot write {path}: {exc.strerror}", file=sys.stderr)
            return 1
        written.append(path)
    print(f"wrote {len(written)} schemas to {directory}:")
    for path in written:
        print(f"  {path.relative_to(directory).as_posix()}")
    return 0


def _doctor(env: dict[str, str], cwd: str | None, as_json: bool) -> int:
    import anyio  # noqa: PLC0415 - not needed to serve

    from codex_mcp import doctor  # noqa: PLC0415 - not needed to serve

    code, text = anyio.run(lambda: doctor.run(env, cwd, as_json=as_json))
    print(text)
    return code


def _serve(env: dict[str, str]) -> int:
    guard = check_stdio(env, sys.stdin, sys.stdout)
    for warning in guard.warnings:
        logger.warning("[stdio] %s", warning)
    for reason in guard.blocking:
        if guard.mode == "strict":
            print(f"codex-mcp: {reason} (CODEX_MCP_STDIO_MODE=strict)", file=sys.stderr)
            return 1
        logger.warning("[stdio] %s", reason)
    # Imported here so that --help, --version and the commands answer without the server.
    from codex_mcp.server.boot import serve_stdio  # noqa: PLC0415

    return serve_stdio(env)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `codex-mcp` console script."""
    args = _parser().parse_args(argv)
    env = dict(os.environ)
    problem = _setup_logging(env)
    if problem is not None:
        print(f"codex-mcp: {problem}", file=sys.stderr)
        return 2
    if args.command == "doctor":
        return _doctor(env, args.cwd, args.json)
    if args.command == "schemas":
        return _export_schemas(args.dir)
    return _serve(env)


if __name__ == "__main__":
    sys.exit(main())
