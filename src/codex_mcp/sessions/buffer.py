"""A session's bounded event log: monotonic ids, delta coalescing, tiered eviction, cursor reads.

Used from one anyio event loop; nothing here is thread-safe.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import takewhile
from typing import Any, Final, Protocol

import anyio

from codex_mcp.sessions.events import PINNED_TYPES, now_iso
from codex_mcp.state.records import Event, EventType

__all__ = ["ARCHIVE_BYTES", "CRITICAL_TYPES", "BufferJournal", "EventArchive", "EventBuffer", "ReadResult"]

logger = logging.getLogger(__name__)

# Pinned events evicted only as the very last resort (a warning is logged when they go).
CRITICAL_TYPES: Final[frozenset[EventType]] = frozenset({"approval_request", "result", "error"})


# What a session keeps of the events its buffer evicted (for its events resource), in bytes of JSON.
ARCHIVE_BYTES: Final = 8 * 1024 * 1024


class EventArchive:
    """The events a buffer evicted, kept (up to `max_bytes` of their JSON, the newest) for the
    session's full event log (`codex-mcp:///sessions/<id>/events`); polls never read them."""

    def __init__(self, max_bytes: int = ARCHIVE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._events: deque[tuple[Event, int]] = deque()
        self._bytes = 0
        # Events below this id that were evicted are gone from the archive too.
        self.lost_below = 0

    def keep(self, event: Event) -> None:
        """Keep an evicted event, dropping the oldest kept ones past the bound."""
        size = len(json.dumps(event.data, separators=(",", ":"), default=str)) + 64
        self._events.append((event, size))
        self._bytes += size
        while self._bytes > self._max_bytes and self._events:
            dropped, dropped_size = self._events.popleft()
            self._bytes -= dropped_size
            self.lost_below = max(self.lost_below, dropped.id + 1)

    def events(self) -> list[Event]:
        """The kept events, by id."""
        return sorted((event for event, _ in self._events if event.id >= self.lost_below), key=lambda e: e.id)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What one cursor read returns.

    `cursor_reset_to` is set when events before it were evicted and the read restarted there;
    `stale` is set when an explicit cursor was behind `last_cursor` (a re-read).
    """

    events: list[Event]
    next_cursor: int
    cursor_reset_to: int | None
    stale: bool


class BufferJournal(Protocol):
    """Where a buffer reports each change as it happens (the session's on-disk event log)."""

    def added(self, event: Event) -> None:
        """`event` was appended."""
        ...

    def grew(self, event: Event, delta: str) -> None:
        """`delta` was appended to `event.data["delta"]` (coalescing)."""
        ...


def _has_delta(event: Event) -> bool:
    return "delta" in event.data


class EventBuffer:
    """One session's event log, bounded by `soft_limit`/`hard_limit`, read through cursors.

    Eviction never renumbers: ids stay monotonic from `first_id`, so a cursor stays meaningful.
    """

    def __init__(
        self,
        *,
        soft_limit: int = 1000,
        hard_limit: int = 2000,
        coalesce_max_chars: int = 16384,
        first_id: int = 0,
    ) -> None:
        if not 1 <= soft_limit <= hard_limit:
            raise ValueError(f"need 1 <= soft_limit <= hard_limit, got {soft_limit}, {hard_limit}")
        if coalesce_max_chars < 0 or first_id < 0:
            raise ValueError(
                f"coalesce_max_chars and first_id must be >= 0, got {coalesce_max_chars}, {first_id}"
            )
        self._soft_limit = soft_limit
        self._hard_limit = hard_limit
        self._coalesce_max_chars = coalesce_max_chars
        self._events: dict[int, Event] = {}
        # Ids per eviction tier, oldest first; every retained id is in exactly one of them.
        self._unpinned: deque[int] = deque()
        self._approval_results: deque[int] = deque()
        self._pinned: deque[int] = deque()
        self._critical: deque[int] = deque()
        self._next_id = first_id
        self._tail_key: str | None = None
        # Events below this id were handed to a reader; growing them would hide text from that reader.
        self._sealed_below = first_id
        self._version = 0
        self._changed: anyio.Event | None = None
        self.journal: BufferJournal | None = None
        self.archive = EventArchive()

    @classmethod
    def restored(cls, events: Iterable[Event], *, next_id: int, **limits: int) -> EventBuffer:
        """A buffer holding `events` (ascending ids, as persisted) whose next new event is `next_id`.

        Every restored event counts as read, so none of them grows by coalescing; the limits apply
        as if the events had just been appended.
        """
        kept = sorted(events, key=lambda event: event.id)
        first_id = kept[0].id if kept else next_id
        buffer = cls(first_id=first_id, **limits)
        for event in kept:
            buffer._events[event.id] = event
            buffer._tier_of(event).append(event.id)
        buffer._next_id = max(next_id, kept[-1].id + 1 if kept else next_id)
        buffer._sealed_below = buffer._next_id
        buffer._evict()
        return buffer

    @property
    def next_id(self) -> int:
        """The id the next new event gets."""
        return self._next_id

    @property
    def oldest_id(self) -> int:
        """The id of the oldest retained event, or `next_id` when the buffer is empty."""
        return next(iter(self._events), self._next_id)

    @property
    def version(self) -> int:
        """A counter bumped on every append, coalesce, eviction and `notify()`."""
        return self._version

    def __len__(self) -> int:
        return len(self._events)

    def events(self) -> list[Event]:
        """A snapshot of the retained events, oldest first."""
        return list(self._events.values())

    def append(
        self,
        type: EventType,
        data: dict[str, Any],
        *,
        pinned: bool | None = None,
        coalesce_key: str | None = None,
    ) -> Event:
        """Record an event (or grow the last one's `delta` when `coalesce_key` matches); return it.

        `pinned` defaults to `type in PINNED_TYPES`. `data` is copied, never mutated.
        """
        is_pinned = type in PINNED_TYPES if pinned is None else pinned
        if coalesce_key is not None and not is_pinned:
            merged = self._coalesce(type, data, coalesce_key)
            if merged is not None:
                return merged
        event = Event(id=self._next_id, type=type, data=dict(data), timestamp=now_iso(), pinned=is_pinned)
        self._next_id += 1
        self._events[event.id] = event
        self._tier_of(event).append(event.id)
        self._tail_key = coalesce_key
        self._evict()
        if self.journal is not None:
            self.journal.added(event)
        self._bump()
        return event

    def read(
        self,
        cursor: int | None,
        *,
        max_events: int,
        last_cursor: int,
        include_deltas: bool = True,
        is_delta: Callable[[Event], bool] | None = None,
    ) -> ReadResult:
        """Events with id >= the cursor (`cursor`, else `last_cursor`), at most `max_events` of them.

        A future cursor is clamped to `next_id`; a cursor before the oldest retained event restarts
        there and reports `cursor_reset_to`. Without `include_deltas`, events matching `is_delta`
        (default: data has a `delta`) are passed over: they are not returned and not counted, but
        `next_cursor` moves past them.
        """
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        start = min(cursor if cursor is not None else last_cursor, self._next_id)
        reset_to: int | None = None
        if self.oldest_id > start:
            reset_to = start = self.oldest_id
        skip = None if include_deltas else (is_delta or _has_delta)
        events: list[Event] = []
        next_cursor = start
        for event in self._from(start):
            if skip is not None and skip(event):
                next_cursor = event.id + 1
                continue
            if len(events) == max_events:
                break
            events.append(event)
            next_cursor = event.id + 1
        self._sealed_below = max(self._sealed_below, next_cursor)
        return ReadResult(events, next_cursor, reset_to, cursor is not None and cursor < last_cursor)

    def notify(self) -> None:
        """Wake `wait_for_change` waiters without recording anything (e.g. the session status changed)."""
        self._bump()

    async def wait_for_change(self, since_version: int, timeout_s: float) -> bool:
        """Wait until `version != since_version`; True if it changed, False after `timeout_s`."""
        with anyio.move_on_after(timeout_s):
            while self._version == since_version:
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
        return self._version != since_version

    def _coalesce(self, type: EventType, data: dict[str, Any], key: str) -> Event | None:
        tail = self._events.get(self._next_id - 1)
        if (
            tail is None
            or tail.pinned
            or tail.type != type
            or tail.id < self._sealed_below
            or self._tail_key != key
        ):
            return None
        old, new = tail.data.get("delta"), data.get("delta")
        if not isinstance(old, str) or not isinstance(new, str):
            return None
        if len(old) + len(new) > self._coalesce_max_chars:
            return None
        tail.data["delta"] = old + new
        tail.timestamp = now_iso()
        if self.journal is not None:
            self.journal.grew(tail, new)
        self._bump()
        return tail

    def _tier_of(self, event: Event) -> deque[int]:
        if not event.pinned:
            return self._unpinned
        if event.type == "approval_result":
            return self._approval_results
        if event.type in CRITICAL_TYPES:
            return self._critical
        return self._pinned

    def _evict(self) -> None:
        while len(self._events) > self._soft_limit and self._unpinned:
            self._drop(self._unpinned)
        while len(self._events) > self._soft_limit and self._approval_results:
            self._drop(self._approval_results)
        tiers = (self._approval_results, self._unpinned, self._pinned, self._critical)
        while len(self._events) > self._hard_limit:
            tier = next(t for t in tiers if t)
            if tier is self._critical:
                event = self._events[tier[0]]
                logger.warning(
                    "event buffer over %d events: evicting critical %s event %d",
                    self._hard_limit,
                    event.type,
                    event.id,
                )
            self._drop(tier)

    def _drop(self, tier: deque[int]) -> None:
        self.archive.keep(self._events.pop(tier.popleft()))

    def _from(self, start: int) -> list[Event]:
        # Readers mostly sit near the tail, so walk back from the newest event.
        newest_first = takewhile(lambda event: event.id >= start, reversed(self._events.values()))
        return list(newest_first)[::-1]

    def _bump(self) -> None:
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None
