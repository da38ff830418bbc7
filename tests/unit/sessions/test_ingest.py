"""Notifications become events and move the session's state; results say what the turn produced."""

from __future__ import annotations

from codex_mcp.sessions.ingest import finish_turn, ingest_notification
from codex_mcp.sessions.session import Session, ThreadSettings
from codex_mcp.wire.tools import output_json


def _session(*, output_schema: bool = False) -> Session:
    session = Session(
        session_id="sess_test",
        thread_id="thread-1",
        settings=ThreadSettings(approval_policy="never", sandbox="read-only", cwd="/w"),
        connection_key="k",
    )
    session.begin_turn(has_output_schema=output_schema)
    return session


def _agent_message(session: Session, text: str) -> None:
    ingest_notification(
        session,
        "item/completed",
        {"threadId": "thread-1", "turnId": "t1", "item": {"type": "agentMessage", "id": "m1", "text": text}},
    )


def test_the_result_text_is_the_last_completed_agent_message_even_when_turn_items_are_empty() -> None:
    session = _session()
    ingest_notification(session, "turn/started", {"threadId": "thread-1", "turn": {"id": "t1", "items": []}})
    _agent_message(session, "first")
    _agent_message(session, "final answer")
    ingest_notification(
        session,
        "turn/completed",
        {"threadId": "thread-1", "turn": {"id": "t1", "items": [], "status": "completed"}},
    )
    assert session.status == "idle"
    assert session.result is not None
    assert session.result["text"] == "final answer"
    assert session.result["output"] == "final answer"
    assert session.result["turnId"] == "t1"
    assert session.turn_finished.is_set()
    assert session.buffer.events()[-1].type == "result"


def test_structured_output_is_parsed_only_when_the_turn_had_an_output_schema() -> None:
    with_schema, without = _session(output_schema=True), _session()
    for session in (with_schema, without):
        _agent_message(session, '{"ok": true}')
        finish_turn(session, status="completed", turn_id="t1")
    assert with_schema.result is not None
    assert with_schema.result["structuredOutput"] == {"ok": True}
    assert without.result is not None
    assert "structuredOutput" not in without.result


def test_a_failed_turn_reports_its_error_and_leaves_the_session_in_error() -> None:
    session = _session()
    ingest_notification(
        session,
        "error",
        {
            "threadId": "thread-1",
            "turnId": "t1",
            "willRetry": False,
            "error": {"message": "high demand", "codexErrorInfo": "internalServerError"},
        },
    )
    ingest_notification(
        session,
        "turn/completed",
        {"threadId": "thread-1", "turn": {"id": "t1", "items": [], "status": "failed"}},
    )
    assert session.status == "error"
    assert session.result is not None
    assert session.result["error"] == {"message": "high demand", "codexErrorInfo": "internalServerError"}
    assert [e.type for e in session.buffer.events()][-2:] == ["error", "result"]


def test_an_interrupted_turn_leaves_the_session_idle() -> None:
    session = _session()
    ingest_notification(
        session,
        "turn/completed",
        {"threadId": "thread-1", "turn": {"id": "t1", "items": [], "status": "interrupted"}},
    )
    assert session.status == "idle"
    assert session.result is not None
    assert session.result["status"] == "interrupted"


def test_a_retrying_error_is_a_pinned_reconnect_progress_event_not_a_failure() -> None:
    session = _session()
    ingest_notification(
        session,
        "error",
        {"threadId": "thread-1", "turnId": "t1", "willRetry": True, "error": {"message": "Reconnecting 1/5"}},
    )
    event = session.buffer.events()[-1]
    assert event.type == "progress"
    assert event.pinned
    assert event.data["method"] == "codex-mcp/reconnect"
    assert event.data["sourceMethod"] == "error"
    assert session.status == "running"
    assert session.reconnecting_since is not None


def test_agent_message_deltas_merge_into_one_output_event_per_item() -> None:
    session = _session()
    for piece in ("Hel", "lo"):
        ingest_notification(
            session,
            "item/agentMessage/delta",
            {"threadId": "thread-1", "turnId": "t1", "itemId": "m1", "delta": piece},
        )
    deltas = [e for e in session.buffer.events() if e.data["method"] == "item/agentMessage/delta"]
    assert len(deltas) == 1
    assert deltas[0].type == "output"
    assert deltas[0].data["delta"] == "Hello"


def test_token_usage_totals_reach_progress_and_the_result() -> None:
    session = _session()
    total = {
        "inputTokens": 100,
        "cachedInputTokens": 10,
        "outputTokens": 20,
        "reasoningOutputTokens": 5,
        "totalTokens": 120,
    }
    ingest_notification(
        session,
        "thread/tokenUsage/updated",
        {"threadId": "thread-1", "turnId": "t1", "tokenUsage": {"total": total}},
    )
    finish_turn(session, status="completed", turn_id="t1")
    assert output_json(session.progress())["tokens"]["totalTokens"] == 120
    assert session.result is not None
    assert session.result["usage"]["inputTokens"] == 100


def test_unrecognised_notifications_are_kept_as_progress_not_dropped() -> None:
    session = _session()
    ingest_notification(
        session, "thread/status/changed", {"threadId": "thread-1", "status": {"type": "active"}}
    )
    assert session.buffer.events()[-1].data == {
        "method": "thread/status/changed",
        "threadId": "thread-1",
        "status": {"type": "active"},
    }
    assert session.last_method == "thread/status/changed"


def test_a_late_turn_completed_for_an_ended_turn_does_not_end_the_next_turn() -> None:
    session = _session()
    finish_turn(session, status="failed", turn_id="t1", reason="reconnect_timeout")
    session.begin_turn(has_output_schema=False)
    ingest_notification(session, "turn/started", {"threadId": "thread-1", "turn": {"id": "t2", "items": []}})
    ingest_notification(
        session,
        "turn/completed",
        {"threadId": "thread-1", "turn": {"id": "t1", "items": [], "status": "interrupted"}},
    )
    assert session.status == "running"
    assert session.result is None
    ingest_notification(
        session,
        "turn/completed",
        {"threadId": "thread-1", "turn": {"id": "t2", "items": [], "status": "completed"}},
    )
    assert session.status == "idle"
    assert session.result is not None
    assert session.result["turnId"] == "t2"


def test_shell_noise_is_dropped_from_command_output_unless_disabled() -> None:
    noisy = "(base) user@host\nreal output\nWARNING: oh-my-posh init failed\n\x1b]633;A\x07prompt\n"
    filtered, kept = _session(), _session()
    kept.filter_noise = False
    for session in (filtered, kept):
        ingest_notification(
            session,
            "item/commandExecution/outputDelta",
            {"threadId": "thread-1", "turnId": "t1", "itemId": "c1", "delta": noisy},
        )
        ingest_notification(
            session,
            "item/commandExecution/outputDelta",
            {"threadId": "thread-1", "turnId": "t1", "itemId": "c1", "delta": "(conda) only noise\n"},
        )
    [filtered_event] = [e for e in filtered.buffer.events() if e.data["method"].endswith("outputDelta")]
    [kept_event] = [e for e in kept.buffer.events() if e.data["method"].endswith("outputDelta")]
    assert filtered_event.data["delta"] == "real output\n"
    assert kept_event.data["delta"] == noisy + "(conda) only noise\n"
