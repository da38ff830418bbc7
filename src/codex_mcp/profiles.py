"""Config profiles: `codex app-server` takes no profile, so we layer one onto `thread/start`'s config."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, cast

from codex_mcp.errors import CodexMcpError

# A profile name becomes a file name under CODEX_HOME: nothing that could name a file elsewhere.
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def codex_home(env: dict[str, str] | None = None) -> Path:
    """Where Codex keeps its config: CODEX_HOME, or ~/.codex."""
    environ = os.environ if env is None else env
    return Path(environ.get("CODEX_HOME") or Path.home() / ".codex")


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _load(path: Path, field: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CodexMcpError("INVALID_ARGUMENT", f"{field}: cannot read {path}: {exc}", field=field) from exc


def profile_config(name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The settings of profile `name`: `$CODEX_HOME/<name>.config.toml` (current Codex), else the
    legacy `[profiles.<name>]` table of `config.toml`.

    Raises:
        CodexMcpError: INVALID_ARGUMENT naming `profile` when neither exists or cannot be read.
    """
    if not _PROFILE_NAME.fullmatch(name) or ".." in name:
        raise CodexMcpError(
            "INVALID_ARGUMENT",
            "profile: a name of letters, digits, '_', '-' and '.' (at most 64, no '..')",
            field="profile",
        )
    home = codex_home(env)
    layered = home / f"{name}.config.toml"
    if _is_file(layered):
        return _load(layered, "profile")
    base = home / "config.toml"
    if _is_file(base):
        profiles: object = _load(base, "profile").get("profiles", {})
        table: object = cast(dict[str, object], profiles).get(name) if isinstance(profiles, dict) else None
        if isinstance(table, dict):
            return cast(dict[str, Any], table)
    raise CodexMcpError(
        "INVALID_ARGUMENT",
        f"profile {name!r} not found: expected {layered} or a [profiles.{name}] table in {base}",
        field="profile",
    )
