"""Parse `codex exec --json` JSONL lines into the generated event models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from codex_mcp._generated import registry
from codex_mcp.wire._validation import adapter, decode_line, first_error


@dataclass(frozen=True, slots=True)
class ExecEvent:
    """One typed event; `event` is the generated model for its `type`."""

    type: str
    event: Any
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownExecEvent:
    """A line we could not type: kept whole, with the reason."""

    line: str
    reason: str
    raw: Any = None


def parse_event(line: str | bytes) -> ExecEvent | UnknownExecEvent:
    """Type one stdout line of `codex exec --json`; never raises."""
    # A web_search item repeats the key `id`; json keeps the last one, as Codex's own readers do.
    text, event, parsed, problem = decode_line(line)
    if event is None:
        return UnknownExecEvent(text, problem, parsed)
    event_type = event.get("type")
    model = registry.EXEC_EVENTS.get(event_type) if isinstance(event_type, str) else None
    if model is None or not isinstance(event_type, str):
        return UnknownExecEvent(text, f"unknown event type {event_type!r}", event)
    try:
        return ExecEvent(event_type, adapter(model).validate_python(event), event)
    except ValidationError as exc:
        return UnknownExecEvent(text, f"does not match the exec schema: {first_error(exc)}", event)
