"""Sessions to and from the state directory: what is written when, and how they come back.

Events go to disk as the buffer records them (`EventJournal`); the rest of a session (status,
settings, cursor, tokens, pending requests, result) changes often and matters less to the
millisecond, so it is written when it has changed, checked a few times a second, and at once when
a session is created and at shutdown.

A session comes back in two ways: adopted by a server (after a restart, or when its owner died), its
cut turn ended as `server_restart`; or as a read-only view of a session another live server owns,
exactly as that server last wrote it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any, Final, cast, get_args

import anyio

from codex_mcp.errors import CodexMcpError
from codex_mcp.hosts import host_key
from codex_mcp.sessions.buffer import EventBuffer
from codex_mcp.sessions.ingest import finish_turn
from codex_mcp.sessions.session import (
    TERMINAL,
    PendingRequest,
    Session,
    SessionStatus,
    SteerRecord,
    ThreadSettings,
    TokenTotals,
)
from codex_mcp.state.store import StateStore, StoredSession
from codex_mcp.worktrees import Worktree

logger = logging.getLogger(__name__)

META_VERSION: Final = 1
# How often changed session metadata is written.
FLUSH_PERIOD_S: Final = 0.25
_SETTING_NAMES: Final = frozenset(field.name for field in fields(ThreadSettings))
_TOKEN_NAMES: Final = frozenset(field.name for field in fields(TokenTotals))


def _nothing_outlives(key: str) -> bool:
    return False


def session_meta(session: Session) -> dict[str, Any]:
    """What `meta.json` holds for `session` (everything but events and the result)."""
    return {
        "version": META_VERSION,
        "sessionId": session.session_id,
        "threadId": session.thread_id,
        "backend": session.backend,
        "status": session.status,
        "phase": session.phase,
        "createdAt": session.created_at,
        "lastActiveAt": session.last_active_at,
        "completedAt": session.completed_at,
        "cancelledAt": session.cancelled_at,
        "cancelledReason": session.cancelled_reason,
        "startedByCancelledCall": session.started_by_cancelled_call,
        "activeTurnId": session.active_turn_id,
        "endedTurnIds": list(session.ended_turn_ids),
        "steers": [record.to_json() for record in session.steers],
        "lastCursor": session.last_cursor,
        "lastMethod": session.last_method,
        "nextEventId": session.buffer.next_id,
        "tokens": asdict(session.tokens),
        "settings": asdict(session.settings),
        "pending": [request.to_json() for request in session.pending.values()],
        "forgotten": session.forgotten,
    }


def restore_session(
    stored: StoredSession,
    *,
    connection_key: str,
    filter_noise: bool,
    view: bool = False,
    outlives: Callable[[str], bool] = _nothing_outlives,
) -> Session:
    """The session `stored` describes, as it was, except that no turn can still be running.

    A turn that was running when the previous server died ends with status `error`, reason
    `server_restart`; the session can be replied to like any errored one. With `view`, the session
    is shown exactly as its (live) owner wrote it, pending requests included. A session of a remote
    host gets that host's connection key, not `connection_key`. When `outlives` its connection key
    (its turn ran on a shared service or a remote host, which outlive servers), a running turn stays
    running, with its pending requests: the adopting server re-attaches to it.

    Raises:
        ValueError: the metadata lacks what a session needs.
    """
    meta = stored.meta
    if meta.get("sessionId") != stored.session_id:
        raise ValueError(f"meta.json names session {meta.get('sessionId')!r}")
    thread_id, settings = meta.get("threadId"), meta.get("settings")
    if not isinstance(thread_id, str) or not isinstance(settings, dict):
        raise ValueError("meta.json lacks threadId or settings")
    saved = cast(dict[str, Any], settings)
    known = {k: v for k, v in saved.items() if k in _SETTING_NAMES}
    known["worktree"] = Worktree.from_json(saved.get("worktree"))
    try:
        thread_settings = ThreadSettings(**known)
    except TypeError as exc:
        raise ValueError(f"meta.json settings: {exc}") from None
    next_event_id = meta.get("nextEventId")
    session = Session(
        session_id=stored.session_id,
        thread_id=thread_id,
        settings=thread_settings,
        connection_key=connection_key if thread_settings.host is None else host_key(thread_settings.host),
        backend="exec" if meta.get("backend") == "exec" else "app-server",
        filter_noise=filter_noise,
        buffer=EventBuffer.restored(
            stored.events, next_id=next_event_id if isinstance(next_event_id, int) else 0
        ),
    )
    status = meta.get("status")
    session.status = cast(SessionStatus, status) if status in get_args(SessionStatus) else "error"
    session.phase = _text(meta, "phase") or "finished"
    session.created_at = _text(meta, "createdAt") or session.created_at
    session.last_active_at = _text(meta, "lastActiveAt") or session.last_active_at
    session.completed_at = _text(meta, "completedAt")
    session.cancelled_at = _text(meta, "cancelledAt")
    session.cancelled_reason = _text(meta, "cancelledReason")
    session.started_by_cancelled_call = meta.get("startedByCancelledCall") is True
    session.last_method = _text(meta, "lastMethod")
    session.active_turn_id = _text(meta, "activeTurnId")
    ended = meta.get("endedTurnIds")
    if isinstance(ended, list):
        session.ended_turn_ids.extend(str(turn) for turn in cast(list[object], ended))
    steers = meta.get("steers")
    if isinstance(steers, list):
        records = (SteerRecord.from_json(entry) for entry in cast(list[object], steers))
        session.steers.extend(record for record in records if record is not None)
    cursor = meta.get("lastCursor")
    session.last_cursor = (
        min(cursor, session.buffer.next_id) if isinstance(cursor, int) and cursor >= 0 else 0
    )
    tokens = meta.get("tokens")
    if isinstance(tokens, dict):
        saved = cast(dict[str, object], tokens)
        counts = {k: v for k, v in saved.items() if k in _TOKEN_NAMES and type(v) is int}
        session.tokens = TokenTotals(**counts, seen=saved.get("seen") is True)
    session.result = stored.result
    if stored.result is not None:
        session.turn_results.append(stored.result)
    session.forgotten = meta.get("forgotten") is True
    live = outlives(session.connection_key) and session.status in ("running", "waiting_approval")
    if view or live:
        session.pending = _pending_requests(meta.get("pending"))
        return session
    session.turn_finished.set()
    if session.status in ("running", "waiting_approval"):
        session.status = "running"
        finish_turn(
            session,
            status="error",
            turn_id=session.active_turn_id,
            reason="server_restart",
            error_message=(
                "codex-mcp restarted while this turn was running; the turn stopped there. "
                "codex_reply continues the conversation"
                if not session.settings.ephemeral
                else "codex-mcp restarted while this turn was running; this ephemeral session cannot resume"
            ),
        )
    return session


def _pending_requests(value: object) -> dict[str, PendingRequest]:
    requests: dict[str, PendingRequest] = {}
    for entry in cast(list[object], value) if isinstance(value, list) else []:
        request = PendingRequest.from_json(entry)
        if request is not None:
            requests[request.request_id] = request
    return requests


def disk_only_matches(
    store: StateStore, in_memory: set[str], statuses: list[str], older_than_ms: int | None
) -> list[str]:
    """Sessions on disk but not in memory whose saved status and inactivity match a `clean`."""
    now = datetime.now(UTC)
    matched: list[str] = []
    for session_id in store.session_ids():
        if session_id in in_memory:
            continue
        meta = store.read_meta(session_id)
        status = None if meta is None else meta.get("status")
        if meta is not None and (status not in statuses or status not in TERMINAL):
            continue
        if older_than_ms is not None and meta is not None:
            last_active = _parse_time(_text(meta, "lastActiveAt"))
            if last_active is not None and (now - last_active).total_seconds() * 1000 <= older_than_ms:
                continue
        # Unreadable metadata matches too: such a directory can never load, only be cleaned.
        matched.append(session_id)
    return matched


def stored_worktree(store: StateStore, session_id: str) -> Worktree | None:
    """The worktree a session on disk runs in, as its metadata says."""
    meta = store.read_meta(session_id)
    settings = None if meta is None else meta.get("settings")
    return (
        Worktree.from_json(cast(dict[str, Any], settings).get("worktree"))
        if isinstance(settings, dict)
        else None
    )


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _text(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    return value if isinstance(value, str) else None


class SessionPersister:
    """Keeps the state directory in step with the sessions of one manager."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._written_meta: dict[str, dict[str, Any]] = {}
        self._written_result: dict[str, dict[str, Any]] = {}

    @property
    def store(self) -> StateStore:
        """The state directory written to."""
        return self._store

    def attach(self, session: Session) -> None:
        """Start persisting `session`: its metadata at once, its events as they come.

        A session that did not start empty (a recovered one) has its log rewritten from its
        buffer, which may hold less than the log (eviction, a torn line) or more (the restart's
        own result event).
        """
        journal = self._store.journal(session.session_id, session.buffer.events)
        session.buffer.journal = journal
        if len(session.buffer):
            journal.compact()
        self.write(session)

    def load(
        self,
        session_id: str,
        *,
        connection_key: str,
        filter_noise: bool,
        view: bool,
        events: bool = True,
        outlives: Callable[[str], bool] = _nothing_outlives,
    ) -> Session | None:
        """The session on disk (see `restore_session`), without its events unless `events`; None
        when it is missing, unreadable or forgotten."""
        stored = self._store.load(session_id, events=events)
        if stored is None:
            return None
        try:
            session = restore_session(
                stored, connection_key=connection_key, filter_noise=filter_noise, view=view, outlives=outlives
            )
        except ValueError as exc:
            logger.warning("skipping session %s: %s", session_id, exc)
            return None
        return None if session.forgotten else session

    def write(self, session: Session) -> None:
        """Write what changed in `session` since it was last written."""
        meta = session_meta(session)
        result = session.result
        try:
            # The result before the status that shows it: another server's view that reads an
            # ended status must find that turn's result.
            if result is not None and self._written_result.get(session.session_id) != result:
                self._store.write_result(session.session_id, result)
                self._written_result[session.session_id] = dict(result)
            if self._written_meta.get(session.session_id) != meta:
                self._store.write_meta(session.session_id, meta)
                self._written_meta[session.session_id] = meta
        except (OSError, CodexMcpError):
            logger.exception("could not persist session %s", session.session_id)

    def forget(self, session_id: str) -> None:
        """Stop tracking a session dropped from memory (its files stay)."""
        self._written_meta.pop(session_id, None)
        self._written_result.pop(session_id, None)

    def remove(self, session_id: str) -> bool:
        """Delete the session's files; True if there were any."""
        self.forget(session_id)
        return self._store.remove(session_id)

    async def run(self, sessions: Callable[[], Iterable[Session]]) -> None:
        """Write changed sessions every `FLUSH_PERIOD_S`, until cancelled."""
        while True:
            await anyio.sleep(FLUSH_PERIOD_S)
            for session in sessions():
                self.write(session)
