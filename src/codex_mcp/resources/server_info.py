"""The server-info resource: what runs, where, with which Codex, and how many sessions it holds."""

from __future__ import annotations

import platform
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from codex_mcp import __version__
from codex_mcp.backend_mode import ModeChoice, ModeResolver
from codex_mcp.errors import CodexMcpError
from codex_mcp.host_health import HostHealth
from codex_mcp.resources.published import accepted_values, is_open
from codex_mcp.settings import CodexExecutable, Settings
from codex_mcp.stdio_guard import MODES as STDIO_MODES
from codex_mcp.wire.app_server import PINNED_CODEX_VERSION

# Statuses that still hold a live thread (the reference counted the same three).
_ACTIVE = ("running", "waiting_approval", "idle")
_OPEN_ENUMS = {
    "effort": "Effort",
    "summary": "ReasoningSummary",
    "personality": "Personality",
    "collaborationMode": "CollaborationMode",
}


@dataclass(frozen=True)
class ServerFacts:
    """What the server found at start: its settings, the Codex it runs (or why none), the backend
    (settled on first need)."""

    settings: Settings
    codex: CodexExecutable | CodexMcpError
    mode: ModeResolver | None


def _stdio_mode(env: Mapping[str, str]) -> str:
    raw = env.get("CODEX_MCP_STDIO_MODE", "auto").strip().lower() or "auto"
    return raw if raw in STDIO_MODES else "auto"


def _host(health: HostHealth) -> dict[str, Any]:
    shown: dict[str, Any] = {"name": health.name, "url": health.url, "ready": health.ready}
    shown["detail"] = health.detail
    if health.version is not None:
        shown |= {"version": health.version, "matchesPinned": health.matches_pinned}
    return shown


def server_info(
    facts: ServerFacts,
    *,
    backend: ModeChoice | None = None,
    codex_version: tuple[str | None, str | None],
    statuses: Iterable[str] | None,
    env: Mapping[str, str],
    resource_uris: list[str],
    hosts: Iterable[HostHealth] = (),
) -> dict[str, Any]:
    """The server-info JSON. `backend` is the settled backend (None: no Codex); `statuses` are the
    sessions' statuses, None when no manager runs."""
    codex: dict[str, Any]
    if isinstance(facts.codex, CodexMcpError):
        codex = {"found": False, "error": facts.codex.message}
    else:
        version, problem = codex_version
        codex = {"found": True, "path": str(facts.codex.path), "source": facts.codex.source}
        codex |= {"version": version} if version else {"versionError": problem}
    by_status = Counter(statuses or [])
    supported = accepted_values()
    return {
        "name": "codex-mcp",
        "version": __version__,
        "codex": codex,
        "pinnedCodexVersion": PINNED_CODEX_VERSION,
        "backend": {"mode": backend.mode, "source": backend.source} if backend else None,
        "python": platform.python_version(),
        "platform": sys.platform,
        "arch": platform.machine(),
        "stdioMode": _stdio_mode(env),
        "supported": {
            **supported,
            "openEnums": [name for name, definition in _OPEN_ENUMS.items() if is_open("codex", definition)],
        },
        "activeSessions": sum(by_status[status] for status in _ACTIVE),
        "sessionsByStatus": dict(sorted(by_status.items())),
        "sessionsAvailable": statuses is not None,
        "stateDir": str(facts.settings.state_dir),
        "hosts": [_host(health) for health in hosts],
        # The recursion guard: how deep this server runs, and how deep its children may nest codex-mcp.
        "nesting": {
            "level": facts.settings.nesting.level,
            "maxNesting": facts.settings.nesting.max_nesting,
            "childrenMayNest": facts.settings.nesting.allows_nesting,
        },
        "logLevel": env.get("CODEX_MCP_LOG_LEVEL", "WARNING").upper(),
        "resources": resource_uris,
    }
