"""Which server owns each session: one owner at a time, and a session whose owner died is up for adoption.

`sessions/<id>/owner` names the owning server's run id. Ownership lasts as long as that server does
(its lock in `servers/`, which the kernel frees when it dies), so a dead owner needs no clean-up:
its sessions are orphans at once. Only the owner writes a session's other files. Claims go through
`claims.lock` (held for the moment of a read-check-write), so two servers adopting the same orphan
cannot both win.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from codex_mcp.state.files import FILE_MODE, read_json_object, write_json_atomic
from codex_mcp.state.servers import ServerInfo, ServerRegistry

_OWNER: Final = "owner"
_CLAIMS_LOCK: Final = "claims.lock"

OwnerKind = Literal["this-server", "other-server", "none"]


@dataclass(frozen=True)
class Owner:
    """Who owns a session: this server, another live one (`info` names it if it can), or nobody."""

    kind: OwnerKind
    run_id: str | None = None
    info: ServerInfo | None = None

    def describe(self) -> str:
        """'another codex-mcp server (pid N, running since ...)' and the like."""
        if self.kind == "this-server":
            return "this server"
        if self.kind == "none":
            return "no live server"
        detail = f" ({self.info.describe()})" if self.info is not None else ""
        return f"another codex-mcp server{detail}"


class Ownership:
    """Reads and claims the owners of one state directory's sessions."""

    def __init__(self, root: Path, sessions_dir: Path, registry: ServerRegistry) -> None:
        self._claims = root / _CLAIMS_LOCK
        self._sessions = sessions_dir
        self._registry = registry

    def owner(self, session_id: str) -> Owner:
        """The session's owner as of now."""
        run_id = self._owner_run_id(session_id)
        if run_id == self._registry.run_id:
            return Owner("this-server", run_id, self._registry.me)
        if run_id is not None and self._registry.is_alive(run_id):
            return Owner("other-server", run_id, self._registry.info(run_id))
        return Owner("none", run_id)

    def claim_new(self, session_id: str) -> None:
        """Own a session this server has just created (nobody else knows its id yet)."""
        self._write(session_id)

    def adopt(self, session_id: str) -> Owner:
        """Own the session unless another live server does; returns its owner before the call."""
        with self._exclusive():
            before = self.owner(session_id)
            if before.kind == "none":
                self._write(session_id)
            return before

    def _owner_run_id(self, session_id: str) -> str | None:
        try:
            value = read_json_object(self._sessions / session_id / _OWNER)
        except (OSError, ValueError):
            return None
        run_id = None if value is None else value.get("runId")
        return run_id if isinstance(run_id, str) else None

    def _write(self, session_id: str) -> None:
        write_json_atomic(self._sessions / session_id / _OWNER, {"runId": self._registry.run_id})

    @contextmanager
    def _exclusive(self) -> Generator[None]:
        fd = os.open(self._claims, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
