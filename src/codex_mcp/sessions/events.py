"""The normalised event a session records, whatever backend produced it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

EventType = Literal["output", "progress", "approval_request", "approval_result", "result", "error"]

# Event types that are never evicted before ordinary ones: a client must not miss them.
PINNED_TYPES: Final[frozenset[EventType]] = frozenset(
    {"approval_request", "approval_result", "result", "error"}
)


@dataclass(slots=True)
class Event:
    """One entry of a session's event log. `data["method"]` names the Codex message it came from."""

    id: int
    type: EventType
    data: dict[str, Any]
    timestamp: str
    pinned: bool = False

    def to_json(self) -> dict[str, Any]:
        """The event as `codex_check` returns it in `full` mode."""
        return {"id": self.id, "type": self.type, "data": self.data, "timestamp": self.timestamp}


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
