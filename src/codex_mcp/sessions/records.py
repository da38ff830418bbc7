"""A session's full record as the `codex-mcp:///sessions/<id>/…` resources read it: the events as
codex_check poll (responseMode full) shows them, each turn's result, the worktree patch. The
manager hands these to the resource catalog (its `SessionSource`); nothing here adds a field that
`codex_session get` hides without includeSensitive."""

from __future__ import annotations

from typing import Any

from codex_mcp.resources.records import EventLog
from codex_mcp.sessions.digest import digest_values
from codex_mcp.sessions.polling import SETTLE_WAIT_S, turn_result
from codex_mcp.sessions.session import TERMINAL, Session
from codex_mcp.sessions.shaping import shape_event
from codex_mcp.wire.tools import output_json


def event_log(session: Session) -> EventLog:
    """Every event of `session` this server still has, shown as a full-mode poll shows it: the
    buffer's, and those it evicted that its archive keeps."""
    buffer = session.buffer
    archive = buffer.archive
    retained = buffer.events()
    kept = archive.events()
    first = retained[0].id if retained else buffer.next_id
    merged = sorted([*kept, *retained], key=lambda event: event.id) if kept else retained
    events = [shape_event(event, "full").model_dump(by_alias=True, warnings=False) for event in merged]
    oldest = min(first, kept[0].id if kept else first)
    return EventLog(events=events, oldest=oldest, next_id=buffer.next_id)


async def turn_records(session: Session) -> dict[str, Any]:
    """The `turns` resource: every kept turn's full result, and all of the last turn's commands,
    files and errors (what a digest cuts)."""
    if session.status in TERMINAL:
        await session.settled(SETTLE_WAIT_S)
    whole = digest_values(session)
    last: dict[str, Any] = {key: whole[key] for key in ("commands", "files", "errors") if key in whole}
    if "turnId" in whole:
        last["turnId"] = whole["turnId"]
    return {
        "sessionId": session.session_id,
        "status": session.status,
        "turns": [output_json(turn_result(record)) for record in session.turn_results],
        "lastTurn": last,
    }
