"""EventBuffer: ids, coalescing, eviction tiers, the cursor contract and long-polling."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_mcp.sessions import buffer as buffer_module
from codex_mcp.sessions.buffer import CRITICAL_TYPES, EventBuffer
from codex_mcp.sessions.events import PINNED_TYPES
from codex_mcp.state.records import Event, EventType

DELTA = "item/agentMessage/delta"
ALL_TYPES: tuple[EventType, ...] = (
    "output",
    "progress",
    "approval_request",
    "approval_result",
    "result",
    "error",
)


def _delta(buffer: EventBuffer, text: str, key: str = "k") -> Event:
    return buffer.append("output", {"method": DELTA, "delta": text}, coalesce_key=key)


def _progress(buffer: EventBuffer, n: int = 1) -> list[Event]:
    return [buffer.append("progress", {"method": "turn/plan/updated", "n": i}) for i in range(n)]


def _ids(events: list[Event]) -> list[int]:
    return [event.id for event in events]


def _is_delta(event: Event) -> bool:
    return event.data.get("method") == DELTA


# --- ids and pinning ----------------------------------------------------------------------------


def test_ids_count_up_from_zero() -> None:
    buffer = EventBuffer()
    assert _ids(_progress(buffer, 3)) == [0, 1, 2]
    assert buffer.next_id == 3
    assert len(buffer) == 3


def test_a_restored_session_continues_its_ids_from_first_id() -> None:
    buffer = EventBuffer(first_id=500)
    assert buffer.oldest_id == 500
    assert _ids(_progress(buffer, 2)) == [500, 501]


def test_pinned_defaults_to_the_pinned_types_and_can_be_overridden() -> None:
    buffer = EventBuffer()
    for event_type in ALL_TYPES:
        assert buffer.append(event_type, {}).pinned == (event_type in PINNED_TYPES)
    assert buffer.append("progress", {"method": "codex-mcp/reconnect"}, pinned=True).pinned
    assert not buffer.append("error", {}, pinned=False).pinned


def test_append_copies_data_so_the_callers_dict_is_never_changed() -> None:
    buffer = EventBuffer()
    data = {"method": DELTA, "delta": "ab"}
    buffer.append("output", data, coalesce_key="k")
    _delta(buffer, "cd")
    assert data == {"method": DELTA, "delta": "ab"}


def test_events_returns_a_snapshot_oldest_first() -> None:
    buffer = EventBuffer()
    _progress(buffer, 2)
    snapshot = buffer.events()
    _progress(buffer)
    assert _ids(snapshot) == [0, 1]
    assert _ids(buffer.events()) == [0, 1, 2]


def test_an_empty_buffer_reports_next_id_as_its_oldest_id() -> None:
    buffer = EventBuffer(first_id=7)
    assert len(buffer) == 0
    assert buffer.oldest_id == buffer.next_id == 7


@pytest.mark.parametrize(
    ("kwargs"),
    [{"soft_limit": 0}, {"soft_limit": 10, "hard_limit": 5}, {"coalesce_max_chars": -1}, {"first_id": -1}],
)
def test_impossible_limits_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        EventBuffer(**kwargs)


# --- coalescing ---------------------------------------------------------------------------------


def test_deltas_with_the_same_key_grow_the_last_event_and_keep_its_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = EventBuffer()
    first = _delta(buffer, "Hel")
    monkeypatch.setattr(buffer_module, "now_iso", lambda: "2030-01-01T00:00:00.000Z")
    merged = _delta(buffer, "lo")
    assert merged is first
    assert merged.id == 0
    assert merged.data["delta"] == "Hello"
    assert merged.timestamp == "2030-01-01T00:00:00.000Z"
    assert len(buffer) == 1
    assert buffer.next_id == 1


def test_a_different_key_starts_a_new_event() -> None:
    buffer = EventBuffer()
    _delta(buffer, "a", key="item1")
    _delta(buffer, "b", key="item2")
    assert [e.data["delta"] for e in buffer.events()] == ["a", "b"]


def test_only_the_last_event_is_grown() -> None:
    buffer = EventBuffer()
    _delta(buffer, "a")
    _progress(buffer)
    _delta(buffer, "b")
    assert [e.data.get("delta") for e in buffer.events()] == ["a", None, "b"]


def test_an_event_appended_without_a_key_is_never_grown() -> None:
    buffer = EventBuffer()
    buffer.append("output", {"method": DELTA, "delta": "a"})
    _delta(buffer, "b")
    assert len(buffer) == 2


def test_pinned_events_are_neither_grown_nor_grown_into() -> None:
    buffer = EventBuffer()
    buffer.append("progress", {"delta": "a"}, pinned=True, coalesce_key="k")
    buffer.append("progress", {"delta": "b"}, coalesce_key="k")
    buffer.append("progress", {"delta": "c"}, pinned=True, coalesce_key="k")
    assert [e.data["delta"] for e in buffer.events()] == ["a", "b", "c"]


def test_coalescing_stops_at_coalesce_max_chars() -> None:
    buffer = EventBuffer(coalesce_max_chars=10)
    _delta(buffer, "12345")
    _delta(buffer, "67890")
    _delta(buffer, "x")
    assert [e.data["delta"] for e in buffer.events()] == ["1234567890", "x"]


def test_deltas_that_are_not_strings_are_not_merged() -> None:
    buffer = EventBuffer()
    buffer.append("progress", {"delta": ["a"]}, coalesce_key="k")
    buffer.append("progress", {"delta": "b"}, coalesce_key="k")
    buffer.append("progress", {}, coalesce_key="k")
    assert len(buffer) == 3


def test_an_event_already_read_is_not_grown_so_the_reader_misses_no_text() -> None:
    buffer = EventBuffer()
    _delta(buffer, "Hel")
    read = buffer.read(0, max_events=10, last_cursor=0)
    _delta(buffer, "lo")
    assert read.events[0].data["delta"] == "Hel"
    later = buffer.read(read.next_cursor, max_events=10, last_cursor=read.next_cursor)
    assert [e.data["delta"] for e in later.events] == ["lo"]


def test_skipping_past_a_delta_also_stops_it_growing() -> None:
    buffer = EventBuffer()
    _delta(buffer, "a")
    buffer.read(0, max_events=1, last_cursor=0, include_deltas=False)
    _delta(buffer, "b")
    assert len(buffer) == 2


# --- eviction -----------------------------------------------------------------------------------


def test_above_the_soft_limit_the_oldest_unpinned_events_go_first() -> None:
    buffer = EventBuffer(soft_limit=3, hard_limit=10)
    buffer.append("result", {})
    _progress(buffer, 4)
    assert [(e.id, e.type) for e in buffer.events()] == [(0, "result"), (3, "progress"), (4, "progress")]


def test_pinned_events_survive_while_unpinned_ones_can_go() -> None:
    buffer = EventBuffer(soft_limit=3, hard_limit=10)
    for _ in range(3):
        buffer.append("approval_request", {})
    _progress(buffer, 5)
    assert [e.type for e in buffer.events()] == ["approval_request"] * 3


def test_then_the_oldest_approval_results_go() -> None:
    buffer = EventBuffer(soft_limit=3, hard_limit=10)
    buffer.append("approval_result", {"n": 0})
    buffer.append("error", {})
    buffer.append("approval_result", {"n": 1})
    buffer.append("result", {})
    assert [(e.id, e.type) for e in buffer.events()] == [(1, "error"), (2, "approval_result"), (3, "result")]


def test_above_the_hard_limit_pinned_progress_goes_before_critical_events() -> None:
    buffer = EventBuffer(soft_limit=2, hard_limit=3)
    buffer.append("progress", {"method": "codex-mcp/reconnect"}, pinned=True)
    buffer.append("result", {})
    buffer.append("error", {})
    buffer.append("approval_request", {})
    assert [e.type for e in buffer.events()] == ["result", "error", "approval_request"]


def test_critical_events_go_last_and_a_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    buffer = EventBuffer(soft_limit=2, hard_limit=3)
    with caplog.at_level(logging.WARNING, logger=buffer_module.__name__):
        for event_type in ("result", "error", "approval_request", "result"):
            buffer.append(event_type, {})
    assert _ids(buffer.events()) == [1, 2, 3]
    assert "evicting critical result event 0" in caplog.text


def test_eviction_never_changes_ids() -> None:
    buffer = EventBuffer(soft_limit=5, hard_limit=5)
    appended = _progress(buffer, 12)
    assert _ids(buffer.events()) == [7, 8, 9, 10, 11]
    assert all(e.id == i for i, e in enumerate(appended))
    assert buffer.next_id == 12


def test_a_flood_of_pinned_events_is_still_bounded_by_the_hard_limit() -> None:
    buffer = EventBuffer(soft_limit=10, hard_limit=20)
    for _ in range(500):
        buffer.append("result", {})
    assert len(buffer) == 20
    assert buffer.oldest_id == 480


def test_a_million_style_stream_of_coalescable_deltas_keeps_memory_bounded() -> None:
    buffer = EventBuffer(soft_limit=100, hard_limit=200, coalesce_max_chars=1000)
    for _ in range(200_000):
        _delta(buffer, "0123456789")
    assert len(buffer) <= 100
    assert sum(len(e.data["delta"]) for e in buffer.events()) <= 100 * 1000
    assert buffer.next_id == 200_000 * 10 // 1000


def test_deltas_for_alternating_items_are_bounded_by_the_default_soft_limit() -> None:
    buffer = EventBuffer()
    for i in range(200_000):
        _delta(buffer, "x" * 8, key=f"item{i % 2}")
    assert len(buffer) == 1000
    assert sum(len(e.data["delta"]) for e in buffer.events()) == 8000


# --- reading with cursors -----------------------------------------------------------------------


def test_a_cursor_returns_events_from_that_id_up_to_max_events() -> None:
    buffer = EventBuffer()
    _progress(buffer, 5)
    read = buffer.read(1, max_events=2, last_cursor=0)
    assert _ids(read.events) == [1, 2]
    assert read.next_cursor == 3
    assert read.cursor_reset_to is None


def test_an_omitted_cursor_continues_from_last_cursor() -> None:
    buffer = EventBuffer()
    _progress(buffer, 5)
    read = buffer.read(None, max_events=10, last_cursor=3)
    assert _ids(read.events) == [3, 4]
    assert read.next_cursor == 5
    assert not read.stale


def test_reading_at_the_end_returns_nothing_and_keeps_the_cursor() -> None:
    buffer = EventBuffer()
    _progress(buffer, 2)
    read = buffer.read(2, max_events=5, last_cursor=2)
    assert read.events == []
    assert read.next_cursor == 2


def test_a_future_cursor_is_clamped_to_next_id() -> None:
    buffer = EventBuffer()
    _progress(buffer, 2)
    for cursor, last in ((99, 0), (None, 99)):
        read = buffer.read(cursor, max_events=5, last_cursor=last)
        assert read.events == []
        assert read.next_cursor == 2
        assert read.cursor_reset_to is None


def test_a_cursor_before_evicted_events_resets_to_the_oldest_retained_id() -> None:
    buffer = EventBuffer(soft_limit=3, hard_limit=3)
    _progress(buffer, 6)
    read = buffer.read(1, max_events=2, last_cursor=0)
    assert read.cursor_reset_to == 3
    assert _ids(read.events) == [3, 4]
    assert read.next_cursor == 5


def test_a_restored_buffer_resets_a_zero_cursor_to_its_first_id() -> None:
    buffer = EventBuffer(first_id=40)
    read = buffer.read(0, max_events=1, last_cursor=0)
    assert read.cursor_reset_to == 40
    assert read.next_cursor == 40


def test_an_explicit_cursor_behind_last_cursor_is_flagged_stale_but_honoured() -> None:
    buffer = EventBuffer()
    _progress(buffer, 4)
    read = buffer.read(1, max_events=10, last_cursor=3)
    assert read.stale
    assert _ids(read.events) == [1, 2, 3]


def test_skipped_deltas_advance_the_cursor_without_counting_against_max_events() -> None:
    buffer = EventBuffer()
    _delta(buffer, "a", key="1")
    _progress(buffer)
    _delta(buffer, "b", key="2")
    _delta(buffer, "c", key="3")
    _progress(buffer)
    _progress(buffer)
    read = buffer.read(0, max_events=2, last_cursor=0, include_deltas=False, is_delta=_is_delta)
    assert _ids(read.events) == [1, 4]
    assert read.next_cursor == 5


def test_deltas_right_after_the_last_returned_event_are_passed_over_too() -> None:
    buffer = EventBuffer()
    _progress(buffer)
    _delta(buffer, "a", key="1")
    _delta(buffer, "b", key="2")
    read = buffer.read(0, max_events=1, last_cursor=0, include_deltas=False, is_delta=_is_delta)
    assert _ids(read.events) == [0]
    assert read.next_cursor == 3


def test_a_read_of_only_deltas_returns_nothing_but_moves_past_them() -> None:
    buffer = EventBuffer()
    _delta(buffer, "a", key="1")
    _delta(buffer, "b", key="2")
    read = buffer.read(0, max_events=1, last_cursor=0, include_deltas=False)
    assert read.events == []
    assert read.next_cursor == 2


def test_without_a_predicate_events_carrying_a_delta_count_as_deltas() -> None:
    buffer = EventBuffer()
    buffer.append("progress", {"method": "item/reasoning/textDelta", "delta": "x"})
    _progress(buffer)
    read = buffer.read(0, max_events=5, last_cursor=0, include_deltas=False)
    assert _ids(read.events) == [1]


def test_max_events_below_one_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="max_events"):
        EventBuffer().read(0, max_events=0, last_cursor=0)


@st.composite
def _filled_buffers(draw: st.DrawFn) -> EventBuffer:
    buffer = EventBuffer(soft_limit=draw(st.integers(1, 8)), hard_limit=12, first_id=draw(st.integers(0, 5)))
    for event_type, is_delta in draw(
        st.lists(st.tuples(st.sampled_from(ALL_TYPES), st.booleans()), max_size=30)
    ):
        buffer.append(event_type, {"delta": "d"} if is_delta else {})
    return buffer


@settings(max_examples=300, deadline=None)
@given(
    buffer=_filled_buffers(),
    cursor=st.none() | st.integers(-3, 50),
    last_cursor=st.integers(0, 50),
    max_events=st.integers(1, 6),
    include_deltas=st.booleans(),
)
def test_a_read_returns_the_first_matching_events_from_the_effective_cursor(
    buffer: EventBuffer, cursor: int | None, last_cursor: int, max_events: int, include_deltas: bool
) -> None:
    read = buffer.read(cursor, max_events=max_events, last_cursor=last_cursor, include_deltas=include_deltas)
    effective = min(cursor if cursor is not None else last_cursor, buffer.next_id)
    start = max(effective, buffer.oldest_id)
    assert read.cursor_reset_to == (start if start > effective else None)
    wanted = [e for e in buffer.events() if e.id >= start and (include_deltas or "delta" not in e.data)]
    assert read.events == wanted[:max_events]
    assert start <= read.next_cursor <= buffer.next_id
    if read.events:
        assert read.events[-1].id < read.next_cursor
    passed_over = [e for e in buffer.events() if start <= e.id < read.next_cursor]
    assert all(e in read.events or "delta" in e.data for e in passed_over)


# --- invariants over random histories -----------------------------------------------------------


@dataclass
class _Append:
    type: EventType
    pinned: bool | None
    key: str | None
    delta: str


_appends = st.builds(
    _Append,
    type=st.sampled_from(ALL_TYPES),
    pinned=st.none() | st.booleans(),
    key=st.none() | st.sampled_from(["a", "b"]),
    delta=st.text(alphabet="xyz", max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(
    soft=st.integers(1, 6),
    extra=st.integers(0, 6),
    coalesce=st.integers(0, 12),
    ops=st.lists(_appends, max_size=60),
)
def test_eviction_keeps_the_limits_the_tiers_and_the_ids(
    soft: int, extra: int, coalesce: int, ops: list[_Append]
) -> None:
    buffer = EventBuffer(soft_limit=soft, hard_limit=soft + extra, coalesce_max_chars=coalesce)
    appended: dict[int, Event] = {}
    for op in ops:
        event = buffer.append(op.type, {"delta": op.delta}, pinned=op.pinned, coalesce_key=op.key)
        appended[event.id] = event
        retained = buffer.events()
        assert len(retained) <= soft + extra
        assert all(appended[e.id] is e for e in retained)
        assert _ids(retained) == sorted(_ids(retained))
        if len(retained) > soft:
            assert all(e.pinned and e.type != "approval_result" for e in retained)
        critical = [e for e in appended.values() if e.pinned and e.type in CRITICAL_TYPES]
        assert sum(e in critical for e in retained) == min(len(critical), soft + extra)
        assert all(len(e.data["delta"]) <= max(coalesce, 6) for e in retained)


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(
                st.just("delta"), st.sampled_from(["a", "b"]), st.text(alphabet="pq", min_size=1, max_size=4)
            ),
            st.tuples(st.just("other"), st.just(""), st.just("")),
            st.tuples(st.just("read"), st.just(""), st.sampled_from(["1", "2", "5"])),
        ),
        max_size=60,
    )
)
def test_a_cursor_reader_sees_every_delta_character_while_deltas_coalesce(
    ops: list[tuple[str, str, str]],
) -> None:
    buffer = EventBuffer(coalesce_max_chars=10)
    written: dict[str, str] = {"a": "", "b": ""}
    seen: dict[str, str] = {"a": "", "b": ""}
    cursor = 0

    def read(max_events: int) -> int:
        result = buffer.read(cursor, max_events=max_events, last_cursor=cursor)
        for event in result.events:
            if "delta" in event.data:
                seen[event.data["item"]] += event.data["delta"]
        return result.next_cursor

    for kind, item, text in ops:
        if kind == "delta":
            buffer.append("output", {"item": item, "delta": text}, coalesce_key=item)
            written[item] += text
        elif kind == "other":
            _progress(buffer)
        else:
            cursor = read(int(text))
    while cursor < buffer.next_id:
        cursor = read(3)
    assert seen == written


# --- version and long-polling -------------------------------------------------------------------


def test_version_moves_on_append_coalesce_and_notify() -> None:
    buffer = EventBuffer()
    versions = [buffer.version]
    _delta(buffer, "a")
    versions.append(buffer.version)
    _delta(buffer, "b")
    versions.append(buffer.version)
    buffer.notify()
    versions.append(buffer.version)
    assert versions == sorted(set(versions))


@pytest.mark.anyio
async def test_waiting_returns_at_once_when_the_version_already_moved() -> None:
    buffer = EventBuffer()
    version = buffer.version
    _progress(buffer)
    with anyio.fail_after(1):
        assert await buffer.wait_for_change(version, 60)


@pytest.mark.anyio
async def test_a_waiter_wakes_when_an_event_is_appended() -> None:
    buffer = EventBuffer()
    woke: list[bool] = []

    async def waiter() -> None:
        woke.append(await buffer.wait_for_change(buffer.version, 60))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert woke == []
            _progress(buffer)
    assert woke == [True]


@pytest.mark.anyio
async def test_a_waiter_gives_up_after_its_timeout() -> None:
    buffer = EventBuffer()
    with anyio.fail_after(5):
        assert not await buffer.wait_for_change(buffer.version, 0.05)
        assert not await buffer.wait_for_change(buffer.version, 0)


@pytest.mark.anyio
async def test_many_waiters_all_wake_on_one_notify() -> None:
    buffer = EventBuffer()
    woke: list[bool] = []

    async def waiter(version: int) -> None:
        woke.append(await buffer.wait_for_change(version, 60))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(waiter, buffer.version)
            await anyio.wait_all_tasks_blocked()
            buffer.notify()
    assert woke == [True] * 50
    assert len(buffer) == 0


@pytest.mark.anyio
async def test_a_waiter_on_the_new_version_waits_for_the_next_change() -> None:
    buffer = EventBuffer()
    results: list[bool] = []

    async def waiter(version: int) -> None:
        results.append(await buffer.wait_for_change(version, 60))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, buffer.version)
            await anyio.wait_all_tasks_blocked()
            _progress(buffer)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(waiter, buffer.version)
            await anyio.wait_all_tasks_blocked()
            assert results == [True]
            _progress(buffer)
    assert results == [True, True]


def test_a_restored_buffer_keeps_ids_applies_its_limits_and_seals_every_event() -> None:
    original = EventBuffer()
    for i in range(5):
        original.append("output", {"method": "item/agentMessage/delta", "delta": str(i)})
    restored = EventBuffer.restored(original.events(), next_id=9, soft_limit=3, hard_limit=3)
    assert [event.id for event in restored.events()] == [2, 3, 4]
    assert restored.next_id == 9
    grown = restored.append("output", {"method": "item/agentMessage/delta", "delta": "x"}, coalesce_key="k")
    assert grown.id == 9
    assert EventBuffer.restored([], next_id=4).next_id == 4


def test_evicted_events_go_to_the_archive_which_keeps_the_newest_within_its_bound() -> None:
    from codex_mcp.sessions.buffer import EventArchive

    buffer = EventBuffer(soft_limit=3, hard_limit=5)
    for n in range(10):
        buffer.append("progress", {"method": "m", "n": n})
    assert [event.id for event in buffer.events()] == [7, 8, 9]
    assert [event.id for event in buffer.archive.events()] == list(range(7))
    small = EventArchive(max_bytes=3 * 100)
    for event in buffer.archive.events():
        small.keep(event)
    kept = [event.id for event in small.events()]
    assert kept == list(range(small.lost_below, 7))
    assert 0 < small.lost_below < 7
