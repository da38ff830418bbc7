"""Remote Codex hosts: app-servers on other machines, reached over Codex's websocket listener.

`CODEX_MCP_HOSTS` names a TOML file of hosts:

    [[hosts]]
    name = "build-box"                       # letters, digits, '.', '_', '-'; unique
    url = "ws://127.0.0.1:4500"              # ws://HOST:PORT (or unix:///path of a socket)
    token_file = "~/.codex-mcp/build-box.token"   # mode 0600 or stricter; or:
    # token_env = "BUILD_BOX_TOKEN"          # the name of an environment variable holding it
    timeout_ms = 30000                       # silent this long (pings unanswered): gone

The token is sent as `Authorization: Bearer` (Codex's `--ws-auth capability-token` or a signed bearer
token) and is read when a connection opens, so a rotated token file is picked up; it appears in no
log, error, event or resource. A non-loopback `ws://` address without a token is refused; with one it
is allowed with a warning, since ws:// is plaintext: tunnel it over SSH (README, "Remote hosts").
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from codex_mcp.errors import CodexMcpError
from codex_mcp.wire.endpoint import parse_endpoint

logger = logging.getLogger(__name__)

VARIABLE: Final = "CODEX_MCP_HOSTS"
_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_FIELDS: Final = frozenset({"name", "url", "token_file", "token_env", "timeout_ms"})
# A host that answers no ping for this long is taken as gone and its running turns fail.
DEFAULT_TIMEOUT_MS: Final = 30_000
_TIMEOUT_RANGE_MS: Final = (1_000, 3_600_000)
_KEY_PREFIX: Final = "host:"


def host_key(name: str) -> str:
    """The connection key of the sessions that run on host `name`."""
    return f"{_KEY_PREFIX}{name}"


def host_named(key: str) -> str | None:
    """The host a connection key is of; None for a key of this machine."""
    return key.removeprefix(_KEY_PREFIX) if key.startswith(_KEY_PREFIX) else None


@dataclass(frozen=True)
class Host:
    """One remote app-server: its name, address, and where its token is (never the token)."""

    name: str
    url: str
    token_file: Path | None = None
    token_env: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_MS / 1000

    @property
    def key(self) -> str:
        """The connection key of the sessions that run on it."""
        return host_key(self.name)

    def token(self) -> str | None:
        """The token, read now.

        Raises:
            CodexMcpError: APP_SERVER_START_FAILED naming the file or variable (never its content)
                when the token cannot be read or its file is readable by others.
        """
        if self.token_file is not None:
            try:
                mode = self.token_file.stat().st_mode
                if stat.S_IMODE(mode) & 0o077:
                    raise CodexMcpError(
                        "APP_SERVER_START_FAILED",
                        f"host {self.name}: token_file {self.token_file} is readable by others; "
                        f"chmod 600 {self.token_file}",
                    )
                return self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CodexMcpError(
                    "APP_SERVER_START_FAILED",
                    f"host {self.name}: cannot read token_file {self.token_file} ({exc.strerror})",
                ) from None
        if self.token_env is not None:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise CodexMcpError(
                    "APP_SERVER_START_FAILED", f"host {self.name}: token_env {self.token_env} is not set"
                )
            return value
        return None


def _bad(path: Path, where: str, why: str) -> CodexMcpError:
    return CodexMcpError("INVALID_ARGUMENT", f"{VARIABLE}={path}: {where}: {why}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(path: Path, index: int, raw: object, names: set[str]) -> Host:
    where = f"hosts[{index}]"
    if not isinstance(raw, dict):
        raise _bad(path, where, "expected a table")
    entry = cast(dict[str, Any], raw)
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise _bad(path, f"{where}.{unknown[0]}", f"unknown field (fields: {', '.join(sorted(_FIELDS))})")
    name, url = entry.get("name"), entry.get("url")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _bad(path, f"{where}.name", "1-64 letters, digits, '.', '_' or '-'")
    if name in names:
        raise _bad(path, f"{where}.name", f"{name!r} is named twice")
    if not isinstance(url, str):
        raise _bad(path, f"{where}.url", "expected ws://HOST:PORT or unix:///path")
    try:
        endpoint = parse_endpoint(url)
    except ValueError as exc:
        raise _bad(path, f"{where}.url", str(exc)) from None
    token_file, token_env = entry.get("token_file"), entry.get("token_env")
    if token_file is not None and token_env is not None:
        raise _bad(path, where, "give token_file or token_env, not both")
    if token_file is not None and not isinstance(token_file, str):
        raise _bad(path, f"{where}.token_file", "expected a path")
    if token_env is not None and not isinstance(token_env, str):
        raise _bad(path, f"{where}.token_env", "expected an environment variable's name")
    timeout_ms = entry.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    low, high = _TIMEOUT_RANGE_MS
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or not low <= timeout_ms <= high:
        raise _bad(path, f"{where}.timeout_ms", f"expected an integer from {low} to {high}")
    remote = endpoint.scheme == "ws" and not _loopback(endpoint.host)
    if remote and token_file is None and token_env is None:
        raise _bad(path, f"{where}.url", f"{url} is not loopback: give it a token_file or token_env")
    if remote:
        logger.warning(
            "host %s: ws:// to %s is plaintext; tunnel it over SSH (README, Remote hosts)",
            name,
            endpoint.host,
        )
    file = None if token_file is None else (path.parent / Path(token_file).expanduser())
    return Host(name, url, token_file=file, token_env=token_env, timeout_s=timeout_ms / 1000)


def load_hosts(path: Path) -> tuple[Host, ...]:
    """The hosts of the file at `path`.

    Raises:
        CodexMcpError: INVALID_ARGUMENT naming the variable, the file and the bad field.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _bad(path, "the file", exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise _bad(path, "the file", f"not TOML ({exc})") from None
    entries = document.get("hosts")
    if not isinstance(entries, list) or not entries:
        raise _bad(path, "hosts", "expected one or more [[hosts]] tables")
    names: set[str] = set()
    hosts: list[Host] = []
    for index, raw in enumerate(cast(list[object], entries)):
        host = _host(path, index, raw, names)
        names.add(host.name)
        hosts.append(host)
    return tuple(hosts)
