"""Where a shared Codex service lives in the state directory, and which service a server may share.

Servers share one service when what they would spawn is the same: the same Codex executable (the
same file, unchanged: an upgrade makes a new service), the same `CODEX_HOME` and the same spawn
arguments. That identity is hashed into the service's directory name under `<state>/svc/`:

    svc/<key>/sock          the app-server's `--listen unix://` path (Codex makes it a symlink to a
                            private socket under /tmp, since socket addresses hold ~107 bytes)
    svc/<key>/keeper.lock   held (exclusive) by the keeper process for the service's whole life
    svc/<key>/attach.lock   held (shared) by every server using the service; free means nobody is
    svc/<key>/start.lock    held while one server starts the service, so two never start two
    svc/<key>/busy.lock     held (shared) by every server while it starts or runs turns there; the
                            keeper recycles the service only while it holds it exclusively
    svc/<key>/keeper.json   the keeper's and the app-server's pids, for diagnosis and for stopping
    svc/<key>/keeper.log    the keeper's log and the app-server's stderr
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from codex_mcp.state.files import private_dir, read_json_object

SERVICE_DIR: Final = "svc"
# The environment entry that marks a service's processes (the keeper, Codex, what Codex runs).
SERVICE_VARIABLE: Final = "CODEX_MCP_SERVICE"
_KEY_CHARS: Final = 16


def service_key(codex: Path, codex_home: str, args: Sequence[str]) -> str:
    """The identity of the service these spawn settings make: a hash, stable across servers."""
    real = codex.resolve()
    try:
        stat = real.stat()
        identity: list[Any] = [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns]
    except OSError:
        identity = []
    material = json.dumps([str(real), identity, codex_home, list(args)])
    return hashlib.sha256(material.encode()).hexdigest()[:_KEY_CHARS]


@dataclass(frozen=True)
class ServiceLayout:
    """The files of one service (see the module doc)."""

    root: Path

    @classmethod
    def under(cls, state_root: Path, key: str) -> ServiceLayout:
        """The layout of service `key` in the state directory at `state_root` (created, private)."""
        return cls(private_dir(state_root / SERVICE_DIR / key))

    @property
    def key(self) -> str:
        return self.root.name

    @property
    def socket(self) -> Path:
        return self.root / "sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def keeper_lock(self) -> Path:
        return self.root / "keeper.lock"

    @property
    def attach_lock(self) -> Path:
        return self.root / "attach.lock"

    @property
    def start_lock(self) -> Path:
        return self.root / "start.lock"

    @property
    def busy_lock(self) -> Path:
        return self.root / "busy.lock"

    @property
    def info(self) -> Path:
        return self.root / "keeper.json"

    @property
    def log(self) -> Path:
        return self.root / "keeper.log"

    def read_info(self) -> dict[str, Any]:
        """What the keeper wrote of itself; {} when there is nothing readable."""
        try:
            return read_json_object(self.info) or {}
        except (OSError, ValueError):
            return {}

    def log_tail(self, chars: int = 800) -> str:
        """The end of the keeper's log (Codex's stderr included)."""
        try:
            with self.log.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - chars))
                return log.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""
