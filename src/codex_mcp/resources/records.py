"""A session's full record as resources: its event log (in pages), each turn's result, and its
worktree patch, at `codex-mcp:///sessions/<id>/…`.

Digests (`responseMode: "digest"`) point here for everything they cut. What these resources show
is what `codex_check` poll (`responseMode: "full"`) and `codex_session worktree_patch` already
return; nothing that `codex_session get` hides without `includeSensitive` (threadId, the session's
cwd, profile and config, its worktree path) is added.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit

SESSIONS_PREFIX: Final = "codex-mcp:///sessions/"
# Events per page: the default, and the most a page holds (`limit`).
EVENTS_PAGE_DEFAULT: Final = 200
EVENTS_PAGE_MAX: Final = 1000
# A page also stops before its JSON passes this many bytes (it always holds one event).
EVENTS_PAGE_BYTES: Final = 1_000_000
EVENTS_PAGE_SCHEMA: Final = "resources/session-events-page.json"
TURNS_SCHEMA: Final = "resources/session-turns.json"

RecordKind = Literal["events", "turns", "turn", "patch"]

_ID: Final = r"(?P<id>[A-Za-z0-9_-]{1,64})"
_PATH: Final = re.compile(rf"^{_ID}/(?:(?P<kind>events|turns|patch)|turns/(?P<turn>[0-9]{{1,6}}))$")


@dataclass(frozen=True)
class Template:
    """One resource template as `resources/templates/list` shows it."""

    name: str
    uri_template: str
    title: str
    description: str
    mime_type: str


TEMPLATES: Final = (
    Template(
        "session-events",
        SESSIONS_PREFIX + "{sessionId}/events{?cursor,limit}",
        "Session event log",
        "Every event of a session (those polls can no longer read included, up to 8 MiB of them), as "
        "codex_check poll (responseMode full) shows it, oldest first, in pages: `cursor` (default: "
        f"the oldest kept), `limit` (default {EVENTS_PAGE_DEFAULT}, "
        f"max {EVENTS_PAGE_MAX}); follow `nextUri` until `hasMore` is false. Schema: "
        f"codex-mcp:///schemas/{EVENTS_PAGE_SCHEMA}.",
        "application/json",
    ),
    Template(
        "session-turns",
        SESSIONS_PREFIX + "{sessionId}/turns",
        "Session turn results",
        "The full result of each turn this server saw end, oldest first, with the commands and "
        f"files of the last one. Schema: codex-mcp:///schemas/{TURNS_SCHEMA}.",
        "application/json",
    ),
    Template(
        "session-turn",
        SESSIONS_PREFIX + "{sessionId}/turns/{index}",
        "One turn's result",
        "The full result of turn `index` (0 = the oldest kept) of the turns resource.",
        "application/json",
    ),
    Template(
        "session-patch",
        SESSIONS_PREFIX + "{sessionId}/patch",
        "Session worktree patch",
        "Sessions in a git worktree (advanced.worktree): everything that differs from the base "
        "commit, as `git diff --binary` writes it (what codex_session worktree_patch returns).",
        "text/x-diff",
    ),
)


def events_uri(session_id: str, cursor: int | None = None, limit: int | None = None) -> str:
    """The URI of a page of the session's event log."""
    query = [f"{key}={value}" for key, value in (("cursor", cursor), ("limit", limit)) if value is not None]
    return f"{SESSIONS_PREFIX}{session_id}/events" + ("?" + "&".join(query) if query else "")


def turns_uri(session_id: str) -> str:
    """The URI of the session's turn results."""
    return f"{SESSIONS_PREFIX}{session_id}/turns"


def patch_uri(session_id: str) -> str:
    """The URI of the session's worktree patch."""
    return f"{SESSIONS_PREFIX}{session_id}/patch"


@dataclass(frozen=True)
class EventLog:
    """A session's kept events as a full-mode poll shows them, oldest first; `oldest` is the
    id of the oldest kept one, `next_id` the id the next new event gets."""

    events: list[dict[str, Any]]
    oldest: int
    next_id: int


@dataclass(frozen=True)
class RecordRef:
    """A parsed `codex-mcp:///sessions/<id>/…` URI."""

    session_id: str
    kind: RecordKind
    cursor: int | None = None
    limit: int = EVENTS_PAGE_DEFAULT
    turn: int | None = None


def parse_record_uri(uri: str) -> RecordRef | str | None:
    """The record `uri` names; None when it is not a session URI; a message saying what is wrong
    when it is one but malformed."""
    if not uri.startswith(SESSIONS_PREFIX):
        return None
    split = urlsplit(uri)
    rest = uri[len(SESSIONS_PREFIX) :].split("?", 1)[0].split("#", 1)[0]
    match = _PATH.match(rest)
    if match is None:
        return (
            f"no session resource {uri!r}; session resources: {SESSIONS_PREFIX}<sessionId>/events"
            "[?cursor=N&limit=M], …/turns, …/turns/<index>, …/patch"
        )
    session_id = match["id"]
    if match["turn"] is not None:
        return RecordRef(session_id, "turn", turn=int(match["turn"]))
    kind: RecordKind = match["kind"]  # type: ignore[assignment]  # the regex allows only these
    query = parse_qs(split.query, keep_blank_values=True)
    if kind != "events":
        if query:
            return f"{uri!r}: {kind} takes no query"
        return RecordRef(session_id, kind)
    unknown = sorted(set(query) - {"cursor", "limit"})
    if unknown:
        return f"{uri!r}: unknown query parameter {unknown[0]!r} (events takes cursor and limit)"
    values: dict[str, int] = {}
    for key, raw in query.items():
        if len(raw) != 1 or not raw[0].isdigit() or len(raw[0]) > 12:
            return f"{uri!r}: {key} must be one non-negative integer"
        values[key] = int(raw[0])
    limit = values.get("limit", EVENTS_PAGE_DEFAULT)
    if not 1 <= limit <= EVENTS_PAGE_MAX:
        return f"{uri!r}: limit must be 1 to {EVENTS_PAGE_MAX}"
    return RecordRef(session_id, "events", cursor=values.get("cursor"), limit=limit)


def json_size(value: object) -> int:
    """Bytes of `value` as compact JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def events_page(
    session_id: str,
    events: list[dict[str, Any]],
    *,
    oldest: int,
    next_id: int,
    cursor: int | None,
    limit: int,
) -> dict[str, Any]:
    """One page of the event log: `events` are every event kept (shown), `oldest` the id of
    the oldest kept one, `next_id` the id the next new event gets."""
    start = oldest if cursor is None else cursor
    reset = start < oldest
    start = max(start, oldest)
    page: list[dict[str, Any]] = []
    size = 0
    for event in events:
        if event["id"] < start:
            continue
        if len(page) >= limit:
            break
        event_size = json_size(event) + 1
        if page and size + event_size > EVENTS_PAGE_BYTES:
            break
        page.append(event)
        size += event_size
    after = page[-1]["id"] + 1 if page else start
    has_more = any(event["id"] >= after for event in events)
    body: dict[str, Any] = {
        "sessionId": session_id,
        "cursor": start,
        "nextCursor": after,
        "oldestCursor": oldest,
        "endCursor": next_id,
        "limit": limit,
        "hasMore": has_more,
        "events": page,
    }
    if has_more:
        body["nextUri"] = events_uri(session_id, after, limit)
    if reset:
        body["cursorResetTo"] = start
    return body
