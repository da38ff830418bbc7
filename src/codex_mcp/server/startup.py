"""What the server finds before serving: settings, the Codex to run, the backend, the state directory.

Light on purpose (no MCP SDK): the settings are checked before anything is written to the client,
so a wrong setting ends the server with exit code 2 and an empty stdout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from codex_mcp.backend_mode import ModeChoice, choose_mode
from codex_mcp.errors import CodexMcpError
from codex_mcp.settings import CodexExecutable, Settings, resolve_codex
from codex_mcp.state.store import StateStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Startup:
    """What the server found before serving: its settings, the Codex to run (or why none), the
    backend, and its locked state directory (None: sessions are kept in memory only)."""

    settings: Settings
    codex: CodexExecutable | CodexMcpError
    mode: ModeChoice | None
    store: StateStore | None = None


def prepare_startup(env: dict[str, str]) -> Startup:
    """Read the environment, find Codex, and lock the state directory (which stops whatever a
    killed previous server left running there).

    Raises:
        CodexMcpError: a setting is wrong (both CODEX_MCP_PATH and CODEX_MCP_COMMAND, a bad path,
            a bad CODEX_MCP_MODE or duration, a state directory that is unusable or held by another
            live server): the server must not start. A Codex that is simply not installed is not
            raised: the server starts and `codex_setup` explains.
    """
    settings = Settings.from_env(env)
    try:
        codex = resolve_codex(env)
    except CodexMcpError as exc:
        if exc.code == "INVALID_ARGUMENT":
            raise
        logger.error("%s", exc.message)
        return Startup(settings, exc, None)
    mode = choose_mode(codex.path, env)
    logger.info("codex %s (%s), backend %s (%s)", codex.path, codex.source, mode.mode, mode.source)
    return Startup(settings, codex, mode, StateStore.open(settings.state_dir))
