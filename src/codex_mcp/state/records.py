"""The normalised event a session records, whatever backend produced it, as the state directory keeps it.

It lives here, below `sessions`, because the journal writes and reads it back; what a session does
with its events (pinning, polling, shaping) stays in `codex_mcp.sessions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventType = Literal["output", "progress", "approval_request", "approval_result", "result", "error"]


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
