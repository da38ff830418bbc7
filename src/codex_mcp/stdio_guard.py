"""The startup check that stdout can carry MCP: a terminal on stdio means no client is attached."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Final, TextIO

MODES: Final = ("auto", "strict", "off")
_POWERSHELL_VARS: Final = (
    "POWERSHELL_DISTRIBUTION_CHANNEL",
    "PSModulePath",
    "PSExecutionPolicyPreference",
    "PSModuleAnalysisCachePath",
)


@dataclass(frozen=True)
class GuardReport:
    """What the guard found: `blocking` stops a strict start; `warnings` are only printed."""

    mode: str
    blocking: list[str]
    warnings: list[str]


def check_stdio(
    env: dict[str, str], stdin: TextIO, stdout: TextIO, platform: str = sys.platform
) -> GuardReport:
    """Inspect stdio per CODEX_MCP_STDIO_MODE (auto | strict | off; anything else counts as auto)."""
    raw = env.get("CODEX_MCP_STDIO_MODE", "auto").strip().lower() or "auto"
    warnings: list[str] = []
    mode = raw
    if raw not in MODES:
        warnings.append(f"CODEX_MCP_STDIO_MODE={raw!r} is not one of {', '.join(MODES)}; using auto")
        mode = "auto"
    if mode == "off":
        return GuardReport(mode, [], warnings)
    blocking = [
        f"{name} is a terminal: codex-mcp speaks MCP over stdio and must be started by an MCP client"
        for name, stream in (("stdin", stdin), ("stdout", stdout))
        if _isatty(stream)
    ]
    if platform.startswith("win") and any(var in env for var in _POWERSHELL_VARS):
        warnings.append(
            "started from PowerShell: profile banners printed to stdout break MCP; use `pwsh -NoProfile`"
        )
    return GuardReport(mode, blocking, warnings)


def _isatty(stream: TextIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
