"""The polling rules on a session in memory: cursors, staleness, the long-poll wait, final-only
reads, delta skipping and the foreground wait, with no Codex and no server."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from codex_mcp.sessions.ingest import ingest_notification
from codex_mcp.sessions.polling import PollRequest, poll, turn_output, wait_for_result
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.wire.tools import CodexOutput, output_json

pytestmark = pytest.mark.anyio

_BOUND_S = 5.0


class _Waiter:
    """The manager's part in a long poll: wait on the session's own buffer, counting the waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def wait_for_news(self, session: Session, timeout_s: float) -> Session:
        self.waits.append(timeout_s)
        await session.buffer.wait_for_change(session.buffer.version, timeout_s)
        return session


def _running() -> Session:
    session = Session(
        session_id="sess_poll",
        thread_id="thread-1",
        settings=ThreadSettings(approval_policy="never", sandbox="read-only", cwd="/w"),
        connection_key="k",
    )
    session.begin_turn(has_output_schema=False)
    ingest_notification(session, "turn/started", {"threadId": "thread-1", "turn": {"id": "t1", "items": []}})
    return session


def _message(session: Session, text: str) -> None:
    ingest_notification(
        session,
        "item/completed",
        {"threadId": "thread-1", "turnId": "t1", "item": {"type": "agentMessage", "id": text, "text": text}},
    )


def _delta(session: Session, text: str) -> None:
    ingest_notification(
        session,
        "item/agentMessage/delta",
        {"threadId": "thread-1", "turnId": "t1", "itemId": "m", "delta": text},
    )


def _complete(session: Session) -> None:
    ingest_notification(
        session,
        "turn/completed",
        {"threadId": "thread-1", "turn": {"id": "t1", "items": [], "status": "completed"}},
    )


async def test_polls_walk_the_events_with_the_cursor_and_remember_it() -> None:
    session = _running()
    _message(session, "one")
    _message(session, "two")
    waiter = _Waiter()
    first = output_json(await poll(waiter, session, PollRequest(max_events=1), []))
    second = output_json(await poll(waiter, session, PollRequest(max_events=10), []))
    assert len(first["events"]) == 1
    assert second["events"][0]["id"] == first["nextCursor"]
    assert session.last_cursor == second["nextCursor"] == session.buffer.next_id
    # An explicit older cursor re-reads from there.
    again = output_json(await poll(waiter, session, PollRequest(cursor=0, max_events=10), []))
    assert [e["id"] for e in again["events"]] == [e["id"] for e in first["events"] + second["events"]]
    assert waiter.waits == []


async def test_an_answer_behind_the_session_cursor_is_told_it_is_stale_and_returns_no_events() -> None:
    session = _running()
    _message(session, "one")
    await poll(_Waiter(), session, PollRequest(max_events=10), [])
    warnings: list[str] = []
    answer = output_json(await poll(_Waiter(), session, PollRequest(cursor=0, answering=True), warnings))
    assert answer["events"] == []
    assert answer["nextCursor"] == session.last_cursor
    assert answer["compatWarnings"] == warnings
    assert warnings == [f"Provided cursor 0 is stale; used session cursor {session.last_cursor}."]


async def test_a_long_poll_waits_for_the_next_event_and_returns_it() -> None:
    session = _running()
    await poll(_Waiter(), session, PollRequest(max_events=10), [])
    waiter = _Waiter()

    async def later() -> None:
        await anyio.sleep(0.05)
        _message(session, "news")

    answer: dict[str, Any] = {}
    started = time.monotonic()
    with anyio.fail_after(_BOUND_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            answer = output_json(await poll(waiter, session, PollRequest(max_events=10, wait_ms=3000), []))
    assert time.monotonic() - started < 2.5  # woken by the event, not by the end of the wait
    assert waiter.waits == [3.0]
    events: list[dict[str, Any]] = answer["events"]
    assert [event["data"].get("itemId") for event in events] == ["news"]


async def test_a_long_poll_does_not_wait_when_there_is_news_or_the_turn_ended() -> None:
    session = _running()
    _message(session, "already here")
    waiter = _Waiter()
    await poll(waiter, session, PollRequest(max_events=10, wait_ms=3000), [])
    _complete(session)
    ended = output_json(await poll(waiter, session, PollRequest(max_events=10, wait_ms=3000), []))
    assert waiter.waits == []
    assert ended["status"] == "idle"
    assert ended["result"]["text"] == "already here"


async def test_final_only_moves_the_cursor_to_the_end_and_returns_only_the_result() -> None:
    session = _running()
    _message(session, "one")
    _message(session, "final")
    _complete(session)
    answer = output_json(await poll(_Waiter(), session, PollRequest(final_only=True), []))
    assert answer["events"] == []
    assert answer["nextCursor"] == session.buffer.next_id == session.last_cursor
    assert answer["result"]["text"] == "final"


async def test_skipping_deltas_passes_over_them_but_moves_the_cursor_past_them() -> None:
    session = _running()
    _delta(session, "par")
    _delta(session, "tial")
    _message(session, "partial")
    answer = output_json(await poll(_Waiter(), session, PollRequest(max_events=10, skip_deltas=True), []))
    assert all("delta" not in event["data"] for event in answer["events"])
    assert answer["nextCursor"] == session.buffer.next_id


async def test_the_foreground_wait_ends_with_the_turn_and_says_so() -> None:
    session = _running()
    beats: list[float] = []

    async def heartbeat(elapsed_s: float) -> None:
        beats.append(elapsed_s)

    async def finish() -> None:
        await anyio.sleep(0.05)
        _message(session, "done")
        _complete(session)

    output: dict[str, Any] = {}
    with anyio.fail_after(_BOUND_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(finish)
            output = output_json(await turn_output(session, 3000, [], heartbeat, 10.0, model=CodexOutput))
    assert output["execution"] == {
        "mode": "foreground",
        "waitRequestedMs": 3000,
        "fellBackToPolling": False,
        "reason": "completed",
    }
    assert output["result"]["text"] == "done"
    assert output["completedAt"] == output["result"]["completedAt"]


async def test_the_foreground_wait_times_out_with_heartbeats_on_the_way() -> None:
    session = _running()
    beats: list[float] = []

    async def heartbeat(elapsed_s: float) -> None:
        beats.append(elapsed_s)

    with anyio.fail_after(_BOUND_S):
        reason = await wait_for_result(session, 0.3, heartbeat, 0.1)
    assert reason == "timeout"
    assert len(beats) >= 1
