"""Server settings from the environment, and where the Codex executable is."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from codex_mcp.errors import CodexMcpError
from codex_mcp.hosts import Host, load_hosts
from codex_mcp.nesting import NestingPolicy

# Codex names tried on PATH when neither CODEX_MCP_PATH nor CODEX_MCP_COMMAND is set.
_PATH_CANDIDATES = ("codex", "codex-internal")


@dataclass(frozen=True)
class CodexExecutable:
    """The Codex binary to run and how it was found."""

    path: Path
    source: str


def _bundled_codex() -> Path | None:
    try:
        import codex_cli_bin  # pyright: ignore[reportMissingTypeStubs]  # noqa: PLC0415 - optional extra
    except ImportError:
        return None
    path = Path(codex_cli_bin.bundled_codex_path())
    return path if path.is_file() else None


def resolve_codex(env: dict[str, str] | None = None) -> CodexExecutable:
    """CODEX_MCP_PATH > CODEX_MCP_COMMAND > `codex`/`codex-internal` on PATH > the bundled wheel.

    Raises:
        CodexMcpError: INVALID_ARGUMENT naming the variable when a setting is wrong,
            APP_SERVER_START_FAILED when no Codex is found at all.
    """
    environ = os.environ if env is None else env
    explicit_path = environ.get("CODEX_MCP_PATH", "").strip()
    command = environ.get("CODEX_MCP_COMMAND", "").strip()
    if explicit_path and command:
        raise CodexMcpError(
            "INVALID_ARGUMENT", "CODEX_MCP_PATH and CODEX_MCP_COMMAND are mutually exclusive; set one"
        )
    search_path = environ.get("PATH")
    if explicit_path:
        path = Path(explicit_path).expanduser().resolve()
        if not path.is_file():
            raise CodexMcpError("INVALID_ARGUMENT", f"CODEX_MCP_PATH={explicit_path}: no such file")
        if not os.access(path, os.X_OK):
            raise CodexMcpError("INVALID_ARGUMENT", f"CODEX_MCP_PATH={explicit_path}: not executable")
        return CodexExecutable(path, "CODEX_MCP_PATH")
    if command:
        if os.sep in command:
            raise CodexMcpError(
                "INVALID_ARGUMENT", f"CODEX_MCP_COMMAND={command}: give a bare name, not a path"
            )
        found = shutil.which(command, path=search_path)
        if found is None:
            raise CodexMcpError("INVALID_ARGUMENT", f"CODEX_MCP_COMMAND={command}: not found on PATH")
        return CodexExecutable(Path(found), "CODEX_MCP_COMMAND")
    for name in _PATH_CANDIDATES:
        found = shutil.which(name, path=search_path)
        if found is not None:
            return CodexExecutable(Path(found), "PATH")
    bundled = _bundled_codex()
    if bundled is not None:
        return CodexExecutable(bundled, "bundled")
    raise CodexMcpError(
        "APP_SERVER_START_FAILED",
        "no Codex executable: install Codex, put `codex` on PATH, set CODEX_MCP_PATH, "
        "or install codex-mcp[codex]",
    )


def _env_positive(name: str, default: int, env: dict[str, str], unit: str = "a whole number") -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise CodexMcpError("INVALID_ARGUMENT", f"{name}={raw}: expected {unit}") from None
    if value <= 0:
        raise CodexMcpError("INVALID_ARGUMENT", f"{name}={raw}: must be positive")
    return value


def _env_ms(name: str, default_ms: int, env: dict[str, str]) -> float:
    return _env_positive(name, default_ms, env, "milliseconds") / 1000


def _hosts(env: dict[str, str]) -> tuple[Host, ...]:
    raw = env.get("CODEX_MCP_HOSTS", "").strip()
    return load_hosts(Path(raw).expanduser().absolute()) if raw else ()


ApprovalsMode = Literal["poll", "elicit"]


def approvals_mode(env: dict[str, str]) -> ApprovalsMode:
    """CODEX_MCP_APPROVALS: poll (the default) or elicit."""
    raw = env.get("CODEX_MCP_APPROVALS", "").strip() or "poll"
    if raw not in ("poll", "elicit"):
        raise CodexMcpError("INVALID_ARGUMENT", f"CODEX_MCP_APPROVALS={raw}: expected poll or elicit")
    return "elicit" if raw == "elicit" else "poll"


def default_state_dir(env: dict[str, str]) -> Path:
    """CODEX_MCP_STATE_DIR, else ~/.codex-mcp/state."""
    raw = env.get("CODEX_MCP_STATE_DIR", "").strip()
    return Path(raw).expanduser().absolute() if raw else Path.home() / ".codex-mcp" / "state"


AppServerPlacement = Literal["child", "shared"]
# An app-server is recycled once past this part of CODEX_MCP_APP_SERVER_MAX_RSS_MB (it grows about
# 1 MB a session; the headroom covers the turns that run until a quiet moment comes).
RECYCLE_FRACTION: Final = 0.8


def _placement(env: dict[str, str], nesting: NestingPolicy) -> AppServerPlacement:
    """CODEX_MCP_APP_SERVER; unset: the shared service, except for a server a Codex turn started
    (nested: it lives for that turn, and a service of its own would only outlive it) and where
    there are no unix sockets."""
    default = "shared" if nesting.level == 0 and os.name == "posix" else "child"
    raw = env.get("CODEX_MCP_APP_SERVER", "").strip() or default
    if raw not in ("child", "shared"):
        raise CodexMcpError("INVALID_ARGUMENT", f"CODEX_MCP_APP_SERVER={raw}: expected child or shared")
    return raw


@dataclass(frozen=True)
class Lifetimes:
    """How long sessions live unattended (seconds), measured from their last activity."""

    idle_s: float = 30 * 60
    running_s: float = 4 * 60 * 60
    terminal_s: float = 5 * 60
    warning_s: float = 60


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment."""

    # Seconds a turn may spend in Codex's reconnect loop before we fail it.
    reconnect_timeout_s: float
    # Seconds an app-server request (thread/start, turn/start, ...) may take.
    request_timeout_s: float
    # Seconds between progress notifications while a call waits (clients time out idle calls).
    heartbeat_s: float
    # Check every tool result against its published output schema (tests; costs ~0.5 ms a call).
    validate_output: bool = False
    # Drop shell-profile noise lines from command output deltas.
    filter_noise: bool = True
    ttl: Lifetimes = Lifetimes()
    # Seconds running turns get to finish at shutdown (stdin EOF, SIGTERM, SIGINT) before children stop.
    drain_timeout_s: float = 10.0
    # Where sessions persist across restarts (created 0700).
    state_dir: Path = field(default_factory=lambda: default_state_dir({}))
    # Whether the Codex children may start codex-mcp from the user's config (the recursion guard).
    nesting: NestingPolicy = field(default_factory=NestingPolicy)
    # "shared": sessions run on a Codex service that outlives this server (`service/`); "child":
    # on a stdio child of this server. `from_env` defaults to shared; a Settings built in code
    # (tests, benches) runs on a child unless it says otherwise.
    app_server: AppServerPlacement = "child"
    # Seconds a shared service with nobody attached and no turn running stays up.
    service_idle_s: float = 10 * 60.0
    # A Codex app-server grown past this many MiB is replaced by a fresh one once no turn runs on
    # it (its threads resume there on demand): Codex never gives back what past threads took.
    app_server_max_rss_mb: float = 2048.0
    # Remote app-servers new sessions run on (CODEX_MCP_HOSTS); none: sessions run here.
    hosts: tuple[Host, ...] = ()
    # How a session's approvals reach the caller unless `advanced.approvals` says (CODEX_MCP_APPROVALS):
    # "poll" (actions only) or "elicit" (also asked as elicitations, where the client can show them).
    approvals: ApprovalsMode = "poll"

    @property
    def recycle_rss_mb(self) -> float:
        """Where an app-server is recycled: short of the bound, so what it grows while waiting for
        a moment with no turn running keeps it under the bound."""
        return self.app_server_max_rss_mb * RECYCLE_FRACTION

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read CODEX_MCP_* variables."""
        environ = dict(os.environ if env is None else env)
        nesting = NestingPolicy.from_env(environ)
        return cls(
            reconnect_timeout_s=_env_ms("CODEX_MCP_RECONNECT_TIMEOUT_MS", 120_000, environ),
            request_timeout_s=_env_ms("CODEX_MCP_REQUEST_TIMEOUT_MS", 90_000, environ),
            heartbeat_s=_env_ms("CODEX_MCP_HEARTBEAT_MS", 15_000, environ),
            validate_output=environ.get("CODEX_MCP_VALIDATE_OUTPUT", "") == "1",
            filter_noise=environ.get("CODEX_MCP_DISABLE_NOISE_FILTER", "") != "1",
            drain_timeout_s=_env_ms("CODEX_MCP_DRAIN_TIMEOUT_MS", 10_000, environ),
            state_dir=default_state_dir(environ),
            approvals=approvals_mode(environ),
            nesting=nesting,
            app_server=_placement(environ, nesting),
            service_idle_s=_env_ms("CODEX_MCP_SERVICE_IDLE_MS", 10 * 60_000, environ),
            app_server_max_rss_mb=_env_positive("CODEX_MCP_APP_SERVER_MAX_RSS_MB", 2048, environ),
            hosts=_hosts(environ),
            ttl=Lifetimes(
                idle_s=_env_ms("CODEX_MCP_IDLE_TTL_MS", 30 * 60_000, environ),
                running_s=_env_ms("CODEX_MCP_RUNNING_TTL_MS", 4 * 3_600_000, environ),
                terminal_s=_env_ms("CODEX_MCP_TERMINAL_TTL_MS", 5 * 60_000, environ),
                warning_s=_env_ms("CODEX_MCP_TTL_WARNING_MS", 60_000, environ),
            ),
        )
