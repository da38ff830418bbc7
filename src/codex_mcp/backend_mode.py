"""Which backend drives Codex: `app-server` when the binary has it, else `exec`."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal

from codex_mcp.errors import CodexMcpError

BackendMode = Literal["app-server", "exec"]
_MODES: Final[tuple[BackendMode, ...]] = ("app-server", "exec")
# `codex app-server --help` answers at once; a hung binary must not hold up the server's start.
_PROBE_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class ModeChoice:
    """The backend and why: CODEX_MCP_MODE, or what the probe found."""

    mode: BackendMode
    source: str


@cache
def probe_app_server(codex: Path) -> bool:
    """Whether `codex app-server --help` succeeds (run once per binary)."""
    try:
        completed = subprocess.run(
            [str(codex), "app-server", "--help"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


def choose_mode(codex: Path, env: dict[str, str]) -> ModeChoice:
    """CODEX_MCP_MODE if set, else the probe.

    Raises:
        CodexMcpError: INVALID_ARGUMENT naming CODEX_MCP_MODE when it holds something else.
    """
    forced = env.get("CODEX_MCP_MODE", "").strip()
    if forced:
        for mode in _MODES:
            if forced == mode:
                return ModeChoice(mode, "CODEX_MCP_MODE")
        raise CodexMcpError("INVALID_ARGUMENT", f"CODEX_MCP_MODE={forced}: expected app-server or exec")
    if probe_app_server(codex):
        return ModeChoice("app-server", "detected: `codex app-server --help` works")
    return ModeChoice("exec", "detected: this Codex has no app-server")
