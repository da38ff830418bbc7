"""A session's append-only event log on disk (`events.jsonl`), written as the buffer changes.

Each line is one record: a whole event (`{"id", "type", "data", "ts", "pinned"}`) when it is
appended, or a growth (`{"id", "grow", "ts"}`) when a streamed delta is coalesced into it. Every
record is one `write(2)`, so a server killed at any moment leaves whole lines behind (a torn last
line, from a crash of the machine, is skipped on load). The buffer in memory is bounded; the log
would not be, so once it holds many more records than the buffer has events it is rewritten from
the buffer (atomically).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, get_args

from codex_mcp.state.files import write_atomic
from codex_mcp.state.records import Event, EventType

logger = logging.getLogger(__name__)

# The C string encoder `json.dumps` uses, without building a dict per record.
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # pyright: ignore[reportUnknownMemberType, reportAttributeAccessIssue]

# Rewrite the log once it has this many records more than the buffer has events.
COMPACT_SLACK_RECORDS: Final = 20_000


def encode_event(event: Event) -> bytes:
    """The whole-event record of `event`, newline included."""
    record = {"id": event.id, "type": event.type, "data": event.data, "ts": event.timestamp}
    if event.pinned:
        record["pinned"] = True
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def encode_growth(event: Event, delta: str) -> bytes:
    """The growth record for `delta` appended to `event` (one per streamed delta: kept cheap)."""
    grow, ts = _json_string(delta), _json_string(event.timestamp)
    return f'{{"id":{event.id},"grow":{grow},"ts":{ts}}}\n'.encode()


class EventJournal:
    """Writes one session's buffer changes to its log; a `BufferJournal`."""

    def __init__(
        self,
        path: Path,
        write: Callable[[bytes], None],
        retained: Callable[[], list[Event]],
        reopen: Callable[[], None],
    ) -> None:
        self._path = path
        self._write = write
        self._retained = retained
        self._reopen = reopen
        self._records = 0

    def added(self, event: Event) -> None:
        """Record a new event."""
        self._record(encode_event(event))

    def grew(self, event: Event, delta: str) -> None:
        """Record a delta coalesced into `event`."""
        self._record(encode_growth(event, delta))

    def _record(self, line: bytes) -> None:
        try:
            self._write(line)
        except OSError:
            logger.exception("could not append to %s; this event is kept in memory only", self._path)
            return
        self._records += 1
        if self._records > COMPACT_SLACK_RECORDS:
            self.compact()

    def compact(self) -> None:
        """Rewrite the log to hold exactly the retained events."""
        events = self._retained()
        try:
            write_atomic(self._path, b"".join(encode_event(event) for event in events))
        except OSError:
            logger.exception("could not compact %s", self._path)
            return
        # The descriptor in use points at the replaced file.
        self._reopen()
        self._records = len(events)


def read_events(path: Path) -> tuple[list[Event], int]:
    """The events a log holds, ascending, and how many of its lines were unreadable (skipped)."""
    events: dict[int, Event] = {}
    bad = 0
    for record in _records(path):
        if record is None:
            bad += 1
            continue
        event_id = record.get("id")
        if not isinstance(event_id, int):
            bad += 1
            continue
        grow = record.get("grow")
        if isinstance(grow, str):
            event = events.get(event_id)
            delta = event.data.get("delta") if event is not None else None
            if event is None or not isinstance(delta, str):
                bad += 1
                continue
            event.data["delta"] = delta + grow
            event.timestamp = str(record.get("ts", event.timestamp))
            continue
        event = _event(event_id, record)
        if event is None:
            bad += 1
            continue
        events[event_id] = event
    return sorted(events.values(), key=lambda e: e.id), bad


_EVENT_TYPES: Final = frozenset(get_args(EventType))


def _event(event_id: int, record: dict[str, Any]) -> Event | None:
    event_type, data, timestamp = record.get("type"), record.get("data"), record.get("ts")
    if event_type not in _EVENT_TYPES or not isinstance(data, dict) or not isinstance(timestamp, str):
        return None
    return Event(
        id=event_id,
        type=event_type,  # pyright: ignore[reportArgumentType]
        data=data,  # pyright: ignore[reportUnknownArgumentType]
        timestamp=timestamp,
        pinned=record.get("pinned") is True,
    )


def _records(path: Path) -> Iterator[dict[str, Any] | None]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                yield None
                continue
            yield value if isinstance(value, dict) else None  # pyright: ignore[reportUnknownArgumentType]
