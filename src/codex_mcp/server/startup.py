"""What the server finds before serving: settings, the Codex to run, the backend, the state directory.

Light on purpose (no MCP SDK): the settings are checked before anything is written to the client,
so a wrong setting ends the server with exit code 2 and an empty stdout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from codex_mcp.backend_mode import ModeResolver
from codex_mcp.errors import CodexMcpError
from codex_mcp.settings import CodexExecutable, Settings, resolve_codex
from codex_mcp.state.store import StateStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Startup:
    """What the server found before serving: its settings, the Codex to run (or why none), the
    backend (settled on first need, not here), and its state directory (None: sessions are kept in
    memory only)."""

    settings: Settings
    codex: CodexExecutable | CodexMcpError
    mode: ModeResolver | None
    store: StateStore | None = None


def prepare_startup(env: dict[str, str]) -> Startup:
    """Read the environment, find Codex, and register in the state directory.

    Raises:
        CodexMcpError: a setting is wrong (both CODEX_MCP_PATH and CODEX_MCP_COMMAND, a bad path,
            a bad CODEX_MCP_MODE or duration, a state directory that is unusable or held by a server
            of an older codex-mcp): the server must not start. A Codex that is simply not installed is not
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
    # Runs nothing: the backend is probed on first need, off the start-up path.
    mode = ModeResolver.from_env(codex.path, env)
    logger.info("codex %s (%s)", codex.path, codex.source)
    return Startup(settings, codex, mode, StateStore.open(settings.state_dir))
