"""What sessions add to the event record (`state.records.Event`): which types are pinned, and the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from codex_mcp.state.records import EventType

# Event types that are never evicted before ordinary ones: a client must not miss them.
PINNED_TYPES: Final[frozenset[EventType]] = frozenset(
    {"approval_request", "approval_result", "result", "error"}
)


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
