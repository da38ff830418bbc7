"""Sessions another live server owns, as its files show them: read-only, and fresh within a poll.

The owner appends every event at once and rewrites the rest of a session a few times a second, so a
view read from disk lags the owner by at most that. A view is read again only when one of its files
has changed, and a long-poll on it waits by watching those files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import anyio

from codex_mcp.sessions.persistence import SessionPersister
from codex_mcp.sessions.session import Session

# How often a long-poll on another server's session looks at its files.
WATCH_PERIOD_S: Final = 0.1
_FILES: Final = ("meta.json", "events.jsonl", "result.json")

Stamp = tuple[tuple[int, int], ...]


@dataclass
class _Cached:
    stamp: Stamp
    session: Session


class DiskViews:
    """Read-only views of sessions, cached until their files change."""

    def __init__(self, persister: SessionPersister, *, filter_noise: bool) -> None:
        self._persister = persister
        self._filter_noise = filter_noise
        self._cache: dict[str, _Cached] = {}

    def _stamp(self, session_id: str) -> Stamp:
        directory = self._persister.store.session_dir(session_id)
        stamps: list[tuple[int, int]] = []
        for name in _FILES:
            try:
                info = os.stat(directory / name)
            except OSError:
                stamps.append((0, -1))
                continue
            stamps.append((info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def view(self, session_id: str, owner: str) -> Session | None:
        """The session as its files say now, marked as owned by `owner`; None when unreadable."""
        stamp = self._stamp(session_id)
        cached = self._cache.get(session_id)
        if cached is not None and cached.stamp == stamp:
            cached.session.owner = owner
            return cached.session
        session = self._persister.load(
            session_id, connection_key="", filter_noise=self._filter_noise, view=True
        )
        if session is None:
            self._cache.pop(session_id, None)
            return None
        session.ownership, session.owner = "other-server", owner
        self._cache[session_id] = _Cached(stamp, session)
        return session

    async def wait_for_change(self, session_id: str, timeout_s: float) -> None:
        """Return once the session's files change, or after `timeout_s`."""
        before = self._stamp(session_id)
        with anyio.move_on_after(timeout_s):
            # Another process writes the files: there is no event to wait on, only their stamps.
            while self._stamp(session_id) == before:  # noqa: ASYNC110
                await anyio.sleep(WATCH_PERIOD_S)

    def drop(self, session_id: str) -> None:
        """Forget the cached view (its session is ours now, or gone)."""
        self._cache.pop(session_id, None)
